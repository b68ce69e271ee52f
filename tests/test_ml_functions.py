"""The functions of machine-learning losses (CONTRACT §5.2, issue 13): softmax,
logsumexp, relu and its step, by family of loss.  Every derivative is checked against
finite differences (tests/helpers.py), most against an independent NumPy f."""
import subprocess
import sys
import os

import numpy as np
import pytest

import matcalc
from matcalc.operators import ARRAY_FUNCTIONS, ARRAY_RECORDS, TARGETS

from helpers import check_derivative, check_hessian, katex_or_skip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sm(z):                                   # an independent softmax (1-D)
    z = np.asarray(z, float).ravel()
    e = np.exp(z - z.max())
    return e / e.sum()


def lse(z):
    z = np.asarray(z, float).ravel()
    m = z.max()
    return m + np.log(np.exp(z - m).sum())


def col(v):
    return np.asarray(v, float).reshape(-1)


def relu(z):
    return np.maximum(z, 0.0)


# ---------------------------------------------------------------------------- softmax


def test_softmax_jacobian_prints_diag_s_minus_s_sT():
    d = check_derivative("softmax(x)", "x", f=lambda v: sm(v["x"]))
    assert str(d) == "diag(softmax(x)) - softmax(x) softmax(x)^T"
    x = np.array([0.3, -1.2, 2.0])
    s = sm(x)
    assert np.allclose(d.evaluate({"x": x}), np.diag(s) - np.outer(s, s), rtol=1e-13, atol=1e-15)


def test_softmax_of_a_matrix_is_a_shape_error_that_says_it_takes_a_vector():
    with pytest.raises(matcalc.ShapeError, match="softmax takes a .*vector"):
        matcalc.diff("sum(softmax(X))", wrt="X", symbols={"X": "matrix(3,4)"})
    with pytest.raises(matcalc.ShapeError, match="softmax takes a .*vector"):
        matcalc.parse("softmax(A B)", symbols={"A": "matrix(3,4)", "B": "matrix(4,2)"})


def test_softmax_cross_entropy_one_example_in_W_and_x():
    def f(v):
        return -col(v["y"]) @ np.log(sm(v["W"] @ col(v["x"])))
    check_derivative("-y^T log(softmax(W x))", "W", f=f)
    check_derivative("-y^T log(softmax(W x))", "x", f=f)
    check_hessian("-y^T log(softmax(W x))", "x", f=f, allow_unsupported=False)


def test_softmax_cross_entropy_for_a_batch_with_ones_vectors():
    # columns of X are examples, of Y their one-hot labels: the loss is
    # sum_j logsumexp(W x_j) - tr(Y^T W X), the column sums written with ones(k)
    text = "sum(log(ones(k)^T exp(W X))) - tr(Y^T W X)"
    sym = {"W": "matrix(k,d)", "X": "matrix(d,N)", "Y": "matrix(k,N)"}

    def f(v):
        Z = v["W"] @ v["X"]
        return sum(lse(Z[:, j]) for j in range(Z.shape[1])) - np.trace(v["Y"].T @ Z)
    d = check_derivative(text, "W", symbols=sym, f=f)
    assert "ones(k)" in str(d) and "diag(I(" not in str(d)
    check_derivative(text, "X", symbols=sym, f=f)


def test_attention_like_in_q_and_in_K():
    def f(v):
        return col(v["a"]) @ v["V"].T @ sm(v["K"] @ col(v["q"]))
    check_derivative("a^T V^T softmax(K q)", "q", f=f)
    check_derivative("a^T V^T softmax(K q)", "K", f=f)
    check_hessian("a^T V^T softmax(K q)", "q", f=f, allow_unsupported=False)


def test_softmax_is_stable_at_1000():
    x = np.array([1000.0, 1001.0, 999.0])
    got = col(matcalc.evaluate("softmax(x)", {"x": x}))
    assert np.all(np.isfinite(got)) and np.allclose(got, sm(x - 1000), rtol=1e-14)
    J = matcalc.diff("softmax(x)", wrt="x").evaluate({"x": x})
    assert np.all(np.isfinite(J))


# ---------------------------------------------------------------------------- logsumexp


def test_logsumexp_gradient_is_softmax_and_hessian_diag_s_minus_s_sT():
    d = check_derivative("logsumexp(x)", "x", f=lambda v: lse(v["x"]))
    assert str(d) == "softmax(x)"
    h = check_hessian("logsumexp(x)", "x", f=lambda v: lse(v["x"]), allow_unsupported=False)
    assert str(h) == "diag(softmax(x)) - softmax(x) softmax(x)^T"
    check_derivative("logsumexp(A x + b)", "x", f=lambda v: lse(v["A"] @ col(v["x"]) + col(v["b"])))


def test_logsumexp_of_a_matrix_over_all_entries():
    d = check_derivative("logsumexp(X)", "X", f=lambda v: lse(v["X"]),
                         symbols={"X": "matrix(3,4)"})
    X = np.random.default_rng(3).standard_normal((3, 4))
    G = d.evaluate({"X": X})
    assert G.shape == (3, 4) and np.allclose(G, np.exp(X - lse(X)), rtol=1e-13)
    check_hessian("logsumexp(X)", "X", f=lambda v: lse(v["X"]), allow_unsupported=False)
    check_derivative("logsumexp(A X B)", "X", f=lambda v: lse(v["A"] @ v["X"] @ v["B"]))


def test_logsumexp_is_stable_at_1000():
    x = np.array([1000.0, 1000.0, 990.0])
    assert matcalc.evaluate("logsumexp(x)", {"x": x}) == pytest.approx(lse(x), rel=1e-15)
    X = np.full((2, 3), 1000.0)
    assert matcalc.evaluate("logsumexp(X)", {"X": X}) == pytest.approx(1000 + np.log(6), rel=1e-15)
    for text, wrt, v in (("logsumexp(x)", "x", {"x": x}), ("logsumexp(X)", "X", {"X": X})):
        d = matcalc.diff(text, wrt=wrt)
        g = np.asarray(d.evaluate(v), float)
        assert np.all(np.isfinite(g)) and np.sum(g) == pytest.approx(1.0, rel=1e-13)
        back = np.asarray(matcalc.evaluate(str(d), v, symbols=d.symbols), float)
        assert np.allclose(back, g, rtol=1e-14)
        fn = matcalc.compile(text, wrt=wrt)
        f, gc = fn(**v)
        assert np.isfinite(f) and np.allclose(np.asarray(gc).reshape(g.shape), g, rtol=1e-13)
    assert matcalc.evaluate("logsumexp(x)", {"x": np.array([-1000.0, -1001.0])}) == \
        pytest.approx(lse([-1000.0, -1001.0]), rel=1e-15)


def test_at_a_scalar_softmax_is_one_and_logsumexp_the_scalar():
    assert str(matcalc.diff("logsumexp(a t)", wrt="t", symbols={"a": "scalar", "t": "scalar"})) == "a"
    assert matcalc.evaluate("softmax(t)", {"t": 3.0}) == 1.0
    check_derivative("t softmax(t)", "t", symbols={"t": "scalar"}, f=lambda v: v["t"])


# ---------------------------------------------------------------------------- log1p, relu


def test_logistic_loss_with_log1p():
    text = "sum(log1p(exp(-y .* (X w))))"

    def f(v):
        return np.sum(np.log1p(np.exp(-col(v["y"]) * (v["X"] @ col(v["w"])))))
    check_derivative(text, "w", f=f)
    check_hessian(text, "w", f=f, allow_unsupported=False)


def test_two_layer_relu_network_in_W1_b1_W2():
    text = "||W2 relu(W1 x + b1) - y||^2"

    def f(v):
        h = relu(v["W1"] @ col(v["x"]) + col(v["b1"]))
        r = v["W2"] @ h - col(v["y"])
        return r @ r
    for wrt in ("W1", "b1", "W2", "x"):
        d = check_derivative(text, wrt, f=f)
        if wrt != "W2":
            assert "step(" in str(d)
    check_hessian(text, "W2", f=f, allow_unsupported=False)
    check_hessian(text, "b1", f=f, allow_unsupported=False)


def test_relu_derivative_is_the_step_zero_at_zero_and_its_hessian_zero():
    d = matcalc.diff("relu(x)", wrt="x")
    assert str(d) == "diag(step(x))"
    x = np.array([-1.0, 0.0, 2.0])
    assert np.array_equal(np.diag(d.evaluate({"x": x})), [0.0, 0.0, 1.0])  # relu'(0) = 0
    assert col(matcalc.evaluate("step(x)", {"x": x})).tolist() == [0.0, 0.0, 1.0]
    h = check_hessian("sum(relu(A x))", "x", allow_unsupported=False)
    assert str(h) == "zeros(n,n)"
    assert np.array_equal(h.evaluate({"x": np.ones(3), "A": np.eye(3)}), np.zeros((3, 3)))
    # step's own derivative is taken as 0 (0 almost everywhere)
    assert str(matcalc.diff("sum(step(x))", wrt="x")) == "zeros(n)"


# ---------------------------------------------------------------------------- pieces


@pytest.mark.parametrize("rec", ARRAY_RECORDS, ids=lambda r: r.name)
def test_every_array_function_is_in_every_table(rec):
    import importlib
    from matcalc import differential, numeric, steps, latex_input
    from matcalc.codegen import backends
    from matcalc.rules import catalogue
    parse = importlib.import_module("matcalc.parse")
    n = rec.name
    assert n in parse.FUNCTION_NAMES and n not in parse.FOREIGN_FUNCTIONS
    formula, _ = differential.ARRAY_DERIVATIVES[n]
    assert (f"d-{n}", formula) in catalogue()[0][1]
    assert callable(numeric.ARRAY_FUNCS[n])
    assert n in steps._FUNCTIONS and n in latex_input.FUNCS
    for target in TARGETS:
        assert n in backends.backend(target)._kf, f"{n} has no {target} spelling"
    d = matcalc.diff(f"sum({n}(A x))", wrt="x")
    assert formula in "\n".join(d.steps)


@pytest.mark.parametrize("target", TARGETS)
def test_generated_code_spells_softmax_and_logsumexp(target):
    from matcalc.api import generate_source
    src = generate_source("logsumexp(W x) - y^T W x", wrt="x", target=target)
    for rec in ARRAY_RECORDS:
        assert rec.spelling(target) in src
    if target == "torch":
        assert "torch.softmax(" in src and "dim=0" in src


def test_generated_numpy_code_agrees_with_evaluate():
    rng = np.random.default_rng(2)
    every = {"W": rng.standard_normal((3, 4)), "x": rng.standard_normal(4), "y": rng.random(3)}
    for text, wrt in (("-y^T log(softmax(W x))", "W"), ("logsumexp(W x) + sum(relu(W x))", "x")):
        fn = matcalc.compile(text, wrt=wrt)
        vals = {k: v for k, v in every.items() if k in fn.params}
        f, g = fn(**vals)
        assert f == pytest.approx(matcalc.evaluate(text, vals), rel=1e-12)
        want = np.asarray(matcalc.diff(text, wrt=wrt).evaluate(vals))
        assert np.allclose(np.asarray(g).reshape(want.shape), want, rtol=1e-12, atol=1e-14)


def test_latex_renders_in_katex_and_reads_back():
    texts = ["softmax(W x)", "logsumexp(X)", "relu(W x + b)", "step(x)",
             "diag(softmax(x)) - softmax(x) softmax(x)^T"]
    for t in texts:
        e = matcalc.parse(t)
        assert matcalc.parse(e.latex()) == e, e.latex()
    texs = [matcalc.parse(t).latex() for t in texts]
    texs += [matcalc.diff(t, wrt=w).latex() for t, w in
             (("logsumexp(X)", "X"), ("-y^T log(softmax(W x))", "W"), ("sum(relu(A x))", "x"))]
    runner = katex_or_skip()
    bad = runner.Katex(texs).problems(texs)
    assert not bad, bad


def test_the_cli_checks_softmax_and_logsumexp():
    for expr, wrt, want in (("softmax(x)", "x", "diag(softmax(x)) - softmax(x) softmax(x)^T"),
                            ("logsumexp(x)", "x", "softmax(x)"),
                            ("||W2 relu(W1 x + b1) - y||^2", "W1", "step(")):
        p = subprocess.run([sys.executable, "-m", "matcalc", "diff", expr, "--wrt", wrt, "--check"],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert want in p.stdout and "ok" in p.stdout
    p = subprocess.run([sys.executable, "-m", "matcalc", "diff", "softmax(X)", "--wrt", "X",
                        "--let", "X=matrix(3,4)"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "softmax takes" in p.stderr and "Traceback" not in p.stderr


def test_rules_lists_them():
    p = subprocess.run([sys.executable, "-m", "matcalc", "rules"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    for n in ("d-softmax", "d-logsumexp", "d-relu", "d-step"):
        assert n in p.stdout
    assert set(ARRAY_FUNCTIONS) == {"softmax", "logsumexp"}


def test_exp_over_sum_of_exp_in_an_answer_prints_as_softmax():
    d = check_derivative("log(sum(exp(x)))", "x", f=lambda v: lse(v["x"]))
    assert str(d) == "softmax(x)"
    h = check_hessian("log(sum(exp(x)))", "x", f=lambda v: lse(v["x"]), allow_unsupported=False)
    assert str(h) == "diag(softmax(x)) - softmax(x) softmax(x)^T"
    d = check_derivative("log(sum(exp(W x)))", "W", f=lambda v: lse(v["W"] @ col(v["x"])))
    assert str(d) == "softmax(W x) x^T"
    d = check_derivative("b^T exp(A x) / sum(exp(A x))", "b",
                         f=lambda v: col(v["b"]) @ sm(v["A"] @ col(v["x"])))
    assert str(d) == "softmax(A x)"
    # only the very quotient: another denominator or power stays as written
    for t in ("y^T exp(x) / sum(exp(y))", "y^T exp(x) / sum(exp(x))^2"):
        assert "softmax" not in str(matcalc.diff(t, wrt="y"))


def test_sympy_is_given_softmax_and_logsumexp_written_out_and_reads_them_back():
    pytest.importorskip("sympy")
    from matcalc import interop
    rng = np.random.default_rng(5)
    vals = {"A": rng.standard_normal((3, 2)), "x": rng.standard_normal(2),
            "X": rng.standard_normal((2, 3)), "y": rng.random(3)}
    for text in ("softmax(A x)", "logsumexp(X)", "y^T log(softmax(A x))"):
        s, _ = interop.to_sympy(matcalc.parse(text))
        back = interop.from_sympy(s)
        got = matcalc.evaluate(str(back), {k: v for k, v in vals.items() if k in str(back)})
        want = matcalc.evaluate(text, {k: v for k, v in vals.items() if k in text})
        assert np.allclose(np.asarray(got, float), np.asarray(want, float), rtol=1e-12)
