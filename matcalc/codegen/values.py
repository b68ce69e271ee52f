"""Lowered values and the small pieces of IR every lowering builds."""
import math

from . import ir
from .. import expr as E

# estimated size of a named dimension, for choosing the order of products
EST = 1000.0
COMMENT_WIDTH = 64


def rep_of(shape):
    """How a value of this (rows, cols) is held: "S" a scalar, "V" a 1-D array (a column
    or a row), "M" a 2-D array."""
    r, c = shape
    if r == 1 and c == 1:
        return "S"
    if r == 1 or c == 1:
        return "V"
    return "M"


def est(s):
    if isinstance(s, int):
        return float(s)
    if isinstance(s, E.SizeProd):
        out = float(s[0])
        for _ in s[1:]:
            out *= EST
        return out
    return EST


def lit(v):
    """A Python literal for a number (a Fraction or float): ±inf past the float range."""
    from ..numeric import num_float
    f = num_float(v)
    if math.isinf(f) or math.isnan(f):
        return ir.Const("float('%s')" % ("nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")))
    if f == int(f) and abs(f) < 1e15:
        s = f"{int(f)}.0"
    else:
        s = repr(f)
    return ir.Const(f"({s})" if f < 0 else s)


ONE = ir.Const("1.0")
ZERO = ir.Const("0.0")


def short(e):
    """A one-line description of a node for a comment (str of the tree, cut)."""
    s = " ".join(str(e).split())
    if len(s) > COMMENT_WIDTH:
        s = s[:COMMENT_WIDTH - 1] + "…"
    return s


def is_one(e):
    return isinstance(e, E.Num) and e.value == 1


class V:
    """A lowered value: an IR expression, how it is held (S, V, M) and its shape."""
    __slots__ = ("code", "rep", "shape")

    def __init__(self, code, rep, shape):
        self.code, self.rep, self.shape = code, rep, shape

    def __repr__(self):
        return f"V({self.code!r}, {self.rep}, {self.shape})"


def scalar(code):
    return V(code, "S", E.SCALAR)


def signed_sum(parts):
    """c1 x1 + c2 x2 - ... as an IR expression, from (coefficient, expression) pairs."""
    out = None
    for c, code in parts:
        mag = abs(c)
        body = code if mag == 1 else ir.Bin("*", lit(mag), code)
        if out is None:
            out = body if c > 0 else ir.Neg(body)
        else:
            out = ir.Bin("+" if c > 0 else "-", out, body)
    return out


def product(codes):
    """a * b * c (left to right)."""
    out = codes[0]
    for c in codes[1:]:
        out = ir.Bin("*", out, c)
    return out
