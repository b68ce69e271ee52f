"""Issue 10, huge constants: no NaN, inf, overflow or unreadable number where the answer
is finite.  Every derivative is checked against central differences (tests/helpers.py);
where the scale puts finite differences out of reach (1e-150 A), the derivative is
compared with the finite differences of the rescaled function, by the chain rule."""
import math
from fractions import Fraction

import numpy as np
import pytest

import matcalc
from matcalc import numeric
from helpers import central, check_derivative, check_hessian, evaluator, rel_err


# ------------------------------------------------- products past the float range (1, 2, 7)

def test_reordered_constants_gradient_is_finite():
    ex = "(exp(700) (exp(-700) z))^T (exp(700) (exp(-700) z))"
    d = check_derivative(ex, "z")
    z = np.array([1.0, 2.0, 3.0])
    got = d.evaluate({"z": z})
    assert np.all(np.isfinite(got)), (str(d), got)
    assert rel_err(got, 2 * z) < 1e-12     # exp(700) exp(-700) = 1: the gradient is 2z


def test_flattened_product_evaluates():
    assert matcalc.evaluate("(z^T z)^4 (exp(700) (exp(-700) (z^T z)))",
                            {"z": [1.0, 2, 3]}) == pytest.approx(14.0 ** 5, rel=1e-13)


@pytest.mark.parametrize("ex, want", [
    ("1e200 1e200 1e-400 x^T x", 3.0),
    ("exp(-700) exp(-700) exp(700) exp(700) sum(x)", 3.0),
    ("exp(710) exp(-710) sum(x)", 3.0),                    # exp(710) alone is past the float range
    ("exp(-745) exp(745) x", np.ones(3)),                   # exp(-745) alone is subnormal
    ("(exp(400) sum(x))^2 exp(-800)", 9.0),
    ("1e300^2 1e-300^2 x", np.ones(3)),
    ("exp(700)^3 x / exp(2100)", np.ones(3)),
])
def test_products_past_the_float_range(ex, want):
    got = matcalc.evaluate(ex, {"x": np.ones(3)})
    assert np.all(np.isfinite(got)), (ex, got)
    assert rel_err(got, want) < 1e-12, (ex, got)


def test_gradient_through_huge_constants_is_checked():
    check_derivative("exp(-700) exp(700) x^T A x", "x")
    check_derivative("tr(1e300 X^T 1e-300 X)", "X")


def test_sum_of_terms_past_the_float_range_cancels():
    # 4e600 t - 2e600 t - 2e600 t is 0 (and (1 - 1) * anything huge is 0), not inf - inf
    got = matcalc.evaluate("(4e600 sum(x) - 2e600 sum(x) - 2e600 sum(x)) + sum(x)", {"x": np.ones(3)})
    assert got == pytest.approx(3.0, rel=1e-12)


def test_extended_scalar_arithmetic():
    for v in (Fraction(10) ** 600, Fraction(-3, 10 ** 700), Fraction(7, 3)):
        m, k = numeric._ext_fraction(v)
        assert 0.5 <= abs(m) < 1
        # m·2^k against v, exactly enough: log2 agrees to rounding
        want = math.log2(abs(v.numerator)) - math.log2(v.denominator)
        assert abs(math.log2(abs(m)) + k - want) < 1e-12
    assert numeric._ext_value(numeric._ext_pow(numeric._ext_fraction(Fraction(10) ** 300), 3)) == math.inf
    x = numeric._ext_pow(numeric._ext_fraction(Fraction(1, 10 ** 300)), -2)
    assert numeric._ext_value(numeric._ext_mul(x, numeric._ext_fraction(Fraction(1, 10 ** 600)))) == \
        pytest.approx(1.0, rel=1e-14)
    # the float range ends without an OverflowError
    assert numeric._ext_value((0.5, 1025)) == math.inf
    assert numeric._ext_value((0.5, -1200)) == 0.0


# ------------------------------------------------------------------------- norms (3)

@pytest.mark.parametrize("scale", [1e-200, 1e200, 1e-300, 1.0])
def test_norm_is_scaled(scale):
    x = np.array([1.0, 2, 3])
    got = matcalc.evaluate(f"norm({scale!r} x)", {"x": x})
    assert got == pytest.approx(scale * math.sqrt(14.0), rel=1e-14)
    X = np.array([[1.0, 2], [3, 4]])
    got = matcalc.evaluate(f"||{scale!r} X||_F", {"X": X})
    assert got == pytest.approx(scale * math.sqrt(30.0), rel=1e-14)


def test_squared_norm_below_the_float_range_then_scaled_back():
    # ||1e-200 x||^2 = 14e-400 is below the float range; 1e300 of it is 1.4e-99
    got = matcalc.evaluate("1e300 ||1e-200 x||^2", {"x": np.array([1.0, 2, 3])})
    assert got == pytest.approx(14e-100, rel=1e-13)


def test_gradient_of_norm_at_tiny_values():
    d = check_derivative("norm(x)", "x")
    x = 1e-200 * np.array([1.0, 2, 3])
    got = d.evaluate({"x": x})
    assert rel_err(got, np.array([1.0, 2, 3]) / math.sqrt(14.0)) < 1e-13


# ------------------------------------------------------- saturated functions (4, 5)

def test_tanh_of_huge_multiple_gradient():
    ex = "tanh(1e300 ||A||_F^2)"
    d = check_derivative(ex, "A")
    rng = np.random.default_rng(3)
    B = rng.standard_normal((3, 4))
    # saturated (derivative 0), zero, and past the float range: finite, never NaN
    for A in (B, np.zeros((3, 4)), 1e200 * B, 1e-170 * B):
        got = d.evaluate({"A": A})
        assert np.all(np.isfinite(got)), (A, got)
    assert np.all(d.evaluate({"A": B}) == 0)
    # at A = 1e-150 B, f(A) = g(B) = tanh(||B||_F^2): df/dA = 1e150 dg/dB, dg/dB by differences
    g = evaluator("tanh(||B||_F^2)")
    got = d.evaluate({"A": 1e-150 * B})
    for _ in range(3):
        V = rng.standard_normal(B.shape)
        fd = central(g, {"B": B}, "B", V)
        assert rel_err(1e-150 * np.sum(got * V), fd) < 1e-6


HUGE_SIGMOID = "sigmoid(1e300 ||(A B)^T + F .* F / (2 + cos(c))||_F^2)"


def _huge_values(rng, sa, sf):
    return {"A": sa * rng.standard_normal((2, 3)), "B": rng.standard_normal((3, 4)),
            "F": sf * rng.standard_normal((4, 2)), "c": 0.3}


def test_hessian_of_saturated_sigmoid_never_overflows():
    symbols = {"c": "scalar"}
    h = matcalc.hessian(HUGE_SIGMOID, wrt="c", symbols=symbols)
    g = matcalc.diff(HUGE_SIGMOID, wrt="c", symbols=symbols)
    f = evaluator(HUGE_SIGMOID, symbols)
    rng = np.random.default_rng(5)
    # where 1e300 ||…||² is of order 1, finite differences in c see the curvature
    vals = _huge_values(rng, 3e-151, 3e-76)
    assert 0.5 < f(vals) < 0.99
    assert rel_err(g.evaluate(vals), central(f, vals, "c", 1.0)) < 1e-6
    dg = evaluator(str(g), g.symbols)
    assert rel_err(h.evaluate(vals), central(dg, vals, "c", 1.0)) < 1e-5
    # saturated, with terms 4e600 t² that overflow alone: the answer is finite (0)
    for sa, sf in ((1.0, 1.0), (1.0, 1000.0), (1e50, 1e50)):
        v = h.evaluate(_huge_values(rng, sa, sf))
        assert np.isfinite(v) and abs(v) < 1e-300, (sa, sf, v)
    r = h.check()
    assert r.ok, r


def test_hessian_of_saturated_sigmoid_checked():
    check_hessian("sigmoid(1e300 x^T x) + x^T x", "x")


# --------------------------------------------------- what the engine prints, it reads (6)

def test_tiny_squared_constant_reads_back():
    d = matcalc.diff("(1e-300 sum(x))^2", wrt="x", symbols={"x": "vector(m)"})
    text = str(d)
    assert "e-600" in text
    back = matcalc.parse(text)
    assert back is not None
    # the derivative itself: scaled up by 1e600 it is 2 sum(x) ones
    d2 = check_derivative("1e600 (1e-300 sum(x))^2", "x", symbols={"x": "vector(m)"})
    x = np.array([1.0, 2, 3, 4])
    assert rel_err(d2.evaluate({"x": x}), 20.0 * np.ones(4)) < 1e-13


def test_parser_number_limits():
    assert matcalc.evaluate("1e-1000 1e1000 x", {"x": np.ones(2)}).tolist() == [1.0, 1.0]
    with pytest.raises(matcalc.ParseError, match="out of range"):
        matcalc.parse("1e-1001 x")
    with pytest.raises(matcalc.ParseError, match="out of range"):
        matcalc.parse("1e1001 x")


def test_answer_past_the_number_limit_is_refused():
    with pytest.raises(matcalc.UnsupportedError):
        matcalc.diff("(1e-400 sum(x))^3", wrt="x")


@pytest.mark.parametrize("ex", ["(1e-330 sum(x))^3", "exp(1e-300 x^T x) 1e-300", "1e-300 (1e300 x^T x)^2"])
def test_printed_constants_read_back(ex):
    d = matcalc.diff(ex, wrt="x")
    text = str(d)
    x = np.array([0.5, -1.0, 2.0])
    assert rel_err(matcalc.evaluate(text, {"x": x}, symbols=d.symbols), d.evaluate({"x": x})) < 1e-12


def test_budget_refuses_unreadable_number():
    from matcalc import budget
    from matcalc import expr as E
    e = E.Mul((E.Num(Fraction(1, 10 ** 1200)), E.Sym("x")))
    with pytest.raises(matcalc.UnsupportedError, match="read back"):
        budget.check_answer(e, "gradient")


# --------------------------------------------------------- a vector of length 1 (8)

def test_vector_of_length_one_stays_a_vector():
    got = matcalc.evaluate("x", {"x": np.ones(1)})
    assert isinstance(got, np.ndarray) and got.shape == (1,)
    got = matcalc.evaluate("A x", {"A": np.ones((1, 1)), "x": np.array([2.0])})
    assert isinstance(got, np.ndarray) and got.shape == (1,) and got[0] == 2.0
    got = matcalc.evaluate("X", {"X": np.ones((1, 1))})
    assert isinstance(got, np.ndarray) and got.shape == (1, 1)
    # a scalar stays a float
    assert isinstance(matcalc.evaluate("x^T x", {"x": np.ones(1)}), float)
    d = check_derivative("x^T x", "x", sizes={"n": 1})
    got = d.evaluate({"x": np.array([3.0])})
    assert got.shape == (1,) and got[0] == 6.0


def test_powers_keep_full_precision():
    x = np.array([0.3, 1.7, 2.2])
    s = float(x @ x)
    # within the float range the extended arithmetic rounds as numpy does
    assert matcalc.evaluate("(x^T x)^1.5 + (x^T x)^-2", {"x": x}) == pytest.approx(s ** 1.5 + s ** -2, rel=1e-15)
    # past it, a non-integer power through log2 still agrees to ~1e-13
    got = matcalc.evaluate("(1e300 sum(x))^1.5 1e-450", {"x": x})
    assert got == pytest.approx(float(np.sum(x)) ** 1.5, rel=1e-12)
    check_derivative("(1e300 x^T x)^1.5 1e-450", "x")


def test_every_literal_the_parser_reads_is_a_coefficient():
    for ex, want in (("1e1000 x^T x", "2e1000 x"), ("1e-1000 x^T x", "2e-1000 x"),
                     ("1e1000 1e-1000 x^T x", "2 x")):
        d = matcalc.diff(ex, wrt="x")
        assert str(d) == want
        matcalc.parse(str(d))
    check_derivative("1e1000 1e-1000 x^T A x", "x")
    with pytest.raises(matcalc.UnsupportedError):
        matcalc.diff("1e1000 1e10 x^T x", wrt="x")


def test_scalars_under_a_transpose_join_the_product():
    z = np.array([1.0, 2, 3])
    A = np.arange(9.0).reshape(3, 3) - 4
    assert matcalc.evaluate("(exp(710) z)^T (exp(-710) z)", {"z": z}) == pytest.approx(14.0, rel=1e-14)
    got = matcalc.evaluate("(exp(710) (2 A) (3 z))^T A (exp(-710) z)", {"z": z, "A": A})
    assert got == pytest.approx(6 * (A @ z) @ A @ z, rel=1e-14)
    check_derivative("(exp(710) A x)^T (exp(-710) x)", "x")


# ------------------------------------------- arrays past the float range (issue 10, values)
# A value that is not finite on the way at finite inputs is computed again with an exponent
# per entry (matcalc/extended.py).  Where the point puts finite differences out of reach
# (F ~ 1e100), f(c G) is a function g of G, and the derivative at c G is compared, by the
# chain rule, with the finite differences of g at G.

def _scaled_fd(g, G, name, rng, got, power):
    """got (the derivative of f at c G, times c^power) against central differences of g."""
    for _ in range(3):
        V = rng.standard_normal(G.shape)
        fd = central(g, {name: G}, name, V)
        assert rel_err(float(np.sum(got * V)), fd) < 1e-6, (got, fd)


def _scaled_hessian_fd(g, G, name, rng, H):
    """The Hessian of f at c G, times c^2, against second differences of g at G."""
    h = 1e-4
    for _ in range(2):
        v, w = rng.standard_normal(G.shape), rng.standard_normal(G.shape)

        def at(a, b):
            return float(g({name: G + a * h * v + b * h * w}))
        fd = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (4 * h * h)
        got = v.reshape(-1, order="F") @ H @ w.reshape(-1, order="F")
        assert rel_err(got, fd) < 1e-4, (got, fd)


def test_saturated_hessian_is_zero_not_nan():
    # (1 - tanh²) = 0 exactly times 2e300 I - 8e600 t vec(A) vec(A)^T, whose entries
    # overflow: 0 · inf was NaN (the fuzzer's last wrong answer)
    ex = "tanh(1e300 (2 + ||A||_F^2))"
    h = check_hessian(ex, "A")
    d = check_derivative(ex, "A")
    rng = np.random.default_rng(7)
    B = rng.standard_normal((3, 2))
    for A in (B, 1e100 * B, np.zeros((3, 2)), 1e-200 * B):
        H, G = h.evaluate({"A": A}), d.evaluate({"A": A})
        assert H.shape == (6, 6) and np.all(H == 0), (A, H)
        assert np.all(G == 0), (A, G)
    # the same form where the saturation is not complete: finite, by the chain rule
    ex2 = "tanh(1e-300 (2e300 + ||A||_F^2))"      # at A = 1e150 B: tanh(2 + ||B||_F^2)
    h2 = matcalc.hessian(ex2, wrt="A")
    g = evaluator("tanh(2 + ||B||_F^2)")
    _scaled_hessian_fd(g, B, "B", rng, 1e300 * h2.evaluate({"A": 1e150 * B}))


F_BIG = "log(tr((F.^2)^T F.^2))"       # at F = c G: 4 log c + log(sum(G.^4))


def test_overflow_inside_array_operations_is_finite_where_the_value_is():
    rng = np.random.default_rng(11)
    G = rng.standard_normal((2, 3))
    c = 1e100
    g = evaluator("log(tr((G.^2)^T G.^2))")
    want = 4 * math.log(c) + float(g({"G": G}))
    assert matcalc.evaluate(F_BIG, {"F": c * G}) == pytest.approx(want, rel=1e-14)
    d = check_derivative(F_BIG, "F")
    got = d.evaluate({"F": c * G})           # 4 F.^3 / tr(...): 1e300 / inf was a silent 0
    assert np.all(np.isfinite(got)) and np.all(got != 0), got
    _scaled_fd(g, G, "G", rng, c * got, 1)
    h = check_hessian(F_BIG, "F")
    _scaled_hessian_fd(g, G, "G", rng, c * c * h.evaluate({"F": c * G}))
    # a ratio of overflowing products, and Kronecker products past the float range
    X = rng.standard_normal((3, 3))
    r = matcalc.evaluate("X X^T / tr(X X^T)", {"X": 1e200 * X})
    assert rel_err(r, X @ X.T / np.trace(X @ X.T)) < 1e-14
    assert matcalc.evaluate("sum(kron(X, X)) / sum(X)^2", {"X": 1e200 * X}) == pytest.approx(1.0, rel=1e-12)
    assert matcalc.evaluate("logdet(X^T X)", {"X": 1e200 * X}) == \
        pytest.approx(6 * math.log(1e200) + np.linalg.slogdet(X.T @ X)[1], rel=1e-14)
    d2 = check_derivative("tr(A X X^T) / tr(X X^T)", "X")     # f(c G) = g(G): df/dF = dg/dG / c
    A = rng.standard_normal((3, 3))
    g2 = evaluator("tr(A X X^T) / tr(X X^T)")
    _scaled_fd(lambda v: g2({"A": A, **v}), X, "X", rng, 1e200 * d2.evaluate({"A": A, "X": 1e200 * X}), 1)


def test_a_value_past_float64_is_an_error_never_inf_or_nan():
    rng = np.random.default_rng(12)
    G = rng.standard_normal((2, 3))
    F = 1e100 * G
    # the value itself is about 1e400: an error that says so, never inf
    with pytest.raises(matcalc.EvaluationError, match=r"overflows float64 at tr\(.*scale the inputs"):
        matcalc.evaluate("tr((F.^2)^T F.^2)", {"F": F})
    # its gradient 4 F.^3 is finite, and right by the chain rule
    d = check_derivative("tr((F.^2)^T F.^2)", "F")
    got = d.evaluate({"F": F})
    assert np.all(np.isfinite(got))
    _scaled_fd(evaluator("tr((G.^2)^T G.^2)"), G, "G", rng, got / 1e300, 3)
    # an argument past the float range that a function cannot take (sin of 1e400)
    with pytest.raises(matcalc.EvaluationError, match="overflows float64"):
        matcalc.evaluate("sum(sin(F .^ 4))", {"F": F})
    with pytest.raises(matcalc.EvaluationError, match="overflows float64"):
        matcalc.diff("sum(sin(F .^ 4))", wrt="F").evaluate({"F": F})
    with pytest.raises(matcalc.EvaluationError, match="overflows float64"):
        matcalc.evaluate("exp(1000)", {})
    # NaN where f has no real value stays NaN (not an overflow), the user's inf stays inf
    assert np.isnan(matcalc.evaluate("sum(log(x))", {"x": np.array([-1.0, 1.0])}))
    assert matcalc.evaluate("sum(x)", {"x": np.array([np.inf, 1.0])}) == np.inf


def test_extended_arithmetic_is_exact_to_rounding():
    """Products, sums and powers in extended range against exact rational arithmetic, for
    rows that span a narrow range (one BLAS product) and a wide one (the exact sum)."""
    from matcalc import extended as X
    rng = np.random.default_rng(13)

    def exact(m, k):
        return [[Fraction(float(a)) * Fraction(2) ** int(b) for a, b in zip(r, s)] for r, s in zip(m, k)]

    def close(x, want):
        for i, row in enumerate(want):
            for j, w in enumerate(row):
                got = Fraction(float(x.m[i, j])) * Fraction(2) ** int(x.k[i, j])
                assert abs(got - w) <= Fraction(1, 10 ** 13) * max(abs(w), Fraction(1, 10 ** 9000)), (i, j)

    for spread in (40, 3000):
        ma, mb = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
        ka, kb = rng.integers(-spread, spread, (3, 4)), rng.integers(-spread, spread, (4, 2))
        a, b = X.X(ma, ka), X.X(mb, kb)
        ea, eb = exact(ma, ka), exact(mb, kb)
        prod = [[sum(ea[i][l] * eb[l][j] for l in range(4)) for j in range(2)] for i in range(3)]
        # every term is of one sign in no particular way: compare with the largest term
        got = X._matmul(a, b)
        for i in range(3):
            for j in range(2):
                g = Fraction(float(got.m[i, j])) * Fraction(2) ** int(got.k[i, j])
                big = max(abs(ea[i][l] * eb[l][j]) for l in range(4))
                assert abs(g - prod[i][j]) <= Fraction(1, 10 ** 14) * big
        close(X._add([a, X.X(-ma, ka)]), [[0] * 4] * 3)
        close(X._pow(a, 3), [[v ** 3 for v in r] for r in ea])
        close(X._pow(a, -2), [[v ** -2 for v in r] for r in ea])
    assert X._pow(X.X(np.array([10.0]), 0), 5000).k[0] == 16610   # 10^5000 = 0.8... · 2^16610


def test_check_passes_a_right_answer_with_constants_past_the_float_range(capsys):
    """1e1000 1e-1000 x^T x: the rounding bound of the product is taken with the
    evaluator's exponent (it was inf · 0, and the check said the differences were too
    inaccurate); the answer times 1.01 still fails."""
    from matcalc import expr as E
    from matcalc.cli import main
    for ex in ("1e1000 1e-1000 x^T x", "1e1000 1e-1000 x^T A x",
               "1e-400 exp(800) exp(-800) 1e400 sum(x .* x)"):
        d = check_derivative(ex, "x")
        r = d.check()
        assert r.ok, (ex, r.message())
        w = d.replace(expr=E.Mul((E.Num(Fraction(101, 100)), d.expr)))
        bad = w.check()
        assert not bad.ok and bad.status == "failed", (ex, bad.message())
    code = main(["diff", "1e1000 1e-1000 x^T x", "--wrt", "x", "--check"])
    out = capsys.readouterr().out
    assert code == 0 and out.rstrip().endswith(": ok"), out


@pytest.mark.parametrize("ex, want", [
    ("1e400 x - 1e400 x + x", np.ones(3)),                      # arrays: left to right
    ("(1e400 x x^T - 1e400 x x^T) + x x^T", np.ones((3, 3))),
    ("1e400 sum(x) - 1e400 sum(x) + sum(x)", 3.0),              # scalars: exactly
    ("(1e-400 sum(x) - 1e-400 sum(x) + 1e-500 + 1e-500) 1e500", 2.0),
])
def test_a_small_term_beside_huge_ones_that_cancel_is_kept(ex, want):
    got = matcalc.evaluate(ex, {"x": np.ones(3)})
    assert rel_err(got, want) < 1e-14, (ex, got)
    d = check_derivative(ex.replace("x x^T", "x^T x").replace("x - 1e400 x + x", "sum(x) - 1e400 sum(x) + sum(x)"), "x")
    assert np.all(np.isfinite(d.evaluate({"x": np.ones(3)})))


@pytest.mark.parametrize("op, ex, wrt", [
    ("hessian", "tanh(1e300 (2 + ||A||_F^2))", "A"),      # 0 · an overflowed array
    ("diff", "log(tr((F.^2)^T F.^2))", "F"),
    ("hessian", "log(tr((F.^2)^T F.^2))", "F"),
])
def test_check_evaluates_as_the_api_does(capsys, op, ex, wrt):
    """The check evaluates the answer as d.evaluate does (past the float range where floats
    overflow): a right answer whose float evaluation would be NaN passes."""
    from matcalc.cli import main
    code = main([op, ex, "--wrt", wrt, "--check"])
    out = capsys.readouterr().out
    assert code == 0 and out.rstrip().endswith(": ok"), out
