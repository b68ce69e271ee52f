"""The canonical form vec(dF) = J vec(dX) of a vector- or matrix-valued differential,
and J read off.

Each entry of ``VEC_IDENTITIES`` states how vec of one node of dF is a matrix times
the vec of its argument that holds dX (Magnus & Neudecker's identities):

    vec(P M Q)   = (Qᵀ ⊗ P) vec(M)              vec of a product
    vec(Mᵀ)      = K(p,q) vec(M)                commutation
    vec(A ∘ M)   = diag(vec A) vec(M)           Hadamard
    vec(s R)     = vec(R) s                     a scalar factor holding dX
    s            = vec(G)ᵀ vec(dX)              a scalar: its gradient, transposed
    ...

``jacobian_expr(dF, var)`` applies them from dF down to dX and multiplies along the way.
Operations with no identity raise UnsupportedError.
"""
from . import expr as E
from .build import commutation
from .canon import gradient_terms
from .errors import UnsupportedError


def _size(x):
    r, c = x.shape
    return E.size_mul(r, c)


def _prod(xs, rows):
    xs = [x for x in xs if x is not None]
    if not xs:
        return E.Identity(rows)
    return xs[0] if len(xs) == 1 else E.Mul(tuple(xs))


def _vec(x):
    return x if x.shape[1] == 1 else E.Vec(x)


def _ones(n):
    return E.Fill(E.ONE, n, 1)


class _Jac:
    def __init__(self, var, used=None):
        self.var = var
        self.used = used
        self.n = _size(var)
        self.memo = {}
        self.holds = {}

    def has(self, e):
        k = id(e)
        h = self.holds.get(k)
        if h is None:
            h = isinstance(e, E.Diff) or any(self.has(a) for a in e.args)
            self.holds[k] = h
        return h

    def jac(self, e):
        """J with vec(e) = J vec(dX), or None if e does not hold dX."""
        if not self.has(e):
            return None
        k = id(e)
        hit = self.memo.get(k)
        if hit is not None:
            return hit[1]
        if isinstance(e, E.Diff):
            out = E.Identity(self.n)
        elif e.is_scalar:
            out = self.scalar(e)
        else:
            name, formula, fn = VEC_IDENTITIES.get(type(e), (None, None, None))
            if fn is None:
                raise UnsupportedError(f"the Jacobian through {type(e).__name__} (no vec identity)")
            if self.used is not None and (name, formula) not in self.used:
                self.used.append((name, formula))
            out = fn(self, e)
        self.memo[k] = (e, out)
        return out

    def scalar(self, s):
        """A scalar linear form s = tr(Gᵀ dX) = vec(G)ᵀ vec(dX)."""
        terms = gradient_terms(s, self.used)
        G = terms[0] if len(terms) == 1 else E.Add(tuple(terms))
        return E.Transpose(_vec(G))


def _add(j, e):
    parts = [j.jac(a) for a in e.items]
    parts = [p for p in parts if p is not None]
    return parts[0] if len(parts) == 1 else E.Add(tuple(parts))


def _fill(j, e):
    # vec(s 1) = 1 s
    return E.Mul((_ones(_size(e)), j.jac(e.value)))


def _mul(j, e):
    i = next(k for k, f in enumerate(e.items) if j.has(f))
    M = e.items[i]
    others = e.items[:i] + e.items[i + 1:]
    JM = j.jac(M)
    if M.is_scalar:
        # vec(s R) = vec(R) s, and s = vec(G)ᵀ vec(dX)
        R = others[0] if len(others) == 1 else E.Mul(others)
        return E.Mul((_vec(R), JM))
    scal = [f for f in others if f.is_scalar]
    before = [f for f in e.items[:i] if not f.is_scalar]
    after = [f for f in e.items[i + 1:] if not f.is_scalar]
    P = _prod(before, M.shape[0])
    Q = _prod(after, M.shape[1])
    if M.shape[1] == 1 and not after:
        left = P                                   # vec(P m) = P m
    else:
        left = E.Kron((E.Transpose(Q), P))         # vec(P M Q) = (Qᵀ ⊗ P) vec(M)
    return E.Mul(tuple(scal) + (left, JM))


def _transpose(j, e):
    M = e.arg
    p, q = M.shape
    JM = j.jac(M)
    if p == 1 or q == 1:
        return JM                                  # a vector and its transpose share vec
    return E.Mul((commutation(p, q), JM))          # vec(Mᵀ) = K(p,q) vec(M)


def _hadamard(j, e):
    i = next(k for k, f in enumerate(e.items) if j.has(f))
    others = e.items[:i] + e.items[i + 1:]
    A = others[0] if len(others) == 1 else E.Hadamard(others)
    return E.Mul((E.DiagMat(_vec(A)), j.jac(e.items[i])))   # vec(A ∘ M) = diag(vec A) vec(M)




def _kron(j, e):
    # vec(A ⊗ B) = (I_n ⊗ K(q,m) ⊗ I_p)(vec A ⊗ vec B) for A m×n, B p×q (Magnus &
    # Neudecker, Theorem 3.10), so vec(A ⊗ dB) = L (vec A ⊗ I_pq) vec(dB) and
    # vec(dA ⊗ B) = L (I_mn ⊗ vec B) vec(dA).  Longer products are taken two at a time.
    items = e.items
    A = items[0] if len(items) == 2 else E.Kron(items[:-1])
    B = items[-1]
    (m, n), (p, q) = A.shape, B.shape
    L = E.Kron((E.Identity(n), commutation(q, m), E.Identity(p)))
    parts = []
    if j.has(B):
        parts.append(E.Mul((L, E.Kron((_vec(A), E.Identity(E.size_mul(p, q)))), j.jac(B))))
    if j.has(A):
        JA = j.jac(A) if A in e.items or not isinstance(A, E.Kron) else _kron(j, A)
        parts.append(E.Mul((L, E.Kron((E.Identity(E.size_mul(m, n)), _vec(B))), JA)))
    return parts[0] if len(parts) == 1 else E.Add(tuple(parts))


def _vec_node(j, e):
    return j.jac(e.arg)


def _diagmat(j, e):
    # vec(diag(m)) = diag(vec I) (1 ⊗ I) m
    n = e.shape[0]
    D = E.Mul((E.DiagMat(E.Vec(E.Identity(n))), E.Kron((_ones(n), E.Identity(n)))))
    return E.Mul((D, j.jac(e.arg)))


def _diagvec(j, e):
    # diag(M) = (1ᵀ ⊗ I) diag(vec I) vec(M)
    n = e.shape[0]
    D = E.Mul((E.Kron((E.Transpose(_ones(n)), E.Identity(n))), E.DiagMat(E.Vec(E.Identity(n)))))
    return E.Mul((D, j.jac(e.arg)))


def _frechet(j, e):
    if j.has(e.arg):
        raise UnsupportedError("the Jacobian through the point X of a Fréchet derivative (a "
                               "second Fréchet derivative) is not supported")
    return E.Mul((E.FrechetJac(e.name, e.arg, e.p), j.jac(e.dir)))   # vec L_f(X, M) = J_f(X) vec(M)


VEC_IDENTITIES = {
    E.Add: ("linearity", "vec(A + B) = vec(A) + vec(B)", _add),
    E.Fill: ("broadcast", "vec(s 1) = 1 s", _fill),
    E.Mul: ("vec of a product", "vec(P dX Q) = (Qᵀ ⊗ P) vec(dX)", _mul),
    E.Transpose: ("commutation", "vec(dXᵀ) = K vec(dX)", _transpose),
    E.Hadamard: ("Hadamard", "vec(A ∘ dX) = diag(vec A) vec(dX)", _hadamard),
    E.Kron: ("Kronecker", "vec(A ⊗ dB) = (I ⊗ K ⊗ I)(vec A ⊗ I) vec(dB)", _kron),
    E.Vec: ("vec", "vec(vec(dX)) = vec(dX)", _vec_node),
    E.Unvec: ("unvec", "vec(unvec(dv)) = dv", _vec_node),
    E.DiagMat: ("diag", "vec(diag(dx)) = diag(vec I) (1 ⊗ I) dx", _diagmat),
    E.DiagVec: ("diag", "diag(dX) = (1ᵀ ⊗ I) diag(vec I) vec(dX)", _diagvec),
    E.Frechet: ("Fréchet Jacobian", "vec L_f(X, dX) = J_f(X) vec(dX)  (J_f(X) = jexpm(X), …)", _frechet),
}


def jacobian_expr(dF, var, used=None):
    """J with vec(dF) = J vec(dX) (unsimplified), for dF linear in Diff(var).

    used: a list receiving (name, formula) of the identities applied, in order (the
    trace identities of a scalar factor included)."""
    return _Jac(var, used).jac(dF)
