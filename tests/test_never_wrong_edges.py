"""Issue 10's last holes: sizes fixed only by a product constraint, zero derivatives
printed as one zeros(r,c) with a true note, no 0/0 from cancelling s/|s|.  Every answer
is checked against central differences (tests/helpers.py)."""
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

import matcalc
from helpers import (central, check_derivative, check_hessian, declarations_for_f, draw, evaluator,
                     fitting_sizes, rel_err, spd, vecF)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

KRON_VEC = "((wᵀ ∘ g' - (x.T + w.T)) (sqrt(D) * (vec(A')^{T} (kron(I(m), B) * vec(C)))))^{T}"
KRON_DECLS = {"A": "matrix", "B": "spd(p)", "D": "matrix(p,n)"}


def test_typing_does_not_depend_on_the_order_of_declarations():
    seen = set()
    for order in itertools.permutations(KRON_DECLS):
        d = matcalc.diff(KRON_VEC, wrt="A", symbols={k: KRON_DECLS[k] for k in order})
        seen.add((tuple(sorted(d.symbols.items())), str(d)))
    assert len(seen) == 1, seen


@pytest.mark.parametrize("m,p,n,ashape,cshape", [(2, 3, 2, (2, 3), (3, 2)),
                                                  (2, 3, 4, (6, 1), (1, 6)),
                                                  (3, 2, 1, (2, 3), (6, 1))])
def test_a_size_fixed_only_by_a_product_is_solved_from_the_values(m, p, n, ashape, cshape):
    # m appears only in I(m): the values fix it through rows(A)·cols(A) = m·p
    d = matcalc.diff(KRON_VEC, wrt="A", symbols=KRON_DECLS)
    rng = np.random.default_rng(m * 100 + p * 10 + n)
    vals = dict(w=rng.normal(size=p), g=rng.normal(size=p), x=rng.normal(size=p),
                D=rng.random((p, n)) + 0.1, A=rng.normal(size=ashape), B=spd(rng, p),
                C=rng.normal(size=cshape))

    def f(v):
        return _f(v, m)
    J = np.asarray(d.evaluate(vals), dtype=float)
    assert J.shape == (n, m * p)
    V = rng.normal(size=ashape)
    fd = central(f, vals, "A", V)
    assert rel_err(J @ vecF(V), vecF(fd)) < 1e-6


def _f(v, m):
    """f in NumPy, independent of matcalc."""
    a = vecF(v["A"].T)
    k = np.kron(np.eye(m), v["B"]) @ vecF(v["C"])
    row = v["w"] * v["g"] - (v["x"] + v["w"])
    return (row @ (np.sqrt(v["D"]) * (a @ k)))


def test_a_product_the_values_cannot_meet_is_a_shape_error():
    d = matcalc.diff(KRON_VEC, wrt="A", symbols=KRON_DECLS)
    rng = np.random.default_rng(1)
    p = 3
    vals = dict(w=rng.normal(size=p), g=rng.normal(size=p), x=rng.normal(size=p),
                D=rng.random((p, 2)), A=rng.normal(size=(2, 2)), B=spd(rng, p),
                C=rng.normal(size=(2, 2)))
    with pytest.raises(matcalc.ShapeError):
        d.evaluate(vals)


ZERO_HESSIANS = [
    # (f, variable, declarations, the note says)
    ("x^T kron(A,B) x", "A", {}, "linear in A, so its Hessian is zero"),
    ("tr(B X) + 2 sum(X)", "X", {}, "linear in X, so its Hessian is zero"),
    ("3 c + d", "c", {"c": "scalar", "d": "scalar"}, "linear in c, so its Hessian is zero"),
    ("tr(B)", "A", {"A": "matrix"}, "does not depend on A"),
    ("tr(A - A)", "A", {}, "does not depend on A"),
]


@pytest.mark.parametrize("f,wrt,symbols,says", ZERO_HESSIANS)
def test_a_zero_hessian_prints_as_one_zeros_and_says_what_is_true(f, wrt, symbols, says):
    d = check_hessian(f, wrt, symbols or None)          # against second differences
    lets = [a for k, v in symbols.items() for a in ("--let", f"{k}={v}")]
    p = subprocess.run([sys.executable, "-m", "matcalc", "hessian", f, "--wrt", wrt, *lets],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    answer, note = p.stdout.splitlines()[:2]
    assert "⊗" not in answer and answer.count("zeros") <= 1, answer
    assert says in note, note
    rng = np.random.default_rng(0)
    vals = draw(d.symbols, rng, sizes=fitting_sizes(d, rng))
    back = np.asarray(matcalc.evaluate(answer, vals, symbols=d.symbols), dtype=float)
    n = np.size(vals[wrt])
    assert back.size == n * n and not np.any(back)
    assert np.shape(d.evaluate(vals)) == ((n, n) if np.ndim(vals[wrt]) else ())


# f = |s a| with s along the variable: where a = 0, f is 0 for every value of the variable
# and its derivative is 0, not 0/0 (the simplifier splits |s a| beside a^2)
ABS_OF_PRODUCTS = [
    ("abs((c w_2)^T w_2 sum(Y))", "c", {"Y": "matrix(2,2)", "c": "scalar", "w_2": "vector(m)"},
     {"Y": np.zeros((2, 2)), "c": 0.7, "w_2": np.array([1., 2, 3, 4])}),
    ("abs(c sum(x))", "c", {"c": "scalar"}, {"c": -1.3, "x": np.zeros(3)}),
    ("abs(tr(X) sum(y))", "X", {}, {"X": np.eye(3) + 0.5, "y": np.zeros(2)}),
    ("abs(x^T y y^T x c)", "c", {"c": "scalar"}, {"c": 2.0, "x": np.array([1., 0]),
                                                   "y": np.array([0., 1])}),
]


@pytest.mark.parametrize("f,wrt,symbols,at", ABS_OF_PRODUCTS)
def test_no_zero_over_zero_where_a_factor_of_the_absolute_value_vanishes(f, wrt, symbols, at):
    d = check_derivative(f, wrt, symbols, dom="positive", trials=3)   # away from the point
    got = np.asarray(d.evaluate(at), dtype=float)
    assert np.all(np.isfinite(got)), f"d/d{wrt} {f} = {d} is not finite at {at}: {got}"
    rng = np.random.default_rng(3)
    V = np.asarray(rng.normal(size=np.shape(at[wrt])))
    fd = central(evaluator(f, declarations_for_f(d, symbols)), at, wrt, V if V.ndim else float(V))
    assert rel_err(np.sum(got * V), fd) < 1e-9


def test_abs_of_a_product_is_still_not_a_number_at_its_true_kink():
    # |c a| with a ≠ 0 has no derivative along c at c = 0: no silent value there
    # (an EvaluationError naming the part with no value, never NaN)
    d = matcalc.diff("abs(c sum(x))", wrt="c", symbols={"c": "scalar"})
    with pytest.raises(matcalc.EvaluationError, match=r"not a number.*abs\(c\)\^-1.*not differentiable"):
        d.evaluate({"c": 0.0, "x": np.ones(3)})
    assert np.isfinite(d.evaluate({"c": 0.5, "x": np.ones(3)}))


@pytest.mark.parametrize("f,wrt", [("||X||_F^2 ||Y norm(Y)^2||_2", "X"),
                                   ("sum(x) ||(Y ||Y||_2)||_2", "x"),
                                   ("tr(X) ||(norm(Y) Y)^T||_2", "X")])
def test_a_spectral_norm_with_bars_inside_reads_back(f, wrt):
    # the fuzzer's read-back failure: ||Xt ||Xt||_F^2||_2 did not parse
    d = check_derivative(f, wrt)                       # round trip of str(d) included
    tree = matcalc.parse(f)
    again = matcalc.parse(str(tree))
    assert str(again) == str(tree)
    vals = draw(d.symbols, np.random.default_rng(2), sizes=fitting_sizes(d, np.random.default_rng(2)))
    assert rel_err(matcalc.evaluate(str(tree), vals), matcalc.evaluate(f, vals)) < 1e-12


@pytest.mark.parametrize("t", [709.0, 800.0, 1e5])
def test_softmax_and_logsumexp_of_entries_past_the_float_range(t):
    """softmax(exp(t) x) of entries past float64 is computed from the differences to the
    largest entry (was [nan …] or an overflow error, and a fuzz case gave [0, 0, .5, .5]);
    logsumexp keeps its exponent: logsumexp(e^t 1) / e^t is 1."""
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert np.allclose(matcalc.evaluate("softmax(exp(t) (x ./ x))", {"x": x, "t": t}), 0.25, rtol=1e-15)
    assert np.allclose(matcalc.evaluate("softmax(exp(t) x)", {"x": x, "t": t}), [0, 0, 0, 1])
    ratio = matcalc.evaluate("logsumexp(exp(t) (x ./ x)) / exp(t)", {"x": x, "t": t})
    assert ratio == pytest.approx(1.0, rel=1e-15)
    assert matcalc.evaluate("logsumexp(x + t) - t", {"x": x, "t": t}) == pytest.approx(
        np.log(np.sum(np.exp(x - 4))) + 4, rel=1e-12)
    # its gradient in x: zero (a uniform softmax does not move with x ./ x), finite
    d = matcalc.diff("a^T softmax(exp(t) (x ./ x))", wrt="x", symbols={"t": "scalar"})
    g = d.evaluate({"a": np.arange(4.0), "x": x, "t": t})
    assert np.all(np.isfinite(g)) and np.allclose(g, 0)


def test_exp_of_an_argument_this_arithmetic_cannot_hold_is_refused():
    """exp(exp(709)) has an exponent past every float format: an EvaluationError naming
    it, never [nan …] from softmax of infinities."""
    with pytest.raises(matcalc.EvaluationError, match=r"overflows float64 at exp\(exp\(t\)\)"):
        matcalc.evaluate("softmax(exp(exp(t)) (x ./ x))", {"x": np.ones(4), "t": 709.0})


@pytest.mark.parametrize("f, wrt, values", [
    ("sum(abs(x))", "x", {"x": np.array([1.0, 0.0, -2.0])}),
    ("||relu(A y)||", "y", {"A": np.eye(2), "y": np.array([-1.0, -2.0])}),
    ("||step(s) (A (c x))||_2", "c", {"A": np.eye(2), "x": np.ones(2), "s": -1.0, "c": 0.5}),
])
def test_a_derivative_is_never_nan_at_finite_values(f, wrt, values):
    """Where the answer's value is NaN at finite values (x ./ |x| at x = 0; r / ||r|| where
    r vanishes around the point, the fuzzer's two wrong ones), an EvaluationError that names
    the part with no value, never a NaN returned as the derivative."""
    d = matcalc.diff(f, wrt=wrt, symbols={"s": "scalar", "c": "scalar"} if "step" in f else None)
    with pytest.raises(matcalc.EvaluationError, match="not a number at these values: .* has no finite value"):
        d.evaluate(values)
