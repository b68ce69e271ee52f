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
    W = simplify(W)
    others = e.items[:i] + e.items[i + 1:]
    L = e.items[i]
    if isinstance(W, E.Fill):
        # ⟨s 1, A ⊗ L⟩ = s sum(A) sum(L)
        return E.Fill(_mul(W.value, *[E.Sum(o) for o in others]), *L.shape)
    if isinstance(W, E.Mul) and len(W.items) == 2 and W.items[0].is_scalar and isinstance(W.items[1], E.Identity) \
            and all(o.shape[0] == o.shape[1] for o in others) and L.shape[0] == L.shape[1]:
        # ⟨w I, A ⊗ L⟩ = w tr(A) tr(L)
        return E.Mul((W.items[0],) + tuple(E.Trace(o) for o in others) + (E.Identity(L.shape[0]),))
    if isinstance(W, E.Identity) and all(o.shape[0] == o.shape[1] for o in others) \
            and L.shape[0] == L.shape[1]:
        return E.Mul(tuple(E.Trace(o) for o in others) + (E.Identity(L.shape[0]),))
    raise UnsupportedError("the gradient through a Kronecker product with dX inside a scalar "
                           "function (other than its trace or its sum)")


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


IDENTITIES = {
    E.Add: ("linearity", "⟨W, A + B⟩ = ⟨W, A⟩ + ⟨W, B⟩", _adj_add),
    E.Fill: ("broadcast", "⟨W, s 1⟩ = s sum(W)", _adj_fill),
    E.Mul: ("cyclic trace", "tr(Wᵀ P dX Q) = tr((Pᵀ W Qᵀ)ᵀ dX)", _adj_mul),
    E.Hadamard: ("Hadamard ↔ trace", "tr(Wᵀ (A ∘ dX)) = tr((W ∘ A)ᵀ dX)", _adj_hadamard),
    E.Kron: ("Kronecker trace", "tr(A ⊗ dX) = tr(A) tr(dX)", _adj_kron),
    E.Transpose: ("transpose", "tr(Wᵀ dXᵀ) = tr(W dX) = tr((Wᵀ)ᵀ dX)", _adj_transpose),
    E.Trace: ("trace", "w tr(dX) = tr((w I)ᵀ dX)", _adj_trace),
    E.Sum: ("sum", "w sum(dX) = tr((w 1 1ᵀ)ᵀ dX)", _adj_sum),
    E.Vec: ("vec", "vec(W)ᵀ vec(dX) = tr(Wᵀ dX)", _adj_vec),
    E.Unvec: ("unvec", "tr(Wᵀ unvec(dv)) = vec(W)ᵀ dv", _adj_unvec),
    E.DiagMat: ("diag", "tr(Wᵀ diag(dx)) = diag(W)ᵀ dx", _adj_diagmat),
    E.DiagVec: ("diag", "wᵀ diag(dX) = tr(diag(w)ᵀ dX)", _adj_diagvec),
}


def gradient_terms(df, used=None):
    """The terms G_k with df = Σ_k tr(G_kᵀ dX), one per occurrence of dX.

    used: a list receiving (name, formula) of the identities applied, in order."""
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
    out = []
    for node in order:
        ws = seeds.pop(id(node), [])
        if not ws:
            continue
        W = ws[0] if len(ws) == 1 else E.Add(tuple(ws))
        if isinstance(node, E.Diff):
            if W.shape != node.shape and not (W.is_scalar and node.is_scalar):
                # a term of G must have dX's shape; anything else would be read off wrongly
                raise UnsupportedError(
                    f"the gradient term {_text(W)} is {_dims(W.shape)}, but d{node.var.name} is "
                    f"{_dims(node.shape)}: the trace identities cannot bring this df to tr(Gᵀ dX)")
            out.append(W)
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
    return out
