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

A vector or scalar argument is made a 2-D array first and the result read back in the
node's shape, so that a 1×1 logm of a negative number raises as the matrix one does.
"""
from . import ir
from .values import rep_of
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


# ----------------------------------------------------------------------------- lowerings


def lower_matfunc(low, e):
    v = low.ev(e.arg)
    code = low.B.matrix_function("matfunc", e.name, (as_matrix(low, v, e.arg.shape),), e.p,
                                 symmetric_by_form(e.arg))
    return _emit(low, code, e)


def lower_frechet(low, e):
    x, d = low.ev(e.arg), low.ev(e.dir)
    args = (as_matrix(low, x, e.arg.shape), as_matrix(low, d, e.dir.shape))
    code = low.B.matrix_function("frechet", e.name, args, e.p, symmetric_by_form(e.arg))
    return _emit(low, code, e)


def lower_frechet_jac(low, e):
    v = low.ev(e.arg)
    code = low.B.matrix_function("frechet_jac", e.name, (as_matrix(low, v, e.arg.shape),), e.p,
                                 symmetric_by_form(e.arg))
    return _emit(low, code, e)


def lower_spectral(low, e):
    v = low.ev(e.arg)
    B = low.B
    if e.name == "norm1" and v.rep != "S":
        return low.emit(B.spectral("norm1", v.code), "S", E.SCALAR, e)
    return low.emit(B.spectral(e.name, as_matrix(low, v, e.arg.shape)), "S", E.SCALAR, e)


def lower_spectral_vec(low, e):
    v = low.ev(e.arg)
    return _emit(low, low.B.spectral_vector(e.name, as_matrix(low, v, e.arg.shape)), e)


MATFUN_LOWERINGS = {
    E.MatFunc: lower_matfunc, E.Frechet: lower_frechet, E.FrechetJac: lower_frechet_jac,
    E.Spectral: lower_spectral, E.SpectralVec: lower_spectral_vec,
}
