"""Issue 10, "the numeric check tells the truth": ``--check`` and ``d.check()``.

Every example of the issue is here, through the API and the command line; each verdict
of matcalc's own check is compared with the harness of tests/helpers.py (the check's
sampler and differences, but its own function, ``matcalc.evaluate`` of the input text,
and its own comparison at a fixed tolerance, without the check's validity and rounding
analysis):
the check says ok exactly when the derivative is right.  Deliberately wrong derivatives
(transposed, scaled by 1.01, NaN, misshapen) must fail it.  Exit codes: 0 ok, 1 failed
or no valid point or not run, 2 input errors, never 3.
"""
import copy
import json
import os
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np
import pytest

import matcalc
from matcalc import cli as mcli
from matcalc import expr as E
from matcalc.check import Sampler, check
from helpers import check_derivative, check_hessian

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(capsys, *args):
    code = mcli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def independent_verdict(expr, wrt, symbols=None, sizes=None, hessian=False):
    """True when tests/helpers.py's own finite-difference check accepts the engine's
    derivative, False when it rejects it (a wrong value, a NaN, a misshapen array).
    sizes: size bindings, or a NumPy f of the values."""
    f = sizes if callable(sizes) else None
    sizes = None if callable(sizes) else sizes
    try:
        if hessian:
            check_hessian(expr, wrt, symbols=symbols, allow_unsupported=False)
        else:
            check_derivative(expr, wrt, symbols=symbols, sizes=sizes, f=f, trials=3)
    except (AssertionError, matcalc.MatcalcError, ValueError, np.linalg.LinAlgError):
        return False
    return True


# ---------------------------------------------------------------------------- right answers

def xtx(v):
    return float(v["x"] @ v["x"])


# (expr, wrt, symbols, sizes and f for the independent harness): right answers that the
# check used to fail (a wide X under logdet(XᵀX), a LinAlgError, f's scale).  The
# harness differentiates 1e8 + xᵀx as xᵀx (in NumPy): its fixed step cannot see past
# the rounding of 1e8, and the constant does not change the derivative.
RIGHT = [
    ("logdet(X^T X)", "X", None, None),
    ("det(X^T A X)", "X", None, None),
    ("(X^T X)^-1", "X", None, None),
    ("tr((X - X^T)^-1 A)", "X", None, {"n": 4}),
    ("1e8 + x^T x", "x", None, xtx),
    ("1e-8 x^T x", "x", None, None),
    ("tr(X^T A X)", "X", None, None),
    ("logdet(X X^T)", "X", None, {"m": 2}),
]


@pytest.mark.parametrize("expr,wrt,symbols,sizes", RIGHT)
def test_right_answers_pass(expr, wrt, symbols, sizes):
    assert independent_verdict(expr, wrt, symbols, sizes), f"the engine's d/d{wrt} {expr} is wrong"
    d = matcalc.diff(expr, wrt=wrt, symbols=symbols)
    r = d.check()
    assert r.ok, (expr, str(d), r)
    assert r.points == 3 and r.error is not None and r.error <= r.tolerance <= 1.1e-3


@pytest.mark.parametrize("expr,wrt,symbols,sizes", RIGHT)
def test_right_answers_pass_cli(capsys, expr, wrt, symbols, sizes):
    code, out, err = run_cli(capsys, "diff", expr, "--wrt", wrt, "--check")
    assert code == 0, (out, err)
    assert out.splitlines()[-1].startswith("check: relative error") and out.rstrip().endswith(": ok")
    assert "internal error" not in err


def test_the_sampler_finds_points_where_f_is_defined():
    rng = np.random.default_rng(0)
    for text, need in [("logdet(X^T X)", lambda v: v["X"].shape[0] >= v["X"].shape[1]),
                       ("tr((X - X^T)^-1 A)", lambda v: v["X"].shape[0] % 2 == 0),
                       ("-sum(log(b - A x))", lambda v: np.all(v["b"] - v["A"] @ v["x"] > 0))]:
        d = matcalc.diff(text, wrt="x" if "x" in text else "X")
        pts = []
        for values, sizes in Sampler(d.typed_symbols, d.f).points(rng):
            assert need(values), (text, {k: np.shape(v) for k, v in values.items()})
            assert np.isfinite(matcalc.evaluate(text, values))
            pts.append(sizes)
            if len(pts) == 3:
                break
        assert len(pts) == 3, text


# ---------------------------------------------------------------------------- NaN is never ok

@pytest.mark.parametrize("expr", ["tr(log(X))", "tr(X .^ -1)", "tr(sqrt(X))", "tr(abs(X))",
                                  "tr(X .^ 0.5)", "sum(abs(X))"])
def test_nan_is_never_ok_diagonal(capsys, expr):
    """The issue's gradients of a diagonal X that are 0/0 off the diagonal: whatever the
    engine answers, the check says ok exactly when the answer is finite and right."""
    sym = {"X": "diagonal"}
    d = matcalc.diff(expr, wrt="X", symbols=sym)
    vals = {"X": np.diag([0.7, 1.3, 0.9])}
    finite = bool(np.all(np.isfinite(d.evaluate(vals))))
    right = finite and independent_verdict(expr, "X", sym)
    r = d.check()
    assert r.ok == right, (expr, str(d), r)
    if not finite:
        assert not r.ok and "NaN" in r.note
    code, out, err = run_cli(capsys, "diff", expr, "--wrt", "X", "--let", "X=diagonal", "--check")
    assert code == (0 if right else 1), (out, err)
    if not finite:
        assert "FAILED" in out and "NaN" in out and "ok" not in out.splitlines()[-1].split(":")[-1]


def nan_of(e):
    """The same derivative times NaN (log(-1) evaluates to NaN)."""
    return E.Mul((E.Func("log", E.Num(-1)), e))


WRONGS = {
    "transposed": lambda e: E.Transpose(e),
    "times 1.01": lambda e: E.Mul((E.Num(Fraction(101, 100)), e)),
    "times 0.999": lambda e: E.Mul((E.Num(Fraction(999, 1000)), e)),
    "NaN": nan_of,
    "zero": lambda e: E.Mul((E.Num(0), e)),
}

# derivatives whose transpose differs from them (non-symmetric values, or another shape)
KINDS = [
    ("tr(X^T A X)", "X", None, "diff"),              # gradient, non-square
    ("tr(A X)", "X", None, "diff"),                  # gradient, square: Aᵀ vs A
    ("logdet(X)", "X", None, "diff"),                # X^-T vs X^-1
    ("x^T A x", "x", None, "diff"),                  # a vector gradient
    ("1e8 + x^T x", "x", None, "diff"),              # huge f, small derivative
    ("1e-8 x^T x", "x", None, "diff"),               # tiny derivative
    ("X^-1", "X", None, "diff"),                     # a square Jacobian
    ("A X B", "X", None, "diff"),                    # a non-square Jacobian
    ("(A + t B)^-1", "t", {"t": "scalar"}, "diff"),  # wrt a scalar
    ("x^T A x", "x", None, "hessian"),               # a Hessian A + Aᵀ: transposed is equal
    ("tr(X A X)", "X", None, "hessian"),
]


@pytest.mark.parametrize("how", list(WRONGS))
@pytest.mark.parametrize("expr,wrt,symbols,op", KINDS)
def test_wrong_derivatives_fail(expr, wrt, symbols, op, how):
    d = (matcalc.hessian if op == "hessian" else matcalc.diff)(expr, wrt=wrt, symbols=symbols)
    assert d.check().ok, (expr, str(d))
    w = d.replace(expr=WRONGS[how](d.expr))
    if how == "transposed" and op == "hessian":
        pytest.skip("a Hessian (in vec form) is its own transpose")
    r = w.check()
    assert not r.ok, (expr, how, r)
    assert r.status == "failed"
    assert "FAILED" in r.message()
    doc = r.as_dict()
    assert doc["ok"] is False and doc["status"] == "failed"


def test_wrong_answers_fail_through_the_cli_path(capsys, monkeypatch):
    """The CLI prints the check's verdict and exits 1 for a wrong answer (the engine's
    answer replaced by its transpose, as a wrong engine would print it)."""
    real = matcalc.api.diff

    def transposed(*a, **kw):
        d = real(*a, **kw)
        return d.replace(expr=E.Transpose(d.expr))
    monkeypatch.setattr(matcalc.api, "diff", transposed)
    code, out, err = run_cli(capsys, "diff", "tr(A X)", "--wrt", "X", "--check")
    assert code == 1, (out, err)
    assert "FAILED" in out


def test_a_misshapen_answer_fails():
    d = matcalc.diff("tr(X^T A X)", wrt="X")
    w = d.replace(expr=E.Transpose(d.expr))        # an n×m array for an m×n variable
    r = w.check()
    assert not r.ok and "shape" in r.note


# ---------------------------------------------------------------------------- the tolerance

def test_tolerance_follows_the_derivative_not_f():
    for c in ("1e8", "-1e9", "1e-6", "0"):
        text = f"{c} + x^T x"
        assert independent_verdict(text, "x", sizes=xtx)
        d = matcalc.diff(text, wrt="x")
        r = d.check()
        assert r.ok, (text, r)
        assert r.tolerance <= 1.1e-3
        w = d.replace(expr=E.Mul((E.Num(Fraction(101, 100)), d.expr)))
        assert not w.check().ok, text


# ---------------------------------------------------------------------------- no valid point

@pytest.mark.parametrize("expr,wrt,lets", [
    ("log(-1 - x^T x)", "x", []),                               # f is never finite
    ("logdet(X X^T)", "X", ["X=matrix(5,2)"]),                  # X Xᵀ is always singular
    ("tr((X - X^T)^-1)", "X", ["X=matrix(3,3)"]),               # odd skew: singular
])
def test_no_valid_point_is_exit_1_with_a_message(capsys, expr, wrt, lets):
    d = matcalc.diff(expr, wrt=wrt, symbols=dict(x.split("=") for x in lets) or None)
    t = time.time()
    r = d.check()
    assert time.time() - t < 5
    assert not r.ok and r.status == "no valid point" and r.points == 0
    assert "points tried" in r.note
    args = ["diff", expr, "--wrt", wrt, "--check"] + [a for x in lets for a in ("--let", x)]
    code, out, err = run_cli(capsys, *args)
    assert code == 1, (out, err)
    assert "check: no valid point found" in out and "internal error" not in err


# ---------------------------------------------------------------------------- huge sizes

def test_huge_declared_sizes_are_refused_at_once():
    d = matcalc.diff("tr(X)", wrt="X", symbols={"X": "matrix(100000,100000)"})
    t = time.time()
    r = d.check()
    assert time.time() - t < 2
    assert r.status == "not run" and not r.ok
    assert "declared sizes" in r.note and "GB" in r.note


def test_huge_declared_sizes_cli():
    t = time.time()
    p = subprocess.run([sys.executable, "-m", "matcalc", "diff", "tr(X)", "--wrt", "X", "--let",
                        "X=matrix(100000,100000)", "--check"], cwd=ROOT_DIR, capture_output=True,
                       text=True, timeout=60)
    assert time.time() - t < 10
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "check: not run" in p.stdout and "MemoryError" not in p.stderr


def test_moderate_declared_sizes_are_checked():
    d = matcalc.diff("tr(X^T A X)", wrt="X", symbols={"X": "matrix(60,40)"})
    r = d.check()
    assert r.ok, r


def test_a_jacobian_too_large_at_the_declared_sizes_is_refused():
    # the Jacobian of X⁻¹ at 300×300 has 8.1e9 entries
    d = matcalc.diff("X^-1", wrt="X", symbols={"X": "matrix(300,300)"})
    r = d.check()
    assert r.status == "not run"


# ---------------------------------------------------------------------------- exit codes, JSON

def test_the_commutation_example_never_exits_3(capsys):
    """The issue's exit 3 under --check: now 0 (right) or 1 (wrong), as the independent
    harness says."""
    lets = {"G": "matrix(n,m)", "u": "vector(m)", "w": "vector(n)"}
    expr = "(K(n,m) vec(G))^T kron(u, w)"
    code, out, err = run_cli(capsys, "diff", expr, "--wrt", "w",
                             *[a for k, v in lets.items() for a in ("--let", f"{k}={v}")], "--check")
    assert code in (0, 1, 2) and "internal error" not in err, (code, out, err)
    if code == 2:       # the engine refuses the pairing of two shapes (never a misshapen answer)
        assert "UnsupportedError" in err
    else:
        assert (code == 0) == independent_verdict(expr, "w", lets)


def test_input_errors_under_check_exit_2(capsys):
    code, out, err = run_cli(capsys, "diff", "tr(X^T A X", "--wrt", "X", "--check")
    assert code == 2 and "ParseError" in err


@pytest.mark.parametrize("expr,wrt,lets,ok", [
    ("tr(X^T A X)", "X", [], True),
    ("logdet(X^T X)", "X", [], True),
    ("tr(X)", "X", ["X=matrix(100000,100000)"], False),
    ("log(-1 - x^T x)", "x", [], False),
])
def test_check_json(capsys, expr, wrt, lets, ok):
    args = ["diff", expr, "--wrt", wrt, "--check", "--json"] + [a for x in lets for a in ("--let", x)]
    code, out, err = run_cli(capsys, *args)
    assert code == (0 if ok else 1), (out, err)
    docs = json.loads(out)
    doc = docs[0] if isinstance(docs, list) else docs
    if "derivatives" in doc:
        doc = doc["derivatives"][0]
    c = doc["check"]
    assert set(c) >= {"ok", "error", "tolerance", "points", "note"}
    assert c["ok"] is ok
    if ok:
        assert c["error"] <= c["tolerance"] and c["points"] == 3
    else:
        assert c["note"]


def test_check_with_given_values():
    d = matcalc.diff("logdet(X^T X)", wrt="X")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((5, 2))
    r = check(d, trials=1, values={"X": X})
    assert r.ok and r.points == 1
    r = check(d, trials=1, values={"X": X.T})          # wide: not a valid point, others are
    assert r.ok and r.points == 1



# ---------------------------------------------------------------------------- the conformance corpus

import test_latex  # noqa: E402  (the conformance cases, each verified by the judge against NumPy)


@test_latex.needs_conformance
def test_every_conformance_answer_passes_and_its_1_percent_error_fails():
    """The judge checks every conformance answer against a hand-written NumPy reference:
    the check must pass all of them, and fail each one scaled by 1.01."""
    failed, passed_wrong = [], []
    for case_id in test_latex.CASE_IDS:
        d = test_latex.case_derivative(case_id)
        r = d.check()
        if not r.ok:
            failed.append((case_id, str(d), r))
        if E.is_zero(d.expr) or "zeros" in str(d):
            continue
        w = d.replace(expr=E.Mul((E.Num(Fraction(101, 100)), d.expr)))
        if w.check().ok:
            passed_wrong.append(case_id)
    assert not failed, failed
    assert not passed_wrong, passed_wrong


@pytest.mark.parametrize("expr,wrt,symbols", [("x^T A x", "x", None), ("tr(X A X)", "X", None),
                                              ("t^3 a^T a", "t", {"t": "scalar"})])
def test_a_hessian_is_checked_against_f_not_only_against_the_gradient(expr, wrt, symbols):
    """A Hessian that agrees with a wrong gradient (both scaled by 2) fails: it is also
    compared with second differences of f."""
    d = matcalc.hessian(expr, wrt=wrt, symbols=symbols)
    assert d.check().ok and independent_verdict(expr, wrt, symbols, hessian=True)
    w = d.replace(expr=E.Mul((E.Num(2), d.expr)), gradient=E.Mul((E.Num(2), d.gradient)))
    assert not w.check().ok


def test_the_check_never_raises():
    """Values that do not fit, or a broken derivative object: a result, not an exception
    (the CLI must never exit 3 under --check)."""
    d = matcalc.diff("tr(X^T A X)", wrt="X")
    r = check(d, trials=1, values={"X": np.ones((2, 3)), "A": np.ones((5, 5))})
    assert r.ok                     # the given point is not valid; a drawn one is
    broken = copy.copy(d)
    object.__setattr__(broken, "var", None)     # broken on purpose: a Derivative is read-only
    r = broken.check()
    assert not r.ok and r.status == "not run" and "could not run" in r.note
