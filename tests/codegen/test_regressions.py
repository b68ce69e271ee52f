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
        ev = d.evaluate({"x": x})
        assert np.allclose(g, ev, equal_nan=True) and np.allclose(g, want * 2 * x, equal_nan=True), expr


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
