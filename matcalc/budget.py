"""The size budget: a derivative too large to be useful is refused with a clear
UnsupportedError, before the time is spent, never answered wrongly or after minutes.

Two limits:

* ``MAX_RAW_NODES``: the derivative as the rules write it, before simplification, counted
  as a tree (shared subexpressions counted each time they occur, as printing writes
  them).  Simplification costs time in proportion to it (more for long products of
  deeply nested factors), and the printed answer is about as long as this tree (measured
  on the Hessians of tr(A1 X … Ak X) and of k nested exp: 1.25 to 1.5 characters per
  node), so past the limit the answer could not be printed within ``parse.MAX_LENGTH``
  anyway, and it is refused before the time is spent.  The differentiation counts as it
  goes (``RawCounter``): the Hessian of tr(A1 X A2 X … A100 X) is refused after 0.4 s
  instead of 13 s and 300 MB.
* ``parse.MAX_LENGTH``: what the engine prints it must read back, so an answer whose text
  (in Unicode or in the ASCII spellings) is longer than the input limit is refused.
"""
from .errors import UnsupportedError

MAX_RAW_NODES = 30_000


def tree_size(e, limit=None, memo=None):
    """The number of nodes of e written out as a tree (a shared node counts once per
    use); counting stops as soon as it passes limit.  Linear in the distinct nodes;
    memo ({id: (node, size)}) carries the sizes found between calls."""
    sizes = {} if memo is None else memo
    stack = [(e, False)]
    while stack:
        node, ready = stack.pop()
        k = id(node)
        if k in sizes:
            continue
        args = node.args
        if ready or not args:
            n = 1 + sum(sizes[id(a)][1] for a in args)
            sizes[k] = (node, n)
            if limit is not None and n > limit:
                return n
            continue
        stack.append((node, True))
        stack.extend((a, False) for a in args if id(a) not in sizes)
    return sizes[id(e)][1]


class RawCounter:
    """Counts, for one differentiation, the size of the differentials as the rules build
    them, and refuses (before the rest is built) once one node's differentials together
    pass MAX_RAW_NODES: d(X Y) holds dX and dY, so it is at least as large."""

    def __init__(self, what="derivative"):
        self.memo = {}
        self.what = what

    def start(self):
        return 0

    def add(self, total, dx):
        if dx is None:
            return total
        total += tree_size(dx, MAX_RAW_NODES, self.memo)
        if total > MAX_RAW_NODES:
            _refuse_raw(self.what)
        return total


def check_raw(e, what):
    """Refuse e (an unsimplified derivative) when it is past MAX_RAW_NODES."""
    n = tree_size(e, MAX_RAW_NODES)
    if n > MAX_RAW_NODES:
        _refuse_raw(what)


def _refuse_raw(what):
    raise UnsupportedError(
        f"the {what} is too large to write down: before simplification it has more than "
        f"{MAX_RAW_NODES:,} terms and factors, so the answer would be longer than the "
        f"{_max_length():,} characters an expression may have (refused before spending the "
        f"time); evaluate it numerically with matcalc.compile or split the expression")


def check_answer(e, what):
    """Refuse an answer whose text would not read back (longer than parse.MAX_LENGTH)."""
    from .printing import to_text
    limit = _max_length()
    n = max(len(to_text(e)), len(to_text(e, ascii=True)))
    if n > limit:
        raise UnsupportedError(
            f"the {what} would be {n:,} characters long, more than the {limit:,} characters an "
            f"expression may have, so it could not be read back; evaluate it numerically "
            f"with matcalc.compile or split the expression")


def _max_length():
    from .parse import MAX_LENGTH
    return MAX_LENGTH
