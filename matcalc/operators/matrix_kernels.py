"""NumPy kernels of the matrix functions (expm, logm, sqrtm, X^p), their Fréchet
derivatives and Jacobians, and the spectral functions (λ_max, λ_min, ‖X‖_*, the top
eigen- and singular vectors, the polar factor): CONTRACT §5.1.

Each is both what ``spectral_values`` computes with (``Derivative.evaluate``) and, by its
source, a helper that generated NumPy code defines (``codegen.backends``): one
implementation.  Write them with ``np`` only, as a generated module sees it; a kernel may
call another kernel of this module (the code generator inlines the ones it calls) and
reaches SciPy through ``_scipy_linalg()``, imported on first use.

They keep the type of their argument (float32 in, float32 out).  Where a function is not
defined or not differentiable at the point (an eigenvalue on the closed negative real
axis under logm, sqrtm or X^p; a repeated λ_max; a repeated or zero σ₁; a rank-deficient
X under the polar factor), a kernel raises ``_MatrixFunctionError``, a ValueError (and
NumPy's LinAlgError) whose message names the function; ``spectral_values`` and matcalc's
compiled functions turn it into an EvaluationError.
"""
import numpy as np


class _MatrixFunctionError(np.linalg.LinAlgError):
    """A matrix or spectral function at a point where it is not defined or not
    differentiable (the message names the function)."""
    matcalc_domain = True


def _scipy_linalg():
    """scipy.linalg, imported on first use."""
    try:
        import scipy.linalg
    except ImportError as err:  # pragma: no cover - scipy is a declared extra
        raise ImportError("this matrix function needs SciPy: pip install scipy") from err
    return scipy.linalg


def _mf_text(name, p=None):
    """How a matrix function is written in messages: expm(X), X^(0.5) for a power."""
    if name in ("powm", "power"):
        return "X^p" if p is None else "X^(" + repr(float(p)) + ")"
    return name + "(X)"


def _float_tol(dtype, n, scale):
    """8 n eps scale, eps that of the floating type dtype."""
    eps = np.finfo(dtype if np.issubdtype(dtype, np.floating) else float).eps
    return 8 * max(n, 1) * eps * max(scale, np.finfo(float).tiny)


def _is_symmetric(X):
    """Whether the square X is symmetric up to a few rounding errors of its entries."""
    if np.array_equal(X, X.T):
        return True
    eps = np.finfo(X.dtype if np.issubdtype(X.dtype, np.floating) else float).eps
    return bool(np.allclose(X, X.T, rtol=0, atol=8 * eps * max(1.0, float(np.abs(X).max()))))


def _square_finite(X, what):
    """X as a square floating array with finite entries (else a ValueError naming what)."""
    X = np.asarray(X)
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(float)
    if X.ndim != 2 or X.shape[0] != X.shape[1]:
        raise ValueError(f"{what} needs a square matrix, got an array of shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise _MatrixFunctionError(f"{what}: the matrix has an entry that is not finite")
    return X


def _check_principal(what, X):
    """logm, sqrtm, X^p take the principal branch: no eigenvalue of X on the closed
    negative real axis (there the function is not defined, or not differentiable)."""
    lam = np.linalg.eigvals(X)
    scale = max(1.0, float(np.abs(lam).max())) if lam.size else 1.0
    tol = _float_tol(X.dtype, X.shape[0], scale) * 1e3
    bad = lam[(np.abs(lam.imag) <= tol) & (lam.real <= tol)]
    if bad.size:
        raise _MatrixFunctionError(
            f"{what} takes the principal branch, which needs X to have no eigenvalue on the "
            f"closed negative real axis; X has the eigenvalue {bad[0].real:.6g}: there "
            f"{what} is not defined (or not differentiable)")


def _real_result(Y, what, dtype):
    """A real matrix of dtype from SciPy's result, which may be complex with zero
    imaginary parts (an error where they are not zero)."""
    Y = np.asarray(Y)
    if np.iscomplexobj(Y):
        if np.abs(Y.imag).max(initial=0.0) > 1e-8 * max(1.0, float(np.abs(Y.real).max(initial=0.0))):
            raise _MatrixFunctionError(f"{what} has no real value at this X")
        Y = Y.real
    return np.ascontiguousarray(Y, dtype=dtype)


def _finite_result(Y, what):
    if not np.isfinite(Y).all():
        raise _MatrixFunctionError(f"{what} overflows at this X: scale the inputs")
    return Y


def _eigen_f(name, lam, p=None):
    """f of the eigenvalues lam (exp, log, sqrt or the power p)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if name == "expm":
            return np.exp(lam)
        if name == "logm":
            return np.log(lam)
        if name == "sqrtm":
            return np.sqrt(lam)
        return lam ** lam.dtype.type(p)


def _divided_differences(name, lam, p=None):
    """K with K_ij = (f(λᵢ) − f(λⱼ))/(λᵢ − λⱼ), and f′(λᵢ) where λᵢ = λⱼ, accurate when the
    two are close (each f written so that no difference of nearly equal values is taken;
    naive differences give 0/0 at repeated eigenvalues).  name: expm, logm, sqrtm, or a
    power (powm) with exponent p; lam positive for all but expm."""
    lam = np.asarray(lam)
    if not np.issubdtype(lam.dtype, np.floating):
        lam = lam.astype(float)
    li, lj = lam[:, None], lam[None, :]
    d = li - lj
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if name == "expm":
            # e^max (1 − e^−|d|)/|d|: written from the larger exponent, it cannot overflow first
            m = np.maximum(li, lj)
            ad = -np.abs(d)
            ratio = np.where(ad == 0, 1.0, -np.expm1(ad) / np.where(ad == 0, 1.0, -ad))
            return (np.exp(m) * ratio).astype(lam.dtype, copy=False)
        if name == "sqrtm":
            return 1.0 / (np.sqrt(li) + np.sqrt(lj))
        # log and powers through r = λᵢ/λⱼ − 1 (both eigenvalues positive here)
        r = d / lj
        small = np.abs(r) < min(1e-8, float(np.sqrt(np.finfo(lam.dtype).eps)))
        rs = np.where(small, lam.dtype.type(1), r)
        if name == "logm":
            K = np.log1p(rs) / (lj * rs)
            return np.where(small, (1.0 - r / 2) / lj, K).astype(lam.dtype, copy=False)
        p = lam.dtype.type(p)
        K = lj ** (p - 1) * np.expm1(p * np.log1p(rs)) / rs
        return np.where(small, p * lj ** (p - 1) * (1.0 + (p - 1) * r / 2), K).astype(lam.dtype, copy=False)


def _eigh_sym(X):
    """(eigenvalues in ascending order, eigenvectors) of the symmetric part of X: the one
    decomposition that f(X), L_f(X, ·) and its Jacobian of a symmetric X share."""
    S = X + X.T
    if S.dtype.kind == "f":
        S *= 0.5
    else:
        S = S / 2
    return np.linalg.eigh(S)


def _check_positive(name, lam, p, what):
    """logm, sqrtm, X^p of a symmetric X take the principal branch: its eigenvalues lam
    must be positive."""
    # lam ascending (eigh's order): the largest |λ| is at an end
    if name != "expm" and lam.size and lam[0] <= _float_tol(
            lam.dtype, lam.size, max(abs(float(lam[0])), abs(float(lam[-1])))) * 1e3:
        raise _MatrixFunctionError(
            f"{what} takes the principal branch, which needs X to have no eigenvalue on the "
            f"closed negative real axis; X has the eigenvalue {lam[0]:.6g}: there "
            f"{what} is not defined (or not differentiable)")


def _matfunc_eig(name, lam, U, p=None):
    """f(X) for the symmetric X = U diag(lam) Uᵀ: U f(lam) Uᵀ."""
    what = _mf_text(name, p)
    _check_positive(name, lam, p, what)
    with np.errstate(over="ignore", invalid="ignore"):
        f = _eigen_f(name, lam, p)
        if np.all(f >= 0):
            # B Bᵀ with B = U √f: NumPy multiplies a matrix by its own transpose with
            # BLAS's syrk, half the work, and the result is exactly symmetric
            B = U * np.sqrt(f)
            return _finite_result(B @ B.T, what)
        F = (U * f) @ U.T
    return _finite_result((F + F.T) / 2, what)


def _trace_eig(name, lam, p=None):
    """tr f(X) for the symmetric X with eigenvalues lam: the sum of f(lam)."""
    what = _mf_text(name, p)
    _check_positive(name, lam, p, what)
    return _finite_result(np.sum(_eigen_f(name, lam, p)), what)


def _frechet_eig(name, lam, U, E, p=None):
    """L_f(X, E) for the symmetric X = U diag(lam) Uᵀ: the Daleckii–Krein product
    U (K ∘ (Uᵀ E U)) Uᵀ, K the divided differences of f."""
    what = "the Fréchet derivative of " + _mf_text(name, p)
    _check_positive(name, lam, p, what)
    K = _divided_differences(name, lam, p)
    return _finite_result(U @ (K * (U.T @ E @ U)) @ U.T, what)


def _frechet_jac_eig(name, lam, U, p=None):
    """The n²×n² J with vec L_f(X, E) = J vec(E) (vec stacks columns) for the symmetric
    X = U diag(lam) Uᵀ: (U ⊗ U) diag(vec K) (U ⊗ U)ᵀ."""
    what = "the Jacobian of " + _mf_text(name, p)
    _check_positive(name, lam, p, what)
    K = _divided_differences(name, lam, p)
    W = np.kron(U, U)
    return _finite_result((W * K.T.reshape(-1)) @ W.T, what)


def _matfunc(name, X, p=None):
    """f(X) for f = expm, logm, sqrtm or the principal power X^p (name powm): by eigh
    where X is symmetric, else SciPy's expm, logm, sqrtm, fractional_matrix_power."""
    what = _mf_text(name, p)
    X = _square_finite(X, what)
    if _is_symmetric(X):
        lam, U = _eigh_sym(X)
        return _matfunc_eig(name, lam, U, p)
    if name == "expm":
        return _finite_result(_real_result(_scipy_linalg().expm(X), what, X.dtype), what)
    _check_principal(what, X)
    return _finite_result(_real_result(_scipy_principal(name, X, p), what, X.dtype), what)


def _scipy_principal(name, X, p=None):
    """SciPy's logm, sqrtm or fractional_matrix_power of X (name powm).  SciPy warns
    where its residual (logm: ||expm(F) - X||_1 / ||X||_1; sqrtm: of F F) passes a few
    hundred rounding errors, which a 2n x 2n block of a Fréchet derivative reaches at
    ordinary matrices: the warning is dropped where the residual is below 1e-8, and
    the value refused where it is not (a message that names the function)."""
    import warnings
    sl = _scipy_linalg()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        if name == "logm":
            F = sl.logm(X)
        elif name == "sqrtm":
            F = sl.sqrtm(X)
        else:
            F = sl.fractional_matrix_power(X, float(p))
    for w in caught:          # anything else SciPy says, passed on as it said it
        if not issubclass(w.category, RuntimeWarning) or name == "powm":  # (powm: no residual)
            warnings.warn(w.message, w.category, stacklevel=2)
    if name == "powm" or not any(issubclass(w.category, RuntimeWarning) for w in caught):
        return F
    with np.errstate(all="ignore"):
        back = sl.expm(F) if name == "logm" else F @ F
        nx = np.linalg.norm(X, 1)
        r = float(np.linalg.norm(back - X, 1) / nx) if nx else float(np.linalg.norm(back, 1))
    if not r <= 1e-8:
        raise _MatrixFunctionError(
            f"{_mf_text(name)} cannot be computed accurately at this X (relative residual "
            f"{r:.1e}): X is nearly singular or badly conditioned; move it away from that")
    return F


def _block_frechet(f, X, E):
    """L_f(X, E) as the upper right block of f([[X, E], [0, X]]), with E scaled to X's
    size first (L is linear in E)."""
    n = X.shape[0]
    en = np.linalg.norm(E)
    if en == 0:
        return np.zeros_like(X)
    s = max(float(np.linalg.norm(X)), 1.0) / en
    B = np.zeros((2 * n, 2 * n), dtype=np.result_type(X, E))
    B[:n, :n] = X
    B[n:, n:] = X
    B[:n, n:] = s * E
    return f(B)[:n, n:] / s


def _frechet(name, X, E, p=None):
    """L_f(X, E), the Fréchet derivative of f = expm, logm, sqrtm or X^p (powm) at X in
    the direction E: Daleckii–Krein where X is symmetric, else SciPy's expm_frechet for
    exp, the Sylvester equation S L + L S = E (S = sqrtm(X)) for the square root, the
    block identity for the others."""
    what = "the Fréchet derivative of " + _mf_text(name, p)
    X = _square_finite(X, what)
    E = np.asarray(E, dtype=X.dtype)
    if E.shape != X.shape:
        raise ValueError(f"{what}: the direction has shape {E.shape}, X has shape {X.shape}")
    if _is_symmetric(X):
        lam, U = _eigh_sym(X)
        return _frechet_eig(name, lam, U, E, p)
    if name != "expm":
        _check_principal(what, X)
    sl = _scipy_linalg()
    if name == "expm":
        L = sl.expm_frechet(X, E, compute_expm=False)
    elif name == "sqrtm":
        S = _matfunc("sqrtm", X)
        L = sl.solve_sylvester(S, S, E)
    else:
        L = _block_frechet(lambda B: _matfunc(name, B, p), X, E)
    return _finite_result(np.asarray(L, dtype=X.dtype), what)


def _expm_and_frechet(X, E):
    """(expm(X), L_exp(X, E)) from one SciPy expm_frechet: the two share its Padé work."""
    what = "the Fréchet derivative of expm(X)"
    X = _square_finite(X, what)
    F, L = _scipy_linalg().expm_frechet(X, np.asarray(E, dtype=X.dtype))
    return (_finite_result(np.asarray(F, dtype=X.dtype), "expm(X)"),
            _finite_result(np.asarray(L, dtype=X.dtype), what))


def _complex_f(name, p=None):
    """(f, f′) on complex numbers, principal branches (NumPy's log and sqrt cut along the
    negative real axis)."""
    if name == "expm":
        return np.exp, np.exp
    if name == "logm":
        return np.log, lambda z: 1.0 / z
    if name == "sqrtm":
        return np.sqrt, lambda z: 0.5 / np.sqrt(z)
    return (lambda z: np.exp(p * np.log(z))), (lambda z: p * np.exp((p - 1) * np.log(z)))


def _frechet_jac_eigvec(name, X, p=None):
    """J for a diagonalizable X with well-conditioned eigenvectors, X = V diag(λ) V⁻¹: the
    Daleckii–Krein form in complex arithmetic, (V⁻ᵀ ⊗ V) diag(vec K) (Vᵀ ⊗ V⁻¹) — one
    eigendecomposition instead of n² Fréchet derivatives, its error about cond(V) ε;
    None where X is defective or nearly so (cond(V) > 1e4) or the result is not real."""
    lam, V = np.linalg.eig(X)
    if not np.all(np.isfinite(V)) or np.linalg.cond(V) > 1e4:
        return None
    f, fp = _complex_f(name, None if p is None else float(p))
    li, lj = lam[:, None], lam[None, :]
    d = li - lj
    close = np.abs(d) <= 1e-6 * np.maximum(1.0, np.abs(li))
    with np.errstate(all="ignore"):
        K = np.where(close, fp((li + lj) / 2), (f(li) - f(lj)) / np.where(close, 1.0, d))
    Vi = np.linalg.inv(V)
    J = np.kron(Vi.T, V) @ (K.T.reshape(-1)[:, None] * np.kron(V.T, Vi))
    scale = max(1.0, float(np.max(np.abs(J))))
    if not np.all(np.isfinite(J)) or float(np.max(np.abs(J.imag))) > 1e-8 * scale:
        return None
    return np.ascontiguousarray(J.real, dtype=X.dtype)


def _frechet_jac(name, X, p=None):
    """The n²×n² J with vec L_f(X, E) = J vec(E) (vec stacks columns): for a symmetric X
    (U ⊗ U) diag(vec K) (U ⊗ U)ᵀ; for a diagonalizable X with well-conditioned
    eigenvectors its complex form (_frechet_jac_eigvec); else column by column,
    J e_k = vec L_f(X, E_k)."""
    what = "the Jacobian of " + _mf_text(name, p)
    X = _square_finite(X, what)
    n = X.shape[0]
    if _is_symmetric(X):
        lam, U = _eigh_sym(X)
        return _frechet_jac_eig(name, lam, U, p)
    if name != "expm":
        _check_principal(what, X)
    J = _frechet_jac_eigvec(name, X, p)
    if J is not None:
        return _finite_result(J, what)
    J = np.empty((n * n, n * n), dtype=X.dtype)
    for k in range(n * n):
        E = np.zeros((n, n), dtype=X.dtype)
        E[k % n, k // n] = 1.0
        J[:, k] = _frechet(name, X, E, p).T.reshape(-1)
    return J


# ---------------------------------------------------------------------------- spectral

def _symmetric_part(S, what):
    """The symmetric part of the square S, which must be symmetric up to rounding (its
    type or form says so; a clearly asymmetric value is an error, not read silently)."""
    S = _square_finite(S, what)
    eps = np.finfo(S.dtype).eps
    if not np.allclose(S, S.T, rtol=0, atol=64 * S.shape[0] * eps * max(1.0, float(np.abs(S).max()))):
        raise ValueError(f"{what} needs a symmetric matrix; this one is not symmetric")
    return (S + S.T) / 2


def _eigenvalue(S, which):
    """λ_max (which 'max') or λ_min ('min') of the symmetric S."""
    lam = np.linalg.eigvalsh(_symmetric_part(S, "lambda_" + which))
    return lam[-1] if which == "max" else lam[0]


def _sign_fixed(v):
    """The vector v (a column) with its largest-|entry| component made positive."""
    k = int(np.argmax(np.abs(v[:, 0])))
    return -v if v[k, 0] < 0 else v


def _eigvec_eig(lam, U, which):
    """The unit eigenvector (n×1) of the largest (which 'max') or smallest ('min') of the
    eigenvalues lam of U diag(lam) Uᵀ, its largest-|entry| component positive; an error
    where that eigenvalue is repeated (λ is not differentiable there)."""
    k, other = (-1, -2) if which == "max" else (0, 1)
    if lam.size > 1 and abs(lam[k] - lam[other]) <= 1e3 * _float_tol(lam.dtype, lam.size, float(np.abs(lam).max())):
        raise _MatrixFunctionError(
            f"lambda_{which}(S) is not differentiable here: the eigenvalue {lam[k]:.6g} is repeated")
    return _sign_fixed(U[:, [k]])


def _svd_finite(X, what):
    """X as a floating matrix with finite entries (else an error naming what)."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{what} needs a matrix")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(float)
    if not np.all(np.isfinite(X)):
        raise _MatrixFunctionError(f"{what}: the matrix has an entry that is not finite")
    return X


def _nuclear(X):
    """‖X‖_*, the sum of the singular values."""
    return np.sum(np.linalg.svd(_svd_finite(X, "||X||_*"), compute_uv=False))


def _svec(X, side):
    """The top singular vector of X: side 'left' u₁ (m×1, its largest-|entry| component
    positive) or 'right' v₁ = Xᵀ u₁ / σ₁ (n×1); an error where σ₁ is zero or repeated
    (‖X‖₂ is not differentiable there)."""
    X = _svd_finite(X, "||X||_2")
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    tol = 1e3 * _float_tol(X.dtype, max(X.shape), float(s[0]) if s.size else 0.0)
    if s.size == 0 or s[0] <= tol:
        raise _MatrixFunctionError("||X||_2 is not differentiable at X = 0")
    if s.size > 1 and s[0] - s[1] <= tol:
        raise _MatrixFunctionError(
            f"||X||_2 is not differentiable here: the largest singular value {s[0]:.6g} is repeated")
    u = _sign_fixed(U[:, [0]])
    return u if side == "left" else (X.T @ u) / s[0]


def _polar(X):
    """U Vᵀ of the thin SVD X = U Σ Vᵀ (the gradient of ‖X‖_*); an error where X does not
    have full rank (the nuclear norm is not differentiable there)."""
    X = _svd_finite(X, "||X||_*")
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    tol = 1e3 * _float_tol(X.dtype, max(X.shape), float(s[0]) if s.size else 0.0)
    if s.size == 0 or s[-1] <= tol:
        raise _MatrixFunctionError(
            "||X||_* is not differentiable here: X does not have full rank "
            f"(its smallest singular value is {float(s[-1]) if s.size else 0.0:.3g})")
    return U @ Vt



def _sign_nonzero(x):
    """sign(x), the gradient of ‖x‖₁; an error where an entry of x is zero (‖x‖₁ has a
    kink there, and no derivative)."""
    if np.any(x == 0):
        raise _MatrixFunctionError("||x||_1 is not differentiable here: an entry of x is zero")
    return np.sign(x)
