"""The size budget: a derivative too large to be useful is refused with a clear
UnsupportedError, before the time is spent, never answered wrongly or after minutes.

Three limits, each measured where the time goes:

* ``MAX_RAW_EDGES``: the differential as the rules build it, counted as distinct nodes
  and their edges (the memory and time of building it; shared subexpressions count
  once).  The product rule over the k² terms of the Hessian of tr(A1 X A2 X … Ak X)
  builds k² new products of 2k factors: at k = 100 that was 13 s and 300 MB; the
  differentiation counts as it goes (``RawCounter``) and stops at the limit (k = 30
  builds 53,000, k = 40 127,000; a 30,000-character input of 1,800 terms
  tr(X^T A X + …) builds 34,000).
* ``MAX_SIMPLIFIED_CHARS``: simplification rebuilds the answer as a tree (a product is
  written out, shared factors and all), and its time follows the size of that tree: 50
  nested exp(… x^T x …) have a small differential but a Hessian of about 10^6
  characters.  ``simplify`` estimates the text of the simplified operands of every node
  before it combines them (``SimplifyCounter``) and stops at three times the input
  limit, before the costly factoring of a huge sum (the combined answer is shorter than
  its operands, but not by that much).
* ``parse.MAX_LENGTH``: what the engine prints it must read back, so an answer whose text
  (in Unicode or in the ASCII spellings) is longer than the input limit is refused.
"""
import re

from .errors import UnsupportedError
from .parse import MAX_LENGTH, number_out_of_range
from .printing import to_text

MAX_RAW_EDGES = 60_000
MAX_SIMPLIFIED_CHARS = 90_000      # three times parse.MAX_LENGTH


# The characters a node adds to the text of an expression, roughly (printing.Printer):
# per operand past the first for the n-ary operators, else for the node itself.
_PER_OPERAND = {"Add": 3, "Hadamard": 4, "Kron": 3, "Mul": 1}
_OWN = {"Transpose": 2, "Inverse": 3, "Trace": 4, "Det": 5, "LogDet": 8, "Sum": 5, "Norm": 4,
        "Vec": 5, "Unvec": 11, "DiagMat": 6, "DiagVec": 6, "MatPow": 3, "Pow": 3, "ElemPow": 4,
        "Identity": 4, "Commutation": 6, "Zero": 1, "Num": 2, "Fill": 8}


def _chars(node):
    t = type(node).__name__
    if t == "Sym":
        return len(node.name)
    if t == "Func":
        return len(node.name) + 2
    if t in _PER_OPERAND:
        return _PER_OPERAND[t] * max(1, len(node.args) - 1)
    return _OWN.get(t, 2)


_put = object.__setattr__          # the size is an annotation of the (immutable) node


def text_size(e):
    """About the characters of the text of e written out as a tree (a shared node counts
    once per use), kept on the node (``Expr._text_size``, as its hash is): linear in the
    distinct nodes not measured yet."""
    n = e._text_size
    if n is not None:
        return n
    n = _chars(e)
    for a in e.args:                # most often every child is measured already
        m = a._text_size
        if m is None:
            break
        n += m
    else:
        _put(e, "_text_size", n)
        return n
    stack = [e]
    while stack:                    # post-order: a node is measured once its children are
        node = stack[-1]
        if node._text_size is not None:
            stack.pop()
            continue
        n = _chars(node)
        for a in node.args:
            m = a._text_size
            if m is None:
                stack.append(a)
                n = None
            elif n is not None:
                n += m
        if n is not None:
            _put(node, "_text_size", n)
            stack.pop()
    return e._text_size


def dag_size(e, memo, limit=None):
    """The nodes and edges of e not yet in memo (a set of ids, updated; the nodes are
    kept alive by the caller's tree), stopping once past limit."""
    n = 0
    stack = [e]
    while stack:
        node = stack.pop()
        k = id(node)
        if k in memo:
            continue
        memo[k] = node
        args = node.args
        n += 1 + len(args)
        if limit is not None and n > limit:
            return n
        stack.extend(args)          # the ones met already are passed over as they are popped
    return n


class RawCounter:
    """Counts, for one differentiation, the distinct nodes and edges of the differentials
    the rules build, and refuses once they pass MAX_RAW_EDGES."""

    def __init__(self, what="derivative"):
        self.memo = {}
        self.total = 0
        self.what = what

    def add(self, dx):
        """Count the nodes of the differential dx not counted yet."""
        self.total += dag_size(dx, self.memo, MAX_RAW_EDGES - self.total + 1)
        if self.total > MAX_RAW_EDGES:
            _refuse_raw(self.what)


class SimplifyCounter:
    """Counts, for one simplification, about the characters of the simplified operands of
    each node before they are combined, and refuses once they pass MAX_SIMPLIFIED_CHARS."""

    def check(self, parts):
        total = 0
        for p in parts:
            n = p._text_size
            total += n if n is not None else text_size(p)
            if total > MAX_SIMPLIFIED_CHARS:
                raise UnsupportedError(
                    f"the derivative is too large to write down: simplified, it grows past "
                    f"{MAX_SIMPLIFIED_CHARS:,} characters, far more than the "
                    f"{MAX_LENGTH:,} an expression may have (refused before spending the "
                    f"time); evaluate it numerically with matcalc.compile or split the expression")


def check_raw(e, what):
    """Refuse e (an unsimplified derivative) when it is past MAX_RAW_EDGES."""
    if dag_size(e, {}, MAX_RAW_EDGES) > MAX_RAW_EDGES:
        _refuse_raw(what)


def _refuse_raw(what):
    raise UnsupportedError(
        f"the {what} is too large to write down: the rules build more than "
        f"{MAX_RAW_EDGES:,} terms and factors, so the answer would be far longer than the "
        f"{MAX_LENGTH:,} characters an expression may have (refused before spending the "
        f"time); evaluate it numerically with matcalc.compile or split the expression")


_SHORT = 5      # characters: a mantissa this short, an exponent of at most three digits
_NUMBER_RE = re.compile(r"(?<![\w.])(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?")


def check_answer(e, what):
    """Refuse an answer whose text would not read back: longer than parse.MAX_LENGTH, or
    with a number the parser refuses (past parse.MAX_DIGITS or parse.MAX_EXPONENT)."""
    limit = MAX_LENGTH
    text = to_text(e)
    # the ASCII printer differs only where the text has a character past ASCII (⊗, a Greek
    # name): an ASCII text is its own ASCII spelling, printed once
    ascii_text = text if text.isascii() else to_text(e, ascii=True)
    for t in ((text,) if ascii_text is text else (text, ascii_text)):
        for number in _NUMBER_RE.findall(t):
            # a number of at most _SHORT characters is within MAX_DIGITS and MAX_EXPONENT
            why = number_out_of_range(number) if len(number) > _SHORT else None
            if why:
                raise UnsupportedError(
                    f"the {what} holds a constant that could not be read back: {why}; "
                    f"evaluate it numerically with matcalc.compile, or scale the constants")
    n = max(len(text), len(ascii_text))
    if n > limit:
        raise UnsupportedError(
            f"the {what} would be {n:,} characters long, more than the {limit:,} characters an "
            f"expression may have, so it could not be read back; evaluate it numerically "
            f"with matcalc.compile or split the expression")
