"""Small typed constructors for what the differential rules and the operator records
write: each picks the scalar or the array form (Pow or ElemPow, Mul or Hadamard, Num or
Fill) and does no simplification (the simplifier's passes do that)."""
from fractions import Fraction

from . import expr as E


def neg(x):
    return E.Mul((E.MINUS_ONE, x))


def num(v):
    return E.Num(Fraction(v))


def const_like(v, like):
    """The constant v with the shape of `like` (broadcast over an array)."""
    n = num(v)
    return n if like.is_scalar else E.Fill(n, *like.shape)


def power(x, p):
    """x^p elementwise (a scalar power for a scalar x)."""
    p = p if isinstance(p, E.Expr) else num(p)
    return E.Pow(x, p) if x.is_scalar else E.ElemPow(x, p)


def times(a, dx):
    """a ∘ dx elementwise: a scaling when either side is a scalar."""
    if a.is_scalar or dx.is_scalar:
        return E.Mul((a, dx))
    return E.Hadamard((a, dx))


def add(*xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return xs[0] if len(xs) == 1 else E.Add(tuple(xs))


def one_minus(x):
    """1 − x (broadcast)."""
    return E.Add((const_like(1, x), neg(x)))
