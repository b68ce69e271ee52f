"""Row-block fusion for the generated NumPy code: one pass over the rows of a large
intermediate, instead of one pass over memory per operation.

f_and_grad of ||X - U Vᵀ||²_F makes the m×n residual R = U Vᵀ - X, reads it back for
the norm, and reads it again for the gradient 2 R V.  Every step is row-wise: a block of
rows of R needs only the same rows of U and X, the same rows of 2 R V need only that
block of R, and ||R||² is a sum over the blocks.  So the code can run the steps block by
block, each block of R small enough (about 512 KiB) to stay in the cache from its
producer to its consumers, and R is never in memory whole:

    for i in range(0, m, step):
        j = i + step
        t1 = (U[i:j] @ V.T) - X[i:j]
        f += np.vdot(t1, t1)
        grad_U[i:j] = 2.0 * (t1 @ V)

That is the fusion XLA does for jax.jit, which NumPy cannot do by itself.

``plan(trees)`` looks for a size s whose rows can be streamed so and returns a Plan: the
arguments read a block of rows at a time, the constants computed whole before the loop,
and the items computed in it, each either ``rows`` (a result with s rows made block by
block) or ``sum`` (a scalar or vector added up over the blocks).  It returns None unless
the loop keeps out of memory some intermediate matrix with s rows that the lowering
would make (an elementwise result, not a product it re-associates nor a sum it reduces
term by term), and none of the loop's intermediates is needed whole elsewhere; it also
refuses results and whole factors as large as the intermediate.  ``rowloop`` lowers the
plan and calls the loop only above a size (ROW_BLOCK_ENTRIES).

A row-wise value (``rows``): an argument with s rows; a product whose first factor is
row-wise and whose other factors are constants; a sum, Hadamard product, elementwise
function or power of row-wise values.  A sum over the blocks (``sum``): ||R||², sum(R),
R₁ᵀ R₂ C (the product contracts over s), tr(R₁ᵀ R₂ C) and tr(R₂ C R₁ᵀ).
"""
from .. import expr as E
from ..simplify import transpose

BLOCK = "⟨rows⟩"          # the size of a block of rows (never a user's size: not a name)


class Item:
    """A value computed in the loop: kind "rows" or "sum", the original node (what the
    rest of the function reads) and its tree over one block."""

    def __init__(self, kind, node, block, streamed):
        self.kind, self.node, self.block = kind, node, block
        self.streamed = streamed        # the original nodes computed block by block for it


class Plan:
    def __init__(self, size, big, blocks, consts, items, factors):
        self.size = size            # the size whose rows are streamed
        self.big = big              # an intermediate the loop keeps out of memory (sets the block)
        self.blocks = blocks        # argument name -> its block symbol
        self.consts = consts        # [(node, opaque symbol)]: computed whole before the loop
        self.items = items          # [Item]
        # the shapes of the whole matrices that multiply blocks (V^T in U[i:j] V^T): each
        # block's product reads them again, so the loop pays only while they stay in cache
        self.factors = factors


def plan(trees):
    for s in _candidates(trees):
        p = _Planner(s).run(trees)
        if p is not None:
            return p
    return None


def _loose(n):
    """n up to scalar factors, signs and the order of terms (X - U Vᵀ and U Vᵀ - X
    match): a key that may match more than equal values, never fewer."""
    if isinstance(n, E.Mul):
        mats = tuple(_loose(f) for f in n.items if not f.is_scalar)
        return mats[0] if len(mats) == 1 else ("Mul", mats)
    if isinstance(n, E.Add):
        return ("Add", frozenset(_loose(f) for f in n.items))
    return n


def _argument(n):
    """An argument, maybe scaled (-Y), or a constant fill: nothing to keep out of memory."""
    if isinstance(n, E.Mul):
        mats = [f for f in n.items if not f.is_scalar]
        return len(mats) == 1 and _argument(mats[0])
    return isinstance(n, (E.Sym, E.Fill))


def _materialised(n, item):
    """Whether the lowering makes n as an array: an elementwise result (U Vᵀ - X,
    tanh(A X)), but not what a sum reduces term by term (sum(A .* X) is one vdot,
    sum(A B - U) goes through row and column sums).  A product is not: the lowering
    re-associates chains (A B x is A (B x))."""
    if isinstance(item.node, E.Sum):
        free, stack = set(), [item.node.arg]
        while stack:
            m = stack.pop()
            if isinstance(m, (E.Add, E.Hadamard, E.Mul)) and m not in free:
                free.add(m)
                if isinstance(m, E.Add):
                    stack.extend(m.items)
        if n in free:
            return False
    return isinstance(n, (E.Add, E.Hadamard, E.Func, E.ElemPow))


def _is_matrix(n):
    return not n.is_scalar and n.shape[0] != 1 and n.shape[1] != 1


def _candidates(trees):
    """Row sizes of the intermediate matrices (named sizes only), in order of discovery."""
    out = []
    for n in E.walk(trees):
        if _is_matrix(n) and not isinstance(n, E.Sym) and isinstance(n.shape[0], str) \
                and n.shape[0] not in out:
            out.append(n.shape[0])
    return out


def _kind(shape):
    if shape == E.SCALAR:
        return "scalar"
    return "vector" if 1 in shape else "matrix"


class _Planner:
    def __init__(self, s):
        self.s = s
        self.blocks = {}        # argument name -> block Sym
        self.opaque = {}        # node -> opaque Sym standing for it in block trees
        self.consts = {}        # the ones the accepted items read: node -> opaque Sym
        self.rmemo = {}         # node -> block tree or None
        self.items = []
        self.whole = set()      # nodes the function computes whole
        self.visited = set()

    def run(self, trees):
        self.roots = set(trees)
        for t in trees:
            self.visit(t)
        inner = {n: it for it in self.items for n in it.streamed
                 if n is not it.node and _is_matrix(n) and not _argument(n)}
        big = {n for n, it in inner.items() if _materialised(n, it)}
        # an intermediate the function needs whole anyway (maybe transposed or negated,
        # as the lowering shares those): a loop would compute it twice
        keys = {_loose(n) for n in inner}
        if not big or any(_loose(w) in keys or _loose(transpose(w)) in keys
                          for w in self.whole if _is_matrix(w)):
            return None
        widest = next(n for n in E.walk([it.node for it in self.items]) if n in big)
        if any(it.kind == "rows" and _is_matrix(it.node) and it.node.shape[1] == widest.shape[1]
               for it in self.items):
            return None     # a result as large as the intermediate: no memory to save
        factors = []
        for n in E.walk([it.block for it in self.items]):
            if isinstance(n, E.Mul):
                for f in n.items:
                    if _is_matrix(f) and f.shape not in factors and not any(
                            BLOCK in m.shape for m in E.walk([f])):
                        factors.append(f.shape)
        if any(sorted(map(str, f)) == sorted(map(str, widest.shape)) for f in factors):
            return None     # a whole factor as large as the intermediate: blocks cannot pay
        return Plan(self.s, widest, self.blocks, list(self.consts.items()), self.items, factors)

    # -- the function outside the loop

    def visit(self, n):
        if n in self.visited:
            return
        self.visited.add(n)
        item = self.item(n)
        if item is not None:
            self.items.append(item)
            by_name = {c.name: m for m, c in self.opaque.items()}
            for m in E.walk([item.block]):
                if isinstance(m, E.Sym) and m.name in by_name:
                    node = by_name[m.name]
                    self.consts[node] = m
                    self.whole.update(E.walk([node]))
            return
        self.whole.add(n)
        for a in n.args:
            self.visit(a)

    def item(self, n):
        # a matrix made block by block only as a result: one that the function reads whole
        # afterwards (2 Xᵀ (X B - Y)) would be in memory anyway, and its blocks' products
        # (X[i:j] B) run slower than one product
        if not n.is_scalar and n.shape[0] == self.s and not _argument(n) \
                and (n in self.roots or not _is_matrix(n)):
            b = self.rows(n)
            if b is not None:
                return Item("rows", n, b, self.streamed([n]))
        if n.is_scalar or n.shape[0] == 1 or n.shape[1] == 1:
            got = self.sum(n)
            if got is not None:
                block, operands = got
                return Item("sum", n, block, self.streamed(operands))
        return None

    # -- one block of rows

    def rows(self, n):
        if n not in self.rmemo:
            self.rmemo[n] = self._rows(n)
        return self.rmemo[n]

    def _rows(self, n):
        if n.is_scalar or n.shape[0] != self.s:
            return None
        if isinstance(n, E.Sym):
            b = self.blocks.get(n.name)
            if b is None:
                b = self.blocks[n.name] = E.Sym(n.name + BLOCK, _kind(n.shape), BLOCK, n.cols)
            return b
        if isinstance(n, E.Fill):
            return E.Fill(self.const(n.value), BLOCK, n.cols)
        if isinstance(n, E.Mul):
            mats = [k for k, f in enumerate(n.items) if not f.is_scalar]
            head = self.rows(n.items[mats[0]])
            if head is None:
                return None
            scalars = [self.const(f) for f in n.items if f.is_scalar]
            rest = [n.items[k] for k in mats[1:]]
            if len(rest) > 1:       # one constant, so that its product is made once
                rest = [E.Mul(tuple(rest))]
            return E.Mul(tuple(scalars + [head] + [self.const(f) for f in rest]))
        if isinstance(n, (E.Add, E.Hadamard)):
            items = []
            for f in n.items:
                b = self.const(f) if f.is_scalar else self.rows(f)
                if b is None:
                    return None
                items.append(b)
            return type(n)(tuple(items))
        if isinstance(n, E.Func):
            b = self.rows(n.arg)
            return None if b is None else E.Func(n.name, b)
        if isinstance(n, E.ElemPow):
            b = self.rows(n.base)
            return None if b is None else E.ElemPow(b, self.const(n.exp))
        return None

    def sum(self, n):
        """(block tree, row-wise operands) of a value that is a sum over the blocks."""
        if isinstance(n, E.Pow) and isinstance(n.base, E.Norm) and n.exp == E.Num(2):
            r = self.rows(n.base.arg)
            return None if r is None else (E.Pow(E.Norm(r), n.exp), [n.base.arg])
        if isinstance(n, E.Sum):
            r = self.rows(n.arg)
            return None if r is None else (E.Sum(r), [n.arg])
        if isinstance(n, E.Trace) and isinstance(n.arg, E.Mul):
            got = self.contraction(n.arg) or self.contraction(n.arg, around=True)
            return None if got is None else (E.Trace(got[0]), got[1])
        if isinstance(n, E.Mul):
            return self.contraction(n)
        return None

    def contraction(self, n, around=False):
        """R₁ᵀ R₂ C…: the product over s of two row-wise values (scalars anywhere); with
        around, R₂ C… R₁ᵀ under a trace, whose trace is the sum of the diagonal blocks'."""
        mats = [k for k, f in enumerate(n.items) if not f.is_scalar]
        if len(mats) < 2:
            return None
        t, o = (mats[-1], mats[0]) if around else (mats[0], mats[1])
        if not isinstance(n.items[t], E.Transpose):
            return None
        r1, r2 = n.items[t].arg, n.items[o]
        b1, b2 = self.rows(r1), self.rows(r2)
        if b1 is None or b2 is None:
            return None
        items = tuple(E.Transpose(b1) if k == t else b2 if k == o else self.const(f)
                      for k, f in enumerate(n.items))
        return E.Mul(items), [r1, r2]

    def const(self, n):
        """n computed whole before the loop: itself if it is a leaf, else an opaque symbol
        (so that the loop's products are not re-associated across it)."""
        if isinstance(n, (E.Num, E.Sym)) or (isinstance(n, E.Transpose) and isinstance(n.arg, E.Sym)):
            return n
        c = self.opaque.get(n)
        if c is None:
            c = self.opaque[n] = E.Sym(f"⟨c{len(self.opaque)}⟩", _kind(n.shape), n.shape[0], n.shape[1])
        return c

    def streamed(self, operands):
        """The original nodes a block computation goes through (the row-wise positions)."""
        out, stack = set(), list(operands)
        while stack:
            n = stack.pop()
            if n in out:
                continue
            out.add(n)
            if isinstance(n, E.Mul):
                stack.append(next(f for f in n.items if not f.is_scalar))
            elif isinstance(n, (E.Add, E.Hadamard)):
                stack.extend(f for f in n.items if not f.is_scalar)
            elif isinstance(n, E.Func):
                stack.append(n.arg)
            elif isinstance(n, E.ElemPow):
                stack.append(n.base)
        return out
