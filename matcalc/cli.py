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


def _declarations(lets):
    out = {}
    for item in lets:
        if "=" not in item:
            raise MatcalcError(f"--let takes NAME=KIND, got {item!r}")
        name, kind = item.split("=", 1)
        out[name.strip()] = kind.strip()
    return out


def _zero_note(d):
    from .shapes import describe_shape
    from . import expr as E
    if isinstance(d.expr, E.Zero) or (isinstance(d.expr, E.Num) and d.expr.value == 0):
        return f"  ({describe_shape(d.expr.shape) if not isinstance(d.expr, E.Num) else 'a scalar'} "\
               f"of zeros: the expression does not depend on {d.wrt})"
    return None


def run(args, out):
    from . import api
    symbols = _declarations(args.let)
    fn = api.hessian if args.command == "hessian" else api.diff
    result = fn(args.expr, wrt=args.wrt, symbols=symbols or None, layout=args.layout,
                symmetric=args.symmetric)
    status = 0
    for d in (result if isinstance(result, list) else [result]):
        status = max(status, _show(d, args, out))
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
        doc = as_json(d)
        status = 0
        if args.check:
            res = d.check()
            doc["check"] = res.as_dict()
            status = 0 if res.ok else 1
        print(json.dumps(doc, ensure_ascii=False, indent=2), file=out)
        return status
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
        print(f"check: {res.message()}", file=out)
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
    return _guarded(args, lambda: run(args, sys.stdout))


def _codegen(args):
    from .codegen import generate_source
    print(generate_source(args.expr, wrt=args.wrt, symbols=_declarations(args.let) or None,
                          target=args.target, hessian=args.hessian))
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
