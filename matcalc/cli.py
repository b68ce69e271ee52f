"""The command line, thin over the API: ``main(argv) -> int``.

    matcalc diff "tr(X^T A X)" --wrt X [--let A=symmetric] [--steps] [--latex] [--flat]
                 [--layout numerator] [--symmetric cookbook] [--check]
    matcalc hessian "x^T A x" --wrt x

The answer names its long repeated subexpressions once ("2 W B^T X A where W = (R + B^T X
B)^-1", which reads back) where that makes it markedly shorter; --flat prints str(d).

Errors in the input print one message with a caret under the offending text and exit
with status 2; nothing prints a Python traceback.  NumPy is imported only for --check.
"""
import argparse
import sys

from .errors import MatcalcError
from .report import as_json, declarations as _declarations, derivative_text as _text
from .report import zero_note as _zero_note


class _ArgParser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"matcalc: {message}", file=sys.stderr)
        raise SystemExit(2)


def _parser(argv=()):
    """The argument parser.  When argv starts with a command, only that command's parser
    is built (argparse builds each in about half a millisecond, most of it looking up
    translations, and a start-up pays for every one); otherwise all of them, for the help
    and the error that lists them."""
    p = _ArgParser(prog="matcalc", description="Symbolic matrix calculus: derivatives of matrix "
                   "expressions, the way the textbooks do them.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", parser_class=_ArgParser)
    wanted = argv[0] if argv and argv[0] in _COMMANDS else None
    for name, build in _COMMANDS.items():
        if wanted in (None, name):
            build(sub, name)
    return p


def _rules_parser(sub, name):
    sub.add_parser(name, help="list every differential and identity rule the engine applies",
                   description="every differential and identity rule the engine applies")


def _codegen_parser(sub, name):
    g = sub.add_parser(name, help="emit a Python function computing the value and the derivative",
                       description="emit a Python function f_and_grad(...) (and hessian(...))")
    g.add_argument("expr", help='the expression, e.g. "tr(X^T A X)"')
    g.add_argument("--wrt", required=True, help="the variable")
    g.add_argument("--let", action="append", default=[], metavar="NAME=KIND",
                   help="declare a symbol's kind, as for diff; repeatable")
    g.add_argument("--target", default="numpy", choices=["numpy", "jax", "torch"])
    g.add_argument("--hessian", action="store_true", help="also emit hessian(...)")
    g.add_argument("--dtype", default=None, choices=["float32", "float64"],
                   help="the floating-point type the code computes in (default: that of the values given)")


def _serve_parser(sub, name):
    w = sub.add_parser(name, help="the web playground: a local page that derives as you type",
                       description="serve the web playground at http://HOST:PORT/ until Ctrl-C")
    w.add_argument("--port", type=_port, default=8000, help="the port (default 8000; 0 picks a free one)")
    w.add_argument("--host", default="127.0.0.1",
                   help="the interface to listen on (default 127.0.0.1, this machine only)")
    w.add_argument("--open", action="store_true", help="open the page in the web browser")


_DERIVE_HELP = {"diff": "the derivative (gradient) of an expression",
                "hessian": "the Hessian of a scalar expression"}


def _derive_parser(sub, name):
    what = _DERIVE_HELP[name]
    c = sub.add_parser(name, help=what, description=what)
    c.add_argument("expr", help='the expression, e.g. "tr(X^T A X)"')
    c.add_argument("--wrt", required=True,
                   help="the variable, or several separated by commas (one answer per line)")
    c.add_argument("--let", action="append", default=[], metavar="NAME=KIND",
                   help="declare a symbol's kind: scalar, vector, matrix, symmetric, diagonal, "
                        "spd, with optional sizes, e.g. A=symmetric or X=matrix(m,n); repeatable")
    c.add_argument("--steps", action="store_true", help="print the derivation")
    c.add_argument("--latex", action="store_true", help="print LaTeX")
    c.add_argument("--flat", action="store_true",
                   help="print the answer written out, with no \"where W = …\" abbreviations")
    c.add_argument("--layout", default="gradient", choices=["gradient", "numerator", "denominator"],
                   help="layout convention (default: gradient, the shape of the variable)")
    c.add_argument("--symmetric", default=None, choices=["sym", "cookbook"],
                   help="gradient convention for symmetric variables (default: sym)")
    c.add_argument("--check", action="store_true",
                   help="also compare with finite differences; exit 1 if they disagree")
    c.add_argument("--json", action="store_true",
                   help="print a JSON object: input, kinds and sizes, the derivative as text "
                        "and LaTeX, the layout and the steps")


# the commands in the order the help lists them
_COMMANDS = {"rules": _rules_parser, "codegen": _codegen_parser, "serve": _serve_parser,
             "diff": _derive_parser, "hessian": _derive_parser}


def _port(text):
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, got {text!r}")
    return port


def run(args, out):
    """Derive, and write the answer(s) to out; the exit status."""
    import warnings
    from . import api
    symbols = _declarations(args.let)
    fn = api.hessian if args.command == "hessian" else api.diff
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)     # the notes print below instead
        result = fn(args.expr, wrt=args.wrt, symbols=symbols or None, layout=args.layout,
                    symmetric=args.symmetric)
    derivs = result if isinstance(result, list) else [result]
    if args.json:
        import json
        docs, status = [], 0
        for d in derivs:
            doc, st = _json_of(d, args)
            docs.append(doc)
            status = max(status, st)
        # one document: the object of the derivative, or for several variables one
        # object holding them in order
        doc = docs[0] if not isinstance(result, list) else \
            {"input": args.expr, "wrt": [d.wrt for d in derivs], "derivatives": docs}
        out.write(json.dumps(doc, ensure_ascii=not _can_encode(out, "⊗"), indent=2) + "\n")
        return status
    status = 0
    for d in derivs:
        status = max(status, _show(d, args, out))
        for note in getattr(d, "notes", ()):     # after the answer, on stderr
            print(f"note: {note}", file=sys.stderr)
    return status


def _json_of(d, args):
    doc = as_json(d)
    if not args.check:
        return doc, 0
    res = d.check()
    doc["check"] = res.as_dict()
    return doc, 0 if res.ok else 1


def _can_encode(out, text):
    enc = getattr(out, "encoding", None) or "utf-8"
    try:
        text.encode(enc)
        return True
    except (UnicodeEncodeError, LookupError):
        return False


# Readable ASCII for the steps and notes when the output cannot encode Unicode (the
# derivative itself is printed with the language's ASCII spellings, and reads back).
_ASCII = {"∂": "d", "ᵀ": "^T", "⁻¹": "^-1", "⁻": "^-", "²": "^2", "³": "^3", "⊗": "(x)",
          "∘": ".*", "⊙": ".*", "…": "...", "→": "->", "×": "x", "·": "*", "−": "-",
          "≤": "<=", "≥": ">=", "≠": "!=", "²f": "^2f"}


def _ascii_fallback(text, out):
    """text as out can encode it: ASCII spellings, then backslash escapes."""
    if _can_encode(out, text):
        return text
    for k in sorted(_ASCII, key=len, reverse=True):
        text = text.replace(k, _ASCII[k])
    enc = getattr(out, "encoding", None) or "ascii"
    try:
        return text.encode(enc, "backslashreplace").decode(enc)
    except LookupError:
        return text.encode("ascii", "backslashreplace").decode("ascii")


def _show(d, args, out):
    def say(line=""):
        out.write(_ascii_fallback(line, out) + "\n")
    short = not args.flat                # long repeated parts named: "… where W = …"
    if args.latex:
        say(d.latex(abbreviate=short))
    else:
        text = _text(d, abbreviate=short)
        say(text if _can_encode(out, text) else _text(d, ascii=True, abbreviate=short))
        note = _zero_note(d)
        if note:
            say(note)
    if args.steps:
        say()
        if args.latex:
            say(d.steps.latex())
        else:
            for line in d.steps.text().splitlines():
                say("  " + line)
    if args.check:
        res = d.check()
        say(f"check: {res.message()}")
        return 0 if res.ok else 1
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    p = _parser(argv)
    args = p.parse_args(argv)
    if args.version:
        from . import __version__
        return _emit(f"matcalc {__version__}\n", 0)
    if args.command is None:
        p.print_help(sys.stderr)
        return 2
    if args.command == "rules":
        from .rules import render
        return _guarded(args, lambda out: out.write(render() + "\n") and 0)
    if args.command == "codegen":
        return _guarded(args, lambda out: _codegen(args, out))
    if args.command == "serve":
        from .web import serve
        return _guarded(args, lambda out: serve(host=args.host, port=args.port, open_browser=args.open))
    return _guarded(args, lambda out: run(args, out))


def _codegen(args, out):
    import warnings
    from .api import generate_source
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        source = generate_source(args.expr, wrt=args.wrt, symbols=_declarations(args.let) or None,
                                 target=args.target, hessian=args.hessian, dtype=args.dtype)
    out.write(source + "\n")
    for w in dict.fromkeys(str(w.message) for w in caught):     # the notes, after the code
        print(f"note: {w}", file=sys.stderr)
    return 0


class _Buffer:
    """Where a command writes its output: kept until the command has finished, so that an
    error never leaves half an answer (or two JSON documents) on standard output."""

    def __init__(self, encoding):
        self.parts = []
        self.encoding = encoding

    def write(self, s):
        self.parts.append(s)
        return len(s)

    def getvalue(self):
        return "".join(self.parts)


def _guarded(args, fn):
    """Run fn(out) and write what it wrote; every error becomes one message (a caret for
    input errors; with --json, a JSON document on standard output), exit status 2.  No
    error of any kind prints a traceback or exits with another status than 0, 1, 2 or 130."""
    out = _Buffer(getattr(sys.stdout, "encoding", None))
    try:
        status = fn(out)
    except KeyboardInterrupt:
        return 130
    except BaseException as e:  # noqa: BLE001 - the user never sees a traceback
        if isinstance(e, SystemExit):
            raise
        return _error(args, e)
    return _emit(out.getvalue(), status)


def _describe(e):
    """(kind, message) of any exception, as the user reads it."""
    if isinstance(e, MatcalcError):
        return type(e).__name__, e.message
    if isinstance(e, RecursionError):
        return "UnsupportedError", "the expression is nested too deeply"
    if isinstance(e, MemoryError):
        return "UnsupportedError", "the computation ran out of memory"
    return "InternalError", (f"internal error ({type(e).__name__}: {e}); please report it "
                             f"with the input")


def _error(args, e):
    if isinstance(e, MatcalcError) and e.text is None and e.span is not None:
        e.text = getattr(args, "expr", None)
    kind, message = _describe(e)
    if getattr(args, "json", False):
        import json
        doc = {"error": {"kind": kind, "message": message}}
        if isinstance(e, MatcalcError) and e.span is not None:
            doc["error"]["position"] = e.span[0]
            doc["error"]["end"] = e.span[1]
            if e.text is not None:
                doc["error"]["caret"] = "\n".join(e.render().splitlines()[1:])
        text = json.dumps(doc, ensure_ascii=not _can_encode(sys.stdout, "⊗"), indent=2)
        return _emit(text + "\n", 2)
    text = e.render() if isinstance(e, MatcalcError) else f"matcalc: {message}"
    _stderr(text)
    return 2


def _stderr(text):
    try:
        print(_ascii_fallback(text, sys.stderr), file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _emit(text, status):
    """Write text to standard output: an output that cannot be written (a full disk,
    /dev/full) is a message on standard error and exit status 1, never a traceback; a
    reader that went away (| head) is not an error."""
    import errno
    import os
    try:
        sys.stdout.write(_ascii_fallback(text, sys.stdout))
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()
        return status
    except OSError as e:
        _drop_stdout()
        reason = os.strerror(e.errno) if e.errno else str(e)
        _stderr(f"matcalc: cannot write the output: {reason}")
        return 1 if e.errno != errno.EPIPE else status
    return status


def _drop_stdout():
    """Point standard output at the null device, so that the interpreter's own flush at
    exit neither fails again nor prints a traceback."""
    import os
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
