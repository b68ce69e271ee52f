"""Values of matrix functions, their Fréchet derivatives, and the eigen- and singular
vectors that spectral gradients are written with.

This is the numeric side of CONTRACT §5.1: ``evaluate`` and generated code call it, the
derivation never does.  SciPy is imported here, on first use, and nowhere on the way to
a symbolic answer.

A matrix function f of a square X (``expm``, ``logm``, ``sqrtm``, the real power
``X^p``) has the Fréchet derivative L_f(X, E), the linear map with
f(X + E) = f(X) + L_f(X, E) + o(‖E‖).  It is computed

- for a symmetric X, by the Daleckii–Krein formula  U (K ∘ (Uᵀ E U)) Uᵀ  with
  X = U diag(λ) Uᵀ and K_ij the divided difference (f(λᵢ) − f(λⱼ))/(λᵢ − λⱼ), written
  for each f in a form that stays accurate when λᵢ and λⱼ are close (and is f′(λᵢ) when
  they are equal), so repeated eigenvalues never give 0/0;
- for exp, by SciPy's ``expm_frechet``; for the square root, from the Sylvester equation
  S L + L S = E with S = sqrtm(X);
- otherwise by the block identity f([[X, E], [0, X]]) = [[f(X), L_f(X, E)], [0, f(X)]],
  with E scaled to X's size first (L is linear in E).

logm, sqrtm and X^p take the principal branch: X may have no eigenvalue on the closed
negative real axis, else EvaluationError.  The spectral functions are differentiable only
where their eigen- or singular value is simple (λ_max, ‖X‖₂), where X has full rank
(‖X‖_*), where no entry is zero (‖x‖₁): their gradients raise EvaluationError elsewhere.
"""
import numpy as np

from .errors import EvaluationError, MissingDependencyError, ShapeError
import matcalc.operators.matrix_kernels as K

MATRIX_FUNCTIONS = ("expm", "logm", "sqrtm", "power")


def _linalg():
    try:
        import scipy.linalg as sl
    except ImportError as err:          # pragma: no cover - scipy is a declared extra
        raise MissingDependencyError(
            "evaluating a matrix function needs SciPy: pip install scipy") from err
    return sl


def _square(X, what):
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] != X.shape[1]:
        raise ShapeError(f"{what} needs a square matrix, got an array of shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise EvaluationError(f"{what}: the matrix has an entry that is not finite")
    return X


_is_symmetric = K._is_symmetric


def _tol(scale, n):
    return 8 * max(n, 1) * np.finfo(float).eps * max(scale, np.finfo(float).tiny)


# ---------------------------------------------------------------------------- values
# The computations are the kernels of operators/matrix_kernels.py, which generated NumPy
# code defines too (one implementation); here their errors become matcalc's.

divided_differences = K._divided_differences
block_frechet = K._block_frechet


def _kernel(fn, *args):
    """A kernel's value, its errors as matcalc's: EvaluationError where the function is
    not defined or not differentiable, ShapeError for a shape that cannot fit."""
    try:
        return fn(*args)
    except np.linalg.LinAlgError as err:        # K._MatrixFunctionError is one
        raise EvaluationError(str(err)) from None
    except ValueError as err:
        raise ShapeError(str(err)) from None


def value(name, X, p=None):
    """f(X) for f one of MATRIX_FUNCTIONS (p the exponent of ``power``)."""
    _linalg()
    return _kernel(K._matfunc, name, np.asarray(X, dtype=float), p)


def frechet(name, X, E, p=None):
    """L_f(X, E), the Fréchet derivative of f at X in the direction E."""
    _linalg()
    return _kernel(K._frechet, name, np.asarray(X, dtype=float), np.asarray(E, dtype=float), p)


def jacobian(name, X, p=None):
    """The n²×n² J with vec L_f(X, E) = J vec(E)."""
    _linalg()
    return _kernel(K._frechet_jac, name, np.asarray(X, dtype=float), p)


def check_principal(name, X, p=None):
    """An EvaluationError where X has an eigenvalue on the closed negative real axis (the
    principal logm, sqrtm, X^p are not defined, or not differentiable, there)."""
    X = np.asarray(X, dtype=float)
    if X.ndim == 2 and X.shape[0] == X.shape[1] and np.all(np.isfinite(X)):
        _kernel(K._check_principal, K._mf_text(name, p), X)


# ---------------------------------------------------------------------------- spectral

def _symmetric(S, what):
    S = _square(S, what)
    # the tolerance of a value declared symmetric (numeric.structure_error): the rounding
    # of X^T A X passes, and the symmetric part is taken
    scale = float(np.abs(S).max(initial=0.0))
    if not np.allclose(S, S.T, rtol=0, atol=1e-8 * scale):
        raise ShapeError(f"{what} needs a symmetric matrix; this one is not symmetric")
    return (S + S.T) / 2


def eigenvalue(S, which):
    """λ_max (which='max') or λ_min (which='min') of a symmetric S."""
    lam = np.linalg.eigvalsh(_symmetric(S, f"lambda_{which}"))
    return float(lam[-1] if which == "max" else lam[0])


def eigenvector(S, which):
    """The unit eigenvector v of λ_max or λ_min (its entry of largest magnitude positive);
    EvaluationError where that eigenvalue is repeated, since λ is not differentiable there."""
    what = f"lambda_{which}"
    lam, U = np.linalg.eigh(_symmetric(S, what))
    k, other = (-1, -2) if which == "max" else (0, 1)
    if lam.size > 1 and abs(lam[k] - lam[other]) <= 1e3 * _tol(np.abs(lam).max(), lam.size):
        raise EvaluationError(
            f"{what}(S) is not differentiable here: the eigenvalue {lam[k]:.6g} is repeated")
    return _signed(U[:, [k]])


def _signed(v):
    """v with the sign that makes its entry of largest magnitude positive (the first of
    them on a tie): a deterministic choice, so each evaluation gives the same vector."""
    i = int(np.argmax(np.abs(v[:, 0]) > (1 - 1e-12) * np.abs(v[:, 0]).max()))
    return -v if v[i, 0] < 0 else v


def _svd(X, what):
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ShapeError(f"{what} needs a matrix")
    if not np.all(np.isfinite(X)):
        raise EvaluationError(f"{what}: the matrix has an entry that is not finite")
    return np.linalg.svd(X, full_matrices=False)


def top_singular_vectors(X):
    """(u₁, v₁) of the largest singular value (∇‖X‖₂ = u₁ v₁ᵀ), u₁ with its entry of
    largest magnitude positive and v₁ = Xᵀ u₁ / σ₁, so that svec_left and svec_right,
    evaluated apart, give a consistent u₁ v₁ᵀ; EvaluationError where that
    value is zero or repeated (‖X‖₂ is not differentiable there)."""
    U, s, Vt = _svd(X, "||X||_2")
    tol = 1e3 * _tol(s[0] if s.size else 0.0, max(np.shape(X)))
    if s.size == 0 or s[0] <= tol:
        raise EvaluationError("||X||_2 is not differentiable at X = 0")
    if s.size > 1 and s[0] - s[1] <= tol:
        raise EvaluationError(
            f"||X||_2 is not differentiable here: the largest singular value {s[0]:.6g} is repeated")
    u = _signed(U[:, [0]])
    return u, (np.asarray(X, dtype=float).T @ u) / s[0]


def polar_factor(X):
    """U Vᵀ from X = U Σ Vᵀ (∇‖X‖_*); EvaluationError where X does not have full rank
    (the nuclear norm is not differentiable there)."""
    return _kernel(K._polar, X)


def sign_nonzero(x):
    """sign(x) (∇‖x‖₁); EvaluationError where an entry is zero (‖x‖₁ has a kink there)."""
    return _kernel(K._sign_nonzero, np.asarray(x, dtype=float))


def spectral_norm(X):
    """‖X‖₂, the largest singular value."""
    s = _svd(X, "||X||_2")[1]
    return float(s[0]) if s.size else 0.0


def nuclear_norm(X):
    """‖X‖_*, the sum of the singular values."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ShapeError("||X||_* needs a matrix")
    if not np.all(np.isfinite(X)):
        raise EvaluationError("||X||_*: the matrix has an entry that is not finite")
    return float(np.linalg.svd(X, compute_uv=False).sum())


def entry_norm1(x):
    """‖x‖₁, the sum of the absolute values of the entries (of a vector or a matrix)."""
    return float(np.sum(np.abs(np.asarray(x, dtype=float))))
