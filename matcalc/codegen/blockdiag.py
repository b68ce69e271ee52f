"""(A ⊗ I) M (C ⊗ I) with a block-diagonal M, without forming M or the products
(``kron_blockdiag``).

With I = I(k), A p × m and C m × q, a middle M of m diagonal blocks M_s (k × k each)
gives

    ((A ⊗ I) M (C ⊗ I))[(j, i), (l, r)] = Σ_s A_js C_sl (M_s)_ir,

one matrix product of the p·q × m matrix P[(j, l), s] = A_js C_sl by the m × k² stack of
the blocks, whose axes are then permuted: p q m k² multiply-adds, where forming M (m²k²
numbers, nearly all zero) and applying the two Kronecker factors costs two products of
(mk)² × m.  The Hessian of a layer f(W X) in W has this form: (X ⊗ I) M (Xᵀ ⊗ I) with M
built from diag(vec ·) and I ⊗ B (the MLP Hessian of bench_eval).

M is read as a stack of blocks from its structure: diag(vec U) with U of m columns
(block s is diag(U[:, s])), I(m) ⊗ B (every block B, which may be rectangular inside a
product), products and sums of those, and scalar multiples.  The blocks are computed as
an (m, k, k) array (diagonal blocks as an (m, k) array while only diagonal ones
multiply), in the target's own broadcasts and ``@`` of stacks, so every target spells
it.
"""
import matcalc.codegen.ir as ir
from .values import rep_of, signed_sum
from .. import expr as E
from ..simplify import split_coef

NONE = ir.Const("None")


class Blocks:
    """The blocks of a block-diagonal matrix, each r × c (shape): kind "diag" (code: an
    (m, r) array, row s the diagonal of block s), "shared" (code: one r × c block, the
    same for every s) or "stack" (code: an (m, r, c) array)."""

    def __init__(self, kind, code, shape):
        self.kind = kind
        self.code = code
        self.shape = shape


def _ix(code, *items):
    return ir.Index(code, tuple(ir.Slice() if a is None else NONE for a in items))


def _stack(low, b):
    """b as something that broadcasts to the (m, r, c) stack."""
    if b.kind == "diag":                 # d[:, :, None] * I(r)
        return ir.Bin("*", _ix(b.code, None, None, NONE), low.B.eye(low.size(b.shape[0])))
    return b.code


def blocks(low, M, m):
    """The blocks of M as block-diagonal with m blocks, or None (blocks that are rows
    or columns are left to the other rewrites: their values are 1-D arrays)."""
    if isinstance(M, E.DiagMat) and isinstance(M.arg, E.Vec) and M.arg.arg.shape[1] == m \
            and rep_of(M.arg.arg.shape) == "M":
        U = M.arg.arg
        return Blocks("diag", low.T(low.ev(U)).code, (U.shape[0], U.shape[0]))
    if isinstance(M, E.Kron) and len(M.items) == 2 and isinstance(M.items[0], E.Identity) \
            and M.items[0].n == m and rep_of(M.items[1].shape) == "M" \
            and not isinstance(M.items[1], E.Identity):
        return Blocks("shared", low.ev(M.items[1]).code, M.items[1].shape)
    if isinstance(M, E.Mul):
        scal = [f for f in M.items if f.is_scalar]
        out = None
        for f in M.items:
            if f.is_scalar:
                continue
            b = blocks(low, f, m)
            if b is None or (out is not None and out.shape[1] != b.shape[0]):
                return None
            out = b if out is None else _times(out, b)
        if out is None:
            return None
        coef, rest = low.split_scalars(scal)
        scale = low.scale_code(coef, rest)
        return out if scale is None else Blocks(out.kind, ir.Bin("*", scale, out.code), out.shape)
    if isinstance(M, E.Add):
        terms = []
        for t in M.items:
            c, rest = split_coef(t)
            if rest is None:
                return None
            b = blocks(low, rest, m)
            if b is None or (terms and b.shape != terms[0][1].shape):
                return None
            terms.append((c, b))
        kinds = {b.kind for _, b in terms}
        shape = terms[0][1].shape
        if len(kinds) == 1:
            return Blocks(kinds.pop(), signed_sum([(c, b.code) for c, b in terms]), shape)
        # mixed kinds: a stack; the diag terms summed as diagonals first, then spread as
        # d[:, :, None] * I; a stack term first, so that the sum broadcasts to (m, r, c)
        diag = [(c, b.code) for c, b in terms if b.kind == "diag"]
        terms = [(c, b) for c, b in terms if b.kind != "diag"]
        if diag:
            terms.append((1, Blocks("diag", signed_sum(diag), shape)))
        terms.sort(key=lambda cb: cb[1].kind != "stack")
        return Blocks("stack", signed_sum([(c, _stack(low, b)) for c, b in terms]), shape)
    return None


def _times(x, y):
    """The blocks of the product of two block-diagonal matrices."""
    shape = (x.shape[0], y.shape[1])
    if x.kind == "diag" and y.kind == "diag":
        return Blocks("diag", ir.Bin("*", x.code, y.code), shape)
    if x.kind == "diag":                 # diag(d_s) Y_s: rows scaled
        return Blocks("stack", ir.Bin("*", _ix(x.code, None, None, NONE), y.code), shape)
    if y.kind == "diag":                 # X_s diag(d_s): columns scaled
        return Blocks("stack", ir.Bin("*", x.code, _ix(y.code, None, NONE, None)), shape)
    kind = "shared" if x.kind == y.kind == "shared" else "stack"
    return Blocks(kind, ir.Bin("@", x.code, y.code), shape)


def _kron_with_identity(f):
    """(A, k) for a factor A ⊗ I(k) with A a matrix, else None."""
    if isinstance(f, E.Kron) and len(f.items) == 2 and isinstance(f.items[1], E.Identity) \
            and not isinstance(f.items[0], E.Identity) and f.items[0].shape[0] != 1 \
            and f.items[0].shape[1] != 1:
        return f.items[0], f.items[1].n
    return None


def sandwich(low, chain, scale=None, whole=None):
    """The chain with each run (A ⊗ I) M (C ⊗ I), M block-diagonal, computed as one
    value (memoised under the product of the three factors, which stays in the chain).

    With whole (the product node) and scale (its scalar factors' code, or None): the
    value of the whole product when the chain is one such run, the scale applied to the
    m-column factor P rather than to the result; else None."""
    if whole is not None:
        if len(chain) != 3 or not low.opts.enabled("kron_blockdiag"):
            return None
        found = _match(low, chain[0], chain[1], chain[2])
        if found is None:
            return None
        low.opts("kron_blockdiag")
        return _lower(low, *found, whole, scale)
    if len(chain) < 3 or not low.opts.enabled("kron_blockdiag"):
        return chain
    out = list(chain)
    i = 0
    while i + 2 < len(out):
        if _kron_with_identity(out[i]) is None or _kron_with_identity(out[i + 2]) is None:
            i += 1
            continue
        node = low.intern(E.Mul(tuple(out[i:i + 3])))
        if low.lookup(node) is None:
            found = _match(low, *out[i:i + 3])
            if found is None:
                i += 1
                continue
            low.opts("kron_blockdiag")
            low.memo[node] = _lower(low, *found, node)
        out[i:i + 3] = [node]
    return out


def _match(low, left, M, right):
    """(A, C, blocks of M, k) for (A ⊗ I(k)) M (C ⊗ I(k)) with M block-diagonal, blocks
    that are not all diagonal or all alike (the other rewrites do those), else None."""
    lk, rk = _kron_with_identity(left), _kron_with_identity(right)
    if lk is None or rk is None or lk[1] != rk[1] or lk[0].shape[1] != rk[0].shape[0]:
        return None
    (A, k), (Cm, _) = lk, rk
    b = blocks(low, M, A.shape[1])
    if b is None or b.kind != "stack" or b.shape != (k, k):
        return None
    return A, Cm, b, k


def _lower(low, A, Cm, b, k, node, scale=None):
    B = low.B
    p, m, q = low.size(A.shape[0]), low.size(A.shape[1]), low.size(Cm.shape[1])
    kk = low.size(k)
    mb = low.emit(b.code, "M", node.shape, None, comment="the diagonal blocks of the middle factor, stacked")
    a, c = low.ev(A), low.ev(Cm)
    pairs = B.einsum("js,sl->jls", a.code, c.code)
    if scale is not None:
        pairs = ir.Bin("*", scale, pairs)
    pairs = ir.Method(pairs, "reshape", (ir.Bin("*", p, q), m))
    prod = low.emit(ir.Bin("@", pairs, ir.Method(mb.code, "reshape", (m, ir.Bin("*", kk, kk)))),
                    "M", node.shape, None, comment="sum_s A_js C_sl (M_s)_ir, as (j, l, i, r)")
    out = ir.Method(B.call("swapaxes", ir.Method(prod.code, "reshape", (p, q, kk, kk)),
                           ir.Const("1"), ir.Const("2")),
                    "reshape", (ir.Bin("*", p, kk), ir.Bin("*", q, kk)))
    return low.emit(out, "M", node.shape, node)
