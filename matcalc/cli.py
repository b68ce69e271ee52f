"""The command line, thin over the API: ``main(argv) -> int``.

    matcalc diff "tr(X^T A X)" --wrt X [--let A=symmetric] [--steps] [--latex]
                 [--layout numerator] [--symmetric cookbook] [--check]
    matcalc hessian "x^T A x" --wrt x

Errors in the input print one message with a caret under the offending text and exit
with status 2; nothing prints a Python traceback.  NumPy is imported only for --check.
"""
import argparse
import sys

from .errors import MatcalcError


class _ArgParser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"matcalc: {message}", file=sys.stderr)
        raise SystemExit(2)


def _parser():
    p = _ArgParser(prog="matcalc", description="Symbolic matrix calculus: derivatives of matrix "
                   "expressions, the way the textbooks do them.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", parser_class=_ArgParser)
    sub.add_parser("rules", help="list every differential and identity rule the engine applies",
                   description="every differential and identity rule the engine applies")
    g = sub.add_parser("codegen", help="emit a Python function computing the value and the derivative",
                       description="emit a Python function f_and_grad(...) (and hessian(...))")
    g.add_argument("expr", help='the expression, e.g. "tr(X^T A X)"')
    g.add_argument("--wrt", required=True, help="the variable")
    g.add_argument("--let", action="append", default=[], metavar="NAME=KIND",
                   help="declare a symbol's kind, as for diff; repeatable")
    g.add_argument("--target", default="numpy", choices=["numpy", "jax", "torch"])
    g.add_argument("--hessian", action="store_true", help="also emit hessian(...)")
    w = sub.add_parser("serve", help="the web playground: a local page that derives as you type",
                       description="serve the web playground at http://HOST:PORT/ until Ctrl-C")
    w.add_argument("--port", type=_port, default=8000, help="the port (default 8000; 0 picks a free one)")
    w.add_argument("--host", default="127.0.0.1",
                   help="the interface to listen on (default 127.0.0.1, this machine only)")
    w.add_argument("--open", action="store_true", help="open the page in the web browser")
    for name, what in (("diff", "the derivative (gradient) of an expression"),
                       ("hessian", "the Hessian of a scalar expression")):
        c = sub.add_parser(name, help=what, description=what)
        c.add_argument("expr", help='the expression, e.g. "tr(X^T A X)"')
        c.add_argument("--wrt", required=True,
                       help="the variable, or several separated by commas (one answer per line)")
        c.add_argument("--let", action="append", default=[], metavar="NAME=KIND",
                       help="declare a symbol's kind: scalar, vector, matrix, symmetric, diagonal, "
                            "spd, with optional sizes, e.g. A=symmetric or X=matrix(m,n); repeatable")
        c.add_argument("--steps", action="store_true", help="print the derivation")
        c.add_argument("--latex", action="store_true", help="print LaTeX")
        c.add_argument("--layout", default="gradient", choices=["gradient", "numerator", "denominator"],
                       help="layout convention (default: gradient, the shape of the variable)")
        c.add_argument("--symmetric", default=None, choices=["sym", "cookbook"],
                       help="gradient convention for symmetric variables (default: sym)")
        c.add_argument("--check", action="store_true",
                       help="also compare with finite differences; exit 1 if they disagree")
        c.add_argument("--json", action="store_true",
                       help="print a JSON object: input, kinds and sizes, the derivative as text "
                            "and LaTeX, the layout and the steps")
    return p


def _port(text):
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, got {text!r}")
    return port


def _declarations(lets):
    out = {}
    for item in lets:
        if "=" not in item:
            raise MatcalcError(f"--let takes NAME=KIND, got {item!r}")
        name, kind = item.split("=", 1)
        name, kind = name.strip(), kind.strip()
        if name in out and out[name] != kind:
            raise MatcalcError(f"--let declares {name} twice: {name}={out[name]} and {name}={kind}")
        out[name] = kind
    return out


def _zero_note(d):
    from .shapes import describe_shape
    from . import expr as E
    if isinstance(d.expr, E.Zero) or (isinstance(d.expr, E.Num) and d.expr.value == 0):
        return f"  ({describe_shape(d.expr.shape) if not isinstance(d.expr, E.Num) else 'a scalar'} "\
               f"of zeros: the expression does not depend on {d.wrt})"
    return None


def run(args, out):
    import warnings
    from . import api
    symbols = _declarations(args.let)
    fn = api.hessian if args.command == "hessian" else api.diff
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)     # the notes print below instead
        result = fn(args.expr, wrt=args.wrt, symbols=symbols or None, layout=args.layout,
                    symmetric=args.symmetric)
    status = 0
    for d in (result if isinstance(result, list) else [result]):
        status = max(status, _show(d, args, out))
        for note in getattr(d, "notes", ()):     # after the answer, on stderr
            print(f"note: {note}", file=sys.stderr)
    return status


def as_json(d):
    """The machine-readable form of a derivative (for editors and other programs)."""
    return {
        "input": d.text,
        "wrt": d.wrt,
        "kind": d.kind,
        "layout": d.layout,
        "symbols": d.symbols,
        "shape": [str(x) for x in d.shape],
        "derivative": str(d),
        "latex": d.latex(),
        "steps": [str(s) for s in d.steps],
    }


def _show(d, args, out):
    if args.json:
        import json
        print(json.dumps(as_json(d), ensure_ascii=False, indent=2), file=out)
        return 0
    if args.latex:
        print(d.latex(), file=out)
    else:
        print(str(d), file=out)
        note = _zero_note(d)
        if note:
            print(note, file=out)
    if args.steps:
        print(file=out)
        if args.latex:
            print(d.steps.latex(), file=out)
        else:
            for line in d.steps.text().splitlines():
                print("  " + line, file=out)
    if args.check:
        res = d.check()
        if res.error is None:
            print(f"check: could not evaluate: {res.note}", file=out)
            return 1
        verdict = "ok" if res.ok else "FAILED"
        print(f"check: relative error {res.error:.2e} over {res.trials} random points: {verdict}", file=out)
        return 0 if res.ok else 1
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    p = _parser()
    args = p.parse_args(argv)
    if args.version:
        from . import __version__
        print(f"matcalc {__version__}")
        return 0
    if args.command is None:
        p.print_help(sys.stderr)
        return 2
    if args.command == "rules":
        from .rules import render
        return _guarded(args, lambda: print(render()) or 0)
    if args.command == "codegen":
        return _guarded(args, lambda: _codegen(args))
    if args.command == "serve":
        from .web import serve
        return _guarded(args, lambda: serve(host=args.host, port=args.port, open_browser=args.open))
    return _guarded(args, lambda: run(args, sys.stdout))


def _codegen(args):
    import warnings
    from .codegen import generate_source
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        source = generate_source(args.expr, wrt=args.wrt, symbols=_declarations(args.let) or None,
                                 target=args.target, hessian=args.hessian)
    print(source)
    for w in dict.fromkeys(str(w.message) for w in caught):     # the notes, after the code
        print(f"note: {w}", file=sys.stderr)
    return 0


def _guarded(args, fn):
    """Run fn, turning every error into one message (a caret for input errors)."""
    try:
        return fn()
    except MatcalcError as e:
        if e.text is None and e.span is not None:
            e.text = getattr(args, "expr", None)
        print(e.render(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:          # the reader went away (| head): not an error
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except RecursionError:
        print("matcalc: the expression is nested too deeply", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - the user never sees a traceback
        print(f"matcalc: internal error ({type(e).__name__}: {e}); please report it with the input",
              file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
