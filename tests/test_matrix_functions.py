"""Functions of a square matrix (CONTRACT §5.1): expm, logm, sqrtm, X^p, their Fréchet
derivatives dexpm(X, E) … and Jacobians jexpm(X) …, by family.  Every derivative is
checked against finite differences of the function (tests/helpers.py), every answer
re-parses and evaluates to d.evaluate's value, and the Fréchet values against an
independent finite difference of SciPy's expm / logm / sqrtm / fractional_matrix_power."""
import subprocess
import sys

import numpy as np
import pytest

import matcalc
from matcalc import expr as E
from matcalc.simplify import simplify
from helpers import check_derivative, check_hessian, katex_or_skip, rel_err

scipy_linalg = pytest.importorskip("scipy.linalg")


# ---------------------------------------------------------------------------- well-conditioned points
# expm of a small-norm matrix; logm, sqrtm and X^p of a matrix near I (its eigenvalues
# near 1, far from the closed negative real axis); spd variables are the sampler's.

def small(*names, scale=0.6):
    def override(vals, rng):
        out = {}
        for name in names:
            n = np.shape(vals[name])[0]
            out[name] = scale * rng.standard_normal((n, n)) / np.sqrt(n)
        return out
    return override


def near_identity(*names, scale=0.35):
    def override(vals, rng):
        out = {}
        for name in names:
            n = np.shape(vals[name])[0]
            out[name] = np.eye(n) + scale * rng.standard_normal((n, n)) / np.sqrt(n)
        return out
    return override


# ---------------------------------------------------------------------------- gradients

# (expression, variable, declarations, override of the drawn values, the answer's text)
GRADIENTS = [
    # the trace of each function: f′(X)ᵀ in closed form
    ("tr(expm(X))", "X", None, small("X"), "expm(X)^T"),
    ("tr(logm(X))", "X", None, near_identity("X"), "X^-T"),
    ("tr(sqrtm(X))", "X", None, near_identity("X"), "0.5 sqrtm(X)^-T"),
    ("tr(X^(1/2))", "X", None, near_identity("X"), "0.5 sqrtm(X)^-T"),
    ("tr(X^0.5)", "X", None, near_identity("X"), "0.5 sqrtm(X)^-T"),
    ("tr(X^(1/3))", "X", None, near_identity("X"), None),
    ("tr(X^(3/2))", "X", None, near_identity("X"), "1.5 sqrtm(X)^T"),
    ("tr(X^(-1/2))", "X", None, near_identity("X"), None),
    ("tr(X^0.3)", "X", None, near_identity("X"), None),
    # tr(A f(X)): the adjoint of the Fréchet derivative, L_f(Xᵀ, Aᵀ)
    ("tr(A expm(X))", "X", None, small("X"), "dexpm(X^T, A^T)"),
    ("tr(A logm(X))", "X", None, near_identity("X"), "dlogm(X^T, A^T)"),
    ("tr(A sqrtm(X))", "X", None, near_identity("X"), "dsqrtm(X^T, A^T)"),
    ("tr(A X^(1/3))", "X", None, near_identity("X"), "dpowm(X^T, A^T, 1/3)"),
    ("tr(A X^(-1/2))", "X", None, near_identity("X"), "dpowm(X^T, A^T, -0.5)"),
    ("a^T expm(X) b", "X", None, small("X"), "dexpm(X^T, a b^T)"),
    ("sum(expm(X))", "X", None, small("X"), None),
    ("norm(expm(X) - B)^2", "X", None, small("X"), None),
    ("tr(expm(X) A expm(X))", "X", None, small("X"), None),
    ("tr(A expm(B X C))", "X", {"X": "matrix(n,n)", "B": "matrix(n,n)", "C": "matrix(n,n)"},
     small("X", "B", "C", scale=0.4), None),
    # nested uses
    ("logdet(expm(X))", "X", None, small("X"), "I(n)"),
    ("logdet(I + expm(S))", "S", {"S": "symmetric"}, None, "expm(S) (I(n) + expm(S))^-1"),
    ("tr(expm(X^T X))", "X", {"X": "matrix(m,n)"}, small("X", scale=0.3), "2 X expm(X^T X)"),
    ("tr(sqrtm(X^T X))", "X", {"X": "matrix(m,n)"}, None, "X sqrtm(X^T X)^-1"),
    ("tr(logm(I + X^T X))", "X", {"X": "matrix(m,n)"}, small("X"), None),
    # the log-Euclidean distance and the Fréchet inception (Wasserstein) term
    ("norm(logm(S1) - logm(S2))^2", "S1", {"S1": "spd", "S2": "spd"}, None,
     "2 (S1^-1 logm(S1) - dlogm(S1, logm(S2)))"),
    ("tr(sqrtm(sqrtm(S1) S2 sqrtm(S1)))", "S1", {"S1": "spd", "S2": "spd"}, None, None),
    # symmetric and spd variables: sym(G) (CONTRACT §2)
    ("tr(A expm(S))", "S", {"S": "symmetric"}, None, "0.5 dexpm(S, A + A^T)"),
    ("tr(A logm(S))", "S", {"S": "spd"}, None, None),
    ("tr(A sqrtm(S))", "S", {"S": "spd"}, None, None),
    ("tr(A S^(1/3))", "S", {"S": "spd"}, None, None),
    ("tr(logm(S))", "S", {"S": "spd"}, None, "S^-1"),
    ("tr(sqrtm(S))", "S", {"S": "spd"}, None, "0.5 sqrtm(S)^-1"),
    ("a^T sqrtm(S) a", "S", {"S": "spd"}, None, None),
    # Fréchet derivatives as functions of their direction (linear: the adjoint again)
    ("tr(A dexpm(X, E))", "E", None, small("X"), "dexpm(X^T, A^T)"),
    ("tr(A dlogm(S, E))", "E", {"S": "spd"}, None, "dlogm(S, A^T)"),
    ("norm(dsqrtm(S, E))^2", "E", {"S": "spd"}, None, None),
    ("tr(A dpowm(S, E, 1/3))", "E", {"S": "spd"}, None, "dpowm(S, A^T, 1/3)"),
]




# ---------------------------------------------------------------------------- Jacobians, scalars, Hessians

JACOBIANS = [
    ("expm(X)", "X", None, small("X"), "jexpm(X)"),
    ("logm(X)", "X", None, near_identity("X"), "jlogm(X)"),
    ("sqrtm(S)", "S", {"S": "spd"}, None, None),
    ("X^(1/3)", "X", None, near_identity("X"), "jpowm(X, 1/3)"),
    ("A expm(X) B", "X", None, small("X"), None),
    ("expm(X) a", "X", None, small("X"), None),
    ("dexpm(X, E)", "E", None, small("X"), "jexpm(X)"),
    ("expm(S)", "S", {"S": "symmetric"}, None, None),
]


@pytest.mark.parametrize("expr,wrt,symbols,override,text", GRADIENTS + JACOBIANS,
                         ids=[g[0] for g in GRADIENTS + JACOBIANS])
def test_gradient_and_jacobian(expr, wrt, symbols, override, text):
    """Against finite differences; the closed form's text where the row gives it."""
    d = check_derivative(expr, wrt, symbols=symbols, override=override, tol=1e-6)
    if text is not None:
        assert str(d) == text


SCALAR = [
    ("expm(t A)", "expm(t A) A"),
    ("tr(expm(t A))", None),
    ("a^T expm(t A) b", None),
    ("logm(I + t A)", None),
    ("tr(B sqrtm(I + t A))", None),
]


@pytest.mark.parametrize("expr,text", SCALAR, ids=[s[0] for s in SCALAR])
def test_derivative_with_respect_to_a_scalar(expr, text):
    def override(vals, rng):
        n = np.shape(vals["A"])[0]
        return {"t": 0.3, "A": 0.5 * rng.standard_normal((n, n)) / np.sqrt(n)}
    d = check_derivative(expr, "t", {"t": "scalar"}, override=override)
    if text is not None:
        assert str(d) == text


HESSIANS = [
    ("tr(expm(X))", "X", None),
    ("tr(sqrtm(S))", "S", {"S": "spd"}),
    ("tr(logm(S))", "S", {"S": "spd"}),
    ("tr(expm(S))", "S", {"S": "symmetric"}),
]


@pytest.mark.parametrize("expr,wrt,symbols", HESSIANS, ids=[h[0] for h in HESSIANS])
def test_hessian(expr, wrt, symbols):
    d = check_hessian(expr, wrt, symbols=symbols, allow_unsupported=False)
    assert d.kind == "hessian"


@pytest.mark.parametrize("expr,wrt,fn", [
    ("tr(A expm(X))", "X", "expm"),
    ("tr(A logm(X))", "X", "logm"),
    ("tr(A X^(1/3))", "X", "X^(1/3)"),
])
def test_a_second_frechet_derivative_is_unsupported_naming_it(expr, wrt, fn):
    with pytest.raises(matcalc.UnsupportedError) as info:
        matcalc.hessian(expr, wrt=wrt)
    assert f"second Fréchet derivative of {fn}" in str(info.value)


def test_the_jacobian_of_a_jacobian_matrix_is_unsupported():
    with pytest.raises(matcalc.UnsupportedError, match="second Fréchet derivative of expm"):
        matcalc.diff("jexpm(X)", wrt="X")
    with pytest.raises(matcalc.UnsupportedError, match="second Fréchet derivative of sqrtm"):
        matcalc.diff("tr(dsqrtm(X, A))", wrt="X")


# ---------------------------------------------------------------------------- values

def _fd(f, X, E, h=1e-6):
    return (f(X + h * E) - f(X - h * E)) / (2 * h)


_SCIPY = {
    "expm": (lambda X: scipy_linalg.expm(X), None),
    "logm": (lambda X: np.real(scipy_linalg.logm(X)), None),
    "sqrtm": (lambda X: np.real(scipy_linalg.sqrtm(X)), None),
    "1/3": (lambda X: np.real(scipy_linalg.fractional_matrix_power(X, 1 / 3)), "1/3"),
    "-1/2": (lambda X: np.real(scipy_linalg.fractional_matrix_power(X, -0.5)), "-1/2"),
}


@pytest.mark.parametrize("symmetric", [False, True], ids=["general", "symmetric"])
@pytest.mark.parametrize("key", list(_SCIPY))
def test_frechet_value_against_scipy_differences(key, symmetric):
    rng = np.random.default_rng(7)
    n = 4
    B = rng.standard_normal((n, n)) / np.sqrt(n)
    X = np.eye(n) + 0.3 * (B + B.T if symmetric else B)
    if key == "expm":
        X = X - np.eye(n)
    E_ = rng.standard_normal((n, n))
    f, p = _SCIPY[key]
    if p is None:
        fn = key
        text_f, text_d, text_j = f"{fn}(X)", f"d{fn}(X, E)", f"j{fn}(X)"
    else:
        text_f, text_d, text_j = f"X^({p})", f"dpowm(X, E, {p})", f"jpowm(X, {p})"
    vals = {"X": X, "E": E_}
    assert rel_err(matcalc.evaluate(text_f, vals), f(X)) < 1e-10
    want = _fd(f, X, E_)
    assert rel_err(matcalc.evaluate(text_d, vals), want) < 1e-7
    J = np.asarray(matcalc.evaluate(text_j, {"X": X}))
    assert J.shape == (n * n, n * n)
    assert rel_err(J @ E_.reshape(-1, order="F"), want.reshape(-1, order="F")) < 1e-7


@pytest.mark.parametrize("X", [
    np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]]),       # a Jordan block: defective
    np.array([[1.0, 0.5, 0.0], [-0.5, 1.0, 0.2], [0.0, 0.1, 2.0]]),      # complex eigenvalues
    np.array([[2.0, 1e-9, 3.0], [0.0, 2.0, 1.0], [0.0, 0.0, 1.0]]),      # nearly defective
], ids=["jordan", "complex", "near-defective"])
@pytest.mark.parametrize("fn", ["expm", "logm", "sqrtm", "powm"])
def test_jacobian_matrix_of_a_non_normal_matrix(X, fn):
    """The Jacobian matrix jexpm(X) …: by eigenvectors where they are well-conditioned,
    column by column where X is (nearly) defective; both against SciPy's differences."""
    f = {"expm": scipy_linalg.expm, "logm": lambda Y: np.real(scipy_linalg.logm(Y)),
         "sqrtm": lambda Y: np.real(scipy_linalg.sqrtm(Y)),
         "powm": lambda Y: np.real(scipy_linalg.fractional_matrix_power(Y, 1 / 3))}[fn]
    text = "jpowm(X, 1/3)" if fn == "powm" else f"j{fn}(X)"
    J = np.asarray(matcalc.evaluate(text, {"X": X}))
    rng = np.random.default_rng(11)
    for _ in range(2):
        E_ = rng.standard_normal((3, 3))
        assert rel_err(J @ E_.reshape(-1, order="F"), _fd(f, X, E_).reshape(-1, order="F")) < 1e-7


def test_frechet_at_repeated_eigenvalues_is_finite():
    """Daleckii–Krein with the f′ limit: no 0/0 at a repeated eigenvalue (Theano #6379)."""
    X = np.diag([2.0, 2.0, 3.0])
    E_ = np.arange(9.0).reshape(3, 3)
    for fn, f in (("expm", scipy_linalg.expm), ("logm", scipy_linalg.logm), ("sqrtm", scipy_linalg.sqrtm)):
        got = matcalc.evaluate(f"d{fn}(X, E)", {"X": X, "E": E_})
        assert np.all(np.isfinite(got))
        assert rel_err(got, _fd(lambda Y: np.real(f(Y)), X, E_)) < 1e-7


@pytest.mark.parametrize("text,X", [
    ("logm(X)", -np.eye(2)),
    ("sqrtm(X)", np.diag([1.0, -2.0])),
    ("X^(1/3)", np.diag([-1.0, 2.0])),
    ("logm(X)", np.zeros((2, 2))),
    ("dlogm(X, X)", np.diag([-1.0, 2.0])),
    ("jsqrtm(X)", np.diag([-1.0, 2.0])),
    ("jpowm(X, 1/3)", np.diag([-1.0, 2.0])),
])
def test_out_of_domain_is_an_evaluation_error_that_says_so(text, X):
    with pytest.raises(matcalc.EvaluationError, match="negative real axis") as info:
        matcalc.evaluate(text, {"X": X})
    if "1/3" in text:
        assert "X^(1/3)" in str(info.value)


def test_a_gradient_at_an_out_of_domain_point_raises():
    d = matcalc.diff("tr(A logm(X))", wrt="X")
    with pytest.raises(matcalc.EvaluationError, match="logm.*negative real axis"):
        d.evaluate({"A": np.eye(2), "X": -np.eye(2)})
    d = matcalc.diff("tr(sqrtm(X))", wrt="X")
    with pytest.raises(matcalc.EvaluationError, match="sqrtm"):
        d.evaluate({"X": np.diag([1.0, -1.0])})
    # a closed form without the function in it (X^-T for tr logm(X), logdet(X) for its
    # value): the derivative exists where f does, and f does not at X = -I
    d = matcalc.diff("tr(logm(X))", wrt="X")
    assert str(d) == "X^-T"
    assert rel_err(d.evaluate({"X": 2 * np.eye(2)}), 0.5 * np.eye(2)) < 1e-15
    with pytest.raises(matcalc.EvaluationError, match="logm.*negative real axis"):
        d.evaluate({"X": -np.eye(2)})
    with pytest.raises(matcalc.EvaluationError, match="logm"):
        matcalc.hessian("tr(logm(S))", wrt="S", symbols={"S": "spd"}).evaluate({"S": np.diag([1.0, 0.0])})


@pytest.mark.parametrize("fn", ["logm", "sqrtm"])
def test_scipys_inaccuracy_warning_is_checked_not_passed_on(fn, monkeypatch):
    """SciPy warns where its residual passes 1000 eps (a 2n x 2n block of a Fréchet
    derivative reaches it at ordinary matrices): the user sees no warning where the
    residual is small, and an EvaluationError naming the function where it is not."""
    import warnings
    sl = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(3)
    X = np.eye(3) + 0.3 * rng.standard_normal((3, 3))       # not symmetric: SciPy's path
    A = rng.standard_normal((3, 3))
    true = getattr(sl, fn)
    d = matcalc.diff(f"tr(A {fn}(X))", wrt="X")
    want = d.evaluate({"X": X, "A": A})
    h, V = 1e-6, rng.standard_normal((3, 3))
    fd = (np.trace(A @ true(X + h * V)) - np.trace(A @ true(X - h * V))) / (2 * h)
    assert abs(np.sum(want * V) - fd) < 1e-6 * max(1.0, abs(fd))

    def warns(perturb):
        def f(M, *args, **kwargs):
            warnings.warn(f"{fn} result may be inaccurate, approximate err = 3e-13", RuntimeWarning)
            return true(M) * (1 + perturb)
        return f
    monkeypatch.setattr(sl, fn, warns(0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = d.evaluate({"X": X, "A": A})
    assert rel_err(got, want) < 1e-12
    monkeypatch.setattr(sl, fn, warns(1e-4))
    with pytest.raises(matcalc.EvaluationError, match=f"{fn}\\(X\\) cannot be computed accurately"):
        d.evaluate({"X": X, "A": A})


@pytest.mark.parametrize("text", ["expm(S)", "sqrtm(S)", "S^(1/3)", "S^(-1/2)", "logm(S)", "logm(S / 4)"])
def test_functions_of_a_symmetric_matrix_are_exactly_symmetric(text):
    """f(S) = U f(Λ) Uᵀ, made as B Bᵀ (B = U √f(Λ), NumPy's syrk) where f(Λ) ≥ 0 and
    symmetrised otherwise (logm(S / 4) has negative eigenvalues): exactly symmetric, and
    SciPy's value to rounding."""
    sl = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(8)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    S = (Q * rng.uniform(0.5, 3.0, 6)) @ Q.T
    S = (S + S.T) / 2
    got = matcalc.evaluate(text, {"S": S}, symbols={"S": "spd"})
    assert np.array_equal(got, got.T)
    ref = {"expm(S)": sl.expm(S), "sqrtm(S)": sl.sqrtm(S), "S^(1/3)": sl.fractional_matrix_power(S, 1 / 3),
           "S^(-1/2)": sl.fractional_matrix_power(S, -0.5), "logm(S)": sl.logm(S),
           "logm(S / 4)": sl.logm(S / 4)}[text]
    assert rel_err(got, np.real(ref)) < 1e-12


def test_overflow_is_an_evaluation_error_not_inf():
    for text, X in (("expm(X)", 1000 * np.eye(2)), ("tr(expm(X))", np.array([[800.0, 1], [0, 800]])),
                    ("dexpm(X, X)", 1000 * np.eye(2))):
        with pytest.raises(matcalc.EvaluationError, match="overflows"):
            matcalc.evaluate(text, {"X": X})


# ---------------------------------------------------------------------------- typing and parsing

@pytest.mark.parametrize("text,match", [
    ("expm(x)", "expm of x .*square"),
    ("tr(logm(A))", None),
    ("sqrtm(A)", "sqrtm of A .*square"),
    ("dexpm(X, E)", "direction E must have X's shape"),
    ("jlogm(x)", "jlogm of x .*square"),
])
def test_shape_errors_name_the_function(text, match):
    symbols = {"A": "matrix(m,n)", "X": "matrix(2,2)", "E": "matrix(3,3)"}
    if match is None:          # tr(logm(A)) makes an undeclared A square
        e = matcalc.parse(text)
        assert e.arg.arg.shape[0] == e.arg.arg.shape[1]
        with pytest.raises(matcalc.ShapeError, match="logm of A .*square"):
            matcalc.parse(text, symbols=symbols)
        return
    with pytest.raises(matcalc.ShapeError, match=match):
        matcalc.parse(text, symbols=symbols)


@pytest.mark.parametrize("text,want", [
    ("X^(1/2)", "sqrtm(X)"), ("X^0.5", "sqrtm(X)"), ("X^(1/3)", "X^(1/3)"),
    ("X^0.3", "X^0.3"), ("X^(-1/2)", "X^(-0.5)"), ("X^(3/2)", "X^1.5"), ("X^(4/2)", "X^2"),
    ("X^(-2/2)", "X^-1"), ("dpowm(X, E, 1/3)", "dpowm(X, E, 1/3)"), ("jpowm(X, -0.5)", "jpowm(X, -0.5)"),
    ("expm(t)", "exp(t)"), ("t^(1/3)", "t^(1 / 3)"),
])
def test_parse_and_print(text, want):
    e = simplify(matcalc.parse(text, symbols={"t": "scalar"}))
    assert str(e) == want


@pytest.mark.parametrize("text,match", [
    ("dpowm(X, E, 2)", "exponent p"), ("dpowm(X, E, p)", "exponent p"), ("jpowm(X, 1/2)", "exponent p"),
    ("dexpm(X)", r"dexpm\(\) takes 2 arguments"), ("expm(X, Y)", r"expm\(\) takes 1 argument"),
])
def test_parse_errors(text, match):
    with pytest.raises(matcalc.ParseError, match=match):
        matcalc.parse(text)


def test_integer_powers_keep_their_meaning():
    assert isinstance(matcalc.parse("X^2"), E.MatPow)
    assert isinstance(matcalc.parse("X^-1"), E.Inverse)
    assert str(matcalc.parse("X^-2")) == "X^-2"


def test_closed_forms_of_the_simplifier():
    s = lambda t, **kw: str(simplify(matcalc.parse(t, **kw)))  # noqa: E731
    assert s("expm(0 X)") == "I(n)"
    assert s("logm(I(3))") == "zeros(3,3)"
    assert s("sqrtm(I(3))") == "I(3)"
    assert s("logdet(expm(X))") == "tr(X)"
    assert s("dexpm(X, I)") == "expm(X)"
    assert s("dexpm(X, X)") == "expm(X) X"
    assert s("dlogm(X, 2 X)") == "2 I(n)"
    assert s("dsqrtm(X, sqrtm(X))") == "0.5 I(n)"
    assert s("tr(dexpm(X, E))") == "tr(expm(X) E)"
    assert s("expm(S)^T", symbols={"S": "symmetric"}) == "expm(S)"
    assert s("dexpm(S, A)^T", symbols={"S": "symmetric"}) == "dexpm(S, A^T)"


# ---------------------------------------------------------------------------- the SymPy failures

def test_sympy_failures_come_out_right():
    """SymPy 1.14 raises TypeError on Trace(exp(X)) and answers tr(X^(1/2)) with an
    elementwise, vector-shaped gradient: here both are matrices, and right."""
    d = check_derivative("tr(expm(X))", "X", override=small("X"))
    assert str(d) == "expm(X)^T"
    d = check_derivative("tr(X^(1/2))", "X", override=near_identity("X"))
    assert str(d) == "0.5 sqrtm(X)^-T"
    X = np.array([[2.0, 1.0, 0.0], [0.5, 3.0, 0.2], [0.0, 0.1, 1.5]])
    G = d.evaluate({"X": X})
    assert G.shape == (3, 3)
    # not the elementwise answer 0.5 X.^(-1/2)
    assert rel_err(G, 0.5 * X ** -0.5 if np.all(X > 0) else G + 1) > 1e-3
    assert rel_err(G, 0.5 * np.linalg.inv(np.real(scipy_linalg.sqrtm(X))).T) < 1e-10


# ---------------------------------------------------------------------------- printing

ANSWERS = ["tr(A expm(X))", "tr(X^(1/3))", "tr(A X^(-1/2))", "expm(X)", "X^(1/3)",
           "logdet(I + expm(S))", "tr(A logm(X))", "tr(A dsqrtm(X, E))"]


def _answers():
    out = []
    for t in ANSWERS:
        wrt = "S" if "S" in t else ("E" if "E" in t else "X")
        d = matcalc.diff(t, wrt=wrt)
        out += [d.f, d.expr]
    return out


def test_latex_renders_in_katex():
    runner = katex_or_skip()
    texs = [e.latex() for e in _answers()]
    texs += [matcalc.diff(t, wrt=w, symbols=sy).steps.latex() for t, w, sy in (
        ("tr(A expm(X))", "X", None), ("tr(X^(1/3))", "X", None), ("expm(X)", "X", None),
        ("logdet(I + expm(S))", "S", {"S": "spd"}), ("expm(t A)", "t", {"t": "scalar"}))]
    texs.append(matcalc.hessian("tr(sqrtm(S))", wrt="S", symbols={"S": "spd"}).steps.latex())
    bad = runner.Katex(texs).problems(texs)
    assert not bad, bad


def test_latex_reads_back():
    rng = np.random.default_rng(3)
    for e in _answers():
        names = {s.name for s in E.walk(e) if isinstance(s, E.Sym)}
        vals = {k: np.eye(3) + 0.2 * rng.standard_normal((3, 3)) for k in names}
        got = matcalc.evaluate(e.latex(), vals)
        assert rel_err(got, matcalc.evaluate(str(e), vals)) < 1e-12, e.latex()


def test_steps_name_the_rules():
    d = matcalc.diff("tr(A expm(X))", wrt="X")
    text = str(d.steps)
    assert "d-expm: d expm(X) = dexpm(X, dX)" in text
    assert "Fréchet adjoint: tr(Wᵀ L_f(X, dX)) = tr(L_f(Xᵀ, W)ᵀ dX)" in text
    text = str(matcalc.diff("tr(sqrtm(X))", wrt="X").steps)
    assert "tr-frechet" in text
    from matcalc import rules
    catalogue = rules.render()
    for name in ("d-expm", "d-logm", "d-sqrtm", "d-powm", "Fréchet adjoint", "Fréchet Jacobian",
                 "frechet-commuting", "tr-frechet", "logdet-expm", "t-matrix-function"):
        assert name in catalogue, name


@pytest.mark.parametrize("text,wrt,symbols", [
    ("tr(A expm(X))", "X", None), ("tr(sqrtm(X))", "X", None), ("logdet(I + expm(S))", "S", {"S": "spd"}),
    ("expm(X)", "X", None), ("expm(t A)", "t", {"t": "scalar"}), ("tr(A logm(S))", "S", {"S": "spd"}),
])
def test_steps_check_numerically(text, wrt, symbols):
    """Every line of the steps equals the one before at random values (the check's
    sampler draws near I under logm, small under expm)."""
    from matcalc.steps import check_steps
    d = matcalc.diff(text, wrt=wrt, symbols=symbols)
    err = check_steps(d)
    assert err is not None and err < 1e-6, str(d.steps)


def test_diff_imports_no_numpy_scipy_or_sympy():
    code = ("import sys, matcalc\n"
            "matcalc.diff('tr(A expm(X)) + tr(logm(S)) + tr(X^(1/3))', wrt='X', symbols={'S': 'spd'})\n"
            "print(str(matcalc.diff('logdet(I + expm(S))', wrt='S', symbols={'S': 'spd'}).steps)[:0])\n"
            "print(sorted(m for m in ('numpy', 'scipy', 'sympy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sympy_refuses_with_a_reason():
    pytest.importorskip("sympy")
    from matcalc.interop import to_sympy
    with pytest.raises(matcalc.UnsupportedError, match=r"expm\(X\) has no SymPy counterpart.*matrix exponential"):
        to_sympy(matcalc.parse("tr(expm(X))"))


def test_the_readme_examples_are_what_the_cli_prints():
    """The README's Matrix functions block: each `$ matcalc …` line's output as shown."""
    import os
    import shlex
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = open(os.path.join(root, "README.md"), encoding="utf-8").read()
    block = text[text.index("**Matrix functions.**"):]
    block = block[block.index("```") + 3:]
    block = block[:block.index("```")]
    lines = [ln for ln in block.strip().splitlines()]
    pairs = [(lines[i], lines[i + 1]) for i in range(len(lines) - 1) if lines[i].startswith("$ matcalc")]
    assert len(pairs) >= 6
    for cmd, want in pairs:
        args = shlex.split(cmd[len("$ matcalc "):])
        p = subprocess.run([sys.executable, "-m", "matcalc", *args], cwd=root, capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, (cmd, p.stderr)
        assert p.stdout.splitlines()[0] == want, (cmd, p.stdout)


@pytest.mark.parametrize("text,wrt,symbols", [
    ("tr(A logm(X))", "X", None), ("tr(A expm(X))", "X", None), ("tr(X^(1/3))", "X", None),
    ("logm(X)", "X", None), ("tr(A logm(B X))", "X", None), ("tr(sqrtm(X^T X))", "X", {"X": "matrix(m,n)"}),
    ("norm(logm(S1) - logm(S2))^2", "S1", {"S1": "spd", "S2": "spd"}),
    ("tr(sqrtm(sqrtm(S1) S2 sqrtm(S1)))", "S1", {"S1": "spd", "S2": "spd"}),
])
def test_check_draws_points_where_the_functions_are_defined(text, wrt, symbols):
    """--check (Derivative.check): near I under logm, sqrtm, X^p; small under expm."""
    d = matcalc.diff(text, wrt=wrt, symbols=symbols)
    report = d.check()
    assert report.ok, report
