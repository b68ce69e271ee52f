"""The canonical form df = tr(Gᵀ dX) of a scalar differential, and G read off.

df is linear in dX.  The trace identities move everything that multiplies dX to one
side: writing ⟨W, L⟩ = tr(Wᵀ L) for the pairing of a cotangent W with the part L of
df that holds dX, each entry of ``IDENTITIES`` states one identity

    ⟨W, P L Q⟩ = ⟨Pᵀ W Qᵀ, L⟩        cyclic trace          tr(P dX Q) = tr(Q P dX)
    ⟨W, Lᵀ⟩    = ⟨Wᵀ, L⟩             transpose             tr(Aᵀ) = tr(A)
    ⟨w, tr L⟩  = ⟨w I, L⟩            trace
    ⟨W, A ∘ L⟩ = ⟨W ∘ A, L⟩          Hadamard ↔ trace      tr(Wᵀ(A ∘ dX)) = tr((W ∘ A)ᵀ dX)
    ...

and is applied from df down to dX (JAX's transpose of a linear map; the textbook's
"rotate the trace until dX stands last").  Every occurrence of dX then contributes a
term of G; G = Σ of them.  Operations with no such identity raise UnsupportedError.
"""
from . import expr as E
from .errors import UnsupportedError
from .simplify import simplify


def _T(x):
    return E.Transpose(x)


def _mul(*xs):
    xs = tuple(x for x in xs if x is not None)
    if not xs:
        return E.ONE
    return xs[0] if len(xs) == 1 else E.Mul(xs)


def _pair(W, A):
    """⟨W, A⟩ = tr(Wᵀ A) as an expression (a scalar)."""
    if W.is_scalar and A.is_scalar:
        return E.Mul((W, A))
    return E.Trace(E.Mul((_T(W), A)))


# Each identity: (name, formula, function(node, W, child index) -> seed for that child)


def _adj_add(e, W, i):
    return W


def _adj_fill(e, W, i):
    return E.Sum(W)


def _adj_mul(e, W, i):
    L = e.items[i]
    others = e.items[:i] + e.items[i + 1:]
    if L.is_scalar:
        rest = _mul(*others)
        return _pair(W, rest)
    scalars = [f for f in others if f.is_scalar]
    before = [f for f in e.items[:i] if not f.is_scalar]
    after = [f for f in e.items[i + 1:] if not f.is_scalar]
    P = _T(_mul(*before)) if before else None
    Q = _T(_mul(*after)) if after else None
    return _mul(*scalars, P, W, Q)


def _adj_hadamard(e, W, i):
    others = e.items[:i] + e.items[i + 1:]
    return E.Hadamard((W,) + others)


def _adj_kron(e, W, i):
    """The seed of the i-th factor of F1 ⊗ … ⊗ Fk: longer products are taken two at a
    time, ((left ⊗ L) ⊗ right), each pair by ``_kron_seed``."""
    W = simplify(W)
    items = e.items
    L = items[i]
    left = items[:i]
    right = items[i + 1:]
    if not left and not right:
        return W
    A = None if not left else (left[0] if len(left) == 1 else E.Kron(left))
    B = None if not right else (right[0] if len(right) == 1 else E.Kron(right))
    if B is not None:
        inner = L if A is None else E.Kron((A, L))
        W = _kron_seed(W, inner, B, 0)
        if A is None:
            return W
        W = simplify(W)
    return _kron_seed(W, A, L, 1)


def _outer(W):
    """(u, v) with W = u vᵀ for columns u and v (None for a 1: W a column or a row), or
    None when W is not written as such a product."""
    r, c = W.shape
    if c == 1:
        return W, None
    if r == 1:
        return None, _T(W)
    if isinstance(W, E.Transpose):
        uv = _outer(W.arg)
        return None if uv is None else (uv[1], uv[0])
    if isinstance(W, E.Mul):
        scal = tuple(f for f in W.items if f.is_scalar)
        arrays = [f for f in W.items if not f.is_scalar]
        for j in range(1, len(arrays)):
            if arrays[j - 1].shape[1] == 1:
                u = _mul(*scal, *arrays[:j])
                v = _T(_mul(*arrays[j:]))
                return u, v
    return None


def _kron_seed(W, A, B, side):
    """G with ⟨W, A ⊗ B⟩ = ⟨G, A⟩ (side 0) or ⟨G, B⟩ (side 1), A m×n, B p×q, of any
    shapes (the Kronecker identities of Magnus & Neudecker, the shortest that applies):

        ⟨s 1, A ⊗ B⟩   = s sum(A) sum(B)
        ⟨I, A ⊗ B⟩     = tr(A) tr(B)                        A and B square
        ⟨C ⊗ D, A ⊗ B⟩ = ⟨C, A⟩ ⟨D, B⟩                      C like A, D like B
        uᵀ (A ⊗ B) v   = tr(Uᵀ B V Aᵀ)                      U = unvec(u, p), V = unvec(v, q)
        ⟨W, A ⊗ B⟩     = vec(B)ᵀ M vec(A)                   M = unvec((I_n ⊗ K(m,q) ⊗ I_p) vec(W), pq)

    the last from vec(A ⊗ B) = (I_n ⊗ K(q,m) ⊗ I_p)(vec A ⊗ vec B), which holds for
    every W."""
    (m, n), (p, q) = A.shape, B.shape
    other = B if side == 0 else A
    shape = A.shape if side == 0 else B.shape
    if isinstance(W, E.Fill):
        return E.Fill(_mul(W.value, E.Sum(other)), *shape)
    w, core = _scaled(W)
    if isinstance(core, E.Identity) and m == n and p == q:
        return _mul(w, E.Trace(other), E.Identity(shape[0]))
    if isinstance(core, E.Kron) and len(core.items) == 2 \
            and core.items[0].shape == A.shape and core.items[1].shape == B.shape:
        C, D = core.items
        mine, theirs = (C, D) if side == 0 else (D, C)
        return _mul(w, _pair(theirs, other), mine)
    if isinstance(W, E.Add):
        # linearity: the rank-one terms by the short identity, the rest together
        terms, rest = [], []
        for t in W.items:
            (terms if _outer(t) is not None else rest).append(t)
        if terms:
            out = [_kron_outer(t, A, B, side) for t in terms]
            if rest:
                out.append(_kron_general(rest[0] if len(rest) == 1 else E.Add(tuple(rest)), A, B, side))
            return out[0] if len(out) == 1 else E.Add(tuple(out))
    if _outer(W) is not None:
        return _kron_outer(W, A, B, side)
    return _kron_general(W, A, B, side)


def _scaled(W):
    """(scalar factor or None, the rest) of W."""
    if isinstance(W, E.Mul):
        scal = [f for f in W.items if f.is_scalar]
        arrays = [f for f in W.items if not f.is_scalar]
        if scal and len(arrays) == 1:
            return _mul(*scal), arrays[0]
    return None, W


def _kron_outer(W, A, B, side):
    """uᵀ (A ⊗ B) v = vec(U)ᵀ vec(B V Aᵀ) = tr(Uᵀ B V Aᵀ) for U = unvec(u, p) (p×m) and
    V = unvec(v, q) (q×n): the seed of A is Uᵀ B V, that of B is U A Vᵀ."""
    (m, n), (p, q) = A.shape, B.shape
    u, v = _outer(W)
    U = None if u is None else _unvec(simplify(u), (p, m))
    V = None if v is None else _unvec(simplify(v), (q, n))
    if side == 0:
        return _mul(None if U is None else _T(U), B, V)
    return _mul(U, A, None if V is None else _T(V))


def _kron_general(W, A, B, side):
    """⟨W, A ⊗ B⟩ = vec(B)ᵀ M vec(A) with M = unvec((I_n ⊗ K(m,q) ⊗ I_p) vec(W), pq): the
    seed of A is unvec(Mᵀ vec(B), m), that of B is unvec(M vec(A), p)."""
    from .build import commutation
    (m, n), (p, q) = A.shape, B.shape
    P = E.Kron((E.Identity(n), commutation(m, q), E.Identity(p)))
    M = E.Unvec(E.Mul((P, _vecof(W))), E.size_mul(p, q), E.size_mul(m, n))
    if side == 0:
        return _unvec(simplify(E.Mul((_T(M), _vecof(B)))), (m, n))
    return _unvec(simplify(E.Mul((M, _vecof(A)))), (p, q))


def _vecof(x):
    return x if x.shape[1] == 1 else E.Vec(x)


def _adj_transpose(e, W, i):
    return _T(W)


def _adj_trace(e, W, i):
    L = e.arg
    if L.is_scalar:
        return W
    return E.Mul((W, E.Identity(L.shape[0])))


def _adj_sum(e, W, i):
    L = e.arg
    if L.is_scalar:
        return W
    return E.Fill(W, *L.shape)


def _unvec(W, shape):
    """M of the given shape with vec(M) = W: the matrix the vec's of W are made of where
    the identities give it that shape (G, Gᵀ, Q N Pᵀ, b aᵀ, ...), otherwise the inverse
    of vec itself, unvec(W, m) (W a general vector, or the vec of a matrix of another
    shape: vec(M) = vec(N) with M m×n and N n×m is a reshape)."""
    M = _unvec_any(W, shape)
    if M is not None and M.shape == shape:
        return M
    return E.Unvec(W if M is None else E.Vec(M), shape[0], shape[1])


def _unvec_strict(W, shape):
    """As ``_unvec``, but None where only the inverse of vec would write M (so that the
    identities of ``_unvec_any`` that combine parts are tried on the whole first)."""
    M = _unvec_any(W, shape)
    if M is None or M.shape != shape:
        return None
    return M


def _unvec_any(W, shape):
    """M with vec(M) = W, built from the vec's W is made of: of the given shape where the
    identities leave a choice, of the shape they give otherwise (the caller checks it)."""
    if isinstance(W, E.Vec):
        return W.arg
    if shape[1] == 1 and W.shape == shape:          # vec of a column is the column
        return W
    if isinstance(W, E.Fill):
        return E.Fill(W.value, *shape)
    if isinstance(W, E.Kron) and len(W.items) == 2 and all(a.shape[1] == 1 for a in W.items):
        a, b = W.items                              # a ⊗ b = vec(b aᵀ) for columns
        return E.Mul((b, E.Transpose(a)))
    if isinstance(W, E.Hadamard):                   # vec(A) ∘ vec(B) = vec(A ∘ B)
        parts = [_unvec_strict(t, shape) for t in W.items]
        return E.Hadamard(tuple(parts)) if all(p is not None for p in parts) else None
    if isinstance(W, E.Func):                       # f(vec(A)) = vec(f(A))
        inner = _unvec_strict(W.arg, shape)
        return None if inner is None else E.Func(W.name, inner)
    if isinstance(W, E.ElemPow):
        inner = _unvec_strict(W.base, shape)
        return None if inner is None else E.ElemPow(inner, W.exp)
    if isinstance(W, E.Mul):
        scal = tuple(f for f in W.items if f.is_scalar)
        arrays = [f for f in W.items if not f.is_scalar]
        if len(arrays) == 1:
            inner = _unvec_strict(arrays[0], shape)
            if inner is not None:
                return E.Mul(scal + (inner,))
        if len(arrays) >= 2:
            # M with vec(M) = L vec(N), peeling L from the right: (P ⊗ Q) vec(N) = vec(Q N Pᵀ)
            # for N with Q's columns and P's columns, K(m,n) vec(N) = vec(Nᵀ) for N m×n
            *front, last = arrays
            op = front[-1]
            rest = front[:-1]
            if isinstance(op, E.Add):      # (L1 + L2) vec(N): one at a time
                return _unvec_strict(E.Add(tuple(E.Mul(scal + tuple(rest) + (o, last)) for o in op.items)),
                              shape)
            inner = None
            if isinstance(op, E.Kron) and len(op.items) == 2:
                P, Q = op.items
                N = _unvec_strict(last, (Q.shape[1], P.shape[1]))
                if N is not None:
                    inner = E.Mul((Q, N, E.Transpose(P)))
            elif isinstance(op, E.Commutation):
                N = _unvec_strict(last, (op.m, op.n))
                if N is not None:
                    inner = E.Transpose(N)
            elif isinstance(op, E.DiagMat):           # diag(vec A) vec(N) = vec(A ∘ N)
                N = _unvec_any(last, shape)
                A = None if N is None else _unvec_strict(op.arg, N.shape)
                if A is not None:
                    inner = E.Hadamard((A, N))
            if inner is not None:
                if rest:
                    return _unvec_any(E.Mul(scal + tuple(rest) + (E.Vec(inner),)), shape)
                return E.Mul(scal + (inner,)) if scal else inner
    if isinstance(W, E.Add):
        parts = [_unvec_strict(t, shape) for t in W.items]
        if all(p is not None for p in parts):
            return E.Add(tuple(parts))
    return None


def _shape_text(x):
    from .shapes import describe_shape
    return describe_shape(x.shape)


def _adj_vec(e, W, i):
    L = e.arg
    if L.shape[1] == 1:        # vec of a vector is the vector
        return W
    if L.shape[0] == 1:        # vec of a row is its transpose
        return _T(W)
    W = simplify(W)
    return _unvec(W, L.shape)


def _text(e):
    """e as printed, with the differentials dX written as the variables X they vary."""
    from .printing import to_text
    return to_text(simplify(E.rewrite(e, lambda n: n.var if isinstance(n, E.Diff) else None)))


def _dims(shape):
    return f"{E.size_str(shape[0])}×{E.size_str(shape[1])}"


def _adj_unvec(e, W, i):
    return E.Vec(W)


def _adj_diagmat(e, W, i):
    return E.DiagVec(W)


def _adj_diagvec(e, W, i):
    return E.DiagMat(W)


def _adj_frechet(e, W, i):
    if i == 0:              # the differential rule never leaves dX in X (a second derivative)
        raise UnsupportedError("no trace identity moves dX out of the point X of a Fréchet "
                               "derivative (a second Fréchet derivative)")
    return E.Frechet(e.name, _T(e.arg), W, e.p)


IDENTITIES = {
    E.Add: ("linearity", "⟨W, A + B⟩ = ⟨W, A⟩ + ⟨W, B⟩", _adj_add),
    E.Fill: ("broadcast", "⟨W, s 1⟩ = s sum(W)", _adj_fill),
    E.Mul: ("cyclic trace", "tr(Wᵀ P dX Q) = tr((Pᵀ W Qᵀ)ᵀ dX)", _adj_mul),
    E.Hadamard: ("Hadamard ↔ trace", "tr(Wᵀ (A ∘ dX)) = tr((W ∘ A)ᵀ dX)", _adj_hadamard),
    E.Kron: ("Kronecker pairing", "uᵀ (A ⊗ dX) v = tr(unvec(u)ᵀ dX unvec(v) Aᵀ), "
             "tr(Wᵀ (A ⊗ dX)) = vec(dX)ᵀ unvec((I ⊗ K ⊗ I) vec W) vec A", _adj_kron),
    E.Transpose: ("transpose", "tr(Wᵀ dXᵀ) = tr(W dX) = tr((Wᵀ)ᵀ dX)", _adj_transpose),
    E.Trace: ("trace", "w tr(dX) = tr((w I)ᵀ dX)", _adj_trace),
    E.Sum: ("sum", "w sum(dX) = tr((w 1 1ᵀ)ᵀ dX)", _adj_sum),
    E.Vec: ("vec", "vec(W)ᵀ vec(dX) = tr(Wᵀ dX)", _adj_vec),
    E.Unvec: ("unvec", "tr(Wᵀ unvec(dv)) = vec(W)ᵀ dv", _adj_unvec),
    E.DiagMat: ("diag", "tr(Wᵀ diag(dx)) = diag(W)ᵀ dx", _adj_diagmat),
    E.DiagVec: ("diag", "wᵀ diag(dX) = tr(diag(w)ᵀ dX)", _adj_diagvec),
    E.Frechet: ("Fréchet adjoint", "tr(Wᵀ L_f(X, dX)) = tr(L_f(Xᵀ, W)ᵀ dX)", _adj_frechet),
}


def _same_shape(a, b):
    """Whether a term of shape a can stand for dX of shape b: the same sizes, or sizes
    that differ only where one is a product (m·p = n·q is a constraint of the expression
    that no factor decides: A ⊗ B with A 2×3 and B 3×2 is square; the values settle it,
    and evaluate refuses an answer whose value has another shape)."""
    if a == b:
        return True
    if a == b[::-1]:
        return False            # a transposed term: never read off as G
    return all(x == y or isinstance(x, E.SizeProd) or isinstance(y, E.SizeProd)
               for x, y in zip(a, b))


def gradient_terms(df, used=None, stages=None):
    """The terms G_k with df = Σ_k tr(G_kᵀ dX), one per occurrence of dX.

    used: a list receiving (name, formula) of the identities applied, in order.
    stages: a list receiving, after each node the sweep moves dX out of, (name, formula,
    pairs) with pairs the [(W, L), ...] of df = Σ ⟨W, L⟩ at that point (the steps show
    the form after each identity)."""
    # nodes of df that contain dX, children after parents (reverse topological order)
    holds = {}

    def has(e):
        k = id(e)
        if k not in holds:
            found = isinstance(e, E.Diff)
            for a in e.args:            # a loop, not any(…): one frame per level of nesting
                if found:
                    break
                found = has(a)
            holds[k] = found
        return holds[k]

    if not has(df):
        return []
    order, seen = [], set()

    def visit(e):
        if id(e) in seen or not holds.get(id(e)):
            return
        seen.add(id(e))
        for a in e.args:
            if has(a):
                visit(a)
        order.append(e)

    visit(df)
    order.reverse()
    seeds = {id(df): [E.ONE]}
    nodes = {id(df): df}            # id -> node, for the stages
    out, done = [], []
    for node in order:
        ws = seeds.pop(id(node), [])
        if not ws:
            continue
        W = ws[0] if len(ws) == 1 else E.Add(tuple(ws))
        if isinstance(node, E.Diff):
            if not _same_shape(W.shape, node.shape) and not (W.is_scalar and node.is_scalar):
                # a term of G must have dX's shape; anything else would be read off wrongly
                raise UnsupportedError(
                    f"the gradient term {_text(W)} is {_dims(W.shape)}, but d{node.var.name} is "
                    f"{_dims(node.shape)}: the trace identities cannot bring this df to tr(Gᵀ dX)")
            out.append(W)
            if stages is not None:
                done.append((W, node))
            continue
        ident = IDENTITIES.get(type(node))
        if ident is None:
            raise UnsupportedError(f"no trace identity moves dX out of {type(node).__name__}")
        name, formula, fn = ident
        if used is not None and name not in [u[0] for u in used]:
            used.append((name, formula))
        for i, a in enumerate(node.args):
            if has(a):
                seeds.setdefault(id(a), []).append(fn(node, W, i))
                nodes[id(a)] = a
        if stages is not None:
            pending = [(w[0] if len(w) == 1 else E.Add(tuple(w)), nodes[k]) for k, w in seeds.items()]
            stages.append((name, formula, [(g, d) for g, d in done] + pending))
    return out
