"""A product beside a Kronecker product is taken inside it by the mixed-product property
(``kron_mixed_product``): (A ⊗ B)(C ⊗ D) = AC ⊗ BD, (x ⊗ B) M = x ⊗ BM,
M (xᵀ ⊗ D) = xᵀ ⊗ MD.  The Hessian of f(W x) in W, (x ⊗ I) M (xᵀ ⊗ I), is then
(x xᵀ) ⊗ M: before, the generated code formed x ⊗ I and multiplied n² × n by n × n²
matrices (n⁵ work against the n⁴ of the answer; softmax regression in
benchmarks/bench_eval.py).  Values agree with Derivative.evaluate, with the optimisation
off, and the Hessians with second differences of f (tests/helpers.py)."""
import numpy as np
import pytest

import matcalc
from cgtools import close, exprs, functions
from helpers import check_derivative, check_hessian, draw, fitting_sizes
from matcalc import codegen
from matcalc.codegen import ir

HESSIANS = [
    ("logsumexp(W x) - y^T W x", "W", None),
    ("-y^T log(softmax(W x))", "W", None),
    ("||W2 tanh(W1 x + b1) + b2 - y||^2", "W1", None),
    ("sum(sigmoid(A x))", "A", None),
    ("sum(exp(A x) .* c) + logsumexp(B A x)", "A", None),
]

GRADIENTS = [
    # a matrix beside a Kronecker product with a vector (the Hessians above also take
    # (x ⊗ M)(xᵀ ⊗ I) = x xᵀ ⊗ M, two Kronecker products)
    ("y^T (a ⊗ B) M z", "M", {"a": "vector(k)", "B": "matrix(n,p)", "M": "matrix(p,q)"}),
    ("y^T M (c^T ⊗ D) z", "M", {"c": "vector(k)", "D": "matrix(p,q)", "M": "matrix(n,p)"}),
    ("y^T (A ⊗ b) M z", "M", {"A": "matrix(m,p)", "b": "vector(k)", "M": "matrix(p,q)"}),
    ("y^T M (C ⊗ d^T) z", "M", {"C": "matrix(p,q)", "d": "vector(k)", "M": "matrix(n,p)"}),
]


def _args(d, values):
    return [values[d.wrt]] + [values[n] for n in d.symbols if n != d.wrt]


def _big_matmuls(fn):
    """Products of a formed Kronecker product (np.kron(...) @ ... or ... @ np.kron(...))."""
    out = []
    for n in exprs(fn):
        if isinstance(n, ir.Bin) and n.op == "@":
            for side in (n.left, n.right):
                if isinstance(side, ir.Call) and side.func.endswith("kron"):
                    out.append(n)
    return out


@pytest.mark.parametrize("expr, wrt, symbols", HESSIANS)
def test_hessian_of_a_product_with_x(expr, wrt, symbols):
    h = check_hessian(expr, wrt, symbols=symbols, allow_unsupported=False)
    fns, prog = functions(h)
    assert "kron_mixed_product" in prog.opts.fired
    assert not _big_matmuls(fns["hessian"]), codegen.generate(h)
    rng = np.random.default_rng(21)
    values = draw(h.symbols, rng, "any", fitting_sizes(h, rng))
    args = _args(h, values)
    got = codegen.load(codegen.generate(h))["hessian"](*args)
    assert close(got, h.evaluate(values), 1e-9)
    off = codegen.load(codegen.generate(h, optimizations={"kron_mixed_product": False}))["hessian"](*args)
    assert close(got, off, 1e-9)


@pytest.mark.parametrize("expr, wrt, symbols", GRADIENTS)
def test_products_beside_kronecker_products(expr, wrt, symbols):
    d = check_derivative(expr, wrt, symbols=symbols)          # against central differences
    _, prog = functions(d)
    assert "kron_mixed_product" in prog.opts.fired, codegen.generate(d)
    rng = np.random.default_rng(22)
    values = draw(d.symbols, rng, "any", fitting_sizes(d, rng))
    args = _args(d, values)
    fv, g = codegen.load(codegen.generate(d))["f_and_grad"](*args)
    assert close(fv, matcalc.evaluate(expr, values, symbols=symbols), 1e-9)
    assert close(g, d.evaluate(values), 1e-9)
    fv0, g0 = codegen.load(codegen.generate(d, optimizations={"kron_mixed_product": False}))["f_and_grad"](*args)
    assert close(fv, fv0, 1e-9) and close(g, g0, 1e-9)


@pytest.mark.parametrize("target", ["jax", "torch"])
def test_other_targets(target):
    pytest.importorskip(target)
    expr = "logsumexp(W x) - y^T W x"
    h = matcalc.hessian(expr, wrt="W")
    rng = np.random.default_rng(23)
    values = draw(h.symbols, rng, "any", fitting_sizes(h, rng))
    fn = matcalc.compile(expr, wrt="W", target=target, hessian=True)
    out = fn(values)
    assert close(np.asarray(out[2]), h.evaluate(values), 1e-9)
