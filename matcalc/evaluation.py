"""The value of a typed tree: plain floats first (``numeric``), and where a value on the
way is not finite at finite inputs, again past the float range (``extended``), which
keeps the exponent of an intermediate that overflows.  The evaluator, the check, the
steps, the API's evaluate and the code generator's constant folding all call
``evaluate_tree`` or ``evaluate_for_user``.
"""
import math

import numpy as np

from . import expr as E
from . import extended
from .errors import EvaluationError
from .numeric import Evaluator, NoValue, _sums_finite, user_error
from .printing import to_text


def _extended(tree, env, sizes, ev):
    """(value, node, X): the value of tree by the Evaluator ev (which has evaluated it), or
    when some value on the way was not finite at finite inputs (an intermediate overflow
    that a later 0 ·, 1 / or tanh would hide) the value computed past the float range
    (matcalc.extended), with the node whose value overflowed even that, or None."""
    v = ev.ev(tree)
    if (not ev.nonfinite and _sums_finite(v)) or not all(_sums_finite(a) for a in env.values()):
        return v, None, None
    x, node = extended.evaluate(tree, env, sizes)
    out = x.to_float()
    if tree.is_scalar:
        out = float(out.reshape(-1)[0])
    if node is None and not x.in_range():
        node = tree
    return out, node, x


def evaluate_tree(tree, env, sizes):
    """The value of tree; a node without a value raises NoValue (a LinAlgError).  Plain
    floats first; a value that is not finite there is computed again past the float range
    (an entry whose true value overflows float64 is then ±inf)."""
    with np.errstate(all="ignore"):
        ev = Evaluator(env, sizes)
        v = ev.ev(tree)
        try:
            return _extended(tree, env, sizes, ev)[0]
        except NoValue:
            return v


def evaluate_for_user(tree, env, sizes):
    """evaluate_tree for the API: no value at these values is an EvaluationError, and so is
    a value that overflows float64 (never inf or NaN where the true value is finite)."""
    try:
        with np.errstate(all="ignore"):
            out, node, x = _extended(tree, env, sizes, Evaluator(env, sizes))
    except NoValue as err:
        raise user_error(err) from None
    if node is not None:
        text = to_text(node)
        text = text if len(text) <= 80 else text[:77] + "..."
        if node is tree:
            why = "its value is past the largest float, 1.8e308"
            if x is not None and x.finite():
                why += f" (about 1e{int(int(np.max(x.k)) * math.log10(2))})"
        else:
            why = "a value on the way is past the largest float, 1.8e308"
        raise EvaluationError(f"the value overflows float64 at {text}: {why}; scale the inputs")
    return out


def no_value_cause(tree, env, sizes):
    """Where the value of tree is NaN at finite inputs, the deepest node whose value is
    not finite while its children's are (r ||r||⁻¹ at r = 0: ||r||⁻¹), as text and the
    values' description, for the error that replaces the NaN; None where no node is."""
    with np.errstate(all="ignore"):
        ev = Evaluator(env, sizes)
        try:
            ev.ev(tree)
        except NoValue:
            return None

    def finite(node):
        hit = ev.memo.get(id(node))
        return hit is None or _sums_finite(hit[1])

    for node in reversed(list(E.walk(tree))):   # children before their parents
        if not finite(node) and all(finite(a) for a in node.args):
            return to_text(node)
    return None
