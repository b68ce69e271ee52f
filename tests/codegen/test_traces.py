"""Traces of products never form the product (issue 16, part 3), in every pattern the
lowering meets: tr(AᵀB), tr(AB) with either factor transposed, sums as factors,
quadratic forms, traces inside sums, an operator (an inverse, diag(v)) among the factors,
the Gaussian negative log-likelihood of samples (its gradient in μ computed
np.trace(t2.T @ t3) before); the diagonal of a product is not formed either; and a sum
of Kronecker products is written into one buffer (kron_sum).  Each derivative's values
agree with Derivative.evaluate and with central differences of f."""
import numpy as np
import pytest

import matcalc
from cgtools import close, exprs, functions
from helpers import central, direction, draw, fitting_sizes, parse_kind, vecF
from matcalc import codegen
from matcalc.codegen import ir

TRACES = [
    ("tr(A^T B)", "A", None),
    ("tr(A B)", "A", None),
    ("tr(A^T B^T)", "A", None),
    ("tr(A B^T)", "A", None),
    ("tr(A B C) + 2 tr(B^T A^T)", "A", None),
    ("tr((A + B) (C + D))", "A", None),
    ("tr((A + B)^T (C - D)^T)", "A", None),
    ("tr(A (I(n) + B))", "A", None),
    ("x^T A x", "x", None),
    ("x^T A^T A x + y^T (A + B) x", "x", None),
    ("tr(A X) + tr(B X^T) - 3 tr(X^T C X)", "X", None),
    ("tr(diag(v) A B)", "v", None),
    ("tr(diag(v) A)", "v", None),
    ("tr(A diag(v) B C)", "A", None),
    ("tr(X^2) + tr(X^3 A) + tr(X^4)", "X", None),
    ("N tr(S^-1 A B)", "A", {"S": "spd", "N": "scalar"}),
    ("tr((X - M)^T S^-1 (X - M))", "M", {"S": "spd"}),
    ("N logdet(S) + tr(S^-1 (X - mu e^T) (X - mu e^T)^T)", "mu",
     {"S": "spd", "N": "scalar", "X": "matrix(d,k)"}),
    ("N logdet(S) + tr(S^-1 (X - mu e^T) (X - mu e^T)^T)", "S",
     {"S": "spd", "N": "scalar", "X": "matrix(d,k)"}),
]


def _traces_of_products(fn):
    """np.trace calls (of anything: each one is a product formed to take its trace) and
    np.diagonal calls of a product."""
    out = []
    for n in exprs(fn):
        if isinstance(n, ir.Call) and n.func.endswith(".trace"):
            out.append(n)
        if isinstance(n, ir.Call) and n.func.endswith(".diagonal") and _has_matmul(n):
            out.append(n)
    return out


def _has_matmul(node):
    stack = [node]
    while stack:
        m = stack.pop()
        if isinstance(m, ir.Bin) and m.op == "@":
            return True
        stack.extend(m.children())
    return False


@pytest.mark.parametrize("expr, wrt, symbols", TRACES)
def test_traces_without_the_product(expr, wrt, symbols):
    d = matcalc.diff(expr, wrt=wrt, symbols=symbols)
    fns, _ = functions(d)
    assert not _traces_of_products(fns["f_and_grad"]), codegen.generate(d)
    rng = np.random.default_rng(11)
    values = draw(d.symbols, rng, "any", fitting_sizes(d, rng))
    fv, g = matcalc.compile(expr, wrt=wrt, symbols=symbols)(values)
    assert close(fv, matcalc.evaluate(expr, values, symbols=symbols), 1e-9)
    assert close(g, d.evaluate(values), 1e-9)
    kind, _ = parse_kind(d.symbols[wrt])
    V = direction(rng, kind, values[wrt])
    fd = central(lambda v: matcalc.evaluate(expr, v, symbols=symbols), values, wrt, V)
    assert abs(float(np.sum(np.asarray(g) * V)) - float(fd)) <= 1e-6 * max(1.0, abs(float(fd)))


@pytest.mark.parametrize("expr, wrt, symbols", TRACES)
def test_trace_product_off_computes_the_same(expr, wrt, symbols):
    d = matcalc.diff(expr, wrt=wrt, symbols=symbols)
    rng = np.random.default_rng(12)
    values = draw(d.symbols, rng, "any", fitting_sizes(d, rng))
    names = [d.wrt] + [n for n in d.symbols if n != d.wrt]
    args = [values[n] for n in names]
    on = codegen.load(codegen.generate(d))["f_and_grad"](*args)
    off = codegen.load(codegen.generate(d, optimizations={"trace_product": False}))["f_and_grad"](*args)
    assert close(on[0], off[0], 1e-10) and close(on[1], off[1], 1e-10)


def test_kronecker_sum_in_one_buffer():
    expr = "logdet(S) + (x - mu)^T S^-1 (x - mu)"
    h = matcalc.hessian(expr, wrt="S", symbols={"S": "spd"})
    fns, prog = functions(h)
    body = fns["hessian"]
    kron = [n for n in exprs(body) if isinstance(n, ir.Call) and n.func.endswith("kron")]
    ksum = [n for n in exprs(body) if isinstance(n, ir.Call) and n.func == "_kron_sum"]
    assert not kron and len(ksum) == 1 and "kron_sum" in prog.opts.fired
    rng = np.random.default_rng(3)
    n = 4
    M = rng.standard_normal((n, n))
    S, x, mu = M @ M.T + n * np.eye(n), rng.standard_normal(n), rng.standard_normal(n)
    ns = codegen.load(h.to_code())
    H = ns["hessian"](S, x, mu)
    assert close(H, h.evaluate({"S": S, "x": x, "mu": mu}), 1e-10)
    off = codegen.load(codegen.generate(h, optimizations={"kron_sum": False}))["hessian"](S, x, mu)
    assert close(H, off, 1e-12)
    # the Hessian against central differences of the generated gradient, along symmetric V
    V = rng.standard_normal((n, n))
    V = V + V.T
    grad = lambda vals: ns["f_and_grad"](vals["S"], x, mu)[1]
    fd = central(grad, {"S": S}, "S", V)
    assert close(H @ vecF(V), vecF(fd), 1e-6)
    # float32: the buffer keeps the type
    H32 = codegen.load(h.to_code(dtype="float32"))["hessian"](S, x, mu)
    assert H32.dtype == np.float32 and np.allclose(H32, H, rtol=1e-3, atol=1e-4 * np.abs(H).max())


@pytest.mark.parametrize("p, q, r, s", [(1, 1, 1, 1), (3, 2, 4, 5), (20, 20, 20, 20), (300, 2, 3, 40), (2, 70, 70, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_kron_sum_helper_every_shape_and_block(p, q, r, s, dtype):
    """_kron_sum against the sum of np.kron: shapes that are not square, a block of A's
    rows at a time (300 rows of 2 x (3 x 40): several blocks; 2 x 70 and 70 x 3: one row
    per block), the type of the matrices kept (integers with float coefficients: float)."""
    from matcalc.codegen import backends
    scope = {}
    exec("import numpy as np\n" + backends.HELPERS["numpy"]["_kron_sum"], scope)
    rng = np.random.default_rng(p + q + r + s)
    mats = [(rng.standard_normal((p, q)) * 4).astype(dtype) for _ in range(3)]
    mbts = [(rng.standard_normal((r, s)) * 4).astype(dtype) for _ in range(3)]
    terms = [(1.0, mats[0], mbts[0]), (-2.5, mats[1], mbts[1]), (0.5, mats[2], mbts[2])]
    got = scope["_kron_sum"](terms)
    want = sum(c * np.kron(a.astype(np.float64), b.astype(np.float64)) for c, a, b in terms)
    assert got.shape == (p * r, q * s)
    assert got.dtype == (np.float32 if dtype == np.float32 else np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    assert np.max(np.abs(got - want), initial=0.0) <= tol * max(1.0, float(np.max(np.abs(want))))


def _commutation(m, n):
    """K(m,n) as a matrix: K vec(X) = vec(Xᵀ) for an m×n X (vec stacks columns)."""
    K = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            K[i * n + j, j * m + i] = 1.0
    return K


@pytest.mark.parametrize("m, n, c", [(1, 1, 1), (2, 3, 4), (3, 2, 5), (40, 40, 1600), (5, 7, 20000)])
@pytest.mark.parametrize("a, b", [(1.0, 1.0), (0.5, 0.5), (2.0, -0.25)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("right", [False, True])
def test_perm_sum_helper(m, n, c, a, b, dtype, right):
    """_perm_sum(x, a, b, m, n) = a x + b K(m,n) x, and with right=True a x + b x K(m,n),
    K(m,n) the commutation matrix (checked against vec(Xᵀ) first), for m ≠ n, one block
    or many (40 x 40 x 1600: 512 KiB blocks; 7 x 20000: a row per block), a = b and not,
    float32 kept."""
    from matcalc.codegen import backends
    scope = {}
    exec("import numpy as np\n" + backends.HELPERS["numpy"]["_perm_sum"], scope)
    rng = np.random.default_rng(m * 100 + n + c)
    X = rng.standard_normal((m, n))
    K = _commutation(m, n)
    assert np.array_equal(K @ X.reshape(-1, order="F"), X.T.reshape(-1, order="F"))
    x = rng.standard_normal((c, m * n) if right else (m * n, c)).astype(dtype)
    got = scope["_perm_sum"](x, a, b, m, n, right=right)
    x64 = x.astype(np.float64)
    want = a * x64 + b * (x64 @ K if right else K @ x64)
    assert got.shape == x.shape and got.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-14
    assert np.max(np.abs(got - want)) <= tol * max(1.0, float(np.max(np.abs(want))))


@pytest.mark.parametrize("expr, wrt, symbols", [
    ("logdet(S) + (x - mu)^T S^-1 (x - mu)", "S", {"S": "spd"}),
    ("logdet(S)", "S", {"S": "spd"}),
    ("tr(S^-1 A)", "S", {"S": "spd"}),                  # (I + K) on both sides
    ("tr(A S B S)", "S", {"S": "symmetric"}),
])
def test_symmetriser_in_one_pass(expr, wrt, symbols):
    """0.5 (I + K) H, the Hessian in a symmetric matrix, as one _perm_sum with the 0.5
    inside (no separate scale), equal to evaluate, to the code without perm_sum, and to
    central differences of the generated gradient along a symmetric direction."""
    h = matcalc.hessian(expr, wrt=wrt, symbols=symbols)
    fns, prog = functions(h)
    calls = [x for x in exprs(fns["hessian"]) if isinstance(x, ir.Call) and x.func == "_perm_sum"]
    sides = 2 if "(I(n*n) + K(n,n))" in str(h)[str(h).index(")") + 1:] else 1   # (I + K) H (I + K)
    assert len(calls) == sides and "perm_sum" in prog.opts.fired, codegen.generate(h)
    assert not [x for x in exprs(fns["hessian"]) if isinstance(x, ir.Call) and x.func.endswith("swapaxes")]
    rng = np.random.default_rng(5)
    n = 4
    vals = {}
    for name in h.symbols:
        kind = parse_kind(h.symbols[name])[0]
        M = rng.standard_normal((n, n))
        vals[name] = (M @ M.T + n * np.eye(n) if kind == "spd" else M + M.T if kind == "symmetric"
                      else rng.standard_normal(n) if kind == "vector" else M)
    ns = codegen.load(h.to_code())
    names = [h.wrt] + [k for k in h.symbols if k != h.wrt]
    args = [vals[k] for k in names]
    H = ns["hessian"](*args)
    assert close(H, h.evaluate(vals), 1e-10)
    off = codegen.load(codegen.generate(h, optimizations={"perm_sum": False}))["hessian"](*args)
    assert close(H, off, 1e-12)
    V = rng.standard_normal((n, n))
    V = V + V.T
    grad = lambda v: ns["f_and_grad"](*[v[h.wrt] if k == h.wrt else vals[k] for k in names])[1]   # noqa: E731
    fd = central(grad, {h.wrt: vals[h.wrt]}, h.wrt, V)
    assert close(H @ vecF(V), vecF(fd), 1e-6)

