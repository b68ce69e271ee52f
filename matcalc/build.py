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


def _split(s):
    """(first factor, the rest) of a product size, or None for a plain size."""
    coef, names = E.size_factors(s)
    parts = ([coef] if coef != 1 else []) + list(names)
    if len(parts) < 2:
        return None
    rest = 1
    for x in parts[1:]:
        rest = E.size_mul(rest, x)
    return parts[0], rest


def commutation(m, n):
    """K(m,n) with plain sizes only: K(a, bc) = (K(a,b) ⊗ I_c)(I_b ⊗ K(a,c)) and
    K(bc, a) = (I_b ⊗ K(c,a))(K(b,a) ⊗ I_c) split product sizes."""
    sn = _split(n)
    if sn is not None:
        b, c = sn
        return E.Mul((E.Kron((commutation(m, b), E.Identity(c))), E.Kron((E.Identity(b), commutation(m, c)))))
    sm = _split(m)
    if sm is not None:
        b, c = sm
        return E.Mul((E.Kron((E.Identity(b), commutation(c, n))), E.Kron((commutation(b, n), E.Identity(c)))))
    return E.Commutation(m, n)
