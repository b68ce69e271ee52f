"""Issue 10's items that live in the code generator, each checked numerically."""
import importlib.util

import numpy as np
import pytest

import matcalc
from cgtools import close
from matcalc import codegen


def test_constant_folding_follows_the_evaluator(capsys):
    # softplus(1000) overflowed math.exp at generation time (exit 3); NumPy's logaddexp
    # gives 1000, as Derivative.evaluate does
    from matcalc.cli import main
    assert main(["codegen", "softplus(1000) a^T x", "--wrt", "x"]) == 0
    ns = codegen.load(capsys.readouterr().out)
    a, x = np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.1, 2.0])
    d = matcalc.diff("softplus(1000) a^T x", wrt="x")
    fv, g = ns["f_and_grad"](x, a)
    assert close(fv, matcalc.evaluate("softplus(1000) a^T x", {"a": a, "x": x}))
    assert close(g, d.evaluate({"a": a, "x": x})) and close(g, 1000.0 * a)
    # exp(1000) is inf in NumPy, and so in the code; sigmoid(-1000) is 0, not an error
    for expr, want in [("sigmoid(-1000) x^T x", 0.0), ("exp(-1000) x^T x", 0.0),
                       ("log(-1) x^T x", float("nan")), ("sqrt(4) x^T x", 2.0)]:
        d = matcalc.diff(expr, wrt="x")
        fv, g = codegen.load(d.to_code())["f_and_grad"](x)
        assert np.allclose(g, want * 2 * x, equal_nan=True), expr
        if np.isnan(want):          # evaluate gives no NaN for a derivative: it says why
            with pytest.raises(matcalc.EvaluationError, match=r"log\(-1\) has no finite value"):
                d.evaluate({"x": x})
            continue
        assert np.allclose(g, d.evaluate({"x": x})), expr


EXTENDED = [
    ("(exp(700) (exp(-700) z))^T (exp(700) (exp(-700) z))", "z", 1.0),
    ("exp(800) exp(-790) z^T z", "z", float(np.exp(10.0))),
    ("1e200 1e200 1e-400 z^T A z", "z", 1.0),
    ("(exp(400) z)^T (exp(-400) A z) + exp(710) exp(-709) sum(z)", "z", 1.0),
]


@pytest.mark.parametrize("expr, wrt, scale", EXTENDED)
def test_constant_products_past_the_float_range(expr, wrt, scale):
    # products of huge and tiny constants: each factor alone overflows or underflows (the
    # code gave inf * 0 = nan), their product does not; the code folds them at generation
    # time as the evaluator computes them
    from helpers import central, direction
    rng = np.random.default_rng(5)
    z = rng.standard_normal(3)
    A = rng.standard_normal((3, 3))
    values = {"z": z, "A": A} if "A" in expr else {"z": z}
    d = matcalc.diff(expr, wrt=wrt)
    fv, g = matcalc.compile(expr, wrt=wrt)(values)
    want = d.evaluate(values)
    assert np.all(np.isfinite(g)) and close(g, want, 1e-12), (g, want)
    assert close(fv, matcalc.evaluate(expr, values), 1e-12)
    V = direction(rng, "vector", z)
    fd = central(lambda v: matcalc.evaluate(expr, v), values, wrt, V)
    assert abs(float(g @ V) - float(fd)) <= 1e-6 * max(1.0, abs(float(fd)))
    if "A" not in expr and "sum" not in expr:
        assert close(g, 2 * scale * z, 1e-12)


@pytest.mark.parametrize("target, module", [("jax", "jax"), ("torch", "torch")])
def test_missing_target_library_says_what_to_install(monkeypatch, target, module):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    with pytest.raises(matcalc.MatcalcError, match=f"needs .*pip install {module}"):
        matcalc.compile("x^T x", wrt="x", target=target)


def test_symbol_called_self():
    f = matcalc.compile("self^T self", wrt="self")
    x = np.array([1.0, -2.0, 3.0])
    for fv, g in (f(x), f(self=x), f({"self": x})):
        assert close(fv, x @ x) and close(g, 2 * x)
    d = matcalc.diff("self^T A self", wrt="self")
    A = np.arange(9.0).reshape(3, 3)
    fv, g = matcalc.compile("self^T A self", wrt="self")(self=x, A=A)
    assert close(g, d.evaluate({"self": x, "A": A})) and close(g, (A + A.T) @ x)


TRACE_OF_ELEMENTWISE = [
    ("tr(log(X))", None), ("tr(log(X))", {"X": "diagonal"}), ("tr(X .^ -1)", None),
    ("tr(sqrt(X))", None), ("tr(abs(X))", None), ("tr(X .^ 0.5)", {"X": "diagonal"}),
    ("sum(abs(X))", {"X": "diagonal"}), ("tr(log(X) .* A) + sum(diag(sqrt(X)))", None),
]


@pytest.mark.parametrize("expr, symbols", TRACE_OF_ELEMENTWISE)
def test_trace_of_elementwise_function_at_zeros(expr, symbols):
    # issue 10: f and its gradient are finite where X has zeros off its diagonal (or is
    # diagonal); the code took log, 1/x, sqrt of every entry (-inf, a warning) and the
    # gradients were I ./ X (0/0)
    import warnings
    from helpers import central
    X = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 0.5]])
    A = np.arange(9.0).reshape(3, 3) / 4
    values = {"X": X, "A": A} if "A" in expr else {"X": X}
    d = matcalc.diff(expr, wrt="X", symbols=symbols)
    fn = matcalc.compile(expr, wrt="X", symbols=symbols)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fv, g = fn(values)
    assert np.all(np.isfinite(g)) and np.isfinite(fv)
    assert close(fv, matcalc.evaluate(expr, values, symbols=symbols), 1e-12)
    assert close(g, d.evaluate(values), 1e-12)
    # along a diagonal direction (f is defined there; off it, log of a negative entry)
    V = np.diag([0.3, -0.2, 0.1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fd = central(lambda v: matcalc.evaluate(expr, v, symbols=symbols), values, "X", V)
    assert abs(float(np.sum(g * V)) - float(fd)) <= 1e-6 * max(1.0, abs(float(fd)))
