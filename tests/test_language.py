"""The input language (CONTRACT §1): every spelling reads and evaluates like its
canonical spelling, precedence and associativity, 1×1 products as scalars, scalar
broadcasting, kinds of symbols, and printing that reads back to the same values."""
import numpy as np
import pytest

import matcalc
from helpers import check_derivative, rel_err, spd

RNG = np.random.default_rng(2024)


def _square(n=3):
    return 0.4 * RNG.standard_normal((n, n)) + 2.5 * np.eye(n)


# One universe of values: square matrices well-conditioned with positive determinant,
# vectors with positive entries (so log, sqrt and ./ are defined), positive scalars.
VALUES = {
    "X": _square(), "Y": _square(), "A": _square(), "B": _square(), "C": _square(),
    "S": spd(RNG, 3), "M": RNG.standard_normal((3, 4)), "N": RNG.standard_normal((4, 3)),
    "x": RNG.uniform(0.5, 1.5, 3), "y": RNG.uniform(0.5, 1.5, 3), "a": RNG.uniform(0.5, 1.5, 3),
    "b": RNG.uniform(0.5, 1.5, 3), "mu": RNG.uniform(0.5, 1.5, 3),
    "s": 0.7, "t": 1.3,
}
SCALARS = {"s": "scalar", "t": "scalar", "M": "matrix(m,n)", "N": "matrix(n,m)"}


def ev(text, values=None, symbols=None):
    return matcalc.evaluate(text, values or VALUES, symbols=symbols)


def close(a, b, tol=1e-10):
    assert np.shape(a) == np.shape(b), (np.shape(a), np.shape(b))
    assert rel_err(a, b) <= tol, (a, b)


# ---------------------------------------------------------------------------- spellings

X, A, B, x, y = VALUES["X"], VALUES["A"], VALUES["B"], VALUES["x"], VALUES["y"]
Xinv = np.linalg.inv(X)

# canonical spelling -> its NumPy value
CANONICAL = {
    "X^T": X.T,
    "X^-1": Xinv,
    "X^-T": Xinv.T,
    "det(X)": np.linalg.det(X),
    "logdet(X)": np.linalg.slogdet(X)[1],
    "A .* B": A * B,
    "A ./ B": A / B,
    "kron(A, B)": np.kron(A, B),
    "A .^ 3": A ** 3,
    "A B": A @ B,
    "||x||": np.linalg.norm(x),
    "||X||_F": np.linalg.norm(X, "fro"),
    "sum(X)": X.sum(),
    "vec(X)": X.reshape(-1, order="F"),
    "diag(x)": np.diag(x),
    "diag(X)": np.diag(X).copy(),
    "tr(X)": np.trace(X),
    "0.5 X": 0.5 * X,
    "1e-3 X": 1e-3 * X,
    "I(3)": np.eye(3),
    "exp(X)": np.exp(X),
    "log(x)": np.log(x),
    "sqrt(x)": np.sqrt(x),
    "sin(X)": np.sin(X), "cos(X)": np.cos(X), "tanh(X)": np.tanh(X),
    "sigmoid(X)": 1 / (1 + np.exp(-X)),
    "softplus(X)": np.log1p(np.exp(X)),
    "abs(X - 2.5 I)": np.abs(X - 2.5 * np.eye(3)),
    "||x||^2": x @ x,
    "x .^ 2": x ** 2,
    "M ⊗ N": np.kron(VALUES["M"], VALUES["N"]),
}


@pytest.mark.parametrize("text", list(CANONICAL), ids=list(CANONICAL))
def test_canonical_spelling_evaluates_like_numpy(text):
    close(ev(text), CANONICAL[text])


SPELLINGS = [
    ("X'", "X^T"), ("Xᵀ", "X^T"), ("X.T", "X^T"), ("X^{T}", "X^T"), ("X ^ T", "X^T"),
    ("X^(-1)", "X^-1"), ("X^{-1}", "X^-1"), ("X⁻¹", "X^-1"), ("inv(X)", "X^-1"),
    ("X^{-T}", "X^-T"), ("inv(X^T)", "X^-T"), ("(X^-1)^T", "X^-T"),
    ("|X|", "det(X)"),
    ("log|X|", "logdet(X)"), ("log(det(X))", "logdet(X)"), ("ln(det(X))", "logdet(X)"),
    ("ln|X|", "logdet(X)"), ("log(|X|)", "logdet(X)"),
    ("A ∘ B", "A .* B"), ("A .* B", "A .* B"),
    ("A ⊗ B", "kron(A, B)"),
    ("A @ B", "A B"), ("A * B", "A B"), ("A*B", "A B"), ("A@B", "A B"),
    ("||x||_2", "||x||"), ("norm(x)", "||x||"), ("||x||_{2}", "||x||"),
    ("||X||", "||X||_F"), ("norm(X)", "||X||_F"), ("||X||_{F}", "||X||_F"),
    ("norm(x)^2", "||x||^2"), ("x^T x", "||x||^2"),
    ("Tr(X)", "tr(X)"), ("trace(X)", "tr(X)"), ("tr (X)", "tr(X)"),
    ("ln(x)", "log(x)"),
    (".5 X", "0.5 X"), ("5e-1 X", "0.5 X"), ("0.001 X", "1e-3 X"), ("1E-3 X", "1e-3 X"),
    ("X / 2", "0.5 X"), ("X/1000", "1e-3 X"),
    ("I(3) X", "X"), ("I X", "X"), ("X I", "X"),
    ("X²", "X X"), ("X³", "X X X"), ("X^2", "X X"), ("X^0", "I(3)"), ("X^1", "X"),
    ("X^-2", "X^-1 X^-1"), ("x .^ 2", "x .* x"),
    ("A ./ B", "A .* B .^ -1"),
    ("−X", "-X"),
]


@pytest.mark.parametrize("variant,canonical", SPELLINGS, ids=[s[0] for s in SPELLINGS])
def test_spelling_reads_and_evaluates_like_canonical(variant, canonical):
    close(ev(variant), ev(canonical))
    if "I" not in variant.replace("I(3)", ""):
        # and it reads back through the printer to the same value (bare I: see below)
        close(ev(str(matcalc.parse(variant))), ev(canonical))


@pytest.mark.parametrize("text", ["I X", "X I", "X + I", "tr(I X)", "A - I"])
def test_bare_identity_prints_back_evaluable(text):
    """A bare I takes whatever size fits; printing it must not invent a size name that
    evaluate then cannot bind (str(parse("I X")) read back gives the same value)."""
    printed = str(matcalc.parse(text))
    close(ev(printed), ev(text))


@pytest.mark.parametrize("variant,canonical", [
    ("X'", "X^T"), ("Xᵀ", "X^T"), ("X.T", "X^T"), ("X^(-1)", "X^-1"), ("X^{-1}", "X^-1"),
    ("X⁻¹", "X^-1"), ("inv(X)", "X^-1"), ("X^{-T}", "X^-T"), ("|X|", "det(X)"),
    ("log|X|", "logdet(X)"), ("log(det(X))", "logdet(X)"), ("ln|X|", "logdet(X)"),
    ("A ∘ B", "A .* B"), ("A ⊗ B", "kron(A, B)"), ("A @ B", "A B"), ("A * B", "A B"),
    ("||x||_2", "||x||"), ("norm(x)", "||x||"), ("||X||", "||X||_F"), ("norm(X)", "||X||_F"),
    ("Tr(X)", "tr(X)"), ("trace(X)", "tr(X)"),
])
def test_spelling_parses_to_the_same_tree(variant, canonical):
    assert str(matcalc.parse(variant)) == str(matcalc.parse(canonical))


def test_identity_and_commutation():
    M = VALUES["M"]                                    # 3×4
    close(ev("K(3,4) vec(M)"), M.T.reshape(-1, order="F"))
    close(ev("K(m,n) vec(M)", symbols={"M": "matrix(m,n)"}), M.T.reshape(-1, order="F"))
    close(ev("I(n) + X", symbols={"X": "matrix(n,n)"}), X + np.eye(3))
    close(ev("X + I"), X + np.eye(3))
    close(ev("M^T I M"), M.T @ M)
    # I(…) is the sized identity, never I times a group
    close(ev("I(3)"), np.eye(3))
    # K is an ordinary symbol name except in the two-size form
    vals = dict(VALUES, K=A)
    close(matcalc.evaluate("K X", vals), A @ X)
    close(matcalc.evaluate("K(X + Y)", vals), A @ (X + VALUES["Y"]))


def test_kron_of_vectors_and_sizes():
    a, b = VALUES["a"], np.array([1.0, 2.0])
    close(matcalc.evaluate("kron(a, b)", {"a": a, "b": b}), np.kron(a, b))
    close(matcalc.evaluate("a ⊗ b^T", {"a": a, "b": b}), np.outer(a, b))


def test_spectral_norm_evaluates():
    close(ev("||M||_2"), np.linalg.norm(VALUES["M"], 2))
    close(ev("||x||_2"), np.linalg.norm(x))


# ---------------------------------------------------------------------------- precedence

def test_products_associate_to_the_left():
    C = VALUES["C"]
    close(ev("A ./ B ./ C"), (A / B) / C)
    close(ev("A .* B C"), (A * B) @ C)
    close(ev("A B .* C"), (A @ B) * C)
    close(ev("A ./ B C"), (A / B) @ C)
    close(matcalc.evaluate("s / t / s", {"s": 0.7, "t": 1.3}), 0.7 / 1.3 / 0.7)
    close(ev("2 / 4 x"), 0.5 * x)
    close(ev("X / 2 Y"), X / 2 @ VALUES["Y"])


def test_kron_is_left_associative_at_product_level():
    A2, B2, C4 = RNG.standard_normal((2, 2)), RNG.standard_normal((2, 2)), RNG.standard_normal((4, 4))
    vals = {"P": A2, "Q": B2, "R": C4}
    # (P ⊗ Q) R is defined; P ⊗ (Q R) is not
    close(matcalc.evaluate("P ⊗ Q R", vals), np.kron(A2, B2) @ C4)


def test_unary_minus_binds_looser_than_postfix():
    close(ev("-X^T"), -X.T)
    close(ev("-X^2"), -(X @ X))
    close(matcalc.evaluate("-s^2", {"s": 0.7}), -0.49)
    close(ev("-X^-1"), -Xinv)
    close(ev("2 -X"), 2 - X)
    close(ev("A - -B"), A + B)
    close(ev("A * -B"), -(A @ B))


def test_postfix_binds_tighter_than_products():
    close(ev("A B^T"), A @ B.T)
    close(ev("A B^-1"), A @ np.linalg.inv(B))
    close(ev("x^T A x"), x @ A @ x)
    close(ev("A .* B^T"), A * B.T)
    close(ev("A^T^T"), A)
    close(ev("X'^-1"), Xinv.T)


def test_rayleigh_quotient_reads_as_written():
    close(ev("x^T A^T A x / (x^T x)"), (A @ x) @ (A @ x) / (x @ x))


def test_symbol_before_parenthesis_is_a_product():
    close(ev("A(B + C)"), A @ (B + VALUES["C"]))
    close(ev("A (B + C)"), A @ (B + VALUES["C"]))
    close(ev("x^T(A x)"), x @ A @ x)


def test_function_name_with_space_is_a_call():
    close(ev("tr (X)"), np.trace(X))
    close(ev("exp (x)"), np.exp(x))
    close(ev("det (X) tr (X)"), np.linalg.det(X) * np.trace(X))


def test_bars():
    close(ev("|A| |B|"), np.linalg.det(A) * np.linalg.det(B))
    close(ev("|A||B|"), np.linalg.det(A) * np.linalg.det(B))
    close(ev("|A B|"), np.linalg.det(A @ B))
    close(matcalc.evaluate("|s - 2|", {"s": 0.7}), 1.3)        # absolute value of a scalar
    close(ev("|x^T y - 10|"), abs(x @ y - 10))
    close(ev("||x|| ||y||"), np.linalg.norm(x) * np.linalg.norm(y))
    close(ev("||A x - b||"), np.linalg.norm(A @ x - VALUES["b"]))
    close(ev("|| |X| X ||"), abs(np.linalg.det(X)) * np.linalg.norm(X))


def test_one_by_one_products_are_scalars():
    a, b = VALUES["a"], VALUES["b"]
    close(ev("x^T y x"), (x @ y) * x)
    close(ev("x^T A x y"), (x @ A @ x) * y)
    close(ev("(x^T y)^2"), (x @ y) ** 2)
    close(ev("exp(x^T y)"), np.exp(x @ y))
    close(ev("x^T y / (x^T x)"), (x @ y) / (x @ x))
    close(ev("sqrt(x^T x)"), np.linalg.norm(x))
    close(ev("(a^T x) A"), (a @ x) * A)
    close(ev("a^T X b A"), (a @ X @ b) * A)
    close(ev("x y^T a"), x * (y @ a))
    close(ev("tr(a^T x)"), a @ x)
    close(ev("det(a^T x)"), a @ x)
    close(ev("log(x^T y)"), np.log(x @ y))
    close(ev("(x^T y)^-1"), 1 / (x @ y))
    assert isinstance(ev("x^T y"), float)


def test_scalars_broadcast():
    close(ev("1 + exp(x)"), 1 + np.exp(x))
    close(ev("X - 1"), X - 1)
    close(ev("2 + A"), 2 + A)
    close(ev("x + s"), x + 0.7)
    close(ev("x^T y + x"), (x @ y) + x)
    close(ev("sum(1 + X)"), np.sum(1 + X))
    close(ev("1 ./ x"), 1 / x)
    close(ev("(1 - x) .* y"), (1 - x) * y)


# ---------------------------------------------------------------------------- kinds

def test_kinds_from_first_letters():
    d = check_derivative("x^T A x", "x", trials=1)
    assert d.symbols == {"x": "vector(n)", "A": "matrix(n,n)"}
    d = check_derivative("mu^T Sigma mu", "mu", trials=1)
    assert d.symbols["mu"].startswith("vector") and d.symbols["Sigma"].startswith("matrix")
    d = check_derivative("w_2^T A1 w_2", "w_2", trials=1)
    assert d.symbols["w_2"].startswith("vector") and d.symbols["A1"].startswith("matrix")
    assert matcalc.parse("x").shape[1] == 1
    X_ = matcalc.parse("X")
    assert X_.shape[0] != 1 and X_.shape[1] != 1


def test_kinds_from_declarations_with_sizes():
    d = check_derivative("x^T A x", "x", symbols={"A": "matrix(3,3)"}, trials=1)
    assert d.symbols == {"x": "vector(3)", "A": "matrix(3,3)"}
    d = check_derivative("a^T X b", "X", symbols={"X": "matrix(p,q)"}, trials=1)
    assert d.symbols == {"a": "vector(p)", "X": "matrix(p,q)", "b": "vector(q)"}
    d = check_derivative("s x^T x", "x", symbols={"s": "scalar", "x": "vector(5)"}, trials=1)
    assert d.symbols == {"s": "scalar", "x": "vector(5)"}
    d = check_derivative("tr(S X)", "X", symbols={"S": "spd(4)", "X": "symmetric"}, trials=1)
    assert d.symbols == {"S": "spd(4)", "X": "symmetric(4)"}
    d = check_derivative("tr(D X)", "X", symbols={"D": "diagonal(2)"}, trials=1)
    assert d.symbols == {"D": "diagonal(2)", "X": "matrix(2,2)"}
    # an uppercase name declared a vector, a lowercase one a matrix
    d = check_derivative("V^T m V", "V", symbols={"V": "vector", "m": "matrix"}, trials=1)
    assert d.symbols["V"] == "vector(n)" and d.symbols["m"] == "matrix(n,n)"


def test_sizes_inferred_through_the_expression():
    d = matcalc.diff("tr(X^T A X)", wrt="X")
    assert d.symbols == {"X": "matrix(m,n)", "A": "matrix(m,m)"}


# ---------------------------------------------------------------------------- numbers

@pytest.mark.parametrize("text,value", [
    ("2", 2.0), ("0.5", 0.5), ("1e-3", 1e-3), ("1E3", 1000.0), (".25", 0.25), ("3.0", 3.0),
    ("2.5e+2", 250.0), ("2^-1", 0.5), ("2^3", 8.0), ("4^0.5", 2.0), ("-3", -3.0),
    ("1e-40", 1e-40), ("6.02e23", 6.02e23), ("0.1234567890123456789012345678901", 0.12345678901234568),
])
def test_numbers(text, value):
    got = matcalc.evaluate(text, {})
    assert isinstance(got, float)
    assert got == pytest.approx(value, rel=1e-12)


def test_tiny_coefficient_in_a_derivative():
    d = check_derivative("1e-40 x^T x + a^T x", "x", trials=1)
    assert np.allclose(d.evaluate({"x": x, "a": VALUES["a"]}), 2e-40 * x + VALUES["a"])


# ---------------------------------------------------------------------------- round trip

ROUND_TRIP = [
    "tr(X^T A X)", "x^T A x", "a^T X b", "X^-1", "X^-T", "inv(X^T) A", "det(X) X^-T",
    "logdet(X)", "log|X| + tr(S^-1 X)", "A .* B", "A ./ (B + 1)", "kron(A, B)", "A ⊗ B^T",
    "x .^ 3", "(X .* X) .^ 0.5", "sum(X)", "sum(x .* y)", "||x||", "||x||^2", "||A x - b||^2",
    "||X||_F", "norm(X)^2", "vec(X)", "vec(M)^T vec(M)", "diag(x)", "diag(X)",
    "diag(diag(X))", "tr(X)^2", "-X^T", "-(A - B)^T", "A - B - C", "A - (B - C)",
    "(A + B) (A - B)", "x^T y x", "(x^T y) x", "x (y^T a)", "exp(-x)", "1 + exp(x)",
    "log(1 + exp(a^T x))", "sigmoid(A x)", "softplus(x) - tanh(y)", "sqrt(x) .* log(y)",
    "abs(x - y)", "sin(X) + cos(X)", "exp(-(x - mu)^T S^-1 (x - mu)/2)",
    "x^T A^T A x / (x^T x)", "s^t x", "(s + t)^-2 A", "X^3 - 2 X^2 + X", "M N", "N^T M^T",
    "K(m,n) vec(M)", "I(3) + X", "s X / t", "(x^T y)^(s t)", "|A| |B| + |A B|", "(A B)^T",
    "(A^-1 B)^-1", "x x^T - y y^T", "X^-1 X^-T", "(2 A)^-1", "0.5 (A + A^T)",
    "(X ./ Y) .^ 2", "exp(X) .* X", "tr(A) I(3) - A", "sum(x) x", "x^T (A + B)^-1 y",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_printed_expression_reads_back_to_the_same_value(text):
    tree = matcalc.parse(text, symbols=SCALARS)
    printed = str(tree)
    assert printed.strip()
    again = matcalc.evaluate(printed, VALUES, symbols=SCALARS)
    close(again, matcalc.evaluate(text, VALUES, symbols=SCALARS), tol=1e-9)
    # printing is stable
    assert str(matcalc.parse(printed, symbols=SCALARS)) == str(matcalc.parse(printed, symbols=SCALARS))
    assert tree.latex().strip()


def test_round_trip_list_is_long_enough():
    assert len(ROUND_TRIP) >= 50


def test_evaluation_is_deterministic_across_many_parses():
    """Values do not depend on what was parsed before (no state leaks between parses)."""
    first = [matcalc.evaluate(t, VALUES, symbols=SCALARS) for t in ROUND_TRIP]
    second = [matcalc.evaluate(t, VALUES, symbols=SCALARS) for t in reversed(ROUND_TRIP)]
    for a, b in zip(first, reversed(second)):
        close(a, b, tol=0)


def test_whitespace_is_insignificant_except_between_factors():
    close(ev("  tr( X ^ T   A X )  "), np.trace(X.T @ A @ X))
    close(ev("tr(X^T\tA\nX)"), np.trace(X.T @ A @ X))
    close(ev("AB", values=dict(VALUES, AB=B)), B)           # one name, not A times B
    close(ev("A B"), A @ B)


def test_a_number_needs_digits_after_its_point():
    """2./x is 2 ./ x (elementwise), and 1..2 is an error, not 1 times .2."""
    x = np.array([1.0, 2.0, 4.0])
    assert np.allclose(matcalc.evaluate("2./x", {"x": x}), 2 / x)
    with pytest.raises(matcalc.ParseError):
        matcalc.parse("1..2")


@pytest.mark.parametrize("text,value", [
    ("|c ||x||_2|", lambda v: abs(v["c"] * np.linalg.norm(v["x"]))),
    ("|A||B|", lambda v: np.linalg.det(v["A"]) * np.linalg.det(v["B"])),
    ("|A (B |C|)|", lambda v: np.linalg.det(v["A"] @ v["B"] * np.linalg.det(v["C"]))),
    ("norm(x norm(y))", lambda v: np.linalg.norm(v["x"]) * np.linalg.norm(v["y"])),
])
def test_nested_bars_read_and_print_back(text, value):
    rng = np.random.default_rng(5)
    v = {"c": -1.5, "x": rng.standard_normal(3), "y": rng.standard_normal(3),
         "A": rng.standard_normal((3, 3)), "B": rng.standard_normal((3, 3)), "C": rng.standard_normal((3, 3))}
    sym = {"c": "scalar"}
    assert np.isclose(matcalc.evaluate(text, v, symbols=sym), value(v))
    printed = str(matcalc.parse(text, symbols=sym))
    assert np.isclose(matcalc.evaluate(printed, v, symbols=sym), value(v)), printed
