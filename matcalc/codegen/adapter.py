"""What the code generator reads of a Derivative, in one place.

``view(d)`` reads the Derivative's public, read-only fields (``typed_symbols``,
``symmetric``, ``gradient``, ``projected_gradient``); the conventions it needs (the
check of the values' shapes) come from the modules that own them.
"""
from dataclasses import dataclass
from typing import Any, Optional

from ..binding import check_values as _check_values


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
    projected_gradient: Any     # for a Hessian: the gradient as matcalc.diff returns it
    source: Any                 # the Derivative itself (returned to users)


def view(d):
    """The fields of a Derivative that code generation reads."""
    return DerivativeView(text=d.text, f=d.f, expr=d.expr, kind=d.kind, layout=d.layout, wrt=d.wrt,
                          var=d.var, symbols=dict(d.typed_symbols), symmetric=d.symmetric,
                          gradient=d.gradient, projected_gradient=d.projected_gradient, source=d)


def check_values(syms, env, sizes):
    """Values must have the shapes the derivation took (a ShapeError otherwise)."""
    _check_values(None, syms, env, sizes)
