"""The floating-point type of generated code (issue 16, part 4): ``dtype="float32"``,
``"float64"`` or None (the type of the values given).

* every conformance case NumPy can run, in float32 and with dtype None on float32
  values: the arrays it returns are float32 (nothing upcasts on the way), and they agree
  with Derivative.evaluate at the same (rounded) values to float32's precision;
* float64 code given float32 values computes in float64;
* nothing global changes when a module is imported: JAX code does not touch
  jax.config, PyTorch code converts to no type of its own with dtype None;
* a constant float32 cannot hold is a MatcalcError that says so, in the API and the CLI.
"""
import copy
import warnings

import numpy as np
import pytest

import matcalc
from cgtools import exprs
from helpers import central, direction
from matcalc import codegen
from matcalc.codegen import ir
from test_generated import CASES, S, _args, _derive, needs_conformance

F32_RTOL = 2e-3


def _f32(v):
    return np.asarray(v, dtype=np.float32) if np.ndim(v) else v


def _rounded(values):
    """The values as float32 would hold them, in float64 (the reference's inputs)."""
    return {k: (np.asarray(v, dtype=np.float32).astype(np.float64) if np.ndim(v) else v)
            for k, v in values.items()}


def _close32(got, want):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.size != want.size:
        return False
    got = got.reshape(want.shape)
    scale = max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
    return float(np.max(np.abs(got - want), initial=0.0)) <= F32_RTOL * scale


def _arrays(out):
    return [x for x in (out if isinstance(out, tuple) else (out,)) if isinstance(x, np.ndarray)]


def _same(x):
    return x


def _run_on_float32_values(ns, d, case, to_numpy=_same):
    """(the values rounded to float32, d.evaluate there, f_and_grad's output, the
    derivative) of the generated module ns called with float32 arrays; to_numpy turns a
    framework's arrays into NumPy's."""
    values, _ = S.sample(case, S.SEEDS[0])
    ref = _rounded(values)
    want = d.evaluate(copy.deepcopy(ref))
    if not np.all(np.isfinite(np.asarray(want, dtype=float))):
        pytest.skip("no finite derivative at these values")
    args = [_f32(a) for a in _args(d, values)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = ns["f_and_grad"](*copy.deepcopy(args))
        D = ns["hessian"](*copy.deepcopy(args)) if case["kind"] == "hessian" else out[1]
    out = tuple(to_numpy(x) if hasattr(x, "dtype") else x for x in out)
    return ref, want, out, (to_numpy(D) if hasattr(D, "dtype") else D)


def _check_conformance_float32(case, target, dtype, to_numpy=_same):
    """The case's code for target in float32 (dtype "float32", or None on float32 values):
    float32 arrays out, and d.evaluate's values at the rounded inputs to float32's
    precision (a case too ill-conditioned for float32 at its values is skipped)."""
    d = _derive(case)
    try:
        src = d.to_code(target=target, dtype=dtype)
    except matcalc.MatcalcError as err:          # a constant float32 cannot hold
        assert dtype == "float32" and "float32" in str(err)
        return
    ns = codegen.load(src)
    ref, want, out, D = _run_on_float32_values(ns, d, case, to_numpy)
    for a in _arrays(out) + _arrays(D):
        assert a.dtype == np.float32, f"{case['expr']}: a {a.dtype} result from float32 {target} code"
    cond = 1.0
    if case["kind"] != "hessian":
        # how much float32 rounding of the inputs alone moves the answer: the tolerance
        # grows with it (an inverse of an ill-conditioned matrix)
        other = d.evaluate(copy.deepcopy(_rounded({k: (np.asarray(v) * (1 + 1e-7)) if np.ndim(v) else v
                                                   for k, v in ref.items()})))
        scale = max(1.0, float(np.max(np.abs(want))))
        cond = max(1.0, float(np.max(np.abs(np.asarray(other) - np.asarray(want)))) / (1e-7 * scale))
    if cond > 1e3:
        pytest.skip("too ill-conditioned for float32 at these values")
    assert _close32(D, want), f"d/d{case['wrt']} {case['expr']} in float32 ({target}): {D} vs {want}"


@needs_conformance
@pytest.mark.parametrize("dtype", ["float32", None])
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_conformance_float32(case, dtype):
    _check_conformance_float32(case, "numpy", dtype)


@needs_conformance
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_conformance_float32_jax(case):
    pytest.importorskip("jax")
    _check_conformance_float32(case, "jax", "float32")


@needs_conformance
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_conformance_float32_torch(case):
    torch = pytest.importorskip("torch")
    _check_conformance_float32(case, "torch", "float32",
                               lambda t: t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t))


@needs_conformance
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_conformance_float64_from_float32_values(case):
    # dtype="float64" given float32 values: float64 results, evaluate's to rounding
    d = _derive(case)
    ns = codegen.load(d.to_code(dtype="float64"))
    ref, want, out, D = _run_on_float32_values(ns, d, case)
    for a in _arrays(out) + _arrays(D):
        assert a.dtype == np.float64, f"{case['expr']}: a {a.dtype} result from float64 code"
    got = np.asarray(D, dtype=float).reshape(np.shape(want))
    scale = max(1.0, float(np.max(np.abs(want))))
    assert float(np.max(np.abs(got - want), initial=0.0)) <= 1e-7 * scale, case["expr"]


def test_float32_gradient_against_finite_differences():
    expr = "log(1 + exp(-y^T (A w))) + lambda ||w||^2"
    symbols = {"lambda": "scalar"}
    d = matcalc.diff(expr, wrt="w", symbols=symbols)
    rng = np.random.default_rng(2)
    values = {"w": rng.standard_normal(4), "y": rng.standard_normal(5), "A": rng.standard_normal((5, 4)),
              "lambda": 0.3}
    fn = matcalc.compile(expr, wrt="w", symbols=symbols, dtype="float32")
    fv, g = fn(values)
    assert g.dtype == np.float32
    V = direction(rng, "vector", values["w"])
    fd = central(lambda v: matcalc.evaluate(expr, v, symbols=symbols), values, "w", V)
    assert abs(float(g @ V) - float(fd)) <= F32_RTOL * max(1.0, abs(float(fd)))
    assert _close32(g, d.evaluate(values)) and abs(fv - matcalc.evaluate(expr, values, symbols=symbols)) < 1e-4


def test_float64_code_computes_in_float64_from_float32_values():
    d = matcalc.diff("tr(X^T A X) + sum(exp(X)) + x^T (I(n) + A) x", wrt="X")
    rng = np.random.default_rng(1)
    X, A, x = rng.standard_normal((3, 2)), rng.standard_normal((3, 3)), rng.standard_normal(3)
    f64 = codegen.load(d.to_code(dtype="float64"))["f_and_grad"]
    auto = codegen.load(d.to_code())["f_and_grad"]
    vals = {"X": X, "A": A, "x": x}
    want = d.evaluate(_rounded(vals))
    fv, g = f64(*(_f32(v) for v in (X, A, x)))
    assert g.dtype == np.float64 and np.allclose(g, want, rtol=1e-12, atol=1e-12)
    fv, g = auto(*(_f32(v) for v in (X, A, x)))          # None: the values' type
    assert g.dtype == np.float32 and _close32(g, want)
    fv, g = auto(X, A, x)
    assert g.dtype == np.float64 and np.allclose(g, d.evaluate(vals), rtol=1e-12, atol=1e-12)


def test_compile_keeps_or_converts_the_type():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((3, 3))
    x = rng.standard_normal(3)
    d = matcalc.diff("x^T A x", wrt="x")
    for dtype, given, want in [(None, np.float32, np.float32), (None, np.float64, np.float64),
                               ("float32", np.float64, np.float32), ("float64", np.float32, np.float64),
                               (np.float32, np.float64, np.float32)]:
        fn = matcalc.compile("x^T A x", wrt="x", dtype=dtype)
        _, g = fn(x.astype(given), A.astype(given))
        assert g.dtype == want, (dtype, given)
        assert _close32(g, d.evaluate({"x": x, "A": A}))
    _, g = matcalc.compile("x^T A x", wrt="x")([1, 2, 3], np.eye(3, dtype=int))    # integers: float64
    assert g.dtype == np.float64 and np.allclose(g, [2.0, 4.0, 6.0])


def test_unknown_dtype():
    d = matcalc.diff("x^T x", wrt="x")
    with pytest.raises(matcalc.MatcalcError, match="unknown dtype 'float16'"):
        d.to_code(dtype="float16")
    with pytest.raises(matcalc.MatcalcError, match="unknown dtype"):
        matcalc.compile("x^T x", wrt="x", dtype="int32")


@pytest.mark.parametrize("expr", ["exp(100) x^T x", "1e-50 x^T x + sum(x)", "x^T x + 1e39"])
def test_float32_cannot_hold_the_constant(expr, capsys):
    d = matcalc.diff(expr, wrt="x")
    with pytest.raises(matcalc.MatcalcError, match="range of float32.*dtype=\"float64\""):
        d.to_code(dtype="float32")
    # float64 and None are fine, and right
    x = np.array([0.5, -1.0])
    for dtype in ("float64", None):
        _, g = codegen.load(d.to_code(dtype=dtype))["f_and_grad"](x)
        assert np.allclose(g, d.evaluate({"x": x}), rtol=1e-12)
    from matcalc.cli import main
    assert main(["codegen", expr, "--wrt", "x", "--dtype", "float32"]) == 2
    err = capsys.readouterr().err
    assert "float32" in err and "--dtype float64" in err and "Traceback" not in err


def test_cli_dtype(capsys):
    from matcalc.cli import main
    assert main(["codegen", "x^T A x", "--wrt", "x", "--dtype", "float32"]) == 0
    ns = codegen.load(capsys.readouterr().out)
    x, A = np.arange(3.0), np.arange(9.0).reshape(3, 3)
    fv, g = ns["f_and_grad"](x, A)
    assert g.dtype == np.float32 and np.allclose(g, (A + A.T) @ x)


def _libs(fn):
    return {n.path for n in exprs(fn) if isinstance(n, ir.Lib)}


@pytest.mark.parametrize("target", ["numpy", "jax", "torch"])
def test_nothing_global_and_no_upcast(target):
    # the IR of the module: JAX's imports never set jax.config; with dtype None no
    # conversion names a type of its own; with float32, none names float64
    d = matcalc.hessian("x^T A x + sum(exp(A x)) + tr(K(n,n) (x x^T))", wrt="x")
    for dtype in (None, "float32", "float64"):
        module, _ = codegen.program(d, target, dtype=dtype)
        assert not any(line.lstrip().startswith(("jax.config", "torch.set_default")) for line in module.imports)
        libs = set().union(*(_libs(f) for f in module.functions))
        if dtype != "float64":
            assert not any(p.endswith("float64") for p in libs), (target, dtype, libs)
        if dtype == "float32":
            assert any(p.endswith("float32") for p in libs)
    module, _ = codegen.program(d, "jax", dtype="float64")
    assert any("jax_enable_x64" in line and "if not" in line for line in module.imports)


def test_jax_and_torch_in_float32_where_installed():
    ran = 0
    d = matcalc.diff("x^T A x + sum(exp(A x))", wrt="x")
    rng = np.random.default_rng(4)
    x, A = rng.standard_normal(3) * 0.3, rng.standard_normal((3, 3)) * 0.3
    want = d.evaluate({"x": x, "A": A})
    for target, mod in (("jax", "jax"), ("torch", "torch")):
        try:
            __import__(mod)
        except ImportError:
            continue
        ns = codegen.load(d.to_code(target=target, dtype="float32"))
        _, g = ns["f_and_grad"](x.astype(np.float32), A.astype(np.float32))
        assert str(g.dtype).endswith("float32")
        assert _close32(np.asarray(g), want)
        ran += 1
    if not ran:
        pytest.skip("neither JAX nor PyTorch is installed")


def test_torch_numbers_compute_in_float64_as_numpy_does():
    """dtype None: a Python number is float64 in NumPy; the torch code made it float32
    (torch.as_tensor(1.48)) and every value that met it lost half its digits."""
    torch = pytest.importorskip("torch")
    d = matcalc.diff("t^2 a + sin(t) b", wrt="t", symbols={"t": "scalar"})
    ns = codegen.load(d.to_code(target="torch"))
    rng = np.random.default_rng(3)
    t, a, b = 1.4802, rng.standard_normal(4), rng.standard_normal(4)
    ints = np.arange(4)                                  # integers compute in float64 too
    for args in ((t, a, b), (t, ints, b)):
        fv, g = ns["f_and_grad"](*args)
        values = dict(zip("tab", args))
        assert fv.dtype == torch.float64 and g.dtype == torch.float64
        assert np.allclose(fv.numpy(), matcalc.evaluate(d.f, values), rtol=1e-14, atol=0)
        want = d.evaluate(values)
        assert np.allclose(g.numpy(), want, rtol=1e-14, atol=0)
        h = 1e-6          # and the derivative is d/dt of f
        fd = (matcalc.evaluate(d.f, {**values, "t": t + h}) - matcalc.evaluate(d.f, {**values, "t": t - h})) / (2 * h)
        assert np.allclose(want, fd, rtol=1e-6, atol=1e-8)


def test_softmax_and_logsumexp_keep_float32():
    """The softmax and logsumexp kernels computed in float64 whatever the input, so a
    float32 gradient through them came back float64."""
    from matcalc import codegen
    d = matcalc.diff("logsumexp(W x) - y^T W x + a^T softmax(W x)", wrt="W")
    ns = codegen.load(d.to_code())
    rng = np.random.default_rng(0)
    vals = {"W": rng.standard_normal((3, 4)), "x": rng.standard_normal(4), "y": np.array([0.0, 1.0, 0.0]),
            "a": rng.standard_normal(3)}
    order = list(d.typed_symbols)
    f, g = ns["f_and_grad"](*[np.asarray(vals[n], dtype=np.float32) for n in order])
    assert g.dtype == np.float32
    want = d.evaluate(vals)
    assert np.allclose(g, want, rtol=1e-4, atol=1e-5)
    h = 1e-6          # the float64 answer is the derivative
    E = rng.standard_normal((3, 4))
    fd = (matcalc.evaluate(d.f, {**vals, "W": vals["W"] + h * E}) - matcalc.evaluate(d.f, {**vals, "W": vals["W"] - h * E})) / (2 * h)
    assert np.isclose(np.sum(want * E), fd, rtol=1e-6, atol=1e-8)
