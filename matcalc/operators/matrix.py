"""The functions of a square matrix (not elementwise), one record each (see
``records.MatrixFunction``): expm, logm, sqrtm and the real power X^p (CONTRACT §5.1).
The engine's nodes are ``expr.MatFunc(name, arg, p)`` (f(X)), ``expr.Frechet(name, arg,
dir, p)`` (L_f(X, E), the Fréchet derivative) and ``expr.FrechetJac(name, arg, p)`` (its
n²×n² matrix).

f′ is written with the language's nodes: the closed form L_f(X, E) = f′(X) E holds where
E commutes with X, and tr L_f(X, E) = tr(f′(X) E) for every E.  The values are
``spectral_values``' (SciPy imported only when something is evaluated).
"""
from fractions import Fraction

from .. import expr as E
from .records import MatrixFunction

HALF = Fraction(1, 2)


def mat_func(name, x, p=None):
    """f(X) as a node, powers normalized: X^(1/2) is sqrtm(X), an integer power is the
    language's X^k (X^-k the power of the inverse), X^0 = I, X^1 = X."""
    if name == "powm":
        p = Fraction(p)
        if p == HALF:
            return E.MatFunc("sqrtm", x)
        if p.denominator == 1:
            k = int(p)
            if k == 0:
                return E.Identity(x.shape[0])
            if k == 1:
                return x
            if k == -1:
                return E.Inverse(x)
            return E.MatPow(x, k) if k > 0 else E.MatPow(E.Inverse(x), -k)
        return E.MatFunc("powm", x, p)
    return E.MatFunc(name, x)


def _scalar_power(x, p):
    return E.Pow(x, E.Num(p))


MATRIX_RECORDS = (
    MatrixFunction(
        "expm", "expm", "dexpm", "jexpm",
        derivative=lambda x, p: E.MatFunc("expm", x),
        scalar=lambda x, p: E.Func("exp", x),
        prime_formula="expm′(X) = expm(X)",
        values="expm", at_zero="I", fast_growing=True, fuzz_weight=2),
    MatrixFunction(
        "logm", "logm", "dlogm", "jlogm",
        derivative=lambda x, p: E.Inverse(x),
        scalar=lambda x, p: E.Func("log", x),
        prime_formula="logm′(X) = X⁻¹",
        values="logm", principal=True, at_identity="0"),
    MatrixFunction(
        "sqrtm", "sqrtm", "dsqrtm", "jsqrtm",
        derivative=lambda x, p: E.Mul((E.Num(HALF), E.Inverse(E.MatFunc("sqrtm", x)))),
        scalar=lambda x, p: E.Func("sqrt", x),
        prime_formula="sqrtm′(X) = (1/2) sqrtm(X)⁻¹",
        values="sqrtm", principal=True, at_identity="I"),
    MatrixFunction(
        "powm", None, "dpowm", "jpowm",
        derivative=lambda x, p: E.Mul((E.Num(p), mat_func("powm", x, Fraction(p) - 1))),
        scalar=_scalar_power,
        prime_formula="(Xᵖ)′ = p Xᵖ⁻¹",
        values="power", principal=True, at_identity="I"),
)
