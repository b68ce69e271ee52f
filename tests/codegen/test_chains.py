"""Long product chains: tr(A1 X A2 X … Ak X) and its gradient, a sum of k rotations of
a chain of 2k - 1 factors.  Past ``chains.LONG_CHAIN`` factors the chain is not searched
(O(k³)); it takes the longest product at hand at either end and folds the rest from the
side next to it, so the generated code makes O(k) products, not O(k²), and generation
stays fast (tr(A1 X … A64 X) took 2-3 s and made 8,000 products)."""
import numpy as np
import pytest

import matcalc
from cgtools import close, exprs, functions
from helpers import central, direction
from matcalc.codegen import ir
from matcalc.codegen.chains import LONG_CHAIN


def _problem(k, n=4):
    expr = "tr(" + " ".join(f"A{i} X" for i in range(1, k + 1)) + ")"
    symbols = {"X": f"matrix({n},{n})", **{f"A{i}": f"matrix({n},{n})" for i in range(1, k + 1)}}
    return expr, symbols


def _matmuls(d):
    fns, _ = functions(d)
    return sum(1 for n in exprs(fns["f_and_grad"]) if isinstance(n, ir.Bin) and n.op == "@")


@pytest.mark.parametrize("k", [3, 10, 13, 30, 64])
def test_long_chains_are_right(k):
    expr, symbols = _problem(k)
    d = matcalc.diff(expr, wrt="X", symbols=symbols)
    rng = np.random.default_rng(k)
    values = {name: rng.standard_normal((4, 4)) * 0.45 for name in symbols}
    fv, g = matcalc.compile(expr, wrt="X", symbols=symbols)(values)
    assert close(fv, matcalc.evaluate(expr, values), 1e-10)
    assert close(g, d.evaluate(values), 1e-10)
    # the gradient against central differences of f, along a random direction
    V = direction(rng, "matrix", values["X"])
    fd = central(lambda v: matcalc.evaluate(expr, v), values, "X", V)
    assert abs(float(np.sum(g * V)) - float(fd)) <= 1e-6 * max(1.0, abs(float(fd)))


def test_long_chains_make_linearly_many_products():
    counts = {}
    for k in (16, 32, 64):
        expr, symbols = _problem(k)
        assert 2 * k - 1 > LONG_CHAIN or k == 16
        counts[k] = _matmuls(matcalc.diff(expr, wrt="X", symbols=symbols))
    # f and a gradient of k terms: about 5 products per factor, and linear in k
    assert counts[64] <= 6 * 64, counts
    assert counts[64] <= 2.3 * counts[32], counts


def test_identity_in_a_sum_that_multiplies_is_not_formed():
    # (I + A) x applied term by term was A x + np.eye(n) @ x
    expr = "tr(X^T A X) + x^T (I(n) + A) x + y^T (2 I(n) - B) x"
    d = matcalc.diff(expr, wrt="x")
    fns, _ = functions(d)
    eyes = [n for n in exprs(fns["f_and_grad"]) if isinstance(n, ir.Call) and n.func.endswith(".eye")]
    assert not eyes
    rng = np.random.default_rng(8)
    values = {"X": rng.standard_normal((3, 2)), "A": rng.standard_normal((3, 3)), "B": rng.standard_normal((3, 3)),
              "x": rng.standard_normal(3), "y": rng.standard_normal(3)}
    fv, g = matcalc.compile(expr, wrt="x")(values)
    assert close(fv, matcalc.evaluate(expr, values), 1e-12) and close(g, d.evaluate(values), 1e-12)
    V = direction(rng, "vector", values["x"])
    fd = central(lambda v: matcalc.evaluate(expr, v), values, "x", V)
    assert abs(float(g @ V) - float(fd)) <= 1e-6 * max(1.0, abs(float(fd)))


def test_long_chain_with_vectors_and_inverses():
    # a chain past LONG_CHAIN with a row and a column at its ends and solves inside
    k = 14
    expr = "x^T " + " ".join(f"A{i} S^-1" if i % 5 == 0 else f"A{i} X" for i in range(1, k + 1)) + " x"
    symbols = {"X": "matrix(3,3)", "S": "matrix(3,3)", **{f"A{i}": "matrix(3,3)" for i in range(1, k + 1)}}
    d = matcalc.diff(expr, wrt="X", symbols=symbols)
    rng = np.random.default_rng(1)
    values = {"x": rng.standard_normal(3), "X": rng.standard_normal((3, 3)) * 0.5,
              "S": rng.standard_normal((3, 3)) + 3 * np.eye(3),
              **{f"A{i}": rng.standard_normal((3, 3)) * 0.5 for i in range(1, k + 1)}}
    fv, g = matcalc.compile(expr, wrt="X", symbols=symbols)(values)
    assert close(fv, matcalc.evaluate(expr, values), 1e-10) and close(g, d.evaluate(values), 1e-10)
    V = direction(rng, "matrix", values["X"])
    fd = central(lambda v: matcalc.evaluate(expr, v), values, "X", V)
    assert abs(float(np.sum(g * V)) - float(fd)) <= 1e-6 * max(1.0, abs(float(fd)))
