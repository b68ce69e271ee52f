"""The Python API: parse, evaluate, diff, hessian and the Derivative they return.

A thin facade over the modules that own the jobs:

    declarations   symbols= checked, the text typed, the variable's name, notes
    derive         the pipeline: differential --canon/jacobian--> simplify --> projected --> layout
    conventions    the structured variables (sym(G), the Cookbook form, diagonal)
    layout         numerator / denominator / gradient, Jacobian and Hessian shapes
    binding        values bound to symbols and checked (matcalc.evaluate)
    derivative     the Derivative returned (read-only; its steps, code, check)
"""
import functools

from . import derive
from .binding import evaluate
from .conventions import STYLES
from .declarations import check_declared, check_wrt, plain_names, scalar_notes, typed
from .derivative import Derivative
from .errors import MatcalcError, ShapeError, UnsupportedError
from .layout import LAYOUTS, check_layout

__all__ = ["Derivative", "compile", "diff", "evaluate", "from_sympy", "generate_source", "hessian",
           "parse", "LAYOUTS"]


def parse(text, symbols=None):
    """The typed expression tree of text (kinds from symbols= or first letters)."""
    tree, _ = typed(text, symbols)
    return tree


def _with_text(fn):
    """Attach the input text to errors raised by a derivation, for the caret."""
    @functools.wraps(fn)
    def run(expr, *args, **kw):
        try:
            return fn(expr, *args, **kw)
        except MatcalcError as err:
            if err.text is None and isinstance(expr, str):
                err.text = expr
            raise
        except RecursionError:
            # Python's own recursion limit, which matcalc leaves as it is (no global state)
            raise UnsupportedError("the derivation is nested too deeply for Python's recursion "
                                   "limit (sys.getrecursionlimit()); write the expression with "
                                   "less nesting", None, expr if isinstance(expr, str) else None) \
                from None
    return run


def _prepare(text, wrt, symbols, layout, symmetric):
    """(typed f, its symbols, the typed variable), every argument checked."""
    wrt = check_wrt(wrt)
    check_layout(layout)
    if symmetric not in STYLES:
        raise MatcalcError(f"unknown symmetric={symmetric!r}; use 'sym' (the default) or 'cookbook'")
    f, syms = typed(text, symbols, extra=(wrt,))
    check_declared(symbols, syms, text)
    return f, syms, syms[wrt]


def _several(fn, expr, wrt, **kw):
    """A list of derivatives when wrt names several variables ("U,V" or ["U", "V"])."""
    names = wrt.split(",") if isinstance(wrt, str) else list(wrt)
    return [fn(expr, w.strip() if isinstance(w, str) else w, **kw) for w in names]


def _noted(notes):
    """The notes, each also a warning."""
    import warnings
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=4)
    return notes


@_with_text
def diff(expr, wrt, symbols=None, layout="gradient", symmetric=None):
    """The derivative of expr with respect to the symbol wrt (CONTRACT §2, §3); a list
    of derivatives when wrt is a list of symbols."""
    wrt, symbols = plain_names(wrt, symbols)
    if isinstance(wrt, (list, tuple)) or (isinstance(wrt, str) and "," in wrt):
        return _several(diff, expr, wrt, symbols=symbols, layout=layout, symmetric=symmetric)
    f, syms, var = _prepare(expr, wrt, symbols, layout, symmetric)
    kind, out = derive.derivative(f, var, layout, symmetric)
    return Derivative(expr, f, var, syms, out, kind, layout, symmetric=symmetric, declarations=symbols,
                      notes=_noted(scalar_notes(expr, f, syms, symbols)))


@_with_text
def hessian(expr, wrt, symbols=None, layout="gradient", symmetric=None):
    """The Hessian of a scalar expr with respect to wrt (a list for several)."""
    wrt, symbols = plain_names(wrt, symbols)
    if isinstance(wrt, (list, tuple)) or (isinstance(wrt, str) and "," in wrt):
        return _several(hessian, expr, wrt, symbols=symbols, layout=layout, symmetric=symmetric)
    f, syms, var = _prepare(expr, wrt, symbols, layout, symmetric)
    if not f.is_scalar:
        notes = scalar_notes(expr, f, syms, symbols)
        raise ShapeError(f"the Hessian needs a scalar function; {expr!r} is not a scalar"
                         + "".join(f"; {n}" for n in notes))
    H, G = derive.hessian(f, var)
    return Derivative(expr, f, var, syms, H, "hessian", layout,
                      symmetric=None if var.is_scalar else symmetric, declarations=symbols, gradient=G)


def from_sympy(expr):
    """A matcalc expression tree from a SymPy matrix expression."""
    from .interop import from_sympy as convert
    return convert(expr)


def _derivatives(expr, wrt, symbols, hessian_too):
    if not isinstance(expr, str):
        raise MatcalcError("codegen takes the expression as text in the input language")
    return (hessian if hessian_too else diff)(expr, wrt=wrt, symbols=symbols)


def compile(expr, wrt, symbols=None, target="numpy", hessian=False, dtype=None):  # noqa: A001
    """The callable f_and_grad(**values) -> (value, derivative) generated for expr
    (and, with hessian=True, returning the Hessian too), computing in dtype "float32" or
    "float64" (None: the type of the values given)."""
    from .codegen import backend, compile_function, require
    require(backend(target, dtype))
    return compile_function(_derivatives(expr, wrt, symbols, hessian), target=target, dtype=dtype)


def generate_source(expr, wrt, symbols=None, target="numpy", hessian=False, optimizations=None,
                    dtype=None):
    """Source of the generated module for the text expr differentiated by wrt, computing
    in dtype (see ``compile``)."""
    from .codegen import generate
    return generate(_derivatives(expr, wrt, symbols, hessian), target=target,
                    optimizations=optimizations, dtype=dtype)
