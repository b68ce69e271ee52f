"""Generated code (matcalc.codegen): the functions that Derivative.to_code() and
matcalc.compile() produce agree with d.evaluate, with the conformance references and
with central differences of the generated f itself.

* every conformance case (../shared/conformance/cases.py, values from its sampler.py):
  NumPy on all three draws; JAX and PyTorch (when importable) on one draw;
* the everyday problems of test_everyday.py and test_cookbook.py: value, gradient and
  (where the engine has one) Hessian;
* the shape of the code: an inverse that only multiplies is a solve, an inverse used
  twice is one inv, no product formed only to take its trace, diag(v) M a broadcast, no
  Kronecker product formed to multiply a vector;
* symbol names that are not safe Python names (lambda, sum, np, μ, w_2, ...).
"""
import copy
import os
import sys
import warnings
import zlib

import numpy as np
import pytest

import matcalc
from helpers import direction, vecF
from matcalc.check import directional
from matcalc import codegen
from matcalc.codegen import ir

import cgtools

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _conformance_dir():
    """../shared/conformance beside the checkout (or beside a folder above it, as for a
    worktree in /work/wt/<name>)."""
    d = ROOT
    while True:
        d = os.path.dirname(d)
        c = os.path.join(d, "shared", "conformance")
        if os.path.isdir(c) or d == os.path.dirname(d):
            return c


CONF = _conformance_dir()


def _load_conformance():
    if not os.path.isdir(CONF):
        return None, None
    sys.path.insert(0, CONF)
    old = sys.dont_write_bytecode
    sys.dont_write_bytecode = True     # keep caches out of the shared folder
    try:
        import cases as C
        import sampler as S
    finally:
        sys.dont_write_bytecode = old
        sys.path.remove(CONF)
    return C, S


C, S = _load_conformance()
CASES = C.CASES if C is not None else []
needs_conformance = pytest.mark.skipif(C is None, reason="../shared/conformance is not there")


def _derive(case):
    fn = matcalc.hessian if case["kind"] == "hessian" else matcalc.diff
    kw = {}
    if case.get("symbols"):
        kw["symbols"] = dict(case["symbols"])
    if case["layout"] != "gradient":
        kw["layout"] = case["layout"]
    return fn(case["expr"], wrt=case["wrt"], **kw)


def _args(d, values):
    """Positional arguments of the generated functions: the variable first, then the
    other symbols in order of appearance."""
    names = [d.wrt] + [n for n in d.typed_symbols if n != d.wrt]
    return [values[n] for n in names]


def close(got, want, rtol=1e-8):
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    if got.shape != want.shape:
        return False
    scale = max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
    return bool(np.all(np.isfinite(got))) and float(np.max(np.abs(got - want), initial=0.0)) <= rtol * scale


def same_entries(got, want, rtol=1e-8):
    """Equal up to a squeeze-equivalent shape (the conformance references' shapes)."""
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    if got.size != want.size:
        return False
    return close(got.reshape(want.shape), want, rtol)


def central(fn, values, name, V):
    """The derivative of fn along V: matcalc.check's differences (central differences at
    h and h/2, Richardson-extrapolated)."""
    fd, _ = directional(fn, values, name, V)
    assert fd is not None, "the finite differences of the generated function are not finite"
    return fd


def _var_kind(d):
    return d.var.kind


# ----------------------------------------------------------------------------- conformance: NumPy


@needs_conformance
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_conformance_numpy(case):
    d = _derive(case)
    ns = codegen.load(d.to_code())
    f_and_grad = ns["f_and_grad"]
    hessian = ns.get("hessian")
    rng = np.random.default_rng(zlib.crc32(case["id"].encode()))
    for seed in S.SEEDS:
        values, _ = S.sample(case, seed)
        args = _args(d, values)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fv, D = f_and_grad(*copy.deepcopy(args))
        # the value: the case's own NumPy f, and matcalc.evaluate's shapes
        want_f = matcalc.evaluate(d.f, copy.deepcopy(values))
        assert np.shape(fv) == np.shape(want_f), f"f has shape {np.shape(fv)}, evaluate {np.shape(want_f)}"
        assert same_entries(fv, case["f"](copy.deepcopy(values))), f"value of {case['expr']}"
        if case["kind"] == "hessian":
            H = hessian(*copy.deepcopy(args))
            want_H = d.evaluate(copy.deepcopy(values))
            assert np.shape(H) == np.shape(want_H) and close(H, want_H), f"Hessian of {case['expr']}"
            assert same_entries(H, case["ref"](values))
            G = np.asarray(D, dtype=float)
            g_want = matcalc.diff(case["expr"], wrt=case["wrt"], symbols=case.get("symbols")).evaluate(
                copy.deepcopy(values))
            assert np.shape(G) == np.shape(g_want) and close(G, g_want), f"gradient of {case['expr']}"
            # the Hessian against central differences of the generated gradient
            V = direction(rng, _var_kind(d), values[case["wrt"]])
            fd = central(lambda v: f_and_grad(*_args(d, v))[1], values, case["wrt"], V)
            assert close(np.asarray(H) @ vecF(V) if np.ndim(H) else H * V, vecF(fd), 1e-6)
            continue
        want = d.evaluate(copy.deepcopy(values))
        assert np.shape(D) == np.shape(want), f"derivative shape {np.shape(D)}, evaluate {np.shape(want)}"
        assert close(D, want), f"d/d{case['wrt']} {case['expr']} = {d}"
        assert same_entries(D, case["ref"](values))
        # the derivative against central differences of the generated f (default layout)
        if case["layout"] != "gradient":
            continue
        name = case["wrt"]
        V = direction(rng, _var_kind(d), values[name])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fd = central(lambda v: f_and_grad(*_args(d, v))[0], values, name, V)
        if np.ndim(values[name]) == 0:
            got = np.asarray(D, dtype=float) * V
            assert close(got, np.reshape(fd, np.shape(got)), 1e-6)
        elif np.ndim(fv) == 0:
            assert close(float(np.sum(np.asarray(D) * V)), float(fd), 1e-6)
        else:
            assert close(np.asarray(D) @ vecF(V), vecF(fd), 1e-6)


# ----------------------------------------------------------------------------- conformance: JAX, PyTorch


def _framework_case(case, target, to_numpy):
    d = _derive(case)
    ns = codegen.load(d.to_code(target=target))
    values, _ = S.sample(case, 0)
    args = _args(d, values)
    fv, D = ns["f_and_grad"](*copy.deepcopy(args))
    want_f = matcalc.evaluate(d.f, copy.deepcopy(values))
    assert close(np.reshape(to_numpy(fv), np.shape(want_f)), want_f), f"value of {case['expr']} ({target})"
    if case["kind"] == "hessian":
        H = ns["hessian"](*copy.deepcopy(args))
        want = d.evaluate(copy.deepcopy(values))
        assert close(np.reshape(to_numpy(H), np.shape(want)), want), f"Hessian of {case['expr']} ({target})"
        return
    want = d.evaluate(copy.deepcopy(values))
    got = to_numpy(D)
    assert got.size == np.size(want) and close(got.reshape(np.shape(want)), want), \
        f"d/d{case['wrt']} {case['expr']} = {d} ({target})"


@needs_conformance
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_conformance_torch(case):
    torch = pytest.importorskip("torch")
    _framework_case(case, "torch", lambda t: t.detach().numpy() if isinstance(t, torch.Tensor)
                    else np.asarray(t, dtype=float))


@needs_conformance
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_conformance_jax(case):
    pytest.importorskip("jax")
    _framework_case(case, "jax", lambda t: np.asarray(t, dtype=float))


def test_jax_jit():
    jax = pytest.importorskip("jax")
    rng = np.random.default_rng(0)
    for expr, wrt, symbols in [("sum(log(1 + exp(-y .* (A w))))", "w", None),
                               ("logdet(S) + (x - mu)^T S^-1 (x - mu)", "S", {"S": "spd"}),
                               ("||X - U V^T||_F^2", "U", None)]:
        d = matcalc.diff(expr, wrt=wrt, symbols=symbols)
        ns = codegen.load(d.to_code(target="jax"))
        fn = jax.jit(ns["f_and_grad"])
        sizes = {"n": 5, "m": 4, "p": 3}
        values = {}
        for n, s in d.typed_symbols.items():
            shape = tuple(sizes.get(x, 3) for x in (s.rows, s.cols) if x != 1)
            v = rng.standard_normal(shape)
            if s.kind == "spd":
                v = v @ v.T + len(v) * np.eye(len(v))
            values[n] = v
        fv, g = fn(*_args(d, values))
        assert close(np.asarray(g), d.evaluate(values)), expr
        assert close(float(fv), matcalc.evaluate(d.f, values)), expr
    # compile() returns the jitted function
    fn = matcalc.compile("x^T A x", wrt="x", target="jax", hessian=True)
    x, A = rng.standard_normal(4), rng.standard_normal((4, 4))
    fv, g, H = fn(x=x, A=A)
    assert close(np.asarray(H), A + A.T) and close(np.asarray(g), (A + A.T) @ x)


def _batch_case():
    expr = "sum(log(1 + exp(-y .* (A w)))) + w^T S w"
    d = matcalc.diff(expr, wrt="w", symbols={"S": "symmetric"})
    rng = np.random.default_rng(11)
    S = rng.standard_normal((3, 3))
    vals = {"A": rng.standard_normal((4, 3)), "y": rng.standard_normal(4), "S": S + S.T}
    ws = rng.standard_normal((5, 3))
    return d, vals, ws


def _fd_gradient(d, values):
    V = np.random.default_rng(2).standard_normal(3)
    return V, central(lambda v: matcalc.evaluate(d.f, v), values, "w", V)


def test_compiled_jax_function_under_jit_vmap_and_grad():
    """What a JAX user does with matcalc.compile's function: jit it, vmap it over a batch,
    take jax.grad of its value.  The values are tracers there: their shapes are checked
    (a wrong one is still a ShapeError), their entries cannot be."""
    jax = pytest.importorskip("jax")
    d, vals, ws = _batch_case()
    fn = matcalc.compile(d.text, wrt="w", symbols={"S": "symmetric"}, target="jax")
    names = fn.params
    args = lambda w: [dict(vals, w=w)[n] for n in names]       # noqa: E731
    batched = jax.vmap(fn, in_axes=tuple(0 if n == "w" else None for n in names))
    fv, gs = jax.jit(batched)(*[ws if n == "w" else vals[n] for n in names])
    for i, w in enumerate(ws):
        values = dict(vals, w=w)
        assert close(np.asarray(gs[i]), d.evaluate(values)), i
        assert close(float(fv[i]), matcalc.evaluate(d.f, values)), i
        V, fd = _fd_gradient(d, values)
        assert abs(float(np.asarray(gs[i]) @ V) - fd) <= 1e-6 * max(1.0, abs(fd))
    g = jax.grad(lambda w: fn(*args(w))[0])(ws[0])
    assert close(np.asarray(g), d.evaluate(dict(vals, w=ws[0])))
    with pytest.raises(matcalc.ShapeError, match="w"):
        jax.jit(fn)(*args(np.ones(4)))


def test_compiled_torch_function_in_autograd_and_torch_func():
    torch = pytest.importorskip("torch")
    from torch.func import grad as tgrad, vmap as tvmap
    d, vals, ws = _batch_case()
    fn = matcalc.compile(d.text, wrt="w", symbols={"S": "symmetric"}, target="torch")
    names = fn.params
    t = {k: torch.tensor(v) for k, v in vals.items()}
    w = torch.tensor(ws[0], requires_grad=True)
    fv, g = fn(*[w if n == "w" else t[n] for n in names])       # a tensor that requires grad
    want = d.evaluate(dict(vals, w=ws[0]))
    assert close(g.detach().numpy(), want)
    fv.backward()
    assert close(w.grad.numpy(), want)
    V, fd = _fd_gradient(d, dict(vals, w=ws[0]))
    assert abs(float(g.detach().numpy() @ V) - fd) <= 1e-6 * max(1.0, abs(fd))
    g2 = tgrad(lambda w: fn(*[w if n == "w" else t[n] for n in names])[0])(torch.tensor(ws[1]))
    assert close(g2.numpy(), d.evaluate(dict(vals, w=ws[1])))
    _, gs = tvmap(fn, in_dims=tuple(0 if n == "w" else None for n in names))(
        *[torch.tensor(ws) if n == "w" else t[n] for n in names])
    for i in range(len(ws)):
        assert close(gs[i].numpy(), d.evaluate(dict(vals, w=ws[i]))), i
    with pytest.raises(matcalc.ShapeError, match="w"):
        fn(*[torch.ones(4, requires_grad=True) if n == "w" else t[n] for n in names])


# ----------------------------------------------------------------------------- everyday problems


def _everyday_problems():
    out = []
    for mod in ("test_everyday", "test_cookbook"):
        try:
            m = __import__(mod)
        except Exception:  # noqa: BLE001 - those files belong to other tests
            continue
        out.extend(getattr(m, "PROBLEMS", []))
    return out


EVERYDAY = []
for _p in _everyday_problems():
    for _w in _p.grads:
        if not _p.unsupported:
            EVERYDAY.append((_p, _w))


@pytest.mark.skipif(not EVERYDAY, reason="no everyday problems found")
@pytest.mark.parametrize("case", EVERYDAY, ids=[f"{p.name}-d{w}" for p, w in EVERYDAY])
def test_everyday(case):
    from _fd_everyday import direction as fd_direction, directional_fd, make_values, parse_kind
    problem, wrt = case
    d = matcalc.diff(problem.expr, wrt=wrt, symbols=problem.symbols, symmetric=problem.symmetric)
    ns = codegen.load(d.to_code())
    fn = ns["f_and_grad"]
    rng = np.random.default_rng(zlib.crc32(f"codegen/{problem.name}/{wrt}".encode()))
    values = make_values(problem, d.symbols, rng)
    fv, G = fn(*_args(d, values))
    assert close(fv, problem.f(values), 1e-8), f"value of {problem.expr}"
    want = d.evaluate(values)
    assert np.shape(G) == np.shape(want) and close(G, want), f"d/d{wrt} {problem.expr} = {d}"
    if problem.symmetric != "cookbook":
        kind, _ = parse_kind(d.symbols[wrt])
        V = fd_direction(d.symbols[wrt], values[wrt], rng)
        fd = directional_fd(lambda v: fn(*_args(d, v))[0], values, wrt, V)
        if kind == "scalar":           # the derivative has the shape of f
            assert close(np.asarray(G, dtype=float) * V, fd, 1e-6), f"d/d{wrt} {problem.expr}"
        else:
            an = float(np.sum(np.asarray(G) * V))
            scale = max(1.0, float(np.linalg.norm(G)) * float(np.linalg.norm(V)))
            assert abs(an - fd) <= 1e-6 * scale, f"d/d{wrt} {problem.expr}: <G,V> {an} vs fd {fd}"
    # the Hessian, where the engine has one and it is small
    try:
        h = matcalc.hessian(problem.expr, wrt=wrt, symbols=problem.symbols,
                            symmetric=problem.symmetric)
    except matcalc.MatcalcError:
        return
    ns = codegen.load(h.to_code())
    H = ns["hessian"](*_args(h, values))
    want = h.evaluate(values)
    assert np.shape(H) == np.shape(want) and close(H, want, 1e-7), f"Hessian of {problem.expr} in {wrt}"
    fv3, G3, H3 = ns["f_grad_hessian"](*_args(h, values))
    assert close(H3, want, 1e-7) and close(G3, G) and close(fv3, fv)


# ----------------------------------------------------------------------------- everyday, by hand


def _ls(n=6, m=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, n)), rng.standard_normal(n), rng.standard_normal(m)


def test_compile_calling_conventions():
    A, x, b = _ls()
    fn = matcalc.compile("||A x - b||^2", wrt="x")
    assert fn.params == ["x", "A", "b"]
    r = A @ x - b
    for fv, g in (fn(x, A, b), fn(x=x, A=A, b=b), fn({"x": x, "A": A, "b": b}),
                  fn(x.tolist(), A=A.tolist(), b=b)):
        assert isinstance(fv, float) and close(fv, r @ r) and close(g, 2 * A.T @ r)
    with pytest.raises(TypeError):
        fn(x, A)
    with pytest.raises(TypeError):
        fn(x, A, b, c=1.0)
    fv, g, H = matcalc.compile("||A x - b||^2", wrt="x", hessian=True)(x, A, b)
    assert close(H, 2 * A.T @ A)
    assert "def f_and_grad" in fn.source


def test_shapes_follow_evaluate():
    rng = np.random.default_rng(1)
    X, A = rng.standard_normal((3, 4)), rng.standard_normal((3, 3))
    fv, G = matcalc.compile("tr(X^T A X)", wrt="X")(X, A)
    assert isinstance(fv, float) and G.shape == (3, 4) and close(G, (A + A.T) @ X)
    # a vector function: the Jacobian, 2-D; its value 1-D
    x = rng.standard_normal(3)
    fv, J = matcalc.compile("A x", wrt="x")(x, A)
    assert fv.shape == (3,) and J.shape == (3, 3) and close(J, A)
    # a row-vector function keeps its (1, n) shape, as evaluate does
    d = matcalc.diff("x^T A", wrt="x", layout="numerator")
    fv, J = codegen.load(d.to_code())["f_and_grad"](x, A)
    assert np.shape(fv) == np.shape(matcalc.evaluate("x^T A", {"x": x, "A": A}))
    # with respect to a scalar: the shape of f
    t = 0.3
    fv, D = matcalc.compile("exp(t A)", wrt="t", symbols={"t": "scalar"})(t, A)
    assert D.shape == (3, 3) and close(D, A * np.exp(t * A))
    # the value and the derivative are one node: both returned
    fv, D = matcalc.compile("exp(t) x", wrt="t", symbols={"t": "scalar"})(t, x)
    assert close(fv, np.exp(t) * x) and close(D, np.exp(t) * x)
    fv, J = matcalc.compile("x", wrt="x")(x)
    assert close(fv, x) and close(J, np.eye(3))


def test_several_variables_share_one_function():
    rng = np.random.default_rng(2)
    X, U, V = rng.standard_normal((5, 4)), rng.standard_normal((5, 2)), rng.standard_normal((4, 2))
    ds = matcalc.diff("||X - U V^T||_F^2", wrt="U,V")
    src = codegen.generate(ds)
    ns = codegen.load(src)
    fv, (gU, gV) = ns["f_and_grad"](U, V, X)
    R = U @ V.T - X
    assert close(fv, np.sum(R * R)) and close(gU, 2 * R @ V) and close(gV, 2 * R.T @ U)
    assert src.count("U @ V.T") == 1, "the residual is computed once for both gradients"
    fn = matcalc.compile("||X - U V^T||_F^2", wrt="U,V")
    assert fn.params[:2] == ["U", "V"]


def test_symbol_names_are_made_safe():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(4), rng.standard_normal(4)
    cases = [
        ("lambda x^T x", "x", {"lambda": "scalar"}, {"lambda": 0.7, "x": x}, lambda v: 2 * v["lambda"] * v["x"]),
        ("np x^T x + t1", "x", {"np": "scalar", "t1": "scalar"}, {"np": 1.5, "t1": 2.0, "x": x},
         lambda v: 2 * v["np"] * v["x"]),
        ("μ x^T w_2", "w_2", {"μ": "scalar"}, {"μ": 1.3, "x": x, "w_2": w}, lambda v: v["μ"] * v["x"]),
        ("float x^T x + n + sum(I(n) x)", "x", {"float": "scalar", "n": "scalar"},
         {"float": 0.5, "n": 3.0, "x": x}, lambda v: 2 * v["float"] * v["x"] + 1),
        ("sum x^T x", "x", {"sum": "scalar"}, {"sum": 2.0, "x": x}, lambda v: 2 * v["sum"] * v["x"]),
        ("f + grad_x x^T x + lambda_", "x", {"f": "scalar", "grad_x": "scalar", "lambda_": "scalar"},
         {"f": 1.0, "grad_x": 2.0, "lambda_": 3.0, "x": x}, lambda v: 2 * v["grad_x"] * v["x"]),
    ]
    for expr, wrt, symbols, values, want in cases:
        try:
            d = matcalc.diff(expr, wrt=wrt, symbols=symbols)
        except matcalc.ParseError:
            continue          # a name the language itself reserves
        for target in ("numpy",):
            src = d.to_code(target=target)
            compile(src, "<generated>", "exec")
            fn = matcalc.compile(expr, wrt=wrt, symbols=symbols)
            fv, g = fn(values)
            assert close(g, want(values)), expr
            assert close(fv, matcalc.evaluate(expr, values, symbols=symbols)), expr
            fv2, g2 = fn(**values)
            assert close(g2, g)
    # the mangled names themselves
    assert codegen.python_name("lambda") == "lambda_"
    assert codegen.python_name("sum") == "sum_"
    assert codegen.python_name("np") == "np_"
    assert codegen.python_name("w_2") == "w_2"
    assert codegen.python_name("μ") == "μ"
    assert codegen.python_name("\u00b5").isidentifier()        # micro sign: NFKC to μ
    assert codegen.python_name("_x").isidentifier() and not codegen.python_name("_x").startswith("_")


# ----------------------------------------------------------------------------- the shape of the code


def _body(d, fname="f_and_grad"):
    """The IR of one generated function of d."""
    return cgtools.functions(d)[0][fname]


def _calls(body, name):
    """Calls of a function whose name ends in name (solve: np.linalg.solve, _spd_solve)."""
    return sum(1 for n in cgtools.exprs(body) if isinstance(n, ir.Call) and n.func.endswith(name))


def _matmuls(body, a, b):
    return sum(1 for n in cgtools.exprs(body) if n == ir.Bin("@", ir.Name(a), ir.Name(b)))


def _broadcasts(body):
    """v[:, None] (diag(v) M as a broadcast)."""
    return sum(1 for n in cgtools.exprs(body) if isinstance(n, ir.Index)
               and n.items == (ir.Slice(), ir.Const("None")))


def test_inverse_that_only_multiplies_is_a_solve():
    d_ = matcalc.diff("y^T (K + lambda I)^-1 y", wrt="y", symbols={"K": "spd", "lambda": "scalar"})
    body = _body(d_)
    assert _calls(body, "np.linalg.solve") == 1 and _calls(body, "np.linalg.inv") == 0, body
    fn = matcalc.compile("y^T (K + lambda I)^-1 y", wrt="y", symbols={"K": "spd", "lambda": "scalar"})
    rng = np.random.default_rng(4)
    B = rng.standard_normal((5, 5))
    K, y, lam = B @ B.T, rng.standard_normal(5), 0.5
    fv, g = fn(y, K, lam)
    M = np.linalg.inv(K + lam * np.eye(5))
    assert close(fv, y @ M @ y) and close(g, 2 * M @ y)


def test_inverse_used_twice_is_one_inv():
    d_ = matcalc.diff("logdet(S) + (x - mu)^T S^-1 (x - mu)", wrt="S", symbols={"S": "spd"})
    body = _body(d_)
    # S is spd: one Cholesky factorisation gives the inverse and logdet(S)
    assert _calls(body, "_spd_inv_logdet") == 1 and _calls(body, "np.linalg.inv") == 0, body
    assert _calls(body, "solve") == 0 and _calls(body, "cholesky") == 0, body
    assert _calls(body, "_outer") == 1            # S^-1 r computed once, used on both sides
    d_ = matcalc.diff("logdet(X) + tr(X^-1 C)", wrt="X")
    body = _body(d_)
    assert _calls(body, "np.linalg.inv") == 1 and _calls(body, "np.linalg.solve") == 0, body
    # an inverse only multiplying, twice with opposite signs: one solve and a negation
    d_ = matcalc.diff("(x - mu)^T S^-1 (x - mu)", wrt="mu", symbols={"S": "spd"})
    body = _body(d_)
    assert _calls(body, "_spd_solve") + _calls(body, "np.linalg.solve") == 1, body


def test_trace_of_product_is_not_formed():
    for expr, symbols in [("tr(X^T A X)", None), ("tr(A X B X^T)", None),
                          ("N logdet(S) + tr(S^-1 C)", {"S": "spd", "C": "spd", "N": "scalar"})]:
        d_ = matcalc.diff(expr, wrt="X" if "X" in expr else "S", symbols=symbols)
        body = _body(d_)
        assert _calls(body, "np.trace") == 0, body


def test_diag_times_matrix_is_a_broadcast():
    h = matcalc.hessian("sum(log(1 + exp(A w)))", wrt="w")
    body = _body(h, "hessian")
    assert _broadcasts(body) and _calls(body, "np.diag") == 0, body
    j = matcalc.diff("B tanh(A x)", wrt="x")
    body = _body(j)
    assert _calls(body, "np.diag") == 0, body


def test_kronecker_not_formed_to_multiply():
    d = matcalc.diff("x^T (A ⊗ B) x", wrt="x")
    src = d.to_code()
    body = _body(d)
    assert _calls(body, "np.kron") == 0, body
    rng = np.random.default_rng(5)
    A, B, x = rng.standard_normal((3, 3)), rng.standard_normal((2, 2)), rng.standard_normal(6)
    fv, g = codegen.load(src)["f_and_grad"](x, A, B)
    K = np.kron(A, B)
    assert close(fv, x @ K @ x) and close(g, (K + K.T) @ x)
    # a commutation matrix multiplying is a reshape, not a matrix
    h = matcalc.hessian("logdet(X)", wrt="X")
    body = _body(h, "hessian")
    assert _calls(body, "_commutation") == 0, body


@pytest.mark.parametrize("kind, expr, wrt, shapes", [
    ("hessian", "||X - U V^T||_F^2", "U", {"U": (4, 2), "X": (4, 3), "V": (3, 2)}),  # 2 VᵀV ⊗ I(m)
    ("hessian", "tr(X^T A X)", "X", {"X": (3, 2), "A": (3, 3)}),                      # I(n) ⊗ (A + Aᵀ)
    ("jacobian", "A X", "X", {"A": (2, 3), "X": (3, 4)}),                             # I(p) ⊗ A
    ("jacobian", "X B", "X", {"X": (2, 3), "B": (3, 4)}),                             # Bᵀ ⊗ I(m)
])
def test_kronecker_with_identity_writes_only_its_diagonals(kind, expr, wrt, shapes):
    d = matcalc.hessian(expr, wrt=wrt) if kind == "hessian" else matcalc.diff(expr, wrt=wrt)
    src = d.to_code()
    fname = "hessian" if kind == "hessian" else "f_and_grad"
    body = _body(d, fname)
    assert _calls(body, "_kron_identity") and _calls(body, "np.kron") == 0 and _calls(body, "np.eye") == 0, body
    rng = np.random.default_rng(11)
    values = {k: rng.standard_normal(s) for k, s in shapes.items()}
    ns = codegen.load(src)
    out = ns[fname](*_args(d, values))
    M = out if kind == "hessian" else out[1]
    assert close(M, d.evaluate(values))
    # M vec(V) against central differences along V: of the generated gradient (Hessian),
    # of the generated f (Jacobian)
    of = 1 if kind == "hessian" else 0
    for _ in range(3):
        V = rng.standard_normal(shapes[wrt])
        fd = central(lambda v: ns["f_and_grad"](*_args(d, v))[of], values, wrt, V)
        assert close(M @ vecF(V), vecF(fd), rtol=1e-6)


# Row loops (matcalc.rowblocks): where an intermediate matrix has rows that can be made
# and used a block at a time, the NumPy code has _f_and_grad_in_blocks, which f_and_grad
# calls above about 512 KiB.  Each is checked with blocks of one or two rows (the
# constant in its step replaced), so the last block is ragged.
ROW_LOOPS = [
    ("||X - U V^T||_F^2", "U", None, {"U": (7, 2), "X": (7, 3), "V": (3, 2)}),
    ("||X - A B||_F^2", "A", None, {"A": (7, 2), "B": (2, 3), "X": (7, 3)}),
    ("||M .* (X - U V^T)||_F^2", "U", None, {"M": (7, 3), "X": (7, 3), "U": (7, 2), "V": (3, 2)}),
    ("||X - B A X||_F^2", "B", None, {"X": (7, 3), "B": (7, 2), "A": (2, 7)}),
    ("-tr(Y^T X W) + sum(log(exp(X W) o))", "X", None,
     {"Y": (7, 3), "X": (7, 4), "W": (4, 3), "o": (3,)}),
    ("(A + t B) (C + t D)", "t", {"t": "scalar"}, {"t": (), "A": (7, 3), "B": (7, 3), "C": (3, 2), "D": (3, 2)}),
]


def _row_values(shapes, rng):
    out = {k: (float(rng.standard_normal()) if s == () else rng.standard_normal(s) * 0.5)
           for k, s in shapes.items()}
    if "o" in out:
        out["o"] = np.abs(out["o"]) + 0.5      # weights inside a log
    return out


@pytest.mark.parametrize("expr, wrt, symbols, shapes", ROW_LOOPS, ids=[r[0] for r in ROW_LOOPS])
def test_row_loop_agrees_with_evaluate(expr, wrt, symbols, shapes):
    d = matcalc.diff(expr, wrt=wrt, symbols=symbols)
    src = d.to_code()
    assert "def _f_and_grad_in_blocks(" in src and "for i in range(" in src, src
    assert src.count("65536 // ") == 1, src
    rng = np.random.default_rng(21)
    values = _row_values(shapes, rng)
    for entries in ("1", "8", "65536"):      # one row per block, a few, one block
        ns = codegen.load(src.replace("65536 // ", entries + " // "))
        blocks = ns["_f_and_grad_in_blocks"]
        fv, g = blocks(*_args(d, values))
        assert close(fv, matcalc.evaluate(expr, values, symbols=symbols))
        want_f, want_g = ns["f_and_grad"](*_args(d, values))       # small: the plain path
        assert close(fv, want_f) and close(g, want_g), (entries, fv, want_f)
        assert close(g, d.evaluate(values))
        V = direction(rng, "matrix", values[wrt])
        fd = central(lambda v: blocks(*_args(d, v))[0], values, wrt, V)
        got = np.tensordot(g, V, axes=np.ndim(V)) if np.ndim(fv) == 0 else g * V
        assert close(got, fd, rtol=1e-6), (entries, got, fd)


def test_row_loop_runs_above_its_threshold():
    d = matcalc.diff("||X - U V^T||_F^2", wrt="U")
    ns = codegen.load(d.to_code())
    rng = np.random.default_rng(3)
    values = {"U": rng.standard_normal((301, 3)), "X": rng.standard_normal((301, 400)),
              "V": rng.standard_normal((400, 3))}
    args = _args(d, values)
    fv, g = ns["f_and_grad"](*args)
    R = values["U"] @ values["V"].T - values["X"]
    assert close(fv, np.vdot(R, R)) and close(g, 2 * R @ values["V"]) and close(g, d.evaluate(values))
    fb, gb = ns["_f_and_grad_in_blocks"](*args)
    assert fb == fv and np.array_equal(gb, g)      # the loop is what ran


@pytest.mark.parametrize("expr, wrt", [
    ("||Y - X B||_F^2", "Y"),              # the gradient is as large as the residual
    ("||Y - X B||_F^2", "B"),              # 2 Xᵀ (X B - Y) reads the residual whole
    ("||X - U V^T||_F^2", "V"),            # likewise, transposed
    ("sum(A .* X)", "X"),                  # one vdot already
    ("sin(x)^T A (B x)", "x"),             # A B is never formed
    ("a^T sin(A X B) b", "X"),             # cos(A X B) needs A X B whole
    ("tr((X^T C X)^-1 (X^T B X))", "X"),   # a factor as large as the intermediate
    ("||A x - b||^2", "x"),                # vectors only
])
def test_row_loop_only_where_it_pays(expr, wrt):
    src = matcalc.diff(expr, wrt=wrt).to_code()
    assert "_in_blocks" not in src, src


def _same(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size != b.size:
        return False
    scale = max(1.0, float(np.nanmax(np.abs(b)))) if b.size else 1.0
    return bool(np.allclose(a.reshape(b.shape), b, rtol=1e-7, atol=1e-9 * scale, equal_nan=True))


def _unlowered(d):
    """Whether the derivative holds a node whose record (matcalc/operators/nodes.py)
    declares the lowering absent, with its reason (the spectral functions until their
    code generation is merged)."""
    from matcalc import expr as E
    from matcalc.operators import node_record
    return any("lowering" in node_record(type(n)).absent
               for tree in (d.f, d.expr) for n in E.walk(tree))


def test_generated_code_of_fuzz_cases():
    """The fuzzer's expressions (400 seeds, depth 5): f and the derivative (or Hessian)
    of the generated code against matcalc.evaluate and d.evaluate; every row loop among
    them (about 1 in 40) with blocks of one row against the plain function."""
    from matcalc import testing as fuzz
    checked = loops = 0
    for seed in range(1200):
        if seed >= 400 and loops >= 5:     # 400 cases, and at least 5 row loops among them
            break
        ex = fuzz.generate(seed, depth=5)
        try:
            d = (matcalc.hessian if ex.op == "hessian" else matcalc.diff)(ex.text, wrt=ex.wrt,
                                                                          symbols=ex.symbols)
        except matcalc.MatcalcError:
            continue
        if _unlowered(d):
            continue                # (a node whose record declares its lowering absent)
        src = d.to_code()
        values = fuzz.draw_values(ex, np.random.default_rng(seed))
        args = _args(d, values)
        ns = codegen.load(src)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fv, deriv = ns["f_and_grad"](*args)[:2]
            if ex.op == "hessian":
                deriv = ns["hessian"](*args)
            try:
                f_want, d_want = matcalc.evaluate(ex.text, values, symbols=ex.symbols), d.evaluate(values)
            except matcalc.EvaluationError:
                continue            # a value past float64 (an honest error; the code gives inf)
            assert _same(fv, f_want), (seed, ex.text)
            assert _same(deriv, d_want), (seed, ex.text, ex.wrt)
            checked += 1
            if "_in_blocks" in src:
                tiny = codegen.load(src.replace("65536 // ", "1 // "))
                for name in [k for k in ns if k.endswith("_in_blocks")]:
                    loops += 1
                    got = tiny[name](*args)
                    want = ns[name[1:-len("_in_blocks")]](*args)
                    got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
                    assert all(_same(a, b) for a, b in zip(got, want)), (seed, ex.text, ex.wrt, name)
    assert checked >= 380 and loops >= 5, (checked, loops)


@pytest.mark.parametrize("expr, shapes", [
    ("tr(x ⊗ x^T) + w^T x", {"x": (3,), "w": (3,)}),                 # a column times a row
    ("tr(A ⊗ B) + w^T x", {"A": (2, 3), "B": (3, 2), "x": (3,), "w": (3,)}),   # 6×6, factors not square (declared)
    ("tr(C ⊗ D) x^T x", {"C": (2, 2), "D": (3, 3), "x": (3,)}),       # square: tr(C) tr(D)
])
def test_trace_of_kronecker_product(expr, shapes):
    # sizes declared: undeclared, tr(A ⊗ B) would be taken to have square A and B
    symbols = {k: f"matrix({s[0]},{s[1]})" for k, s in shapes.items() if len(s) == 2}
    d = matcalc.diff(expr, wrt="x", symbols=symbols)
    ns = codegen.load(d.to_code())
    rng = np.random.default_rng(8)
    values = {k: rng.standard_normal(s) for k, s in shapes.items()}
    fv, g = ns["f_and_grad"](*_args(d, values))
    assert close(fv, matcalc.evaluate(expr, values)) and close(g, d.evaluate(values))
    V = rng.standard_normal(3)
    fd = central(lambda v: ns["f_and_grad"](*_args(d, v))[0], values, "x", V)
    assert close(g @ V, fd, rtol=1e-6)


@pytest.mark.parametrize("expr, wrt, symbols, shapes", [
    # tr(s I(5)) is 5 s (the product's chain is empty once the identity is dropped)
    ("abs(tr(X .^ 2 + I(3) * g det(Y)))", "X", {"g": "scalar"}, {"X": (3, 3), "g": (), "Y": (2, 2)}),
    ("abs(tr(X .^ 2 + X^0 * g))", "X", {"g": "scalar"}, {"X": (3, 3), "g": ()}),
    # I .* I in a Hessian (the Hadamard product of identities alone)
    ("(1 + sigmoid(3 + tr(W) - tr(A)))^-0.5", "A", {"A": "diagonal(r)"}, {"A": (3, 3), "W": (2, 2)}),
])
def test_products_of_identities(expr, wrt, symbols, shapes):
    rng = np.random.default_rng(13)
    values = {k: (float(rng.standard_normal()) if s == () else rng.standard_normal(s)) for k, s in shapes.items()}
    if "A" in values and symbols and symbols.get("A", "").startswith("diagonal"):
        values["A"] = np.diag(np.diag(values["A"]))
    for d in (matcalc.diff(expr, wrt=wrt, symbols=symbols), matcalc.hessian(expr, wrt=wrt, symbols=symbols)):
        ns = codegen.load(d.to_code())
        fv, g = ns["f_and_grad"](*_args(d, values))[:2]
        assert close(fv, matcalc.evaluate(expr, values, symbols=symbols))
        if d.kind == "hessian":
            assert close(ns["hessian"](*_args(d, values)), d.evaluate(values))
        else:
            assert close(g, d.evaluate(values))
            V = direction(rng, _var_kind(d), values[wrt])
            fd = central(lambda v: ns["f_and_grad"](*_args(d, v))[0], values, wrt, V)
            assert close(np.sum(g * V), fd, rtol=1e-6)


def test_compiled_function_rejects_values_of_other_shapes():
    # undeclared, tr(A ⊗ B) needs only A ⊗ B square (m·p = n·q): A 2×3 with B 3×2 is
    # valid and computed as it is written; A 2×3 with B 2×2 (A ⊗ B 4×6) is refused, as
    # Derivative.evaluate refuses it, not answered with NumPy's trace of a non-square matrix
    f = matcalc.compile("tr(A ⊗ B) + w^T x", wrt="x")
    fv, g = f(x=np.ones(3), w=np.arange(3.0), A=np.eye(2), B=2 * np.eye(3))
    assert close(fv, 2 * 6 + 3) and close(g, np.arange(3.0))
    A, B = np.arange(6.0).reshape(2, 3), np.arange(6.0).reshape(3, 2) - 2
    fv, g = f(x=np.ones(3), w=np.ones(3), A=A, B=B)
    assert close(fv, np.trace(np.kron(A, B)) + 3)
    with pytest.raises(matcalc.ShapeError, match="m\\*p = n\\*q"):
        f(x=np.ones(3), w=np.ones(3), A=A, B=np.ones((2, 2)))
    with pytest.raises(matcalc.ShapeError, match="from the value of x"):
        f(x=np.ones(3), w=np.ones(4), A=np.eye(2), B=np.eye(2))


def test_value_shares_subexpressions_with_gradient():
    d_ = matcalc.diff("sum(log(1 + exp(-y .* (A w))))", wrt="w")
    body = _body(d_)
    # the value is softplus (np.logaddexp, no exp at all since log(1 + exp(a)) reads as
    # softplus(a)); A w is computed once and exp at most once
    assert _matmuls(body, "A", "w") == 1 and _calls(body, "np.exp") <= 1, body
    d_ = matcalc.diff("||A x - b||^2", wrt="x")
    body = _body(d_)
    assert _matmuls(body, "A", "x") == 1, body


def test_cli_codegen(capsys):
    from matcalc.cli import main
    assert main(["codegen", "x^T A x", "--wrt", "x", "--let", "A=symmetric", "--hessian"]) == 0
    out = capsys.readouterr().out
    ns = codegen.load(out)
    A = np.array([[2.0, 1.0], [1.0, 3.0]])
    x = np.array([1.0, 2.0])
    fv, g = ns["f_and_grad"](x, A)
    assert close(g, 2 * A @ x) and close(ns["hessian"](x, A), 2 * A)
    for target in ("jax", "torch"):
        assert main(["codegen", "x^T A x", "--wrt", "x", "--target", target]) == 0
        out = capsys.readouterr().out
        compile(out, "<generated>", "exec")


def test_torch_compile():
    torch = pytest.importorskip("torch")
    fn = matcalc.compile("sum(log(1 + exp(-y .* (A w))))", wrt="w", target="torch", hessian=True)
    rng = np.random.default_rng(6)
    A, w, y = rng.standard_normal((7, 3)), rng.standard_normal(3), np.sign(rng.standard_normal(7))
    fv, g, H = fn(w, y, A)
    assert isinstance(g, torch.Tensor) and g.dtype == torch.float64
    d = matcalc.diff("sum(log(1 + exp(-y .* (A w))))", wrt="w")
    assert close(g.numpy(), d.evaluate({"w": w, "y": y, "A": A}))


@pytest.mark.parametrize("expr", [
    "sqrt(1.5) x^T x + (2 + tanh(2))^0.5 sum(x)",        # functions of numbers
    "sigmoid(sqrt(1.5)) sum(exp(x)) + 1.5^1.5 x^T x",
    "(x^T x + sqrt(1 + abs(4))) ^ 2",
])
def test_torch_numbers_are_tensors(expr):
    torch = pytest.importorskip("torch")
    d = matcalc.diff(expr, wrt="x")
    ns = codegen.load(d.to_code(target="torch"))
    x = np.random.default_rng(4).standard_normal(3)
    fv, g = ns["f_and_grad"](torch.as_tensor(x))
    assert close(float(fv), matcalc.evaluate(expr, {"x": x})) and close(g.numpy(), d.evaluate({"x": x}))
    fd = central(lambda v: float(ns["f_and_grad"](torch.as_tensor(v["x"]))[0]), {"x": x}, "x", np.ones(3))
    assert close(g.numpy().sum(), fd, rtol=1e-6)


def test_unknown_target():
    with pytest.raises(matcalc.MatcalcError):
        matcalc.diff("x^T x", wrt="x").to_code(target="fortran")
