"""The spectral functions of CONTRACT §5.1 (issue 12, part 2): λ_max(S), λ_min(S) of a
symmetric S, the spectral norm ‖X‖₂, the nuclear norm ‖X‖_* and the entrywise 1-norm
‖x‖₁, with the eigen- and singular vectors and the polar factor their gradients are
written with (eigvec_max, svec_left, svec_right, polar, sign).

Every derivative is checked against finite differences of the input (check_derivative:
central differences, the printed answer read back and evaluated), several against
hand-written NumPy references; the points where a function is not differentiable raise
an EvaluationError that names the cause; λ_max of a matrix that is not symmetric is a
ShapeError; the LaTeX renders in KaTeX and reads back; the steps name the rules; a
second derivative through an eigenvector is an UnsupportedError that names it."""
import subprocess
import sys

import numpy as np
import pytest

import matcalc
from matcalc import expr as E
from matcalc.operators import SPECNORM, SPECTRAL, SPECTRAL_RECORDS

from helpers import check_derivative, check_hessian, draw, fitting_sizes, katex_or_skip, rel_err

SYM = {"A": "symmetric", "B": "symmetric", "t": "scalar"}


def _sym(rng, n):
    M = rng.standard_normal((n, n))
    return M + M.T


# ---------------------------------------------------------------------------- gradients

GRADIENTS = [
    # (f, wrt, symbols, NumPy reference of f or None)
    ("lambda_max(S)", "S", {"S": "symmetric"}, lambda v: np.linalg.eigvalsh(v["S"])[-1]),
    ("lambda_min(S)", "S", {"S": "symmetric"}, lambda v: np.linalg.eigvalsh(v["S"])[0]),
    ("lambda_max(S)", "S", {"S": "spd"}, None),
    ("lambda_min(S)", "S", {"S": "spd"}, None),
    ("lambda_max(X^T X)", "X", None, lambda v: np.linalg.eigvalsh(v["X"].T @ v["X"])[-1]),
    ("lambda_max(X^T A X)", "X", {"A": "spd"}, None),
    ("lambda_min(X^T A X)", "X", {"A": "spd", "X": "matrix(4,3)"}, None),
    ("lambda_max(A + t B)", "t", SYM,
     lambda v: np.linalg.eigvalsh(v["A"] + v["t"] * v["B"])[-1]),
    ("lambda_min(A + t B)", "t", SYM, None),
    ("lambda_max(A + t B)", "A", SYM, None),
    ("tr(S) lambda_max(S) + lambda_min(S)^2", "S", {"S": "symmetric"}, None),
    ("lambda_max(S) - lambda_min(S)", "S", {"S": "symmetric"}, None),
    ("||X||_2", "X", None, lambda v: np.linalg.norm(v["X"], 2)),
    ("||A X - B||_2", "X", None, lambda v: np.linalg.norm(v["A"] @ v["X"] - v["B"], 2)),
    ("||X||_*", "X", None, lambda v: np.linalg.svd(v["X"], compute_uv=False).sum()),
    ("||A X - B||_*", "X", None,
     lambda v: np.linalg.svd(v["A"] @ v["X"] - v["B"], compute_uv=False).sum()),
    ("||X^T||_* + ||X||_2^2", "X", None, None),
    ("||x||_1", "x", None, lambda v: np.abs(v["x"]).sum()),
    ("||A x - b||_1", "x", None, lambda v: np.abs(v["A"] @ v["x"] - v["b"]).sum()),
    ("||A X - B||_1", "X", None, lambda v: np.abs(v["A"] @ v["X"] - v["B"]).sum()),
    ("||t a - b||_1", "t", {"t": "scalar"}, None),
    ("||A X - B||_2", "A", None, None),
    ("exp(-||X||_*) + log(lambda_max(X^T X))", "X", {"X": "matrix(4,3)"}, None),
]


@pytest.mark.parametrize("f, wrt, symbols, ref", GRADIENTS,
                         ids=[f"{g[0]}-{g[1]}-{g[2]}" for g in GRADIENTS])
def test_gradient_against_finite_differences(f, wrt, symbols, ref):
    """check_derivative: central differences of matcalc.evaluate(f), and the printed
    answer read back evaluates like d.evaluate; with a NumPy reference, once more
    against differences of that (an independent value of f)."""
    d = check_derivative(f, wrt, symbols=symbols, trials=3)
    if ref is not None:
        check_derivative(f, wrt, symbols=symbols, f=ref, trials=2, seed=5)
    assert matcalc.parse(str(d), symbols=d.symbols) is not None


def test_the_closed_forms():
    """The answers are the closed forms of CONTRACT §5.1, not expansions."""
    assert str(matcalc.diff("lambda_max(S)", "S", {"S": "symmetric"})) == \
        "eigvec_max(S) eigvec_max(S)^T"
    assert str(matcalc.diff("||X||_2", "X")) == "svec_left(X) svec_right(X)^T"
    assert str(matcalc.diff("||X||_*", "X")) == "polar(X)"
    assert str(matcalc.diff("||x||_1", "x")) == "sign(x)"
    assert str(matcalc.diff("||A X - B||_*", "X")) == "A^T polar(A X - B)"


def test_values_of_the_vectors_against_numpy():
    """eigvec_max, svec_left/svec_right and polar evaluate to what they are named, with
    the deterministic signs: the entry of largest magnitude of eigvec_* and svec_left
    positive, svec_right = Xᵀ u / σ₁ (so u vᵀ is consistent when each is evaluated
    apart)."""
    rng = np.random.default_rng(2)
    S = _sym(rng, 4)
    X = rng.standard_normal((4, 3))
    lam, U = np.linalg.eigh(S)
    for name, k in (("eigvec_max", -1), ("eigvec_min", 0)):
        v = matcalc.evaluate(f"{name}(S)", {"S": S})
        assert np.allclose(np.abs(v), np.abs(U[:, k]), atol=1e-12)
        assert np.allclose(S @ v, lam[k] * v, atol=1e-10)
        assert v[np.argmax(np.abs(v))] > 0
    u = matcalc.evaluate("svec_left(X)", {"X": X})
    v = matcalc.evaluate("svec_right(X)", {"X": X})
    s = np.linalg.svd(X, compute_uv=False)
    assert np.allclose(X @ v, s[0] * u, atol=1e-12) and np.allclose(X.T @ u, s[0] * v, atol=1e-12)
    assert u[np.argmax(np.abs(u))] > 0
    P = matcalc.evaluate("polar(X)", {"X": X})
    Uf, _, Vt = np.linalg.svd(X, full_matrices=False)
    assert np.allclose(P, Uf @ Vt, atol=1e-12)
    assert matcalc.evaluate("||X||_*", {"X": X}) == pytest.approx(s.sum(), rel=1e-14)
    assert matcalc.evaluate("||X||_2", {"X": X}) == pytest.approx(s[0], rel=1e-14)
    assert matcalc.evaluate("lambda_max(S)", {"S": S}) == pytest.approx(lam[-1], rel=1e-14)
    assert matcalc.evaluate("||X||_1", {"X": X}) == pytest.approx(np.abs(X).sum(), rel=1e-14)
    assert np.array_equal(matcalc.evaluate("sign(x)", {"x": np.array([-2.0, 0.0, 3.0])}),
                          [-1.0, 0.0, 1.0])


@pytest.mark.parametrize("kind", ["symmetric", "spd"])
def test_structured_variable(kind):
    """CONTRACT §2: over symmetric S the gradient is sym(G) = v vᵀ (already symmetric);
    check_derivative takes its differences along symmetric directions and checks the
    symmetry; the cookbook convention too."""
    d = check_derivative("lambda_max(S) + 2 lambda_min(S)", "S", symbols={"S": kind})
    assert "sym" not in str(d)
    check_derivative("lambda_max(S)", "S", symbols={"S": kind}, symmetric="cookbook")


def test_derivative_wrt_a_scalar_is_v_B_v():
    d = matcalc.diff("lambda_max(A + t B)", "t", SYM)
    assert str(d) == "eigvec_max(A + t B)^T B eigvec_max(A + t B)"
    rng = np.random.default_rng(4)
    A, B = _sym(rng, 3), _sym(rng, 3)
    lam, U = np.linalg.eigh(A + 0.3 * B)
    v = U[:, -1]
    assert d.evaluate({"A": A, "B": B, "t": 0.3}) == pytest.approx(v @ B @ v, rel=1e-10)


# ---------------------------------------------------------------------------- non-differentiable points

NONDIFF = [
    ("lambda_max(S)", "S", {"S": "symmetric"}, {"S": np.eye(3)}, r"lambda_max.*repeated"),
    ("lambda_min(S)", "S", {"S": "symmetric"}, {"S": np.diag([1.0, 1.0, 2.0])}, r"lambda_min.*repeated"),
    ("lambda_max(A + t B)", "t", SYM,
     {"A": np.eye(3), "B": np.diag([1.0, 1.0, -1.0]), "t": 0.5}, r"lambda_max.*repeated"),
    ("||X||_2", "X", None, {"X": np.eye(3)}, r"\|\|X\|\|_2.*repeated"),
    ("||X||_*", "X", None, {"X": np.outer([1.0, 2.0, 3.0], [1.0, -1.0])}, r"full rank"),
    ("||A X - B||_*", "X", None,
     {"A": np.eye(2), "X": np.array([[1.0, 2.0], [2.0, 4.0]]), "B": np.zeros((2, 2))}, r"full rank"),
    ("||x||_1", "x", None, {"x": np.array([1.0, 0.0, -2.0])}, r"entry .* zero"),
    ("||A x - b||_1", "x", None,
     {"A": np.eye(2), "x": np.array([1.0, 2.0]), "b": np.array([1.0, 0.0])}, r"entry .* zero"),
]


@pytest.mark.parametrize("f, wrt, symbols, values, match", NONDIFF, ids=[n[0] + "-" + n[3].__repr__()[:20] for n in NONDIFF])
def test_not_differentiable_point_raises(f, wrt, symbols, values, match):
    """Where f is not differentiable the derivative is not a number: an EvaluationError
    that says why (the guard of the function's record, on f's own nodes); f itself has a
    value there."""
    d = matcalc.diff(f, wrt, symbols)
    with pytest.raises(matcalc.EvaluationError, match=match) as err:
        d.evaluate(values)
    assert "not differentiable" in str(err.value)
    assert np.isfinite(matcalc.evaluate(f, values, symbols=symbols))


@pytest.mark.parametrize("target", ["numpy", "torch"])
@pytest.mark.parametrize("f, wrt, symbols, values, match", NONDIFF, ids=[n[0] + "-" + n[3].__repr__()[:20] for n in NONDIFF])
def test_generated_code_refuses_the_point_too(f, wrt, symbols, values, match, target):
    """Generated code (NumPy, PyTorch) raises where d.evaluate does: the derivative's
    kernels (eigenvectors, singular vectors, the polar factor), or the record's code guard
    (‖x‖₁: sign(x) alone would give 0 at the zero entry)."""
    if target == "torch":
        pytest.importorskip("torch")
    d = matcalc.diff(f, wrt, symbols)
    fn = matcalc.compile(f, wrt=wrt, symbols=symbols, target=target)
    with pytest.raises(matcalc.EvaluationError, match=match):
        fn(values)
    # and away from the point it agrees with d.evaluate, which agrees with finite differences
    R = np.random.default_rng(0).standard_normal(np.shape(values[wrt]))
    if (symbols or {}).get(wrt) == "symmetric":
        R = R + R.T
    moved = {**values, wrt: values[wrt] + 0.1 * R}
    try:
        want = d.evaluate(moved)
    except matcalc.EvaluationError:          # (λ_max(I + t diag(1, 1, -1)) is repeated at every t)
        return
    fv, g = fn(moved)
    g = g.numpy() if hasattr(g, "numpy") else g
    assert np.allclose(g, want, rtol=1e-9, atol=1e-12)
    check_derivative(f, wrt, symbols)


def test_guard_only_where_the_variable_is():
    """λ_max(S) with a repeated eigenvalue is a constant factor of a derivative in X:
    no error (its value exists); the guard is on the nodes that depend on the variable."""
    d = matcalc.diff("lambda_max(S) tr(X)", "X", {"S": "symmetric"})
    got = d.evaluate({"S": np.eye(3), "X": np.ones((3, 3))})
    assert np.allclose(got, np.eye(3))


def test_the_printed_gradient_raises_too():
    """The answer's own operators refuse the point (eigvec_max at a repeated λ_max,
    polar at a rank-deficient X), read back from the text."""
    with pytest.raises(matcalc.EvaluationError, match="repeated"):
        matcalc.evaluate("eigvec_max(S) eigvec_max(S)^T", {"S": np.eye(2)}, symbols={"S": "symmetric"})
    with pytest.raises(matcalc.EvaluationError, match="full rank"):
        matcalc.evaluate("polar(X)", {"X": np.ones((2, 2))})


# ---------------------------------------------------------------------------- types

@pytest.mark.parametrize("text, symbols", [
    ("lambda_max(X)", None),
    ("lambda_min(A B)", {"A": "symmetric", "B": "symmetric"}),
    ("lambda_max(X^T A X)", None),                       # A not declared symmetric
    ("lambda_max(A + t B)", {"t": "scalar"}),
    ("eigvec_max(X)", None),
    ("lambda_max(X)", {"X": "matrix(2,3)"}),
])
def test_not_symmetric_is_a_shape_error(text, symbols):
    with pytest.raises(matcalc.ShapeError, match=r"lambda_max|lambda_min|eigvec_max|square"):
        matcalc.diff(text, "X" if "X" in text else "A", symbols)


@pytest.mark.parametrize("text, symbols", [
    ("lambda_max(S)", {"S": "symmetric"}), ("lambda_max(S)", {"S": "spd"}),
    ("lambda_max(D)", {"D": "diagonal"}), ("lambda_max(X^T X)", None),
    ("lambda_max(X X^T)", None), ("lambda_max(X^T A X)", {"A": "symmetric"}),
    ("lambda_min(A + t B)", SYM), ("lambda_max(A - 2 B)", SYM),
    ("lambda_max(S + S^T)", None), ("lambda_max(t)", {"t": "scalar"}),
])
def test_symmetric_by_declaration_or_by_form(text, symbols):
    matcalc.parse(text, symbols=symbols)


def test_evaluate_refuses_a_value_that_is_not_symmetric():
    X = np.arange(9.0).reshape(3, 3)
    with pytest.raises(matcalc.ShapeError, match="symmetric"):
        matcalc.evaluate("lambda_max(S)", {"S": X})


def test_norm_subscripts():
    """||x||_* of a vector is its 2-norm (one singular value), ||x||_1 of any shape the
    sum of absolute values (entrywise), ||t||_1 of a scalar |t|."""
    assert isinstance(matcalc.parse("||x||_*"), E.Norm)
    assert isinstance(matcalc.parse("||X||_*"), E.Spectral)
    assert isinstance(matcalc.parse("||X||_1"), E.Spectral)
    assert matcalc.evaluate("||t||_1", {"t": -2.5}) == 2.5
    # matrixcalculus.org's norm1(e) is the same node, with the same gradient and guard
    assert matcalc.parse("norm1(A x - b)") == matcalc.parse("||A x - b||_1")
    assert str(check_derivative("norm1(A x - b)", "x")) == "A^T sign(A x - b)"
    check_derivative("||x||_* + ||t x||_1", "x", symbols={"t": "scalar"})


# ---------------------------------------------------------------------------- printing

FORMS = ["lambda_max(S)", "lambda_min(S)", "||X||_*", "||x||_1", "||X||_2",
         "eigvec_max(S)", "eigvec_min(S)", "svec_left(X)", "svec_right(X)", "polar(X)", "sign(x)"]


@pytest.mark.parametrize("text", FORMS)
def test_text_and_latex_read_back(text):
    e = matcalc.parse(text, symbols={"S": "symmetric"})
    assert str(e) == text
    assert matcalc.parse(str(e), symbols={"S": "symmetric"}) == e
    assert matcalc.parse(e.latex(), symbols={"S": "symmetric"}) == e, e.latex()


READBACK = [("lambda_max(X^T A X)", "X", {"A": "spd"}), ("||A X - B||_2", "X", None),
            ("||A X - B||_*", "X", None), ("||A x - b||_1", "x", None),
            ("lambda_min(A + t B)", "t", SYM)]


@pytest.mark.parametrize("f, wrt, symbols", READBACK)
def test_answer_latex_reads_back_and_evaluates_alike(f, wrt, symbols):
    d = matcalc.diff(f, wrt, symbols)
    rng = np.random.default_rng(7)
    vals = draw(d.symbols, rng, "any", fitting_sizes(d, rng))
    want = np.asarray(d.evaluate(vals), dtype=float)
    for text in (str(d), d.latex()):
        got = np.asarray(matcalc.evaluate(text, vals, symbols=d.symbols), dtype=float)
        assert got.shape == want.shape and rel_err(got, want) < 1e-10, text


def test_latex_renders_in_katex():
    runner = katex_or_skip()
    texs = [matcalc.parse(t, symbols={"S": "symmetric"}).latex() for t in FORMS]
    for f, wrt, symbols in READBACK:
        d = matcalc.diff(f, wrt, symbols)
        texs += [d.latex(), d.steps.latex()]
    bad = runner.Katex(texs).problems(texs)
    assert not bad, bad


# ---------------------------------------------------------------------------- steps and rules

@pytest.mark.parametrize("f, wrt, symbols, rule", [
    ("lambda_max(X^T X)", "X", None, "d-lambda_max"),
    ("lambda_min(S)", "S", {"S": "symmetric"}, "d-lambda_min"),
    ("||A X - B||_2", "X", None, "d-spectral-norm"),
    ("||A X - B||_*", "X", None, "d-nuclear"),
    ("||A x - b||_1", "x", None, "d-norm1"),
])
def test_steps_name_the_rules(f, wrt, symbols, rule):
    steps = "\n".join(matcalc.diff(f, wrt, symbols).steps)
    assert rule in steps
    rec = SPECNORM if rule == "d-spectral-norm" else SPECTRAL[rule[2:]]
    assert rec.formula in steps


def test_rule_catalogue_lists_every_spectral_rule():
    from matcalc.rules import render
    text = render()
    for rec in SPECTRAL_RECORDS:
        if rec.differential is not None:
            assert f"d-{rec.name}" in text and rec.formula in text
    assert SPECNORM.formula in text and "d sign(x) = 0" in text


# ---------------------------------------------------------------------------- second derivatives

@pytest.mark.parametrize("f, wrt, symbols, vec", [
    ("lambda_max(S)", "S", {"S": "symmetric"}, "eigvec_max"),
    ("lambda_min(X^T X)", "X", None, "eigvec_min"),
    ("||X||_2", "X", None, "svec_"),
    ("||X||_*", "X", None, "polar"),
])
def test_hessian_is_unsupported_naming_the_vector(f, wrt, symbols, vec):
    with pytest.raises(matcalc.UnsupportedError, match=f"derivative of {vec}.*second derivative"):
        matcalc.hessian(f, wrt, symbols)


def test_hessian_of_the_one_norm():
    """‖x‖₁ is piecewise linear: its Hessian is 0 wherever it exists (no entry zero, where
    the guard refuses); through a nonlinear argument the chain rule's other term stays."""
    h = check_hessian("||x||_1", "x", allow_unsupported=False)
    assert str(h) == "zeros(n,n)"
    with pytest.raises(matcalc.EvaluationError, match="zero"):
        h.evaluate({"x": np.array([1.0, 0.0])})
    check_hessian("||A x - b||_1 + x^T x", "x", allow_unsupported=False)
    check_hessian("||exp(x) - b||_1", "x", allow_unsupported=False)


# ---------------------------------------------------------------------------- the rest of the engine

@pytest.mark.parametrize("f, wrt, symbols", [
    ("lambda_max(X^T X)", "X", None), ("||A X - B||_2", "X", None),
    ("||X||_*", "X", None), ("||A x - b||_1", "x", None),
    ("lambda_max(S)", "S", {"S": "spd"}),
])
def test_check_works_on_the_new_forms(f, wrt, symbols):
    res = matcalc.diff(f, wrt, symbols).check()
    assert res.ok, res


def test_cli_check():
    out = subprocess.run([sys.executable, "-m", "matcalc", "diff", "||A X - B||_*", "--wrt", "X",
                          "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "A^T polar(A X - B)" and "ok" in out.stdout


def test_diff_imports_no_numpy():
    code = ("import sys, matcalc\n"
            "for f, w, s in [('lambda_max(X^T X)', 'X', None), ('||A X - B||_2', 'X', None),\n"
            "                ('||X||_*', 'X', None), ('||x||_1', 'x', None)]:\n"
            "    d = matcalc.diff(f, w, s); str(d); d.latex(); d.steps\n"
            "print(sorted(m for m in ('numpy', 'scipy', 'sympy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sympy_refuses_naming_the_function():
    pytest.importorskip("sympy")
    with pytest.raises(matcalc.UnsupportedError, match="polar"):
        matcalc.diff("||X||_*", "X").to_sympy()
    from matcalc.interop import to_sympy
    with pytest.raises(matcalc.UnsupportedError, match="nuclear norm"):
        to_sympy(matcalc.parse("||X||_*"))
    with pytest.raises(matcalc.UnsupportedError, match="eigvec_max"):
        matcalc.diff("lambda_max(S)", "S", {"S": "symmetric"}).to_sympy()


def test_values_past_the_float_range():
    """The extended evaluator: λ and the norms scale with X, the vectors do not."""
    X = np.array([[3e300, 1e300], [1e300, 2e300]])
    s = np.linalg.svd(X / 1e300, compute_uv=False)
    assert matcalc.evaluate("||1e10 X||_* / 1e10", {"X": X}) == pytest.approx(s.sum() * 1e300, rel=1e-12)
    assert matcalc.evaluate("lambda_max(1e10 X) / 1e10", {"X": X}) == pytest.approx(s[0] * 1e300, rel=1e-12)
    P = matcalc.evaluate("polar(1e10 X)", {"X": X})
    assert np.allclose(P, matcalc.evaluate("polar(X)", {"X": X}), atol=1e-14)


@pytest.mark.parametrize("tex, text", [
    (r"\lambda_{\max}\left(S\right) + \lambda_{\min}(S)", "lambda_max(S) + lambda_min(S)"),
    (r"\lambda_{\max} S", "lambda_max(S)"),
    (r"\lambda_\max(X^\top X)", "lambda_max(X^T X)"),
    (r"\|A X - B\|_* + \left\|x\right\|_1", "||A X - B||_* + ||x||_1"),
    (r"\operatorname{polar} X", "polar(X)"),
    (r"\operatorname{svec}_{\mathrm{left}}\left(X\right)", "svec_left(X)"),
    (r"\lambda_{i} + \lambda", "lambda_i + lambda"),            # other subscripts: symbols
])
def test_latex_input_as_papers_write_it(tex, text):
    syms = {"S": "symmetric"} if "S" in text else None
    if "lambda_i" in text:
        syms = {"lambda_i": "scalar", "lambda": "scalar"}
    assert matcalc.parse(tex, symbols=syms) == matcalc.parse(text, symbols=syms)


@pytest.mark.parametrize("text", ["||x||_12", "||x||_1.5", "||x||_3", "||X||_inf"])
def test_a_norm_subscript_is_never_misread(text):
    """||x||_12 is not 2 ||x||_1: a subscript other than 1, 2, * or F is a ParseError that
    lists them."""
    with pytest.raises(matcalc.ParseError, match=r"subscript is one of 1, 2, \* or F"):
        matcalc.parse(text)


def test_polar_of_a_symmetric_matrix_is_symmetric():
    """polar(Xᵀ) = polar(X)ᵀ, so the symmetric part of polar(S) is polar(S): the gradient of
    ||S||_* over symmetric S is polar(S), not 0.5 polar(S)^T + 0.5 polar(S)."""
    d = matcalc.diff("lambda_min(S) + ||S||_*", "S", {"S": "symmetric"})
    assert str(d) == "polar(S) + eigvec_min(S) eigvec_min(S)^T"
    check_derivative("lambda_min(S) + ||S||_*", "S", {"S": "symmetric"})
    d = matcalc.diff("||X^T A||_*", "X")
    assert "polar(A^T X)" in str(d)
    check_derivative("||X^T A||_*", "X", {"X": "matrix(4,3)", "A": "matrix(4,2)"})


def test_check_draws_another_point_where_f_is_not_differentiable():
    """--check passes over a point where a guard refuses f (a rank-deficient XᵀA at the
    sizes first drawn) instead of calling the answer wrong there."""
    r = matcalc.diff("||X^T A||_*", "X").check()
    assert r.ok, r
    r = matcalc.diff("||x y^T||_*", "x").check()          # rank one at every point: refused
    assert not r.ok and r.status == "no valid point" and "not differentiable" in r.note
