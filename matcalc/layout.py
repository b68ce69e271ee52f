"""Layouts (CONTRACT §3): how the derivative the engine computes is presented.

The engine computes, for f and a variable X,

    gradient    G with df = tr(Gᵀ dX)           (scalar f, matrix or vector X)
    Jacobian    J with vec(dF) = J vec(dX)      (vector or matrix F; a Hessian is the J of G)
    derivative  dF/dt                           (any F, scalar t)

and the layout orients it: "gradient" (G in X's shape), "numerator" (Gᵀ; J), or
"denominator" (G; Jᵀ).  ``oriented`` is the one place that applies a layout to a tree,
``canonical_value`` the one place that takes a value back to the engine's form.
"""
from .errors import MatcalcError
from .simplify import transpose

LAYOUTS = ("gradient", "numerator", "denominator")


def check_layout(layout):
    if layout not in LAYOUTS:
        raise MatcalcError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")


def _flipped(kind, layout, f):
    """Whether the layout presents the engine's answer transposed."""
    if kind == "gradient":
        return layout == "numerator"
    if kind == "jacobian":
        return layout == "denominator"
    if kind == "derivative" and layout != "gradient" and not f.is_scalar:
        if f.shape[1] == 1:             # a column F: numerator dF/dt, denominator its row
            return layout == "denominator"
        if f.shape[0] == 1:             # a row F: numerator its column, denominator dF/dt
            return layout == "numerator"
    return False


def oriented(answer, kind, layout, f):
    """The engine's answer (G, J or dF/dt) in the layout."""
    return transpose(answer) if _flipped(kind, layout, f) else answer


def canonical_value(D, d):
    """The value D (a 2-D array) of the Derivative d's answer back in the engine's form
    (G, J or dF/dt): the inverse of ``oriented`` (a Hessian is never oriented)."""
    return D.T if _flipped(d.kind, d.layout, d.f) else D


def in_variable_shape(kind, layout):
    """Whether the answer's value is given in the shape of the value of the variable (a
    1-D array for a 1-D vector, a number for a scalar): a gradient in the layout
    "gradient"; every other answer has the shape of its tree (CONTRACT §3)."""
    return kind == "gradient" and layout == "gradient"
