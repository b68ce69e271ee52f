"""The elementwise functions, one record each (see ``records.Elementwise``).

f′ is written with the typed builders of ``matcalc.build``; every formula is the rule
d-<name> of the steps and the catalogue.  The order is the order of the tables.
"""
from fractions import Fraction

from .. import expr as E
from ..build import add, const_like, neg, num, one_minus, power, times
from .records import Elementwise

F = E.Func


def _half_over_sqrt(x):
    return E.Mul((num(Fraction(1, 2)), power(F("sqrt", x), -1)))


def _erf_prime(x):
    # 2/√π exp(−x²), with 2/√π = 1/√atan(1) exact (the language has no π)
    return times(power(F("sqrt", F("atan", E.ONE)), -1), F("exp", neg(power(x, 2))))


def _max_with_zero(sp, e):
    """Max(0, x) or Max(x, 0) -> x (relu)."""
    if isinstance(e, sp.Max) and len(e.args) == 2 and sp.S.Zero in e.args:
        return e.args[0] if e.args[1] == 0 else e.args[1]
    return None


def _heaviside_zero_at_zero(sp, e):
    """Heaviside(x, 0) -> x (step; SymPy's Heaviside(x) is 1/2 at 0, not step)."""
    if isinstance(e, sp.Heaviside) and len(e.args) == 2 and e.args[1] == 0:
        return e.args[0]
    return None


ELEMENTWISE_RECORDS = (
    Elementwise(
        "exp", lambda x: F("exp", x), "d exp(x) = exp(x) ∘ dx",
        numpy="np.exp", sympy=lambda sp, x: sp.exp(x), sympy_class="exp", latex="\\exp",
        at={0: 1}, nonnegative=True, fast_growing=True),
    Elementwise(
        "log", lambda x: power(x, -1), "d log(x) = dx ./ x",
        numpy="np.log", sympy=lambda sp, x: sp.log(x), sympy_class="log", latex="\\log",
        at={1: 0}, domain="positive", singular_at_zero=True),
    Elementwise(
        "sin", lambda x: F("cos", x), "d sin(x) = cos(x) ∘ dx",
        numpy="np.sin", sympy=lambda sp, x: sp.sin(x), sympy_class="sin", latex="\\sin",
        at={0: 0}),
    Elementwise(
        "cos", lambda x: neg(F("sin", x)), "d cos(x) = −sin(x) ∘ dx",
        numpy="np.cos", sympy=lambda sp, x: sp.cos(x), sympy_class="cos", latex="\\cos",
        at={0: 1}),
    Elementwise(
        "tanh", lambda x: one_minus(power(F("tanh", x), 2)), "d tanh(x) = (1 − tanh(x).^2) ∘ dx",
        numpy="np.tanh", sympy=lambda sp, x: sp.tanh(x), sympy_class="tanh", latex="\\tanh",
        at={0: 0}),
    Elementwise(
        "sqrt", _half_over_sqrt, "d sqrt(x) = dx ./ (2 sqrt(x))",
        numpy="np.sqrt", sympy=lambda sp, x: sp.sqrt(x), latex_form="\\sqrt{{{}}}",
        at={0: 0, 1: 1}, nonnegative=True, domain="positive", singular_at_zero=True),
    Elementwise(
        "sigmoid", lambda x: times(F("sigmoid", x), one_minus(F("sigmoid", x))),
        "d σ(x) = σ(x) ∘ (1 − σ(x)) ∘ dx",
        numpy="_sigmoid", code={"jax": "jax.nn.sigmoid", "torch": "torch.sigmoid"},
        sympy=lambda sp, x: 1 / (1 + sp.exp(-x)), latex="\\sigma", nonnegative=True),
    Elementwise(
        "softplus", lambda x: F("sigmoid", x), "d softplus(x) = σ(x) ∘ dx",
        numpy="np.logaddexp", first_args=("0.0",),
        code={"jax": "jax.nn.softplus", "torch": "torch.nn.functional.softplus"},
        sympy=lambda sp, x: sp.log(1 + sp.exp(x)), nonnegative=True),
    Elementwise(
        "abs", lambda x: times(x, power(F("abs", x), -1)), "d |x| = x ./ |x| ∘ dx (x ≠ 0)",
        numpy="np.abs", sympy=lambda sp, x: sp.Abs(x), sympy_class="Abs",
        latex_form="\\left|{}\\right|", at={0: 0}, nonnegative=True, singular_at_zero=True),
    # CONTRACT §5.2: the functions of machine-learning losses
    Elementwise(
        "log1p", lambda x: power(add(const_like(1, x), x), -1), "d log1p(x) = dx ./ (1 + x)",
        numpy="np.log1p", sympy=lambda sp, x: sp.log(1 + x), at={0: 0}, domain="positive"),
    Elementwise(
        "expm1", lambda x: F("exp", x), "d expm1(x) = exp(x) ∘ dx",
        numpy="np.expm1", sympy=lambda sp, x: sp.exp(x) - 1, at={0: 0}, fast_growing=True),
    Elementwise(
        "tan", lambda x: add(const_like(1, x), power(F("tan", x), 2)),
        "d tan(x) = (1 + tan(x).^2) ∘ dx",
        numpy="np.tan", sympy=lambda sp, x: sp.tan(x), sympy_class="tan", latex="\\tan",
        at={0: 0}, fast_growing=True),
    Elementwise(
        "atan", lambda x: power(add(const_like(1, x), power(x, 2)), -1), "d atan(x) = dx ./ (1 + x.^2)",
        numpy="np.arctan", code={"torch": "torch.atan"},
        sympy=lambda sp, x: sp.atan(x), sympy_class="atan", latex="\\arctan", at={0: 0}),
    Elementwise(
        "erf", _erf_prime, "d erf(x) = (2/√π) exp(−x.^2) ∘ dx",
        numpy="scipy.special.erf",
        code={"jax": "jax.scipy.special.erf", "torch": "torch.special.erf"},
        imports={"numpy": "import scipy.special", "jax": "import jax.scipy.special"},
        sympy=lambda sp, x: sp.erf(x), sympy_class="erf", at={0: 0}),
    # sign(x), the gradient of the 1-norm ‖x‖₁ (CONTRACT §5.1): constant away from 0, where
    # it jumps; its derivative is taken as 0, so a Hessian through it is 0 where it exists
    # (the 1-norm's guard refuses the points with a zero entry: operators/spectral.py)
    Elementwise(
        "sign", lambda x: const_like(0, x), "d sign(x) = 0 (almost everywhere: sign jumps at 0)",
        numpy="np.sign", sympy=lambda sp, x: sp.sign(x), sympy_class="sign", at={0: 0},
        singular_at_zero=True),
    # relu and its derivative, the step (CONTRACT §5.2: relu′(0) is taken as 0).  The step
    # is constant away from 0 and jumps at 0: its derivative is taken as 0 (it is 0 almost
    # everywhere), so a Hessian through relu is 0 where it exists.
    Elementwise(
        "relu", lambda x: F("step", x), "d relu(x) = step(x) ∘ dx (step(0) = 0)",
        numpy="np.maximum", last_args=("0.0",),
        code={"jax": "jax.nn.relu", "torch": "torch.relu"},
        sympy=lambda sp, x: sp.Max(x, 0), sympy_match=_max_with_zero,
        at={0: 0}, nonnegative=True, singular_at_zero=True),
    Elementwise(
        "step", lambda x: const_like(0, x), "d step(x) = 0 (almost everywhere: step jumps at 0)",
        numpy="np.heaviside", last_args=("0.0",),
        sympy=lambda sp, x: sp.Heaviside(x, 0), sympy_match=_heaviside_zero_at_zero, at={0: 0},
        nonnegative=True, singular_at_zero=True),
)
