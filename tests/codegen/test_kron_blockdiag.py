"""(A ⊗ I) M (C ⊗ I) with a block-diagonal M (``kron_blockdiag``): the Hessian of a layer
f(W X) in W over a batch X.  M (diag(vec ·), I ⊗ B, their products and sums) is computed
as the stack of its diagonal blocks and the whole product as one matrix product by it,
never formed n² × n² (before: M formed and multiplied by X ⊗ I from both sides, two
products of (mk)² × m; the MLP Hessian of benchmarks/bench_eval.py ran 1.4-2.3× behind
the hand-written einsum).  Hessians are checked against second differences of f
(tests/helpers.py), the generated code against Derivative.evaluate, and with the
optimisation on and off."""
import numpy as np
import pytest

import matcalc
from cgtools import close, exprs, functions
from helpers import check_hessian, draw, fitting_sizes
from matcalc import codegen
from matcalc.codegen import ir

BATCH = {"W": "matrix(p,n)", "X": "matrix(n,q)"}

HESSIANS = [
    # the MLP of bench_eval, every size different (a transposed block would show)
    ("||W2 tanh(W1 X + b1 ones(q)^T) + b2 ones(q)^T - Y||_F^2", "W1",
     {"W1": "matrix(p,n)", "X": "matrix(n,q)"}),
    ("||B tanh(W X)||_F^2", "W", BATCH),
    # rectangular blocks inside the product: (I ⊗ Bᵀ) ... (I ⊗ B), B r × p
    ("sum(log(1 + exp(B sigmoid(W X))))", "W", BATCH),
    # the same with a scalar symbol scaling the whole Hessian
    ("c ||B tanh(W X) - Y||_F^2", "W", {**BATCH, "c": "scalar"}),
]


def _args(d, values):
    return [values[d.wrt]] + [values[n] for n in d.symbols if n != d.wrt]


def _formed_kron_products(fn):
    """Products with a formed Kronecker product (np.kron, _kron_identity) on one side."""
    out = []
    for n in exprs(fn):
        if isinstance(n, ir.Bin) and n.op == "@":
            for side in (n.left, n.right):
                if isinstance(side, ir.Call) and (side.func.endswith("kron") or "kron_identity" in side.func):
                    out.append(n)
    return out


def _formed_middles(fn):
    """Calls that form a factor of M: diag(vec ·) as np.diag, I ⊗ B as _kron_identity."""
    return [n for n in exprs(fn) if isinstance(n, ir.Call) and n.func in ("np.diag", "_kron_identity")]


@pytest.mark.parametrize("expr, wrt, symbols", HESSIANS)
def test_block_diagonal_middle(expr, wrt, symbols):
    h = check_hessian(expr, wrt, symbols=symbols, allow_unsupported=False)
    fns, prog = functions(h)
    assert "kron_blockdiag" in prog.opts.fired, codegen.generate(h)
    src = codegen.generate(h)
    # neither M (np.diag of vec, I ⊗ B) nor a Kronecker factor is formed
    assert not _formed_middles(fns["hessian"]), src
    assert not _formed_kron_products(fns["hessian"]), src
    rng = np.random.default_rng(31)
    for _ in range(2):
        values = draw(h.symbols, rng, "any", fitting_sizes(h, rng))
        args = _args(h, values)
        mod = codegen.load(src)
        got = mod["hessian"](*args)
        assert close(got, h.evaluate(values), 1e-9)
        off = codegen.load(codegen.generate(h, optimizations={"kron_blockdiag": False}))["hessian"](*args)
        assert close(got, off, 1e-9)
        # f_grad_hessian takes the same lowering
        assert close(mod["f_grad_hessian"](*args)[2], got, 1e-12)


@pytest.mark.parametrize("expr", ["sum(exp(W X))", "||B W X||_F^2 + sum(W X)"])
def test_declines_where_other_rewrites_apply(expr):
    # diagonal blocks only ((X ⊗ I) diag(vec E) (Xᵀ ⊗ I): diag_broadcast, kron_apply), or
    # a product the engine already takes apart
    h = check_hessian(expr, "W", symbols=BATCH, allow_unsupported=False)
    _, prog = functions(h)
    assert "kron_blockdiag" not in prog.opts.fired, str(h)
    rng = np.random.default_rng(33)
    values = draw(h.symbols, rng, "any", fitting_sizes(h, rng))
    got = codegen.load(codegen.generate(h))["hessian"](*_args(h, values))
    assert close(got, h.evaluate(values), 1e-9)


@pytest.mark.parametrize("target", ["jax", "torch"])
def test_other_targets(target):
    pytest.importorskip(target)
    expr, wrt, symbols = HESSIANS[0]
    h = matcalc.hessian(expr, wrt=wrt, symbols=symbols)
    _, prog = functions(h, target)
    assert "kron_blockdiag" in prog.opts.fired
    rng = np.random.default_rng(32)
    values = draw(h.symbols, rng, "any", fitting_sizes(h, rng))
    fn = matcalc.compile(expr, wrt=wrt, symbols=symbols, target=target, hessian=True)
    out = fn(values)
    assert close(np.asarray(out[2]), h.evaluate(values), 1e-9)
