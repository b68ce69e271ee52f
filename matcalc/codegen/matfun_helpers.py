"""The helpers that generated JAX and PyTorch code defines for the matrix and spectral
functions (CONTRACT §5.1), as source text (the NumPy ones are the kernels of
``operators/matrix_kernels.py``, with the same names and arguments).

Neither library has a general logm, sqrtm or fractional power: these helpers compute
them, their Fréchet derivatives and Jacobians for a symmetric argument from its ``eigh``
(``_eigh_sym``, one per argument, shared): f of the eigenvalues, and the Daleckii–Krein
product U (K ∘ (Uᵀ E U)) Uᵀ with stable divided differences (the NumPy kernel's
formulas); the lowering refuses a non-symmetric argument.  The exponential has a general
algorithm in both (expm, expm_frechet; matrix_exp and the block identity).

Where a function is not defined or not differentiable at the point, the JAX helpers
(jit-friendly: no Python branch on values) give nan; the PyTorch ones raise
``_MatrixFunctionError``, a ValueError whose message names the function.
"""

_JAX = {
    "_eigen_f": '''def _eigen_f(name, lam, p=None):
    """f of the eigenvalues lam (exp, log, sqrt or the power p); nan where logm, sqrtm or
    X^p meets an eigenvalue that is not positive (the principal branch)."""
    if name == "expm":
        return jnp.exp(lam)
    ok = lam > 0
    safe = jnp.where(ok, lam, 1.0)
    out = jnp.log(safe) if name == "logm" else jnp.sqrt(safe) if name == "sqrtm" else safe ** p
    return jnp.where(ok, out, jnp.nan)
''',
    "_divided_differences": '''def _divided_differences(name, lam, p=None):
    """K_ij = (f(λᵢ) − f(λⱼ))/(λᵢ − λⱼ), and f′(λᵢ) where λᵢ = λⱼ, accurate when the two are
    close (no difference of nearly equal values is taken); nan where logm, sqrtm or X^p
    meets an eigenvalue that is not positive."""
    li, lj = lam[:, None], lam[None, :]
    d = li - lj
    if name == "expm":
        ad = -jnp.abs(d)
        z = ad == 0
        return jnp.exp(jnp.maximum(li, lj)) * jnp.where(z, 1.0, -jnp.expm1(ad) / jnp.where(z, 1.0, -ad))
    ok = (li > 0) & (lj > 0)
    li, lj = jnp.where(ok, li, 1.0), jnp.where(ok, lj, 1.0)
    if name == "sqrtm":
        return jnp.where(ok, 1.0 / (jnp.sqrt(li) + jnp.sqrt(lj)), jnp.nan)
    r = (li - lj) / lj
    small = jnp.abs(r) < min(1e-8, float(jnp.finfo(lam.dtype).eps) ** 0.5)
    rs = jnp.where(small, 1.0, r)
    if name == "logm":
        K = jnp.where(small, (1.0 - r / 2) / lj, jnp.log1p(rs) / (lj * rs))
    else:
        K = jnp.where(small, p * lj ** (p - 1) * (1.0 + (p - 1) * r / 2),
                      lj ** (p - 1) * jnp.expm1(p * jnp.log1p(rs)) / rs)
    return jnp.where(ok, K, jnp.nan)
''',
    "_eigh_sym": '''def _eigh_sym(X):
    """(eigenvalues in ascending order, eigenvectors) of the symmetric part of X."""
    return jnp.linalg.eigh((X + X.T) / 2)
''',
    "_matfunc_eig": '''def _matfunc_eig(name, lam, U, p=None):
    """f(X) for the symmetric X = U diag(lam) Uᵀ: U f(lam) Uᵀ."""
    F = (U * _eigen_f(name, lam, p)) @ U.T
    return (F + F.T) / 2
''',
    "_trace_eig": '''def _trace_eig(name, lam, p=None):
    """tr f(X) for the symmetric X with eigenvalues lam: the sum of f(lam)."""
    return jnp.sum(_eigen_f(name, lam, p))
''',
    "_frechet_eig": '''def _frechet_eig(name, lam, U, E, p=None):
    """L_f(X, E) for the symmetric X = U diag(lam) Uᵀ: U (K ∘ (Uᵀ E U)) Uᵀ."""
    return U @ (_divided_differences(name, lam, p) * (U.T @ E @ U)) @ U.T
''',
    "_frechet_jac_eig": '''def _frechet_jac_eig(name, lam, U, p=None):
    """The n²×n² J with vec L_f(X, E) = J vec(E) for the symmetric X = U diag(lam) Uᵀ:
    (U ⊗ U) diag(vec K) (U ⊗ U)ᵀ."""
    W = jnp.kron(U, U)
    return (W * _divided_differences(name, lam, p).T.reshape(-1)) @ W.T
''',
    "_expm_frechet": '''def _expm_frechet(X, E):
    """L_exp(X, E) for any square X (jax.scipy.linalg.expm_frechet)."""
    return jax.scipy.linalg.expm_frechet(X, E, compute_expm=False)
''',
    "_expm_frechet_jac": '''def _expm_frechet_jac(X):
    """The n²×n² J with vec L_exp(X, E) = J vec(E) (vec stacks columns), column by column."""
    n = X.shape[0]
    basis = jnp.eye(n * n, dtype=X.dtype).reshape(n * n, n, n).transpose(0, 2, 1)
    cols = jax.vmap(lambda E: _expm_frechet(X, E).T.reshape(-1))(basis)
    return cols.T
''',
    "_gap_ok": '''def _gap_ok(a, b, scale, n, dtype):
    """Whether a and b are apart by more than rounding (else the function is not
    differentiable there)."""
    return jnp.abs(a - b) > 8e3 * n * jnp.finfo(dtype).eps * jnp.maximum(scale, jnp.finfo(dtype).tiny)
''',
    "_sign_fixed": '''def _sign_fixed(v):
    """The column v with its largest-|entry| component made positive."""
    k = jnp.argmax(jnp.abs(v[:, 0]))
    return jnp.where(v[k, 0] < 0, -v, v)
''',
    "_eigenvalue": '''def _eigenvalue(S, which):
    """λ_max (which 'max') or λ_min ('min') of the symmetric S."""
    lam = jnp.linalg.eigvalsh((S + S.T) / 2)
    return lam[-1] if which == "max" else lam[0]
''',
    "_eigvec_eig": '''def _eigvec_eig(lam, U, which):
    """The unit eigenvector (n×1) of the largest (which 'max') or smallest ('min') of the
    eigenvalues lam of U diag(lam) Uᵀ, its largest-|entry| component positive; nan where
    that eigenvalue is repeated (not differentiable)."""
    k, other = (-1, -2) if which == "max" else (0, 1)
    v = _sign_fixed(U[:, k][:, None])
    if lam.shape[0] == 1:
        return v
    ok = _gap_ok(lam[k], lam[other], jnp.max(jnp.abs(lam)), lam.shape[0], lam.dtype)
    return jnp.where(ok, v, jnp.nan)
''',
    "_nuclear": '''def _nuclear(X):
    """‖X‖_*, the sum of the singular values."""
    return jnp.sum(jnp.linalg.svd(X, compute_uv=False))
''',
    "_svec": '''def _svec(X, side):
    """The top singular vector: 'left' u₁ (m×1, largest-|entry| component positive) or
    'right' v₁ = Xᵀ u₁ / σ₁ (n×1); nan where σ₁ is zero or repeated."""
    U, s, Vt = jnp.linalg.svd(X, full_matrices=False)
    u = _sign_fixed(U[:, :1])
    n = max(X.shape)
    ok = _gap_ok(s[0], 0.0, s[0], n, X.dtype)
    if s.shape[0] > 1:
        ok = ok & _gap_ok(s[0], s[1], s[0], n, X.dtype)
    out = u if side == "left" else (X.T @ u) / s[0]
    return jnp.where(ok, out, jnp.nan)
''',
    "_polar": '''def _polar(X):
    """U Vᵀ of the thin SVD X = U Σ Vᵀ; nan where X does not have full rank."""
    U, s, Vt = jnp.linalg.svd(X, full_matrices=False)
    ok = _gap_ok(s[-1], 0.0, s[0], max(X.shape), X.dtype)
    return jnp.where(ok, U @ Vt, jnp.nan)
''',
}

_TORCH = {
    "_MatrixFunctionError": '''class _MatrixFunctionError(ValueError):
    """A matrix or spectral function at a point where it is not defined or not
    differentiable (the message names the function)."""
    matcalc_domain = True
''',
    "_mf_text": '''def _mf_text(name, p=None):
    """How a matrix function is written in messages: expm(X), X^(0.5) for a power."""
    if name in ("powm", "power"):
        return "X^p" if p is None else "X^(" + repr(float(p)) + ")"
    return name + "(X)"
''',
    "_tol": '''def _tol(dtype, n, scale):
    """8e3 n eps scale, eps that of dtype."""
    return 8e3 * max(n, 1) * torch.finfo(dtype).eps * max(float(scale), torch.finfo(dtype).tiny)
''',
    "_eigh_sym": '''def _eigh_sym(X):
    """(eigenvalues in ascending order, eigenvectors) of the symmetric part of X."""
    return torch.linalg.eigh((X + X.mT) / 2)
''',
    "_check_positive": '''def _check_positive(name, lam, p, what):
    """logm, sqrtm, X^p of a symmetric X take the principal branch: its eigenvalues lam
    must be positive, else _MatrixFunctionError."""
    if name != "expm" and lam.shape[0] and float(lam[0]) <= _tol(lam.dtype, lam.shape[0], float(lam.abs().max())):
        raise _MatrixFunctionError(
            f"{what} takes the principal branch, which needs X to have no eigenvalue on the "
            f"closed negative real axis; X has the eigenvalue {float(lam[0]):.6g}: there "
            f"{what} is not defined (or not differentiable)")
''',
    "_eigen_f": '''def _eigen_f(name, lam, p=None):
    """f of the eigenvalues lam (exp, log, sqrt or the power p)."""
    if name == "expm":
        return torch.exp(lam)
    if name == "logm":
        return torch.log(lam)
    if name == "sqrtm":
        return torch.sqrt(lam)
    return lam ** p
''',
    "_divided_differences": '''def _divided_differences(name, lam, p=None):
    """K_ij = (f(λᵢ) − f(λⱼ))/(λᵢ − λⱼ), and f′(λᵢ) where λᵢ = λⱼ, accurate when the two are
    close (no difference of nearly equal values is taken)."""
    li, lj = lam[:, None], lam[None, :]
    d = li - lj
    one = torch.ones((), dtype=lam.dtype)
    if name == "expm":
        ad = -torch.abs(d)
        z = ad == 0
        return torch.exp(torch.maximum(li, lj)) * torch.where(z, one, -torch.expm1(ad) / torch.where(z, one, -ad))
    if name == "sqrtm":
        return 1.0 / (torch.sqrt(li) + torch.sqrt(lj))
    r = d / lj
    small = torch.abs(r) < min(1e-8, torch.finfo(lam.dtype).eps ** 0.5)
    rs = torch.where(small, one, r)
    if name == "logm":
        return torch.where(small, (1.0 - r / 2) / lj, torch.log1p(rs) / (lj * rs))
    return torch.where(small, p * lj ** (p - 1) * (1.0 + (p - 1) * r / 2),
                       lj ** (p - 1) * torch.expm1(p * torch.log1p(rs)) / rs)
''',
    "_matfunc_eig": '''def _matfunc_eig(name, lam, U, p=None):
    """f(X) for the symmetric X = U diag(lam) Uᵀ: U f(lam) Uᵀ."""
    _check_positive(name, lam, p, _mf_text(name, p))
    F = (U * _eigen_f(name, lam, p)) @ U.mT
    return (F + F.mT) / 2
''',
    "_trace_eig": '''def _trace_eig(name, lam, p=None):
    """tr f(X) for the symmetric X with eigenvalues lam: the sum of f(lam)."""
    _check_positive(name, lam, p, _mf_text(name, p))
    return torch.sum(_eigen_f(name, lam, p))
''',
    "_frechet_eig": '''def _frechet_eig(name, lam, U, E, p=None):
    """L_f(X, E) for the symmetric X = U diag(lam) Uᵀ: U (K ∘ (Uᵀ E U)) Uᵀ."""
    _check_positive(name, lam, p, "the Fréchet derivative of " + _mf_text(name, p))
    return U @ (_divided_differences(name, lam, p) * (U.mT @ E @ U)) @ U.mT
''',
    "_frechet_jac_eig": '''def _frechet_jac_eig(name, lam, U, p=None):
    """The n²×n² J with vec L_f(X, E) = J vec(E) for the symmetric X = U diag(lam) Uᵀ:
    (U ⊗ U) diag(vec K) (U ⊗ U)ᵀ."""
    _check_positive(name, lam, p, "the Jacobian of " + _mf_text(name, p))
    W = torch.kron(U, U)
    return (W * _divided_differences(name, lam, p).mT.reshape(-1)) @ W.mT
''',
    "_expm_frechet": '''def _expm_frechet(X, E):
    """L_exp(X, E) for any square X (the block identity of _expm_and_frechet)."""
    return _expm_and_frechet(X, E)[1]
''',
    "_expm_and_frechet": '''def _expm_and_frechet(X, E):
    """(expm(X), L_exp(X, E)): the blocks of one exp([[X, E], [0, X]]), E scaled to X's size."""
    n = X.shape[0]
    s = max(float(torch.linalg.norm(X)), 1.0) / max(float(torch.linalg.norm(E)), torch.finfo(X.dtype).tiny)
    B = torch.zeros((2 * n, 2 * n), dtype=X.dtype)
    B[:n, :n] = X
    B[n:, n:] = X
    B[:n, n:] = s * E
    F = torch.linalg.matrix_exp(B)
    return F[:n, :n], F[:n, n:] / s
''',
    "_expm_frechet_jac": '''def _expm_frechet_jac(X):
    """The n²×n² J with vec L_exp(X, E) = J vec(E) (vec stacks columns): the block identity
    for every unit direction at once (a batch of matrix exponentials)."""
    n = X.shape[0]
    s = max(float(torch.linalg.norm(X)), 1.0)
    B = torch.zeros((n * n, 2 * n, 2 * n), dtype=X.dtype)
    B[:, :n, :n] = X
    B[:, n:, n:] = X
    B[:, :n, n:] = s * torch.eye(n * n, dtype=X.dtype).reshape(n * n, n, n).mT
    L = torch.linalg.matrix_exp(B)[:, :n, n:] / s
    return L.mT.reshape(n * n, n * n).mT
''',
    "_symmetric_part": '''def _symmetric_part(S, what):
    """The symmetric part of S, which must be symmetric up to rounding."""
    tol = 64 * S.shape[0] * torch.finfo(S.dtype).eps * max(1.0, float(S.abs().max()))
    if float((S - S.mT).abs().max()) > tol:
        raise ValueError(f"{what} needs a symmetric matrix; this one is not symmetric")
    return (S + S.mT) / 2
''',
    "_sign_fixed": '''def _sign_fixed(v):
    """The column v with its largest-|entry| component made positive."""
    k = int(torch.argmax(torch.abs(v[:, 0])))
    return -v if float(v[k, 0]) < 0 else v
''',
    "_eigenvalue": '''def _eigenvalue(S, which):
    """λ_max (which 'max') or λ_min ('min') of the symmetric S."""
    lam = torch.linalg.eigvalsh(_symmetric_part(S, "lambda_" + which))
    return lam[-1] if which == "max" else lam[0]
''',
    "_eigvec_eig": '''def _eigvec_eig(lam, U, which):
    """The unit eigenvector (n×1) of the largest (which 'max') or smallest ('min') of the
    eigenvalues lam of U diag(lam) Uᵀ, its largest-|entry| component positive;
    _MatrixFunctionError where that eigenvalue is repeated."""
    n = lam.shape[0]
    k, other = (n - 1, n - 2) if which == "max" else (0, 1)
    if n > 1 and abs(float(lam[k] - lam[other])) <= _tol(lam.dtype, n, lam.abs().max()):
        raise _MatrixFunctionError(
            f"lambda_{which}(S) is not differentiable here: the eigenvalue {float(lam[k]):.6g} is repeated")
    return _sign_fixed(U[:, k:k + 1])
''',
    "_nuclear": '''def _nuclear(X):
    """‖X‖_*, the sum of the singular values."""
    return torch.sum(torch.linalg.svdvals(X))
''',
    "_svec": '''def _svec(X, side):
    """The top singular vector: 'left' u₁ (m×1, largest-|entry| component positive) or
    'right' v₁ = Xᵀ u₁ / σ₁ (n×1); _MatrixFunctionError where σ₁ is zero or repeated."""
    U, s, Vt = torch.linalg.svd(X, full_matrices=False)
    tol = _tol(X.dtype, max(X.shape), s[0])
    if float(s[0]) <= tol:
        raise _MatrixFunctionError("||X||_2 is not differentiable at X = 0")
    if s.shape[0] > 1 and float(s[0] - s[1]) <= tol:
        raise _MatrixFunctionError(
            f"||X||_2 is not differentiable here: the largest singular value {float(s[0]):.6g} is repeated")
    u = _sign_fixed(U[:, :1])
    return u if side == "left" else (X.mT @ u) / s[0]
''',
    "_polar": '''def _polar(X):
    """U Vᵀ of the thin SVD X = U Σ Vᵀ; _MatrixFunctionError where X does not have full rank."""
    U, s, Vt = torch.linalg.svd(X, full_matrices=False)
    if float(s[-1]) <= _tol(X.dtype, max(X.shape), s[0]):
        raise _MatrixFunctionError(
            "||X||_* is not differentiable here: X does not have full rank "
            f"(its smallest singular value is {float(s[-1]):.3g})")
    return U @ Vt
''',
    "_sign_nonzero": '''def _sign_nonzero(x):
    """sign(x), the gradient of ‖x‖₁; _MatrixFunctionError where an entry of x is zero."""
    if bool((x == 0).any()):
        raise _MatrixFunctionError("||x||_1 is not differentiable here: an entry of x is zero")
    return torch.sign(x)
''',
}

HELPERS = {"jax": _JAX, "torch": _TORCH}
