"""Lowerings of the matrix functions and the spectral functions (CONTRACT §5.1): f(X)
(``MatFunc``), its Fréchet derivative L_f(X, E) (``Frechet``) and Jacobian
(``FrechetJac``), λ_max, λ_min, ‖X‖_*, ‖x‖₁ (``Spectral``) and the eigen- and singular
vectors and the polar factor their gradients are written with (``SpectralVec``).

The target computes them (``Backend.matrix_function``, ``spectral``,
``spectral_vector``): NumPy with the kernels of ``operators/matrix_kernels.py`` (SciPy's
algorithms, or eigh where X is symmetric), JAX and PyTorch with their exponential and
eigh.  Whether X is symmetric is read off its form here (``symmetric_by_form``): a
symmetric or spd symbol, Xᵀ X, f(S) of a symmetric S, S^(1/2) A S^(1/2) with A
symmetric; the code then takes eigh of its symmetric part, so rounding errors of a
product do not send it down the general path.

One ``eigh`` per symmetric argument serves every function of it (``eigh_of``), and
tr f(S) is the sum of f of S's eigenvalues (``trace_of_matfunc``, from lower_trace);
expm(X) and L_exp(X or Xᵀ, E) needed together come from one call (``_expm_partner``).

A vector or scalar argument is made a 2-D array first and the result read back in the
node's shape, so that a 1×1 logm of a negative number raises as the matrix one does.
"""
import matcalc.codegen.ir as ir
from .values import Note, V, rep_of
from .. import expr as E
from ..simplify import is_symmetric, transpose


# ----------------------------------------------------------------------------- symmetry


def symmetric_by_form(e):
    """Whether e is symmetric by its form (beside ``simplify.is_symmetric``, which does not
    see through the matrix functions): f(S) of a symmetric S, L_f(S, A) with S and A
    symmetric, a product that reads the same transposed (P S Pᵀ), sums, inverses and
    transposes of those."""
    if e.is_scalar:
        return True
    r, c = e.shape
    if r != c:
        return False
    if isinstance(e, E.MatFunc):
        return symmetric_by_form(e.arg)
    if isinstance(e, E.Frechet):
        return symmetric_by_form(e.arg) and symmetric_by_form(e.dir)
    if isinstance(e, (E.Inverse, E.Transpose, E.MatPow)):
        return symmetric_by_form(e.arg)
    if isinstance(e, E.Add):
        return all(symmetric_by_form(t) for t in e.items)
    if isinstance(e, E.Mul):
        chain = [f for f in e.items if not f.is_scalar]
        k = len(chain)
        for i in range(k // 2):
            if not transposes(chain[i], chain[k - 1 - i]):
                return False
        return k % 2 == 0 or symmetric_by_form(chain[k // 2])
    return is_symmetric(e)


def transposes(a, b):
    """Whether a = bᵀ by form."""
    if a == transpose(b) or (isinstance(a, E.Transpose) and a.arg == b) or \
            (isinstance(b, E.Transpose) and b.arg == a):
        return True
    return a == b and symmetric_by_form(a)


# ----------------------------------------------------------------------------- shapes


def as_matrix(low, v, shape):
    """The lowered value v of this shape as a 2-D array."""
    if v.rep == "M":
        return v.code
    if v.rep == "V":
        dims = (ir.Const("-1"), ir.Const("1")) if shape[1] == 1 else (ir.Const("1"), ir.Const("-1"))
        return ir.Method(v.code, "reshape", dims)
    return low.B.full(ir.Tuple_((ir.Const("1"), ir.Const("1"))), v.code)


def from_matrix(code, shape):
    """A 2-D result as the value of shape (1-D for a vector, an entry for a scalar)."""
    rep = rep_of(shape)
    if rep == "V":
        return ir.Method(code, "reshape", (ir.Const("-1"),))
    if rep == "S":
        return ir.Index(code, (ir.Const("0"), ir.Const("0")))
    return code


def _emit(low, code, e):
    return low.emit(from_matrix(code, e.shape), rep_of(e.shape), e.shape, e)


# ----------------------------------------------------------------------------- eigh


def eigh_of(low, arg):
    """(eigenvalues, eigenvectors) of the symmetric arg as IR names: one ``eigh`` per
    argument, shared by f(arg), L_f(arg, ·), its Jacobian, λ and the eigenvectors."""
    key = ("eigh", arg)
    hit = low.memo.get(key)
    if hit is not None:
        return hit.code.items
    v = low.ev(arg)
    lam, U = low.temp(), low.temp()
    low.body.append(ir.Assign((lam, U), low.B.call("eigh_sym", as_matrix(low, v, arg.shape)), ("V", "M"),
                              Note(arg, "eigh of ", "  (symmetric)")))
    out = (ir.Name(lam), ir.Name(U))
    low.memo[key] = V(ir.Tuple_(out), "P", None)
    return out


def _eigh_wanted(low, arg):
    """Whether the eigh of arg is made anyway (an eigenvector of it is needed)."""
    return ("eigh", arg) in low.memo or any(
        low.intern(E.SpectralVec(n, arg)) in low.nodes for n in ("eigvec_max", "eigvec_min"))


# ----------------------------------------------------------------------------- lowerings


def _expm_partner(low, e):
    """For expm(X) (or L_exp(X, E)) of a general X: the one L_exp(Y, E) (or expm(Y)) with
    Y = X or Xᵀ that the trees need beside it and that is not computed yet, else None."""
    if e.name != "expm":
        return None
    args = {e.arg, transpose(e.arg)}
    want = E.Frechet if isinstance(e, E.MatFunc) else E.MatFunc
    found = [n for n in low.nodes if type(n) is want and n.name == "expm" and n.arg in args
             and n not in low.memo]
    if len(found) != 1:
        return None
    f = found[0] if want is E.Frechet else e
    # the direction may not need the exponential itself (L_exp(Xᵀ, expm(X)ᵀ), the gradient
    # of tr(expm(X)²)): it is computed before the pair
    return None if _mentions(f.dir, E.MatFunc, "expm") else found[0]


def _mentions(tree, cls, name):
    """Whether a node cls(name, ...) is inside tree."""
    stack = [tree]
    while stack:
        n = stack.pop()
        if type(n) is cls and n.name == name:
            return True
        stack.extend(n.args)
    return False


def _expm_with_frechet(low, m, f):
    """expm(Y) and L_exp(Y, E) from one call (expm_frechet, or one block exponential):
    m is expm(X) with X = Y or Yᵀ (expm(Yᵀ) = expm(Y)ᵀ), f is L_exp(Y, E)."""
    y, d = low.ev(f.arg), low.ev(f.dir)
    F, L = low.temp(), low.temp()
    low.body.append(ir.Assign((F, L), low.B.call("expm_and_frechet", as_matrix(low, y, f.arg.shape),
                                                  as_matrix(low, d, f.dir.shape)), ("M", "M"),
                              Note(f, "expm and ", "  (one expm_frechet)")))
    low.memo[f] = V(ir.Name(L), "M", f.shape)
    F = V(ir.Name(F), "M", m.shape)
    low.memo[m] = F if m.arg == f.arg else low.T(F)
    return low.memo[m]


def lower_matfunc(low, e):
    B = low.B
    if symmetric_by_form(e.arg):
        lam, U = eigh_of(low, e.arg)
        return _emit(low, B.matrix_function_eig("matfunc", e.name, lam, U, (), e.p), e)
    partner = _expm_partner(low, e)
    if partner is not None and e.shape[0] != 1 and B.spells("expm_and_frechet"):
        return _expm_with_frechet(low, e, partner)
    v = low.ev(e.arg)
    return _emit(low, B.matrix_function("matfunc", e.name, (as_matrix(low, v, e.arg.shape),), e.p), e)


def inverse_from_eigh(e):
    """Whether the inverse e = f(S)⁻¹ (f a principal power or sqrtm, S symmetric by its
    form) is S^(−p) from S's one eigh (``eigh_of``): then it is made so, never
    solved with f(S) (the FID gradient's sqrtm(M)⁻¹ from M's eigh)."""
    a = e.arg
    return (isinstance(e, E.Inverse) and isinstance(a, E.MatFunc) and a.name in ("sqrtm", "powm")
            and not a.is_scalar and symmetric_by_form(a.arg))


def lower_inverse_from_eigh(low, e):
    """f(S)⁻¹ = S^(−p) = U diag(λ^(−p)) Uᵀ from the eigh of S."""
    from fractions import Fraction
    a = e.arg
    p = Fraction(1, 2) if a.name == "sqrtm" else a.p
    lam, U = eigh_of(low, a.arg)
    return _emit(low, low.B.matrix_function_eig("matfunc", "powm", lam, U, (), -p), e)


def lower_frechet(low, e):
    B = low.B
    d = low.ev(e.dir)
    E_ = as_matrix(low, d, e.dir.shape)
    if symmetric_by_form(e.arg):
        lam, U = eigh_of(low, e.arg)
        return _emit(low, B.matrix_function_eig("frechet", e.name, lam, U, (E_,), e.p), e)
    partner = _expm_partner(low, e)
    if partner is not None and e.shape[0] != 1 and B.spells("expm_and_frechet"):
        _expm_with_frechet(low, partner, e)
        return low.memo[e]
    v = low.ev(e.arg)
    return _emit(low, B.matrix_function("frechet", e.name, (as_matrix(low, v, e.arg.shape), E_), e.p), e)


def lower_frechet_jac(low, e):
    B = low.B
    if symmetric_by_form(e.arg):
        lam, U = eigh_of(low, e.arg)
        return _emit(low, B.matrix_function_eig("frechet_jac", e.name, lam, U, (), e.p), e)
    v = low.ev(e.arg)
    return _emit(low, B.matrix_function("frechet_jac", e.name, (as_matrix(low, v, e.arg.shape),), e.p), e)


def trace_of_matfunc(low, a):
    """tr f(S) of a symmetric-by-form S: the sum of f of its eigenvalues, from the eigh
    that f(S) takes anyway (f(S) itself is not formed for it); None for another node."""
    if not (isinstance(a, E.MatFunc) and symmetric_by_form(a.arg)):
        return None
    lam, _ = eigh_of(low, a.arg)
    return low.B.call("trace_eig", ir.Const(repr(a.name)), lam, **low.B._p_kwarg(a.p))


def lower_spectral(low, e):
    B = low.B
    if e.name in ("lambda_max", "lambda_min") and _eigh_wanted(low, e.arg):
        lam, _ = eigh_of(low, e.arg)
        k = "-1" if e.name == "lambda_max" else "0"
        return low.emit(ir.Index(lam, (ir.Const(k),)), "S", E.SCALAR, e)
    v = low.ev(e.arg)
    if e.name == "norm1" and v.rep != "S":
        return low.emit(B.spectral("norm1", v.code), "S", E.SCALAR, e)
    return low.emit(B.spectral(e.name, as_matrix(low, v, e.arg.shape)), "S", E.SCALAR, e)


def lower_spectral_vec(low, e):
    B = low.B
    if e.name in ("eigvec_max", "eigvec_min"):
        lam, U = eigh_of(low, e.arg)
        return _emit(low, B.eigvec(e.name.split("_")[1], lam, U), e)
    v = low.ev(e.arg)
    return _emit(low, B.spectral_vector(e.name, as_matrix(low, v, e.arg.shape)), e)


MATFUN_LOWERINGS = {
    E.MatFunc: lower_matfunc, E.Frechet: lower_frechet, E.FrechetJac: lower_frechet_jac,
    E.Spectral: lower_spectral, E.SpectralVec: lower_spectral_vec,
}
