"""Errors: every failure is a MatcalcError of the right subclass, with a position for
bad syntax and both operands named for sizes that cannot fit; resource limits (huge
powers, deep nesting, very long input) end quickly with an answer or a MatcalcError."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import matcalc
from helpers import check_derivative, draw, rel_err

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------- syntax

# text, the positions a reasonable parser may point at
PARSE_ERRORS = [
    ("", {0}),
    ("   ", {0, 1, 2, 3}),
    ("(X", {0, 2}),
    ("((X)", {0, 4}),
    ("X)", {1}),
    ("tr(X))", {5}),
    ("|X", {0, 2}),
    ("X|", {1, 2}),
    ("||x", {0, 3}),
    ("x||", {1, 3}),
    ("|X| |Y", {4, 6}),
    ("X +", {2, 3}),
    ("+ X", {0}),
    ("X * * Y", {4}),
    ("X + * Y", {4}),
    ("X @@ Y", {3}),
    ("A B,", {3}),
    ("A B)", {3}),
    ("tr(A, B)", {0, 4}),
    ("det(A, B)", {0, 5}),
    ("kron(A)", {0, 6}),
    ("kron(A, B, C)", {0, 10}),
    ("logdet(X, Y)", {0, 8}),
    ("X\x00Y", {1}),
    ("X\x07", {1}),
    ("tr(X)\x1b[0m", {5}),
    ("X # Y", {2}),
    ("X ¤ Y", {2}),
    ("日本", {0}),
    ("A ⋅ B", {2}),
    ("X^", {1, 2}),
    ("X^T^", {3, 4}),
    ("X .* ", {2, 3, 4, 5}),
    ("tr X", {3}),
    ("exp", {0, 3}),
    ("||x||_3", {5}),
    ("x^T A x)", {7}),
    ("tr()", {3}),
]


@pytest.mark.parametrize("text,positions", PARSE_ERRORS, ids=[repr(t) for t, _ in PARSE_ERRORS])
def test_parse_error_with_position(text, positions):
    with pytest.raises(matcalc.ParseError) as info:
        matcalc.parse(text)
    e = info.value
    assert isinstance(e, matcalc.MatcalcError)
    assert e.position in positions, f"{text!r}: position {e.position}, expected one of {positions}"
    assert e.span is not None and e.span[0] == e.position and e.span[1] >= e.span[0]
    assert str(e)
    # the rendered message points with a caret
    assert "^" in e.render().splitlines()[-1]
    # diff reports the same error
    with pytest.raises(matcalc.ParseError):
        matcalc.diff(text, wrt="X")


def test_empty_call_is_not_reported_as_unbalanced():
    with pytest.raises(matcalc.ParseError) as info:
        matcalc.parse("tr()")
    assert "unbalanced" not in str(info.value) and "without a matching" not in str(info.value)


def test_parse_error_for_non_string():
    with pytest.raises(matcalc.MatcalcError):
        matcalc.parse(None)
    with pytest.raises(matcalc.MatcalcError):
        matcalc.diff(42, wrt="x")


# ---------------------------------------------------------------------------- shapes

# text, declarations, strings the message must name (the operands)
SHAPE_ERRORS = [
    ("x + X", None, ["x", "X"]),
    ("X + x", None, ["X", "x"]),
    ("A x + x", {"A": "matrix(2,3)", "x": "vector(3)"}, ["A x", "x"]),
    ("x^T A x", {"A": "matrix(3,4)"}, ["A", "x"]),
    ("x^T A x", {"A": "matrix(3,4)", "x": "vector(3)"}, ["A", "x"]),
    ("A B", {"A": "matrix(2,3)", "B": "matrix(4,5)"}, ["A", "B"]),
    ("A x", {"A": "matrix(2,3)", "x": "vector(4)"}, ["A", "x"]),
    ("x^T y", {"x": "vector(2)", "y": "vector(3)"}, ["x", "y"]),
    ("A .* B", {"A": "matrix(2,3)", "B": "matrix(3,2)"}, ["A", "B"]),
    ("X^T X + X", {"X": "matrix(2,3)"}, ["X^T X", "X"]),
    ("inv(A)", {"A": "matrix(2,3)"}, ["A"]),
    ("A^-1", {"A": "matrix(2,3)"}, ["A"]),
    ("det(A)", {"A": "matrix(2,3)"}, ["A"]),
    ("|A|", {"A": "matrix(2,3)"}, ["A"]),
    ("logdet(A)", {"A": "matrix(2,3)"}, ["A"]),
    ("log|A|", {"A": "matrix(2,3)"}, ["A"]),
    ("tr(A)", {"A": "matrix(2,3)"}, ["A"]),
    ("A^2", {"A": "matrix(2,3)"}, ["A"]),
    ("X / Y", None, ["Y"]),
    ("x^2", None, ["x"]),
    ("diag(x^T)", None, ["x"]),
    ("s x", {"s": "scalar", "x": "vector(3)", "y": "vector(2)"}, None),
]


@pytest.mark.parametrize("text,symbols,names", [s for s in SHAPE_ERRORS if s[2]],
                         ids=[s[0] + " " + str(s[1]) for s in SHAPE_ERRORS if s[2]])
def test_shape_error_names_the_operands(text, symbols, names):
    with pytest.raises(matcalc.ShapeError) as info:
        matcalc.parse(text, symbols=symbols)
    msg = str(info.value)
    for n in names:
        assert n in msg, f"{n!r} not named in {msg!r}"
    assert info.value.span is not None
    lo, hi = info.value.span
    assert 0 <= lo < hi <= len(text)


def test_shape_error_names_sizes():
    with pytest.raises(matcalc.ShapeError) as info:
        matcalc.parse("A B", symbols={"A": "matrix(2,3)", "B": "matrix(4,5)"})
    assert "3" in str(info.value) and "4" in str(info.value)


def test_declared_non_square_in_quadratic_form_via_diff():
    with pytest.raises(matcalc.ShapeError):
        matcalc.diff("x^T A x", wrt="x", symbols={"A": "matrix(3,4)"})


@pytest.mark.parametrize("decl", ["blob", "matrix(2)", "vector(2,3)", "vector(0)", "symmetric(2,3)",
                                  "scalar(3)", "matrix(2,", "", "spd(n,m)", 3, None])
def test_bad_declarations(decl):
    with pytest.raises(matcalc.MatcalcError):
        matcalc.diff("x^T x", wrt="x", symbols={"x": decl})


def test_unknown_kind_names_the_kind():
    with pytest.raises(matcalc.MatcalcError) as info:
        matcalc.diff("x^T A x", wrt="x", symbols={"A": "hermitian"})
    assert "hermitian" in str(info.value)


# ---------------------------------------------------------------------------- wrt

@pytest.mark.parametrize("wrt", ["2", "X + Y", "", "  ", "I", "tr", "exp", "x'", "(x)", "x^T"])
def test_wrt_must_be_a_symbol(wrt):
    with pytest.raises(matcalc.MatcalcError):
        matcalc.diff("x^T x + tr(X)", wrt=wrt)


@pytest.mark.parametrize("wrt", [None, 3, 2.5])
def test_wrt_of_the_wrong_type(wrt):
    with pytest.raises(matcalc.MatcalcError):
        matcalc.diff("x^T x", wrt=wrt)


@pytest.mark.parametrize("kw", [{"layout": "bogus"}, {"symmetric": "bogus"}, {"layout": None}])
def test_bad_options(kw):
    with pytest.raises(matcalc.MatcalcError):
        matcalc.diff("x^T x", wrt="x", **kw)


# ---------------------------------------------------------------------------- absent variable

@pytest.mark.parametrize("expr,wrt,symbols,shape", [
    ("tr(A)", "X", None, "X"),
    ("a^T b", "x", None, "x"),
    ("tr(A) + u^T u", "s", {"s": "scalar"}, ()),
    ("tr(A)", "t", {"t": "scalar"}, ()),
    ("A x", "t", {"t": "scalar"}, "f"),
    ("A B", "t", {"t": "scalar"}, "f"),
    ("tr(X^-1 A X)", "X", None, "X"),          # depends on X only through a constant
    ("sum(x ./ x)", "x", None, "x"),
])
def test_absent_variable_gives_a_true_zero(expr, wrt, symbols, shape):
    d = matcalc.diff(expr, wrt=wrt, symbols=symbols)
    vals = draw(d.symbols, np.random.default_rng(0), dom="pos")
    got = d.evaluate(vals)
    if shape == ():
        assert isinstance(got, float) and got == 0.0
        return
    want = np.shape(vals[wrt]) if shape != "f" else np.shape(matcalc.evaluate(expr, vals))
    assert np.shape(got) == want
    assert np.all(np.asarray(got) == 0)
    # read back, the printed zero is zero (see test_printed_zero_keeps_its_shape)
    assert np.all(np.asarray(matcalc.evaluate(str(d), vals, symbols=d.symbols)) == 0)


@pytest.mark.parametrize("expr,wrt,symbols", [
    ("tr(A)", "X", None),
    ("a^T b", "x", None),
    ("A x", "t", {"t": "scalar"}),
])
def test_printed_zero_keeps_its_shape(expr, wrt, symbols):
    """A zero derivative of a vector or matrix prints with its shape (zeros(m,n), CONTRACT
    §5.2), so that it reads back with the derivative's shape; d.evaluate gives the zeros
    in the derivative's shape."""
    d = matcalc.diff(expr, wrt=wrt, symbols=symbols)
    vals = draw(d.symbols, np.random.default_rng(0))
    assert str(d).startswith("zeros(")
    z = np.asarray(d.evaluate(vals))
    assert not np.any(z)
    want = np.shape(vals[wrt]) if d.kind == "gradient" else np.shape(matcalc.evaluate(expr, vals))
    assert z.shape == want
    back = np.asarray(matcalc.evaluate(str(d), vals, symbols=d.symbols))
    assert back.shape == z.shape and not np.any(back)


# ---------------------------------------------------------------------------- unsupported

@pytest.mark.parametrize("expr", ["||X||_2", "||A X||_2^2", "||X - B||_2", "exp(||X||_2)"])
def test_spectral_norm_is_differentiated(expr):
    """(it was an UnsupportedError: CONTRACT §5.3 asks for its closed form, u₁ v₁ᵀ)"""
    d = check_derivative(expr, "X")
    assert "svec_left" in str(d) and "svec_right" in str(d)


def test_spectral_norm_of_a_vector_is_the_euclidean_norm():
    check_derivative("||x||_2", "x")


def test_unsupported_is_a_matcalc_error():
    assert issubclass(matcalc.UnsupportedError, matcalc.MatcalcError)
    assert issubclass(matcalc.ShapeError, matcalc.MatcalcError)
    assert issubclass(matcalc.ParseError, matcalc.MatcalcError)


def test_gradient_needing_unvec_declines():
    """a^T vec(X) has the gradient unvec(a), which the language cannot write: decline
    or answer right (numerically), never a wrong answer."""
    try:
        d = matcalc.diff("a^T vec(X)", wrt="X")
    except matcalc.UnsupportedError:
        return
    vals = draw(d.symbols, np.random.default_rng(0))
    want = vals["a"].reshape(np.shape(vals["X"]), order="F")
    assert rel_err(d.evaluate(vals), want) < 1e-9


# ---------------------------------------------------------------------------- numbers

@pytest.mark.parametrize("text", ["2^100000", "10^400 x", "1e300 1e300 x", "exp(1000)"])
def test_overflow_in_evaluate_is_inf_or_a_matcalc_error(text):
    try:
        v = matcalc.evaluate(text, {"x": np.ones(2)})
    except matcalc.MatcalcError:
        return
    assert np.all(np.isinf(v)) or np.all(np.isfinite(v))


@pytest.mark.parametrize("text", ["1e299^20 a^T x", "1e299 1e299 1e299 1e299 1e299 1e299 1e299 1e299 "
                                  "1e299 1e299 1e299 1e299 1e299 1e299 1e299 a^T x", "10^5000 a^T x"])
def test_huge_coefficients_answer_or_matcalc_error(text):
    try:
        d = matcalc.diff(text, wrt="x")
    except matcalc.MatcalcError:
        return
    # an answer reads back; its value past the float range is an error that says so (never
    # a silent inf), and 0 where a is 0 (the huge coefficient times 0)
    vals = {"a": np.array([1.0, -2.0]), "x": np.array([0.5, 0.25])}
    with pytest.raises(matcalc.EvaluationError, match="overflows float64"):
        matcalc.evaluate(str(d), vals, symbols=d.symbols)
    back = np.asarray(matcalc.evaluate(str(d), {**vals, "a": np.zeros(2)}, symbols=d.symbols))
    assert back.shape == (2,)
    assert np.all(back == 0)


# ---------------------------------------------------------------------------- limits

_RUNNER = """
import json, sys, time
import matcalc
for code, wrt, symbols in json.loads(sys.argv[1]):
    text = eval(code)
    t = time.perf_counter()
    try:
        out = "answer: " + str(matcalc.diff(text, wrt=wrt, symbols=symbols))[:200]
    except matcalc.MatcalcError as e:
        out = type(e).__name__
    except BaseException as e:
        out = "OTHER " + type(e).__name__ + ": " + str(e)[:200]
    print(json.dumps({"code": code, "t": time.perf_counter() - t, "out": out}), flush=True)
"""


def _run_cases(cases, timeout):
    """Run diff on each (code, wrt, symbols) in a fresh interpreter, so that a hang
    cannot stall the suite; {code: (seconds, outcome)} where outcome is 'answer: …',
    a MatcalcError class name, or 'OTHER …' for any other exception.  Cases that did
    not run before the timeout are missing."""
    try:
        p = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(cases)], cwd=ROOT,
                           capture_output=True, text=True, timeout=timeout)
        stdout = p.stdout
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
    out = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            out[r["code"]] = (r["t"], r["out"])
    return out


def _timed(code, wrt, symbols=None, limit=2.0):
    r = _run_cases([[code, wrt, symbols]], timeout=limit + 1.5).get(code)
    if r is None:
        pytest.fail(f"did not finish within {limit + 1.5:.1f} s")
    return r


def _acceptable(out):
    assert not out.startswith("OTHER"), out


def test_huge_matrix_power_is_quick():
    for text in ["tr(X^1000000)", "a^T X^1000000 b", "tr(X^-1000000)"]:
        t0 = time.perf_counter()
        try:
            matcalc.diff(text, wrt="X")
        except matcalc.MatcalcError:
            pass
        assert time.perf_counter() - t0 < 1.0, text
    t0 = time.perf_counter()
    try:
        v = matcalc.evaluate("tr(X^1000000)", {"X": 0.5 * np.eye(3)})
        assert v == pytest.approx(0.0, abs=1e-12)
    except matcalc.MatcalcError:
        pass
    assert time.perf_counter() - t0 < 1.0


def test_large_matrix_power_is_right_or_declined():
    try:
        check_derivative("tr(X^70)", "X", sizes={"n": 3, "m": 3},
                         override=lambda v, rng: {"X": np.eye(3) + 0.01 * rng.standard_normal((3, 3))},
                         trials=1, tol=1e-5)
    except matcalc.UnsupportedError:
        pass


DEEP = [
    ('"(" * 10000 + "x^T x" + ")" * 10000', "x"),
    ('"tr(" * 10000 + "X" + ")" * 10000', "X"),
    ('"exp(" * 10000 + "t" + ")" * 10000', "t"),
    ('"-" * 10000 + "a^T x"', "x"),
    ('"X" + "^T" * 10000', "X"),
    ('"||" * 10000 + "x" + "||" * 10000', "x"),
    ('"|" * 10000 + "X" + "|" * 10000', "X"),
    ('"(" * 10000 + "x" + ")" * 10000 + "^T a"', "x"),
    ('"sum(" * 5000 + "x" + ")" * 5000', "x"),
    ('"(x^T x)^" * 10000 + "2"', "x"),
]

LONG = [
    ('" + ".join(["a^T x"] * 20000)', "x"),
    ('" ".join(["x^T x"] * 20000)', "x"),
    ('"+".join(f"a{i}^T x" for i in range(12000))', "x"),
    ('"tr(" + " ".join(["X"] * 50000) + ")"', "X"),
    ('"sum(" + " + ".join(["x"] * 25000) + ")"', "x"),
    ('"x^T x" + " " * 100000', "x"),
    ('"tr(" + " + ".join(["X^T A X"] * 10000) + ")"', "X"),
    ('" ".join(["2"] * 50000) + " a^T x"', "x"),
]


@pytest.fixture(scope="module")
def deep_and_long():
    cases = [[c, w, {"t": "scalar"} if w == "t" else None] for c, w in DEEP + LONG]
    return _run_cases(cases, timeout=2.0 * len(cases) + 5)


@pytest.mark.parametrize("code,wrt", DEEP, ids=[c for c, _ in DEEP])
def test_deep_nesting_ends_quickly(code, wrt, deep_and_long):
    assert code in deep_and_long, "did not finish (the batch timed out)"
    t, out = deep_and_long[code]
    _acceptable(out)
    assert t < 2.0, f"{t:.2f} s"


@pytest.mark.parametrize("code,wrt", LONG, ids=[c[:40] for c, _ in LONG])
def test_long_input_ends_quickly(code, wrt, deep_and_long):
    assert len(eval(code)) >= 100000
    assert code in deep_and_long, "did not finish (the batch timed out)"
    t, out = deep_and_long[code]
    _acceptable(out)
    assert t < 3.0, f"{t:.2f} s ({out[:60]})"


def test_deep_parentheses_answer_is_right():
    text = "(" * 10000 + "x^T A x" + ")" * 10000
    try:
        d = matcalc.diff(text, wrt="x")
    except matcalc.MatcalcError:
        return
    vals = draw(d.symbols, np.random.default_rng(1))
    assert rel_err(d.evaluate(vals), (vals["A"] + vals["A"].T) @ vals["x"]) < 1e-10


# The same shapes of input, a little under 20,000 characters: an input-length limit
# must not be the only thing that keeps a long input from hanging.  Each runs in its
# own interpreter with a limit of 3 s.
MEDIUM = [
    ('" + ".join(["a^T x"] * 2400)', "x"),
    ('" ".join(["x^T x"] * 3000)', "x"),
    ('"+".join(f"a{i}^T x" for i in range(2000))', "x"),
    ('"a^T " + " ".join(["X"] * 9000) + " b"', "X"),
    ('"tr(" + " + ".join(["X^T A X"] * 1800) + ")"', "X"),
    ('"tr(" + "(X + A)" * 2000 + ")"', "X"),
]


@pytest.mark.parametrize("code,wrt", MEDIUM, ids=[c[:40] for c, _ in MEDIUM])
def test_long_input_under_the_length_limit_ends_quickly(code, wrt):
    assert 14000 <= len(eval(code)) < 20000
    t, out = _timed(code, wrt, limit=3.0)
    _acceptable(out)
    assert t < 3.0, f"{t:.2f} s ({out[:60]})"


def test_long_sum_answer_is_right():
    text = " + ".join(["a^T x"] * 2000)
    d = matcalc.diff(text, wrt="x")
    vals = draw(d.symbols, np.random.default_rng(2))
    assert rel_err(d.evaluate(vals), 2000 * vals["a"]) < 1e-12
