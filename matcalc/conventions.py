"""The conventions of a structured variable (CONTRACT §2), in one place.

A symmetric (or spd) X varies only along symmetric directions, a diagonal X only along
its diagonal: its derivative is taken along the variable's own space.

    gradient      sym(G) = (G + Gᵀ)/2 (the default), or the Matrix Cookbook's
                  2 sym(G) − I ∘ sym(G) with symmetric="cookbook"; I ∘ G for a diagonal X
    Jacobian      J P,  Hessian  P H P,  with P the projector onto vec of the space:
                  (I + K)/2 for symmetric, diag(vec I) for diagonal

Each convention is written once, for trees (the derivation) and for values (the
checks and the steps, which compare the answer with finite differences along a
direction of that space).  The value functions take NumPy arrays and import NumPy only
when called (``matcalc diff`` imports no NumPy).
"""
from . import expr as E
from .simplify import is_symmetric, simplify, split_coef, transpose

SYM_KINDS = ("symmetric", "spd")     # vary along symmetric directions (diagonal: its own)
STYLES = (None, "sym", "cookbook")        # symmetric=: sym(G) (None is "sym") or the Cookbook's


def is_structured(var):
    """Whether the variable has its own space smaller than all matrices of its shape."""
    return var.kind in SYM_KINDS or var.kind == "diagonal"


# ---------------------------------------------------------------------------- trees


def project_gradient(G, var, symmetric=None):
    """The gradient along the variable's own space (CONTRACT §2)."""
    if var.kind in SYM_KINDS:
        half = E.Num(E.Fraction(1, 2))
        # sym(G) = (G + Gᵀ)/2, which is G itself when G is symmetric
        S_ = G if is_symmetric(G) else simplify(E.Add((E.Mul((half, G)), E.Mul((half, transpose(G))))))
        if symmetric == "cookbook":
            # the Matrix Cookbook's 2 S − I ∘ S
            return simplify(E.Add((E.Mul((E.Num(2), S_)),
                                   E.Mul((E.MINUS_ONE, E.Hadamard((E.Identity(var.rows), S_)))))))
        return S_
    if var.kind == "diagonal":
        return simplify(E.Hadamard((E.Identity(var.rows), G)))
    return G


def projector(var):
    """P with vec(dX) = P vec(dX) for the variable's own space (None if unstructured):
    (I + K)/2 for symmetric and spd, diag(vec I) for diagonal."""
    if var.kind in SYM_KINDS:
        n = var.rows
        return E.Mul((E.Num(E.Fraction(1, 2)), E.Add((E.Identity(E.size_mul(n, n)), E.Commutation(n, n)))))
    if var.kind == "diagonal":
        return E.DiagMat(E.Vec(E.Identity(var.rows)))
    return None


def project_jacobian(J, var):
    """J P: the Jacobian along the variable's own space."""
    P = projector(var)
    return J if P is None else simplify(E.Mul((J, P)))


def project_hessian(H, var):
    """P H P; for a symmetric variable and K H K = H (a sum of A ⊗ B that swapping the
    factors leaves alone) that is P H: H K = K H, so (I+K) H (I+K)/4 = (I+K) H / 2."""
    P = projector(var)
    if P is None:
        return H
    return simplify(E.Mul((P, H) if _commutes_with_K(H, var) else (P, H, P)))


def _commutes_with_K(H, var):
    """Whether K H K = H with K = K(n,n), for H a sum of multiples of Kronecker products of
    n×n matrices (K (A ⊗ B) K = B ⊗ A): the sum is the same with the factors swapped."""
    if var.kind not in SYM_KINDS:
        return False
    n = var.rows

    def swapped(t):
        c, rest = split_coef(t)
        if isinstance(rest, E.Kron) and len(rest.items) == 2 and all(
                x.shape == (n, n) for x in rest.items):
            return E.Mul((E.Num(c), E.Kron(rest.items[::-1])))
        return None
    terms = H.items if isinstance(H, E.Add) else (H,)
    out = [swapped(t) for t in terms]
    if any(t is None for t in out):
        return False
    return simplify(E.Add(tuple(out)) if len(out) > 1 else out[0]) == H


# ---------------------------------------------------------------------------- values


def project_value(a, var):
    """The array a (a direction, a gradient's value) projected on the variable's own
    space: (a + aᵀ)/2 for symmetric, the diagonal of a for diagonal.  var: a typed Sym,
    or its kind as a string."""
    kind = getattr(var, "kind", var)
    if kind in SYM_KINDS:
        return (a + a.T) / 2
    if kind == "diagonal":
        import numpy as np
        return np.diag(np.diag(a))
    return a


def sym_of_value(G, var, symmetric=None):
    """sym(G)'s value from the value of the gradient as the API returns it: the
    Cookbook's 2 S − I ∘ S taken back to S (its pairing with a symmetric direction V is
    then ⟨S, V⟩ = df)."""
    if var.kind in SYM_KINDS and symmetric == "cookbook":
        import numpy as np
        return (G + np.diag(np.diag(G))) / 2
    return G
