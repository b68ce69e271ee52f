"""The NumPy code writes an outer product a bᵀ with BLAS's ger into a zero matrix
(``_outer``; np.outer's broadcast multiply ran 2-4x slower at n = 1000 and 2000, the
gradient of softmax regression is one).  The helper gives np.outer's values, type and
C order in float64 and float32, falls back to np.outer for mixed types and empty
vectors, and the gradients that use it agree with Derivative.evaluate and central
differences (tests/helpers.py)."""
import numpy as np
import pytest

import matcalc
from cgtools import calls, close, functions
from helpers import check_derivative, draw, fitting_sizes
from matcalc import codegen

CASES = [
    ("logsumexp(W x) - y^T W x", "W", None),
    ("a^T X b", "X", None),
    ("logdet(S) + (x - mu)^T S^-1 (x - mu)", "S", {"S": "spd"}),
]


def _helper():
    ns = codegen.load(codegen.generate(matcalc.diff("a^T X b", wrt="X")))
    return ns["_outer"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m, n", [(1, 1), (5, 3), (3, 5), (200, 300)])
def test_outer_helper_is_np_outer(dtype, m, n):
    rng = np.random.default_rng(m * n)
    a, b = rng.standard_normal(m).astype(dtype), rng.standard_normal(n).astype(dtype)
    got = _helper()(a, b)
    want = np.outer(a, b)
    assert got.dtype == want.dtype and got.shape == want.shape and got.flags.c_contiguous
    assert np.allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=0)


def test_outer_helper_falls_back():
    outer = _helper()
    a, b = np.arange(3.0), np.arange(4, dtype=np.float32)
    assert np.array_equal(outer(a, b), np.outer(a, b)) and outer(a, b).dtype == np.float64
    assert outer(np.zeros(0), np.ones(3)).shape == (0, 3)
    assert np.array_equal(outer(np.arange(3), np.arange(2)), np.outer(np.arange(3), np.arange(2)))


@pytest.mark.parametrize("expr, wrt, symbols", CASES)
def test_gradients_with_an_outer_product(expr, wrt, symbols):
    d = check_derivative(expr, wrt, symbols=symbols)
    fns, _ = functions(d)
    assert calls(fns["f_and_grad"], "_outer") >= 1 and calls(fns["f_and_grad"], "np.outer") == 0
    rng = np.random.default_rng(41)
    values = draw(d.symbols, rng, "any", fitting_sizes(d, rng))
    args = [values[d.wrt]] + [values[n] for n in d.symbols if n != d.wrt]
    fv, g = codegen.load(codegen.generate(d))["f_and_grad"](*args)
    assert close(fv, matcalc.evaluate(expr, values, symbols=symbols), 1e-10)
    assert close(g, d.evaluate(values), 1e-10)
