"""softmax(z) and logsumexp(z) of one vector z, both needed (the value and the gradient
of softmax regression's cross-entropy logsumexp(W x) - yᵀ W x), come from one
exp(z - max z) in the NumPy code (``softmax_logsumexp``), not from two helpers that each
take the maximum, the exp and the sum.  Values agree with Derivative.evaluate, with the
optimisation off, and gradients with central differences (tests/helpers.py); an
infinite entry gives what the two kernels give apart."""
import numpy as np
import pytest

import matcalc
from cgtools import calls, close, functions
from helpers import check_derivative, draw, fitting_sizes
from matcalc import codegen

CASES = [
    ("logsumexp(W x) - y^T W x", "W", None),
    ("logsumexp(W x) - y^T W x", "x", None),
    ("logsumexp(x) + sum(softmax(x) .* a)", "x", None),
    ("2 logsumexp(A x + b) - y^T (A x + b)", "b", None),
]


def _args(d, values):
    return [values[d.wrt]] + [values[n] for n in d.symbols if n != d.wrt]


@pytest.mark.parametrize("expr, wrt, symbols", CASES)
def test_one_exp_for_both(expr, wrt, symbols):
    d = check_derivative(expr, wrt, symbols=symbols)
    fns, prog = functions(d)
    f_and_grad = fns["f_and_grad"]
    assert "softmax_logsumexp" in prog.opts.fired
    assert calls(f_and_grad, "_softmax_logsumexp") == 1
    assert calls(f_and_grad, "_softmax") == 0 and calls(f_and_grad, "_logsumexp") == 0
    rng = np.random.default_rng(31)
    values = draw(d.symbols, rng, "any", fitting_sizes(d, rng))
    args = _args(d, values)
    fv, g = codegen.load(codegen.generate(d))["f_and_grad"](*args)
    assert close(fv, matcalc.evaluate(expr, values, symbols=symbols), 1e-10)
    assert close(g, d.evaluate(values), 1e-10)
    fv0, g0 = codegen.load(codegen.generate(d, optimizations={"softmax_logsumexp": False}))["f_and_grad"](*args)
    assert close(fv, fv0, 1e-12) and close(g, g0, 1e-12)


def test_only_one_needed_keeps_its_helper():
    d = matcalc.diff("logsumexp(W x)", wrt="x")      # the gradient needs softmax only: f logsumexp
    fns, _ = functions(d)
    assert calls(fns["f_and_grad"], "_softmax_logsumexp") == 1
    h = matcalc.hessian("logsumexp(W x)", wrt="x")
    fns, _ = functions(h)
    assert calls(fns["hessian"], "_softmax_logsumexp") == 0 and calls(fns["hessian"], "_softmax") == 1


def test_large_and_infinite_entries_as_the_kernels_give_them():
    ns = codegen.load(codegen.generate(matcalc.diff("logsumexp(x) + sum(softmax(x) .* a)", wrt="x")))
    helper = ns["_softmax_logsumexp"]
    from matcalc.operators.kernels import _logsumexp, _softmax
    for z in (np.array([1000.0, 999.0, -5.0]), np.array([-np.inf, 0.0, 1.0]),
              np.array([np.inf, 0.0]), np.array([np.nan, 1.0]), np.array([-np.inf, -np.inf])):
        with np.errstate(invalid="ignore"):
            s, l = helper(z)
            want_s, want_l = _softmax(z), _logsumexp(z)
        np.testing.assert_array_equal(np.isnan(s), np.isnan(want_s))
        assert np.allclose(s[~np.isnan(s)], want_s[~np.isnan(want_s)], rtol=1e-15, atol=0)
        assert (np.isnan(l) and np.isnan(want_l)) or l == pytest.approx(want_l, rel=1e-15)
