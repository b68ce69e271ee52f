"""Lowered values and the small pieces of IR every lowering builds."""
import math

import matcalc.codegen.ir as ir
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


# a comment prints at most this many nodes of a tree (a longer one is cut first: its
# text is cut at COMMENT_WIDTH anyway, and printing it whole, for every statement,
# would make the comments quadratic in the size of the program)
COMMENT_NODES = 64


def short(e):
    """A one-line description of a node for a comment (str of the tree, cut)."""
    if not isinstance(e, str) and _size(e, COMMENT_NODES) > COMMENT_NODES:
        e = _pruned(e, [COMMENT_NODES])
    s = " ".join(str(e).split())
    if len(s) > COMMENT_WIDTH:
        s = s[:COMMENT_WIDTH - 1] + "…"
    return s


class Note:
    """A comment that describes a node, printed only when asked for (``str``): the
    lowering makes one for every statement, and most statements are folded away or
    dropped by the passes before the module is printed."""
    __slots__ = ("node", "before", "after", "_text")

    def __init__(self, node, before="", after=""):
        self.node, self.before, self.after, self._text = node, before, after, None

    def __str__(self):
        if self._text is None:
            self._text = f"{self.before}{short(self.node)}{self.after}"
        return self._text

    def __bool__(self):
        return True

    def __repr__(self):
        return f"Note({str(self)!r})"


def _size(e, limit):
    """The number of nodes of a tree (counting stops past limit)."""
    k, stack = 0, [e]
    while stack and k <= limit:
        k += 1
        stack.extend(stack.pop().args)
    return k


def _ellipsis(shape):
    r, c = shape
    kind = "scalar" if (r, c) == (1, 1) else ("vector" if 1 in (r, c) else "matrix")
    return E.Sym("…", kind, r, c)


def _pruned(e, budget):
    """e with at most budget[0] nodes: the rest of a long product or sum, or a subtree
    past the budget, replaced by the symbol …  (budget is a one-item list, spent)."""
    budget[0] -= 1
    args = e.args
    if not args:
        return e
    if budget[0] <= 0:
        return _ellipsis(e.shape)
    if isinstance(e, (E.Add, E.Mul, E.Hadamard, E.Kron)):
        items = []
        for a in args:                  # whole items while they fit, then …
            n = _size(a, budget[0])
            if n > budget[0]:
                items.append(_ellipsis(a.shape))
                break
            budget[0] -= n
            items.append(a)
        if len(items) == len(args) and all(x is y for x, y in zip(items, args)):
            return e
        return type(e)(tuple(items))
    new = tuple(_pruned(a, budget) for a in args)
    return e if all(x is y for x, y in zip(new, args)) else e.rebuild(new)


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
