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

MATRIX_FUNCTIONS = ("expm", "logm", "sqrtm", "power")
_PRINCIPAL = ("logm", "sqrtm", "power")
_SPELLING = {"expm": "expm(X)", "logm": "logm(X)", "sqrtm": "sqrtm(X)", "power": "X^p"}


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


def _is_symmetric(X):
    return np.array_equal(X, X.T) or np.allclose(X, X.T, rtol=0, atol=8 * np.finfo(float).eps * max(1.0, np.abs(X).max()))


def _tol(scale, n):
    return 8 * max(n, 1) * np.finfo(float).eps * max(scale, np.finfo(float).tiny)


def _check_principal(name, X, p=None):
    """logm, sqrtm, X^p: no eigenvalue on the closed negative real axis."""
    lam = np.linalg.eigvals(X)
    scale = max(1.0, np.abs(lam).max()) if lam.size else 1.0
    tol = _tol(scale, X.shape[0]) * 1e3
    bad = lam[(np.abs(lam.imag) <= tol) & (lam.real <= tol)]
    if bad.size:
        what = _SPELLING[name].replace("p", _power_text(p)) if name == "power" else _SPELLING[name]
        raise EvaluationError(
            f"{what} takes the principal branch, which needs X to have no eigenvalue on the "
            f"closed negative real axis; X has the eigenvalue {bad[0].real:.6g}: there "
            f"{what} is not defined (or not differentiable)")


def _power_text(p):
    return "(" + repr(float(p)) + ")" if p is not None else "p"


def _real(Y, what):
    """A real matrix from SciPy's result, which may be complex with zero imaginary parts."""
    if np.iscomplexobj(Y):
        if np.abs(Y.imag).max(initial=0.0) > 1e-8 * max(1.0, np.abs(Y.real).max(initial=0.0)):
            raise EvaluationError(f"{what} has no real value at this X")
        Y = Y.real
    return np.ascontiguousarray(Y, dtype=float)


# ---------------------------------------------------------------------------- scalar f, f'
# The function on eigenvalues and its divided differences, for the symmetric case.

def _scalar_f(name, p):
    if name == "expm":
        return np.exp
    if name == "logm":
        return np.log
    if name == "sqrtm":
        return np.sqrt
    return lambda lam: lam ** p


def divided_differences(name, lam, p=None):
    """K with K_ij = (f(λᵢ) − f(λⱼ))/(λᵢ − λⱼ), and f′(λᵢ) where λᵢ = λⱼ, accurate when the
    two are close (each f written so that no difference of nearly equal values is taken)."""
    lam = np.asarray(lam, dtype=float)
    li, lj = lam[:, None], lam[None, :]
    d = li - lj
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if name == "expm":
            # e^λⱼ (e^d − 1)/d, and the same written from the larger exponent so it cannot overflow first
            m = np.maximum(li, lj)
            ad = -np.abs(d)
            ratio = np.where(ad == 0, 1.0, -np.expm1(ad) / np.where(ad == 0, 1.0, -ad))
            return np.exp(m) * ratio
        if name == "sqrtm":
            return 1.0 / (np.sqrt(li) + np.sqrt(lj))
        # log and powers through r = λᵢ/λⱼ − 1 (both eigenvalues positive here)
        r = d / lj
        small = np.abs(r) < 1e-8
        rs = np.where(small, 1.0, r)
        if name == "logm":
            K = np.log1p(rs) / (lj * rs)
            return np.where(small, (1.0 - r / 2) / lj, K)
        K = lj ** (p - 1) * np.expm1(p * np.log1p(rs)) / rs
        return np.where(small, p * lj ** (p - 1) * (1.0 + (p - 1) * r / 2), K)


# ---------------------------------------------------------------------------- values

def value(name, X, p=None):
    """f(X) for f one of MATRIX_FUNCTIONS (p the exponent of ``power``)."""
    what = _SPELLING[name]
    X = _square(X, what)
    if name in _PRINCIPAL:
        _check_principal(name, X, p)
    if _is_symmetric(X):
        lam, U = np.linalg.eigh((X + X.T) / 2)
        with np.errstate(over="ignore", invalid="ignore"):
            F = (U * _scalar_f(name, p)(lam)) @ U.T
        return _finite((F + F.T) / 2, what)
    sl = _linalg()
    if name == "expm":
        F = sl.expm(X)
    elif name == "logm":
        F = sl.logm(X)
    elif name == "sqrtm":
        F = sl.sqrtm(X)
    else:
        F = sl.fractional_matrix_power(X, float(p))
    return _finite(_real(np.asarray(F), what), what)


def _finite(Y, what):
    if not np.all(np.isfinite(Y)):
        raise EvaluationError(f"{what} overflows float64 at this X: scale the inputs")
    return Y


def frechet(name, X, E, p=None):
    """L_f(X, E), the Fréchet derivative of f at X in the direction E."""
    what = "the Fréchet derivative of " + _SPELLING[name]
    X = _square(X, what)
    E = np.asarray(E, dtype=float)
    if E.shape != X.shape:
        raise ShapeError(f"{what}: the direction has shape {E.shape}, X has shape {X.shape}")
    if name in _PRINCIPAL:
        _check_principal(name, X, p)
    if _is_symmetric(X):
        lam, U = np.linalg.eigh((X + X.T) / 2)
        K = divided_differences(name, lam, p)
        return _finite(U @ (K * (U.T @ E @ U)) @ U.T, what)
    sl = _linalg()
    if name == "expm":
        return _finite(sl.expm_frechet(X, E, compute_expm=False), what)
    if name == "sqrtm":
        S = value("sqrtm", X)
        return _finite(sl.solve_sylvester(S, S, E), what)
    return _finite(block_frechet(lambda B: value(name, B, p), X, E), what)


def block_frechet(f, X, E):
    """L_f(X, E) as the upper right block of f([[X, E], [0, X]]), with E scaled to X's size."""
    n = X.shape[0]
    en = np.linalg.norm(E)
    if en == 0:
        return np.zeros_like(X)
    s = max(np.linalg.norm(X), 1.0) / en
    B = np.zeros((2 * n, 2 * n))
    B[:n, :n] = X
    B[n:, n:] = X
    B[:n, n:] = s * E
    return f(B)[:n, n:] / s


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
    U, s, Vt = _svd(X, "||X||_*")
    tol = 1e3 * _tol(s[0] if s.size else 0.0, max(np.shape(X)))
    if s.size == 0 or s[-1] <= tol:
        raise EvaluationError(
            "||X||_* is not differentiable here: X does not have full rank "
            f"(its smallest singular value is {s[-1] if s.size else 0.0:.3g})")
    return U @ Vt


def sign_nonzero(x):
    """sign(x) (∇‖x‖₁); EvaluationError where an entry is zero (‖x‖₁ has a kink there)."""
    x = np.asarray(x, dtype=float)
    if np.any(x == 0):
        raise EvaluationError("||x||_1 is not differentiable where an entry of x is zero")
    return np.sign(x)


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
