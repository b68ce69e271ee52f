"""What the code generator reads of a Derivative, in one place.

``view(d)`` is the one function that touches a Derivative's fields (some of them private
today: ``_symbols``, ``_symmetric``, and ``gradient``, set after construction for a
Hessian); when Derivative gets public accessors, this function is the one to change.
The conventions it borrows from the API (the projected gradient of a structured
variable, the check of the values' shapes) are reached here too.
"""
from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class DerivativeView:
    text: str                   # the input text of f
    f: Any                      # typed tree of f
    expr: Any                   # the answer (gradient, Jacobian or Hessian)
    kind: str                   # "gradient" | "derivative" | "jacobian" | "hessian"
    layout: str
    wrt: str
    var: Any                    # the variable's typed Sym
    symbols: dict               # name -> typed Sym, in order of appearance
    symmetric: Optional[str]
    gradient: Any               # for a Hessian: the unprojected gradient tree
    source: Any                 # the Derivative itself (returned to users)


def view(d):
    """The fields of a Derivative that code generation reads."""
    return DerivativeView(text=d.text, f=d.f, expr=d.expr, kind=d.kind, layout=d.layout, wrt=d.wrt,
                          var=d.var, symbols=dict(d._symbols), symmetric=d._symmetric,
                          gradient=getattr(d, "gradient", None), source=d)


def projected_gradient(v):
    """The gradient of a Hessian's derivative along the variable's own space, as
    matcalc.diff returns it (CONTRACT §2)."""
    from ..api import _project
    return _project(v.gradient, v.var, v.symmetric)


def check_values(syms, env, sizes):
    """Values must have the shapes the derivation took (a ShapeError otherwise)."""
    from ..api import _check_values
    _check_values(None, syms, env, sizes)
