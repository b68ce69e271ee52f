"""Generated code for the matrix functions and the spectral functions (CONTRACT §5.1,
issue 12 §6): MatFunc, Frechet, FrechetJac, Spectral and SpectralVec lowered to NumPy,
JAX and PyTorch.

The trees are built by hand (typed symbols, and the answer each gradient has): the
derivation of these forms is the engine's part.  Every generated derivative is compared
with finite differences of SciPy's / NumPy's own functions (Ridders' differences of
matcalc.check, in the variable's own space) and its values with
matcalc.spectral_values; the points where a function is not defined or not
differentiable raise in NumPy and PyTorch code (nan in jitted JAX code); JAX and PyTorch
refuse a non-symmetric logm, sqrtm or X^p with an UnsupportedError that says what to do.
"""
import warnings
from fractions import Fraction

import numpy as np
import pytest

sl = pytest.importorskip("scipy.linalg")

from cgtools import calls, functions  # noqa: E402
from matcalc import codegen, printing, simplify  # noqa: E402
from matcalc import expr as E  # noqa: E402
from matcalc import spectral_values as sv  # noqa: E402
from matcalc.check import directional, project_value  # noqa: E402
from matcalc.codegen.lower_matfun import symmetric_by_form  # noqa: E402
from matcalc.derivative import Derivative  # noqa: E402
from matcalc.errors import EvaluationError, UnsupportedError  # noqa: E402

TARGETS = ("numpy", "jax", "torch")
NEW_NODES = (E.MatFunc, E.Frechet, E.FrechetJac, E.Spectral, E.SpectralVec)
N = 4
RTOL = 1e-6


# ----------------------------------------------------------------------------- stand-ins


def _stand_in_text(self, e):
    """name(args[, p]): a text for a node the printer does not know yet."""
    args = ", ".join(self.p(a)[0] for a in e.args)
    p = f", {e.p}" if getattr(e, "p", None) is not None else ""
    return f"{e.name}({args}{p})", printing.ATOM


def _rebuild(e, args):
    return e if all(a is b for a, b in zip(args, e.args)) else e.rebuild(args)


@pytest.fixture(autouse=True, scope="module")
def _engine_stand_ins():
    """The generated module prints its trees in comments and simplifies f: where the
    engine of this checkout does not yet print or simplify the matrix-function nodes
    (their parse/derive/print is another branch's), a plain stand-in does, for these
    tests only.  Where the engine has them, nothing is replaced."""
    probe = E.MatFunc("expm", E.Sym("X", "matrix", 2, 2))
    mp = pytest.MonkeyPatch()
    try:
        str(probe)
    except UnsupportedError:
        for cls in NEW_NODES:
            mp.setattr(printing.Printer, "p_" + cls.__name__, _stand_in_text, raising=False)
    try:
        simplify.simplify(probe)
    except UnsupportedError:
        for cls in NEW_NODES:
            mp.setitem(simplify.BUILDERS, cls, _rebuild)
    yield
    mp.undo()


# ----------------------------------------------------------------------------- tools

X = E.Sym("X", "matrix", "n", "n")
S = E.Sym("S", "spd", "n", "n")
A = E.Sym("A", "matrix", "n", "n")
B = E.Sym("B", "symmetric", "n", "n")
Y = E.Sym("Y", "matrix", "m", "k")
t = E.Sym("t", "scalar", 1, 1)
x = E.Sym("x", "vector", "m", 1)


def T(e):
    return E.Transpose(e)


def mul(*items):
    return E.Mul(tuple(items))


def derivative(f, var, syms, answer, kind="gradient", text="f"):
    return Derivative(text, f, var, {s.name: s for s in syms}, answer, kind, "gradient")


def to_np(a):
    if hasattr(a, "detach"):
        a = a.detach().numpy()
    return np.asarray(a, dtype=float)


def run(d, target, values, dtype=None):
    """(value, derivative) of the compiled code at values, as float64 NumPy arrays."""
    fn = codegen.compile_function(d, target, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fv, D = fn(*[values[n] for n in fn.params])
    return to_np(fv), to_np(D)


def close(got, want, rtol=RTOL):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    scale = max(1.0, float(np.max(np.abs(want))))
    return got.shape == want.shape and float(np.max(np.abs(got - want))) <= rtol * scale


def fd(fun, values, name, V):
    """The derivative of fun(values) along V in values[name] (Ridders' differences)."""
    est, _ = directional(lambda v: fun(**v), values, name, V, h=1e-3)
    assert est is not None
    return est


def general(rng, n=N):
    """A non-symmetric matrix with its eigenvalues well inside the right half plane."""
    return 2.0 * np.eye(n) + 0.3 * rng.standard_normal((n, n))


def spd(rng, n=N):
    G = rng.standard_normal((n, n))
    return G @ G.T / n + 0.5 * np.eye(n)


def symmetric(rng, n=N):
    G = rng.standard_normal((n, n))
    return G + G.T


def direction(rng, kind, shape):
    return project_value(rng.standard_normal(shape), kind)


def scipy_f(name, p):
    """The function as SciPy computes it (the reference, not the kernels)."""
    if name == "expm":
        return sl.expm
    if name == "logm":
        return lambda M: np.real(sl.logm(M))
    if name == "sqrtm":
        return lambda M: np.real(sl.sqrtm(M))
    return lambda M: np.real(sl.fractional_matrix_power(M, float(p)))


FUNCTIONS = [("expm", None), ("logm", None), ("sqrtm", None), ("powm", Fraction(1, 3)),
             ("powm", Fraction(-3, 2)), ("powm", Fraction(27, 10))]
FN_IDS = [n if p is None else f"powm{p}" for n, p in FUNCTIONS]


def _sv_name(name):
    return "power" if name == "powm" else name


# ----------------------------------------------------------------------------- gradients


def _trace_case(name, p, var):
    """f = tr(Aᵀ f(V)), ∇ = L_f(Vᵀ, A) (Vᵀ = V for a symmetric V)."""
    f = E.Trace(mul(T(A), E.MatFunc(name, var, p)))
    arg = var if var.kind in E.SYMMETRIC_KINDS else T(var)
    return derivative(f, var, (A, var), E.Frechet(name, arg, A, p))


@pytest.mark.parametrize("name,p", FUNCTIONS, ids=FN_IDS)
def test_gradient_of_trace_general_numpy(name, p):
    """A general X: SciPy's algorithms (expm_frechet, the Sylvester equation, the block
    identity) in the generated NumPy code."""
    rng = np.random.default_rng(1)
    d = _trace_case(name, p, X)
    values = {"X": general(rng), "A": rng.standard_normal((N, N))}
    fv, G = run(d, "numpy", values)
    F = scipy_f(name, p)
    assert close(fv, np.trace(values["A"].T @ F(values["X"])))
    for _ in range(2):
        V = rng.standard_normal((N, N))
        want = fd(lambda X, A: np.trace(A.T @ F(X)), values, "X", V)
        assert close(np.sum(G * V), want), (name, p)
    # the whole matrix L_f(Xᵀ, A): the differences of f at Xᵀ along A
    assert close(G, fd(lambda X, A: F(X.T), values, "X", values["A"].T))
    assert close(G, sv.frechet(_sv_name(name), values["X"].T, values["A"], p), 1e-9)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name,p", FUNCTIONS, ids=FN_IDS)
def test_gradient_of_trace_spd_every_target(name, p, target):
    """An spd X: eigh and the Daleckii–Krein product in every target."""
    rng = np.random.default_rng(2)
    d = _trace_case(name, p, S)
    values = {"S": spd(rng), "A": rng.standard_normal((N, N))}
    fv, G = run(d, target, values)
    F = scipy_f(name, p)
    assert close(fv, np.trace(values["A"].T @ F(values["S"])))
    for _ in range(2):
        V = direction(rng, "symmetric", (N, N))
        want = fd(lambda S, A: np.trace(A.T @ F(S)), values, "S", V)
        assert close(np.sum(G * V), want), (name, p, target)
    # the whole matrix L_f(S, A) (symmetric directions alone cannot tell it from its
    # transpose): the differences of f at S along A, through SciPy's general algorithms
    assert close(G, fd(lambda S, A: F(S), values, "S", values["A"]))
    assert close(G, sv.frechet(_sv_name(name), values["S"], values["A"], p), 1e-9)


@pytest.mark.parametrize("target", TARGETS)
def test_gradient_of_trace_expm_general_every_target(target):
    """The exponential has a general algorithm everywhere: expm_frechet in JAX, the block
    identity with matrix_exp in PyTorch."""
    rng = np.random.default_rng(3)
    d = _trace_case("expm", None, X)
    values = {"X": rng.standard_normal((N, N)), "A": rng.standard_normal((N, N))}
    fv, G = run(d, target, values)
    assert close(fv, np.trace(values["A"].T @ sl.expm(values["X"])))
    V = rng.standard_normal((N, N))
    assert close(np.sum(G * V), fd(lambda X, A: np.trace(A.T @ sl.expm(X)), values, "X", V))


@pytest.mark.parametrize("target", TARGETS)
def test_gradient_whose_direction_is_the_exponential(target):
    """tr(expm(X)²): ∇ = 2 L_exp(Xᵀ, expm(X)ᵀ); the direction needs expm(X) first."""
    F = E.MatFunc("expm", X)
    d = derivative(E.Trace(mul(F, F)), X, (X,), E.Mul((E.Num(2), E.Frechet("expm", T(X), T(F)))))
    rng = np.random.default_rng(14)
    values = {"X": rng.standard_normal((N, N)) / 2}
    fun = lambda X: np.trace(sl.expm(X) @ sl.expm(X))  # noqa: E731
    fv, G = run(d, target, values)
    assert close(fv, fun(**values))
    V = rng.standard_normal((N, N))
    assert close(np.sum(G * V), fd(fun, values, "X", V))


@pytest.mark.parametrize("target", TARGETS)
def test_fid_term(target):
    """tr((S1^(1/2) S2 S1^(1/2))^(1/2)) in S1, with its gradient written by hand from
    the Fréchet derivatives: M = R S2 R (R = S1^(1/2)), d tr M^(1/2) = ½ tr(M^(-1/2) dM),
    dM = dR S2 R + R S2 dR, dR = L_sqrt(S1, dS1), so ∇ = L_sqrt(S1, ½ (S2 R W + W R S2))
    with W = M^(-1/2).  M is symmetric by its form: JAX and PyTorch take its eigh."""
    S1, S2 = E.Sym("S1", "spd", "n", "n"), E.Sym("S2", "spd", "n", "n")
    half = Fraction(1, 2)
    R = E.MatFunc("sqrtm", S1)
    M = mul(R, S2, R)
    f = E.Trace(E.MatFunc("sqrtm", M))
    W = E.MatFunc("powm", M, -half)
    G = E.Frechet("sqrtm", S1, E.Mul((E.Num(half), E.Add((mul(S2, R, W), mul(W, R, S2))))))
    d = derivative(f, S1, (S1, S2), G)
    assert symmetric_by_form(M) and not symmetric_by_form(mul(R, X))
    rng = np.random.default_rng(4)
    values = {"S1": spd(rng), "S2": spd(rng)}

    def fid(S1, S2):
        R = sl.sqrtm(S1).real
        return np.trace(sl.sqrtm(R @ S2 @ R).real)
    fv, D = run(d, target, values)
    assert close(fv, fid(**values))
    for _ in range(2):
        V = direction(rng, "symmetric", (N, N))
        assert close(np.sum(D * V), fd(fid, values, "S1", V))


# ----------------------------------------------------------------------------- Jacobians


def _jac_case(name, p, var):
    return derivative(E.MatFunc(name, var, p), var, (var,), E.FrechetJac(name, var, p), kind="jacobian")


def _check_jacobian(d, target, values, name, p, var_kind):
    rng = np.random.default_rng(5)
    F = scipy_f(name, p)
    var = d.wrt
    fv, J = run(d, target, values)
    assert close(fv, F(values[var]))
    assert J.shape == (N * N, N * N)
    # directions in the variable's space, and a general one (J is L_f(X, ·) on every
    # direction: for a symmetric X, directions of its own space cannot tell J from J K)
    for kind in (var_kind, "matrix"):
        V = direction(rng, kind, (N, N))
        want = fd(lambda **v: F(v[var]).T.reshape(-1), values, var, V)
        assert close(J @ V.T.reshape(-1), want)


@pytest.mark.parametrize("name,p", FUNCTIONS, ids=FN_IDS)
def test_jacobian_general_numpy(name, p):
    rng = np.random.default_rng(6)
    _check_jacobian(_jac_case(name, p, X), "numpy", {"X": general(rng)}, name, p, "matrix")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name,p", FUNCTIONS, ids=FN_IDS)
def test_jacobian_spd_every_target(name, p, target):
    """(U ⊗ U) diag(vec K) (U ⊗ U)ᵀ."""
    rng = np.random.default_rng(7)
    _check_jacobian(_jac_case(name, p, S), target, {"S": spd(rng)}, name, p, "symmetric")


@pytest.mark.parametrize("target", TARGETS)
def test_jacobian_expm_general_every_target(target):
    rng = np.random.default_rng(8)
    _check_jacobian(_jac_case("expm", None, X), target, {"X": rng.standard_normal((N, N))},
                    "expm", None, "matrix")


# ----------------------------------------------------------------------------- spectral


def _outer(v):
    return mul(v, T(v))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("which", ["max", "min"])
def test_lambda_gradient(which, target):
    """∇ λ(B) = v vᵀ, B symmetric (directions symmetric)."""
    v = E.SpectralVec("eigvec_" + which, B)
    d = derivative(E.Spectral("lambda_" + which, B), B, (B,), _outer(v))
    rng = np.random.default_rng(9)
    values = {"B": symmetric(rng)}

    def lam(B):
        w = np.linalg.eigvalsh(B)
        return w[-1] if which == "max" else w[0]
    fv, G = run(d, target, values)
    assert close(fv, lam(**values))
    for _ in range(2):
        V = direction(rng, "symmetric", (N, N))
        assert close(np.sum(G * V), fd(lam, values, "B", V))


@pytest.mark.parametrize("target", TARGETS)
def test_nuclear_and_spectral_norm_gradients(target):
    """∇ ‖Y‖_* = U Vᵀ (polar), ∇ ‖Y‖₂ = u₁ v₁ᵀ, Y 5×3."""
    rng = np.random.default_rng(10)
    values = {"Y": rng.standard_normal((5, 3))}
    nuc = derivative(E.Spectral("nuclear", Y), Y, (Y,), E.SpectralVec("polar", Y))
    two = derivative(E.SpecNorm(Y), Y, (Y,), mul(E.SpectralVec("svec_left", Y), T(E.SpectralVec("svec_right", Y))))
    for d, fun in [(nuc, lambda Y: np.linalg.norm(Y, "nuc")), (two, lambda Y: np.linalg.norm(Y, 2))]:
        fv, G = run(d, target, values)
        assert close(fv, fun(**values))
        V = rng.standard_normal((5, 3))
        assert close(np.sum(G * V), fd(fun, values, "Y", V))
    _, G = run(nuc, target, values)
    assert close(G, sv.polar_factor(values["Y"]), 1e-9)


@pytest.mark.parametrize("target", TARGETS)
def test_norm1_value_and_its_derivative_in_a_scale(target):
    """‖x‖₁ of a vector and of a matrix: d/dt (t ‖x‖₁ + ‖Y‖₁) = ‖x‖₁."""
    f = E.Add((E.Mul((t, E.Spectral("norm1", x))), E.Spectral("norm1", Y)))
    d = derivative(f, t, (t, x, Y), E.Spectral("norm1", x))
    rng = np.random.default_rng(11)
    values = {"t": 0.7, "x": rng.standard_normal(5), "Y": rng.standard_normal((5, 3))}

    def fun(t, x, Y):
        return t * np.sum(np.abs(x)) + np.sum(np.abs(Y))
    fv, D = run(d, target, values)
    assert close(fv, fun(**values))
    assert close(D, fd(fun, values, "t", 1.0))


@pytest.mark.parametrize("target", TARGETS)
def test_vector_conventions(target):
    """The eigenvector's and the left singular vector's largest-|entry| component is
    positive; svec_right = Yᵀ u / σ₁; a column's singular vectors are x/‖x‖ and 1."""
    rng = np.random.default_rng(12)
    Bv, Yv, xv = symmetric(rng), rng.standard_normal((5, 3)), rng.standard_normal(5)
    xv[np.argmax(np.abs(xv))] *= -1 if xv[np.argmax(np.abs(xv))] > 0 else 1    # its largest entry negative
    nodes = [E.SpectralVec("eigvec_max", B), E.SpectralVec("svec_left", Y), E.SpectralVec("svec_right", Y),
             E.SpectralVec("svec_left", x), E.SpectralVec("svec_right", x), E.SpectralVec("polar", x)]
    values = {"B": Bv, "Y": Yv, "x": xv}
    got = []
    for node in nodes:
        d = derivative(E.Spectral("lambda_max", B), B, (B, Y, x), node, kind="jacobian")
        got.append(run(d, target, values)[1])
    v, u, w, ux, wx, px = got
    assert close(Bv @ v, np.linalg.eigvalsh(Bv)[-1] * v) and v[np.argmax(np.abs(v))] > 0
    s1 = np.linalg.norm(Yv, 2)
    assert u[np.argmax(np.abs(u))] > 0 and close(w, Yv.T @ u / s1) and close(Yv @ w, s1 * u)
    assert close(ux, -xv / np.linalg.norm(xv)) and close(wx, -1.0) and close(px, xv / np.linalg.norm(xv))


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("target", ["jax", "torch"])
@pytest.mark.parametrize("name,p", [("logm", None), ("sqrtm", None), ("powm", Fraction(1, 3))])
def test_non_symmetric_is_refused_by_jax_and_torch(name, p, target):
    d = _trace_case(name, p, X)
    with pytest.raises(UnsupportedError, match=f"(?s){name}.*{target}.*numpy"):
        codegen.generate(d, target)
    with pytest.raises(UnsupportedError, match=f"(?s)Jacobian of .*j{name}.*numpy"):
        codegen.generate(derivative(E.Trace(X), X, (X,), E.FrechetJac(name, X, p), kind="jacobian"), target)


def _raw(d, target="numpy"):
    return codegen.load(codegen.generate(d, target))["f_and_grad"]


@pytest.mark.parametrize("target", ["numpy", "torch"])
@pytest.mark.parametrize("name,p", [("logm", None), ("sqrtm", None), ("powm", Fraction(1, 3))])
def test_negative_eigenvalue_raises(name, p, target):
    """logm, sqrtm, X^p at an eigenvalue on the closed negative real axis: an error naming
    the function (a ValueError from the module itself, EvaluationError through compile)."""
    Bneg = np.diag([1.0, -2.0, 3.0, 0.5])
    d = _trace_case(name, p, E.Sym("B", "symmetric", "n", "n"))
    values = {"A": np.eye(N), "B": Bneg}
    with pytest.raises(EvaluationError, match="negative real axis"):
        run(d, target, values)
    with pytest.raises(ValueError, match="negative real axis"):
        _raw(d, target)(Bneg, np.eye(N))
    if target == "numpy":        # a general X too (SciPy's path)
        G = general(np.random.default_rng(0))
        G[0, :] = 0.0
        G[0, 0] = -1.0
        with pytest.raises(EvaluationError, match="negative real axis"):
            run(_trace_case(name, p, X), target, {"X": G, "A": np.eye(N)})


def test_negative_eigenvalue_is_nan_in_jax():
    """Jitted JAX code cannot raise on a value: nan, never a number."""
    d = _trace_case("logm", None, E.Sym("B", "symmetric", "n", "n"))
    fv, G = run(d, "jax", {"A": np.eye(N), "B": np.diag([1.0, -2.0, 3.0, 0.5])})
    assert np.isnan(fv) and np.all(np.isnan(G))


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_spectral_kinks_raise(target):
    v = E.SpectralVec("eigvec_max", B)
    lam = derivative(E.Spectral("lambda_max", B), B, (B,), _outer(v))
    with pytest.raises(EvaluationError, match="repeated"):
        run(lam, target, {"B": np.diag([3.0, 3.0, 1.0, 0.0])})
    nuc = derivative(E.Spectral("nuclear", Y), Y, (Y,), E.SpectralVec("polar", Y))
    with pytest.raises(EvaluationError, match="full rank"):
        run(nuc, target, {"Y": np.outer(np.arange(1.0, 6.0), [1.0, 2.0, 3.0])})
    two = derivative(E.SpecNorm(Y), Y, (Y,), mul(E.SpectralVec("svec_left", Y), T(E.SpectralVec("svec_right", Y))))
    with pytest.raises(EvaluationError, match="repeated"):
        run(two, target, {"Y": np.eye(5, 3)})
    with pytest.raises(EvaluationError, match="X = 0"):
        run(two, target, {"Y": np.zeros((5, 3))})


def test_spectral_kinks_are_nan_in_jax():
    v = E.SpectralVec("eigvec_max", B)
    lam = derivative(E.Spectral("lambda_max", B), B, (B,), _outer(v))
    _, G = run(lam, "jax", {"B": np.diag([3.0, 3.0, 1.0, 0.0])})
    assert np.all(np.isnan(G))
    nuc = derivative(E.Spectral("nuclear", Y), Y, (Y,), E.SpectralVec("polar", Y))
    _, G = run(nuc, "jax", {"Y": np.outer(np.arange(1.0, 6.0), [1.0, 2.0, 3.0])})
    assert np.all(np.isnan(G))


# ----------------------------------------------------------------------------- dtype


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", ["logm-spd", "expm-general", "lambda_max"])
def test_float32(case, target):
    """float32 code computes in float32 (its results are float32) and agrees with the
    float64 reference to float32's precision."""
    rng = np.random.default_rng(13)
    if case == "logm-spd":
        d, values = _trace_case("logm", None, S), {"S": spd(rng), "A": rng.standard_normal((N, N))}
    elif case == "expm-general":
        d, values = _trace_case("expm", None, X), {"X": rng.standard_normal((N, N)), "A": rng.standard_normal((N, N))}
    else:
        v = E.SpectralVec("eigvec_max", B)
        d, values = derivative(E.Spectral("lambda_max", B), B, (B,), _outer(v)), {"B": symmetric(rng)}
    fn = codegen.compile_function(d, target, dtype="float32")
    out = fn(*[np.asarray(values[n], dtype=np.float32) for n in fn.params])
    for a in out:
        assert str(getattr(a, "dtype", "float32")).endswith("float32"), (case, target, a)
    want = run(d, "numpy", values)
    for got, ref in zip(out, want):
        assert close(to_np(got), ref, 2e-3), (case, target)


# ----------------------------------------------------------------------------- the code


def test_every_new_node_has_a_lowering():
    """The matrix- and spectral-function nodes are not in expr.NODE_TYPES on this branch
    (they join it with their records, with the engine's parse/derive); the lowering
    table has them already."""
    from matcalc.codegen.lowering import LOWERINGS
    assert all(cls in LOWERINGS for cls in NEW_NODES)


def test_generated_code_calls():
    """NumPy: the inlined kernels and the ones they call (no matcalc import; SciPy imported
    when called); JAX: expm_frechet; PyTorch: matrix_exp in the block identity; a
    symmetric argument: one eigh."""
    d = _trace_case("expm", None, X)
    src = codegen.generate(d, "numpy")
    assert "import matcalc" not in src and "from matcalc" not in src
    assert "def _expm_and_frechet(" in src and "def _square_finite(" in src and "class _MatrixFunctionError(" in src
    assert "import scipy" not in src.split("def ")[0]
    # expm(X) (the value) and L_exp(Xᵀ, Aᵀ) (the gradient) from one expm_frechet
    for target, fn in [("numpy", "_expm_and_frechet"), ("jax", "jax.scipy.linalg.expm_frechet"),
                       ("torch", "_expm_and_frechet")]:
        fns, _ = functions(d, target)
        assert calls(fns["f_and_grad"], fn) == 1, target
        assert calls(fns["f_and_grad"], "_matfunc") == 0 and calls(fns["f_and_grad"], "_frechet") == 0
    assert "jax.scipy.linalg.expm_frechet" in codegen.generate(d, "jax")
    assert "torch.linalg.matrix_exp" in codegen.generate(d, "torch")
    # one eigh of S serves logm(S) and the Daleckii–Krein product L_log(S, A)
    for target in TARGETS:
        fns, _ = functions(_trace_case("logm", None, S), target)
        assert calls(fns["f_and_grad"], "_eigh_sym") == 1, target
        assert calls(fns["f_and_grad"], "_matfunc_eig") == 1 and calls(fns["f_and_grad"], "_frechet_eig") == 1


def test_shared_eigh_and_traces_of_eigenvalues():
    """The FID term: one eigh of S1 and one of M = R S2 R; tr M^(1/2) is the sum of the
    square roots of M's eigenvalues; λ_max and its eigenvector share one eigh."""
    S1, S2 = E.Sym("S1", "spd", "n", "n"), E.Sym("S2", "spd", "n", "n")
    R = E.MatFunc("sqrtm", S1)
    M = mul(R, S2, R)
    W = E.MatFunc("powm", M, Fraction(-1, 2))
    d = derivative(E.Trace(E.MatFunc("sqrtm", M)), S1, (S1, S2),
                   E.Frechet("sqrtm", S1, E.Add((mul(S2, R, W), mul(W, R, S2)))))
    for target in TARGETS:
        fns, _ = functions(d, target)
        fn = fns["f_and_grad"]
        assert calls(fn, "_eigh_sym") == 2 and calls(fn, "_trace_eig") == 1, target
    v = E.SpectralVec("eigvec_max", B)
    fns, _ = functions(derivative(E.Spectral("lambda_max", B), B, (B,), _outer(v)), "numpy")
    assert calls(fns["f_and_grad"], "_eigh_sym") == 1 and calls(fns["f_and_grad"], "_eigenvalue") == 0


def test_one_by_one_arguments():
    """A 1×1 matrix function is the scalar one, and its domain errors are the matrix ones."""
    f = E.MatFunc("logm", t)
    d = derivative(E.Mul((E.Num(2), f)), t, (t,), E.Frechet("logm", t, E.Num(2)), kind="derivative")
    fv, D = run(d, "numpy", {"t": 1.7})
    assert close(fv, 2 * np.log(1.7)) and close(D, fd(lambda t: 2 * np.log(t), {"t": 1.7}, "t", 1.0))
    with pytest.raises(EvaluationError, match="negative real axis"):
        run(d, "numpy", {"t": -1.0})
