"""The forms a person writes (issue 14 part 3, issue 11 part 6): each answer as golden
text, and each derivative that produces it checked against finite differences."""
import pytest

from helpers import check_derivative

SCAL = {"x": "scalar"}

# (expression, variable, declarations, layout, the answer as text)
FORMS = [
    # equal traces collect: tr(M) is invariant under rotation and transposition; the
    # spelling met first is the one kept
    ("x tr(A B) + x tr(B A)", "x", SCAL, "gradient", "2 tr(A B)"),
    ("x tr(A^T B^T) + x tr(B A)", "x", SCAL, "gradient", "2 tr(B A)"),
    ("x tr(A B C) + x tr(C A B) + x tr(B C A)", "x", SCAL, "gradient", "3 tr(A B C)"),
    ("x exp(tr(A B)) + x exp(tr(B A))", "x", SCAL, "gradient", "2 exp(tr(A B))"),
    ("x tr(A B) tr(B A)", "x", SCAL, "gradient", "tr(A B)^2"),
    ("tr(A B X) + tr(B X A)", "X", None, "gradient", "2 (A B)^T"),
    # a 1×1 product is its own transpose: aᵀx and xᵀa collect
    ("x^T a a^T x", "x", None, "gradient", "2 (x^T a) a"),
    ("(a^T x) (x^T a)", "x", None, "gradient", "2 (a^T x) a"),
    # one identity I(m n), not I(m) ⊗ I(n): the language reads a product size back
    ("X^T - X", "X", None, "numerator", "K(n,n) - I(n*n)"),
    # (I + K) pulled out as Magnus and Neudecker write it: d(XᵀX) = (I + K)(I ⊗ Xᵀ) dvec X
    ("X^T X", "X", None, "numerator", "(I(n*n) + K(n,n)) (I(n) ⊗ X^T)"),
    ("X X^T", "X", None, "numerator", "(I(m*m) + K(m,m)) (X ⊗ I(m))"),
    ("X^T X", "X", None, "denominator", "(I(n) ⊗ X) (I(n*n) + K(n,n))"),
    ("3 X^T X", "X", None, "numerator", "3 (I(n*n) + K(n,n)) (I(n) ⊗ X^T)"),
    # powers of an inverse as X^-k (what the parser reads as (X⁻¹)ᵏ), never (X^-1)^k
    ("tr(X^-2)", "X", None, "numerator", "-2 X^-3"),
    ("tr(X^-2)", "X", None, "gradient", "-2 (X^-3)^T"),
    ("tr((A + X)^-2)", "X", None, "gradient", "-2 ((A + X)^-3)^T"),
    ("tr(A X^-3)", "X", None, "numerator", "-X^-1 (A X^-2 + X^-1 A X^-1 + X^-2 A) X^-1"),
    # X ./ X is 1: its Jacobian is a zero (vec(A) ∘ vec(B) = vec(A ∘ B) lets the powers merge)
    ("X ./ X", "X", None, "numerator", "zeros(m*n,m*n)"),
    # powers of one base merge, symbolic exponents too: det(X)^(1/n - 1) det(X) = det(X)^(1/n)
    ("det(X)^(1/n)", "X", {"n": "scalar"}, "gradient", "det(X)^(1/n) X^-T / n"),
    ("x^T x (x^T x)^t", "x", {"t": "scalar"}, "gradient", "2 (x^T x)^t (1 + t) x"),
    # the user's order of terms and factors where the canonical form leaves a choice
    ("norm(W2 tanh(W1 x + b1) + b2 - y)^2", "W1", None, "gradient",
     "2 (W2^T (W2 tanh(W1 x + b1) + b2 - y) .* (1 - tanh(W1 x + b1) .^ 2)) x^T"),
    ("sum(sigmoid(W1 x + b1))", "x", None, "gradient", "W1^T (sigmoid(W1 x + b1) .* (1 - sigmoid(W1 x + b1)))"),
    # one spelling per matrix: a quadratic form Xᵀ M X keeps its sandwich ((A X)ᵀ X is not pulled)
    ("tr((X^T A X)^-1)", "X", None, "gradient", "-(A X (X^T A X)^-2 + A^T X (X^T A^T X)^-2)"),
    ("norm(X^T A X)^2", "X", None, "gradient", "2 (A X X^T A^T + A^T X X^T A) X"),
    # unvec(vec(A X B), m) = A X B where the shapes agree
    ("vec(X)^T vec(A X B)", "X", {"A": "matrix(m,m)", "B": "matrix(n,n)", "X": "matrix(m,n)"}, "gradient",
     "A X B + A^T X B^T"),
    # sigmoid and softplus recognised where the answer writes them out
    ("x log(1 + exp(x))", "x", SCAL, "gradient", "softplus(x) + x sigmoid(x)"),
    ("1 / (1 + exp(-x))", "x", SCAL, "gradient", "sigmoid(x) (1 - sigmoid(x))"),
    ("sum(1 ./ (1 + exp(-v)))", "v", None, "gradient", "sigmoid(v) .* (1 - sigmoid(v))"),
    ("a^T log(1 + exp(X b))", "X", None, "gradient", "(a .* sigmoid(X b)) b^T"),
    ("exp(X) .* X", "X", None, "numerator", "diag(vec(exp(X))) + diag(vec(X .* exp(X)))"),
]


@pytest.mark.parametrize("expr,wrt,symbols,layout,want", FORMS, ids=[f[0] for f in FORMS])
def test_form(expr, wrt, symbols, layout, want):
    d = check_derivative(expr, wrt, symbols=symbols, layout=layout)
    assert str(d) == want


def test_product_size_in_identity_reads_back_and_evaluates():
    import numpy as np
    import matcalc
    vals = {"A": np.zeros((2, 3))}
    decl = {"A": "matrix(m,n)"}
    for text in ("I(m*n)", "I(m n)", "I(n*m)", "I(2*n)"):
        got = matcalc.evaluate(text, vals, symbols=decl)
        assert np.array_equal(got, np.eye(6)), text
    with pytest.raises(matcalc.ParseError):
        matcalc.parse("I(m ⊗ n)")
