"""An outer product with a constant row or column inside a matrix sum (a bias added to
every column, b 1ᵀ, or to every row, 1 cᵀ) is the broadcast b[:, None] / c[None, :]
(``ones_broadcast``): the n × n outer product is never formed (the two-layer MLP of
benchmarks/bench_eval.py made two of them, each a pass over an n × n array).  And a sum
starts with a positive term (W2 H + b - Y, not (-Y) + ...: no pass to negate Y).  The
generated values agree with Derivative.evaluate, the gradients with central
differences of f (tests/helpers.py), and with the optimisation off."""
import numpy as np
import pytest

import matcalc
from cgtools import close, exprs, functions
from helpers import check_derivative, check_hessian, draw, fitting_sizes
from matcalc import codegen
from matcalc.codegen import ir

MLP = "||W2 tanh(W1 X + b1 ones(n)^T) + b2 ones(n)^T - Y||_F^2"
MLP_SYMBOLS = {"W1": "matrix(n,p)", "X": "matrix(p,n)"}

CASES = [
    (MLP, "W1", MLP_SYMBOLS),
    (MLP, "b1", MLP_SYMBOLS),
    (MLP, "W2", MLP_SYMBOLS),
    ("||A X + b ones(n)^T||_F^2", "X", {"X": "matrix(p,n)"}),
    ("sum(exp(A X - ones(m) c^T))", "X", {"X": "matrix(p,m)"}),
    ("sum(sigmoid(3 A X - 2 b ones(n)^T + 5 ones(m) c^T))", "A", {"X": "matrix(p,n)"}),
    ("||A X + b (2 ones(n))^T - Y||_F^2", "X", {"X": "matrix(p,n)"}),
]


def _outers(fn):
    return [n for n in exprs(fn) if isinstance(n, ir.Call) and n.func.endswith(".outer")]


def _broadcasts(fn):
    return [n for n in exprs(fn) if isinstance(n, ir.Index) and ir.Const("None") in n.items]


def _args(d, values):
    return [values[d.wrt]] + [values[n] for n in d.symbols if n != d.wrt]


@pytest.mark.parametrize("expr, wrt, symbols", CASES)
def test_outer_with_ones_is_a_broadcast(expr, wrt, symbols):
    d = check_derivative(expr, wrt, symbols=symbols)          # against central differences
    fns, prog = functions(d)
    f_and_grad = fns["f_and_grad"]
    assert "ones_broadcast" in prog.opts.fired
    assert _broadcasts(f_and_grad) and not _outers(f_and_grad), codegen.generate(d)
    rng = np.random.default_rng(5)
    values = draw(d.symbols, rng, "any", fitting_sizes(d, rng))
    fv, g = codegen.load(codegen.generate(d))["f_and_grad"](*_args(d, values))
    assert close(fv, matcalc.evaluate(expr, values, symbols=symbols), 1e-10)
    assert close(g, d.evaluate(values), 1e-10)
    off = codegen.load(codegen.generate(d, optimizations={"ones_broadcast": False}))["f_and_grad"]
    fv0, g0 = off(*_args(d, values))
    assert close(fv, fv0, 1e-10) and close(g, g0, 1e-10)


def test_broadcast_in_the_hessian():
    h = check_hessian(MLP, "W1", symbols=MLP_SYMBOLS)           # against second differences
    rng = np.random.default_rng(6)
    values = draw(h.symbols, rng, "any", fitting_sizes(h, rng))
    ns = codegen.load(codegen.generate(h))
    assert close(ns["hessian"](*_args(h, values)), h.evaluate(values), 1e-9)


def test_positive_term_first():
    d = matcalc.diff(MLP, wrt="W1", symbols=MLP_SYMBOLS)
    src = codegen.generate(d)
    assert "(-Y)" not in src and "- Y" in src, src


def test_a_lone_outer_product_with_ones_is_formed():
    # no term of the sum has the full shape: the broadcast would have the wrong shape
    d = matcalc.diff("sum(exp(b ones(n)^T + ones(m) c^T) .* A)", wrt="b")
    fns, prog = functions(d)
    rng = np.random.default_rng(7)
    values = draw(d.symbols, rng, "any", fitting_sizes(d, rng))
    fv, g = codegen.load(codegen.generate(d))["f_and_grad"](*_args(d, values))
    assert close(g, d.evaluate(values), 1e-10)
    assert np.shape(g) == np.shape(values["b"])


@pytest.mark.parametrize("target", ["jax", "torch"])
def test_broadcast_in_other_targets(target):
    pytest.importorskip(target)
    d = matcalc.diff(MLP, wrt="W1", symbols=MLP_SYMBOLS)
    src = codegen.generate(d, target=target)
    assert "b1[:, None]" in src and "outer" not in src
    rng = np.random.default_rng(8)
    values = draw(d.symbols, rng, "any", fitting_sizes(d, rng))
    fn = matcalc.compile(MLP, wrt="W1", symbols=MLP_SYMBOLS, target=target)
    fv, g = fn(values)
    assert close(np.asarray(g), d.evaluate(values), 1e-9)


def _outer_helper():
    """The generated module's _outer, run as the generated code runs it."""
    from matcalc.codegen import backends
    scope = {}
    exec(backends.Backend.PRELUDE + "\nimport numpy as np\n" + backends.HELPERS["numpy"]["_outer"], scope)
    return scope["_outer"], scope["_blas"]


# every path of _outer: gemm at once (<= 4 MiB), ger into zeros (<= 8 MiB), gemm a block
# of rows at a time (<= 32 MiB; one row per block where a row is past 16384 entries), ger
# into fresh zero pages (> 32 MiB); float32 halves the bytes
@pytest.mark.parametrize("n, m", [(1, 1), (3, 5), (700, 700), (1000, 1000), (1200, 1200), (1500, 1500), (70, 50000),
                                  (2100, 2100), (1, 1 << 21)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_outer_helper_every_path(n, m, dtype):
    outer, blas = _outer_helper()
    rng = np.random.default_rng(n * 7 + m)
    a, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(m).astype(dtype)
    a[0], b[-1] = np.inf, np.nan                      # as np.outer: inf * nan, inf * x
    got = outer(a, b)
    want = np.outer(a, b)
    assert got.shape == (n, m) and got.dtype == dtype
    np.testing.assert_array_equal(got, want)          # one product per entry: exact
    if blas is not None:
        np.testing.assert_array_equal(outer(a[::2], b[::-1]), np.outer(a[::2], b[::-1]))   # strided


def test_outer_helper_falls_back_to_numpy():
    outer, _ = _outer_helper()
    a, b = np.arange(3), np.arange(4.0)               # an integer vector: np.outer's types
    np.testing.assert_array_equal(outer(a, b), np.outer(a, b))
    np.testing.assert_array_equal(outer(np.zeros(0), b), np.outer(np.zeros(0), b))
