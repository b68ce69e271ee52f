"""The differential rules, family by family, each row checked against central finite
differences of the function (tests/helpers.py), and the printed answer read back and
evaluated to the same numbers.

A row: the expression, the variable, declarations, the value domain ("any" or "pos"
where log, sqrt or a fractional power needs positive entries).
"""
import numpy as np
import pytest

import matcalc
from matcalc.operators import ELEMENTWISE_RECORDS
from helpers import Unsupported, check_derivative, check_hessian, draw, fitting_sizes, rel_err

SC = "scalar"


def R(expr, wrt, symbols=None, dom="any", id=None, **kw):
    return pytest.param(expr, wrt, symbols, dom, kw, id=id or f"d/d{wrt} {expr}")


def run(expr, wrt, symbols, dom, kw):
    return check_derivative(expr, wrt, symbols=symbols, dom=dom, **kw)


# ---------------------------------------------------------------------------- sums, scaling

SUMS = [
    R("x^T a + a^T x", "x"),
    R("3 tr(X) - 2 tr(A X)", "X"),
    R("-tr(X)", "X"),
    R("tr(X)/4", "X"),
    R("a^T x / 2 + c", "x", {"c": SC}),
    R("2 (a^T x) + 3", "x"),
    R("tr(X + X^T)", "X"),
    R("tr(A (X - B))", "X"),
    R("x^T (a + b)", "x"),
    R("-(-(a^T x))", "x"),
    R("tr(2 X - 3 A X)", "X"),
    R("s tr(X)", "X", {"s": SC}),
    R("s tr(X)", "s", {"s": SC}),
    R("tr(X) / s", "X", {"s": SC}),
    R("a^T x + a^T x + a^T x", "x"),
    R("a^T x - a^T x + b^T x", "x"),
    R("0.5 x^T x - 1e-3 a^T x", "x"),
    R("s * (a^T x) + s @ (b^T x)", "x", {"s": SC}),
    R("10^50 a^T x", "x"),
    R("1e-30 x^T x + a^T x", "x"),
    R("(2/3) x^T x", "x"),
    R("1e60 a^T x", "x", id="large coefficient 1e60"),
    R("1e100 x^T x", "x", id="large coefficient 1e100"),
    R("1e-61 a^T x", "x", id="small coefficient 1e-61"),
    R("3e-70 x^T x + a^T x", "x", id="small coefficient 3e-70"),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", SUMS)
def test_sums_and_scaling(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- products

PRODUCTS = [
    R("a^T X b", "X"),
    R("a^T X^T b", "X"),
    R("x^T A x", "x"),
    R("x^T A y", "x"),
    R("x^T A y", "y"),
    R("x^T A y", "A"),
    R("tr(A X B)", "X"),
    R("tr(X^T A X)", "X"),
    R("tr(X A X)", "X"),
    R("tr(X X^T)", "X"),
    R("tr(X^T X A)", "X"),
    R("a^T X^T X b", "X"),
    R("x^T x", "x"),
    R("(A x)^T (B x)", "x"),
    R("tr(A X B X^T C)", "X"),
    R("a^T X X X b", "X"),
    R("x^T A^T A x", "x"),
    R("tr(X Y)", "Y"),
    R("a^T X * B @ c", "X"),
    R("(a^T x) (b^T x)", "x"),
    R("(x^T a) (x^T A x)", "x"),
    R("a^T (X + B)(X - B) c", "X"),
    R("tr(X A X^T B)", "X"),
    R("y^T X^T A X y", "X"),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", PRODUCTS)
def test_products(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- transpose

TRANSPOSE = [
    R("tr(X^T)", "X"),
    R("tr(A^T X^T)", "X"),
    R("a^T X' b", "X"),
    R("tr((A X)^T B)", "X"),
    R("tr(X.T A)", "X"),
    R("tr(Xᵀ A)", "X"),
    R("b^T (X^T)^T a", "X"),
    R("(x^T)^T^T a", "x"),
    R("tr((X^T A)^T (X^T A))", "X"),
    R("(A^T x)^T (B^T x)", "x"),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", TRANSPOSE)
def test_transpose(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- trace

TRACE = [
    R("tr(X)", "X"),
    R("Tr(A X)", "X"),
    R("trace(X^T X)", "X"),
    R("tr(a^T x)", "x", id="tr of a 1x1 product a^T x"),
    R("tr(x^T A x)", "x", id="tr of a 1x1 quadratic form"),
    R("tr(x a^T)", "x"),
    R("tr(x x^T A)", "x"),
    R("tr(tr(X) A)", "X"),
    R("tr(X)^2", "X"),
    R("tr(X) tr(A X)", "X"),
    R("tr(a^T X b)", "X", id="tr of a 1x1 bilinear form"),
    R("tr(A) tr(X^T B)", "X"),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", TRACE)
def test_trace(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- inverse

INVERSE = [
    R("tr(X^-1)", "X"),
    R("a^T X^-1 b", "X"),
    R("tr(A X^-1 B)", "X"),
    R("tr(inv(X) A)", "X"),
    R("x^T A^-1 x", "x"),
    R("x^T A^-1 x", "A"),
    R("tr((X^T X)^-1)", "X"),
    R("a^T (X + A)^-1 b", "X"),
    R("tr(X^-T A)", "X"),
    R("tr((I + X)^-1)", "X"),
    R("tr(X^{-1} A X^{-1})", "X"),
    R("a^T X^(-1) X^(-1) b", "X"),
    R("a^T X⁻¹ b", "X"),
    R("tr((A X B)^-1)", "X", {"A": "matrix(n,n)", "X": "matrix(n,n)", "B": "matrix(n,n)"}),
    R("tr(X^{-T} A X)", "X"),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", INVERSE)
def test_inverse(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- determinant

DETERMINANT = [
    R("det(X)", "X"),
    R("|X|", "X"),
    R("det(A X B)", "X", {"A": "matrix(n,n)", "X": "matrix(n,n)", "B": "matrix(n,n)"}),
    R("det(X^T X)", "X"),
    R("det(X)^2", "X"),
    R("det(2 X)", "X"),
    R("det(X^-1)", "X"),
    R("det(X) tr(X)", "X"),
    R("|X| |A|", "X"),
    R("|A X|", "X"),
    R("det(X^T)", "X"),
    R("det(X + A)", "X"),
    R("det(X X)", "X"),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", DETERMINANT)
def test_determinant(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- log-determinant

LOGDET = [
    R("logdet(X)", "X"),
    R("log(det(X))", "X"),
    R("log|X|", "X"),
    R("ln(det(X))", "X"),
    R("ln|X|", "X"),
    R("log(|X|)", "X"),
    R("logdet(X^T X)", "X"),
    R("logdet(X^T X + I)", "X"),
    R("logdet(A X A^T)", "X", {"A": "matrix(2,3)"}),
    R("logdet(S)", "S", {"S": "spd"}),
    R("logdet(X^-1)", "X"),
    R("logdet(X X^T)", "X", {"X": "matrix(3,3)"}),
    R("logdet(X^T)", "X"),
    R("logdet(2 X)", "X"),
    R("logdet(I + X^T A X)", "X", {"A": "spd"}),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", LOGDET)
def test_logdet(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- matrix powers

POWERS = [
    R("tr(X^2)", "X"),
    R("tr(X^3)", "X"),
    R("a^T X^2 b", "X"),
    R("tr(X²)", "X"),
    R("tr(X³ A)", "X"),
    R("tr(A X^4)", "X"),
    R("tr(X^-2)", "X"),
    R("a^T X^5 b", "X"),
    R("tr((X^T X)^2)", "X"),
    R("tr(X^1 A)", "X"),
    R("x^T A^2 x", "x"),
    R("tr((A + X)^3)", "X"),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", POWERS)
def test_matrix_powers(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


def test_matrix_power_zero_is_constant():
    d = matcalc.diff("tr(X^0 A)", wrt="X")
    X = np.eye(3) * 2 + 0.1
    A = np.arange(9.0).reshape(3, 3)
    assert np.allclose(d.evaluate({"X": X, "A": A}), 0)
    assert np.shape(d.evaluate({"X": X, "A": A})) == (3, 3)


# ---------------------------------------------------------------------------- Hadamard

HADAMARD = [
    R("sum(x .* y)", "x"),
    R("sum(X .* A)", "X"),
    R("tr(A^T (X .* X))", "X"),
    R("a^T (x ∘ x)", "x"),
    R("sum(X ∘ X ∘ A)", "X"),
    R("x^T (A .* B) x", "x"),
    R("sum((A X) .* (B X))", "X"),
    R("sum(x ./ y)", "x", dom="pos"),
    R("sum(x ./ y)", "y", dom="pos"),
    R("sum(A ./ X)", "X", dom="pos"),
    R("a^T (x ./ (1 + x .* x))", "x"),
    R("tr(A (X .* B))", "X"),
    R("(x .* a)^T (x .* b)", "x"),
    R("sum(X .* X^T)", "X"),
    R("a^T (X .* B) c", "X"),
    R("sum(2 .* x .* x)", "x"),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", HADAMARD)
def test_hadamard(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- Kronecker

KRONECKER = [
    R("tr(kron(A, X))", "X"),
    R("tr(A ⊗ X)", "X"),
    R("tr(X ⊗ A)", "X"),
    R("tr(X ⊗ X)", "X"),
    R("sum(kron(a, x))", "x"),
    R("sum(x ⊗ x)", "x"),
    R("sum(kron(X, A))", "X"),
    R("x^T kron(A, B) x", "x"),
    R("sum(X ⊗ X)", "X"),
    R("tr(kron(X, X^T))", "X", {"X": "matrix(n,n)"}),   # tr(A ⊗ B) = tr(A) tr(B) needs square factors
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", KRONECKER)
def test_kronecker(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- elementwise functions

# every elementwise function of the records (and ln, log's other spelling)
FUNCS = [r.name for r in ELEMENTWISE_RECORDS] + ["ln"]
POSITIVE = {r.name for r in ELEMENTWISE_RECORDS if r.domain == "positive"} | {"ln"}

ELEMENTWISE = []
for fn in FUNCS:
    dom = "pos" if fn in POSITIVE else "any"
    ELEMENTWISE += [
        R(f"{fn}(t)", "t", {"t": SC}, dom, id=f"{fn} of a scalar variable"),
        R(f"{fn}(a^T x)", "x", None, dom, id=f"{fn} of a 1x1 product"),
        R(f"sum({fn}(x))", "x", None, dom, id=f"sum {fn} of a vector"),
        R(f"a^T {fn}(x)", "x", None, dom, id=f"a^T {fn} of a vector"),
        R(f"sum({fn}(X))", "X", None, dom, id=f"sum {fn} of a matrix"),
        R(f"tr(A {fn}(X))", "X", None, dom, id=f"tr(A {fn} of a matrix)"),
        R(f"{fn}(t) a", "t", {"t": SC}, dom, id=f"{fn}(t) a, vector-valued"),
        R(f"b^T {fn}(A x)", "x", None, dom, id=f"{fn} of A x"),
    ]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", ELEMENTWISE)
def test_elementwise_functions(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- elementwise power

ELEMPOW = [
    R("sum(x .^ 2)", "x"),
    R("sum(x .^ 3)", "x"),
    R("a^T (x .^ 0.5)", "x", dom="pos"),
    R("sum(X .^ 2)", "X"),
    R("sum(X .^ -1)", "X", dom="pos"),
    R("sum(x .^ p)", "x", {"p": SC}, dom="pos"),
    R("sum(x .^ p)", "p", {"p": SC}, dom="pos"),
    R("sum(x .^ (1/2))", "x", dom="pos"),
    R("tr(A (X .^ 3))", "X"),
    R("a^T ((A x) .^ 2)", "x"),
    R("sum(x .^ {-2})", "x", dom="pos"),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", ELEMPOW)
def test_elementwise_power(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- sum()

SUM = [
    R("sum(x)", "x"),
    R("sum(X)", "X"),
    R("sum(A X)", "X"),
    R("sum(X)^2", "X"),
    R("sum(x)^2", "x"),
    R("sum(A X B)", "X"),
    R("sum(x x^T)", "x"),
    R("sum(A x)", "x"),
    R("sum(X^T)", "X"),
    R("sum(a^T x)", "x"),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", SUM)
def test_sum(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- norms

NORMS = [
    R("||x||", "x"),
    R("||x||_2", "x"),
    R("||x||^2", "x"),
    R("norm(x)", "x"),
    R("norm(x)^2", "x"),
    R("||A x - b||^2", "x"),
    R("||A x - b||", "x"),
    R("||X||_F", "X"),
    R("||X||_F^2", "X"),
    R("norm(X)", "X"),
    R("||X||", "X"),
    R("||A X B - C||_F^2", "X"),
    R("||x - y||", "y"),
    R("norm(A x)^3", "x"),
    R("||x||_2^2", "x"),
    R("||X - U V^T||_F^2", "U"),
    R("||a^T x||", "x", id="norm of a 1x1"),
    R("||x||_{2}", "x"),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", NORMS)
def test_norms(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- vec

VEC = [
    R("sum(vec(X))", "X"),
    R("vec(X)^T vec(X)", "X"),
    R("vec(A)^T vec(X)", "X"),
    R("a^T vec(X)", "a"),
    R("vec(x)^T vec(x)", "x"),
    R("vec(A X)^T vec(B)", "X"),
    R("||vec(X)||^2", "X"),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", VEC)
def test_vec(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- diag

DIAG = [
    R("tr(diag(x) A)", "x"),
    R("a^T diag(X)", "X"),
    R("sum(diag(X))", "X"),
    R("x^T diag(y) x", "y"),
    R("x^T diag(y) x", "x"),
    R("tr(diag(diag(X)))", "X"),
    R("sum(diag(x) A)", "x"),
    R("diag(X)^T diag(X)", "X"),
    R("a^T diag(x) b", "x"),
    R("logdet(diag(x))", "x", dom="pos"),
    R("tr(diag(x)^-1 A)", "x", dom="pos"),
    R("diag(A X)^T a", "X"),
    R("b^T diag(x)^2 b", "x"),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", DIAG)
def test_diag(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- scalar powers and quotients

SCALAR_POWERS = [
    R("(a^T x)^2", "x"),
    R("(a^T x)^3", "x"),
    R("(x^T x)^0.5", "x"),
    R("(x^T x)^-1", "x"),
    R("(a^T x)/(b^T x)", "x"),
    R("x^T A x / (x^T x)", "x", id="Rayleigh quotient"),
    R("x^T A^T A x / (x^T x)", "x"),
    R("1/(x^T x)", "x"),
    R("(x^T x)^(3/2)", "x"),
    R("tr(X)^2 / tr(X^T X)", "X"),
    R("(1 + x^T x)^-2", "x"),
    R("sqrt(x^T x)", "x"),
    R("s^p", "p", {"s": SC, "p": SC}, dom="pos"),
    R("s^p", "s", {"s": SC, "p": SC}, dom="pos"),
    R("t^2 a", "t", {"t": SC}),
    R("1/t", "t", {"t": SC}, dom="pos"),
    R("(a^T x)^{2}", "x"),
    R("(a^T x)²", "x"),
    R("tr(X)^-1", "X", dom="pos"),
    R("a^T x / s", "s", {"s": SC}, dom="pos"),
    R("(a^T x)^s", "x", {"s": SC}, dom="pos"),
    R("det(X)^(1/3)", "X"),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", SCALAR_POWERS)
def test_scalar_powers_and_quotients(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- chain rule

CHAIN = [
    R("log(1 + exp(a^T x))", "x"),
    R("exp(-(x - mu)^T S^-1 (x - mu)/2)", "x", {"S": "spd"}),
    R("exp(-(x - mu)^T S^-1 (x - mu)/2)", "mu", {"S": "spd"}),
    R("exp(-(x - mu)^T S^-1 (x - mu)/2)", "S", {"S": "spd"}),
    R("tr((X^T X)^-1)", "X"),
    R("logdet(X^T X + I)", "X"),
    R("sum(log(sigmoid(y .* (A w))))", "w"),
    R("||A X B - C||_F^2", "X"),
    R("sin(tr(X))^2", "X"),
    R("exp(tr(A X))", "X"),
    R("log(sum(exp(A w)))", "w"),
    R("-y^T (A w) + log(sum(exp(A w)))", "w"),
    R("sqrt(1 + ||x||^2)", "x"),
    R("tanh(a^T tanh(W x))", "W"),
    R("tanh(a^T tanh(W x))", "x"),
    R("sum(softplus(A w)) - y^T A w", "w"),
    R("log(1 + x^T x)", "x"),
    R("det(exp(X))", "X"),
    R("tr(sigmoid(X) A)", "X"),
    R("a^T sigmoid(W sigmoid(V x))", "V"),
    R("a^T sigmoid(W sigmoid(V x))", "W"),
    R("||tanh(W x) - y||^2", "W"),
    R("exp(-||x - mu||^2)", "mu"),
    R("log(det(X^T X))", "X"),
    R("sum(log(1 + exp(-y .* (A w))))", "w"),
    R("logdet(S) + (x - mu)^T S^-1 (x - mu)", "S", {"S": "spd"}),
    R("cos(exp(sin(a^T x)))", "x"),
    R("sqrt(sum(exp(X) .* exp(X)))", "X"),
    R("softplus(tr(A X^-1))", "X"),
    R("log(sigmoid(a^T x)) + log(1 - sigmoid(b^T x))", "x"),
    R("(a^T x) exp(b^T x) / (1 + x^T x)", "x"),
    R("x^T A x + log(x^T x) - 1/(a^T a)", "x"),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", CHAIN)
def test_chain_rule(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- wrt a scalar

WRT_SCALAR = [
    R("exp(t) A", "t", {"t": SC}),
    R("(A + t B)^-1", "t", {"t": SC}),
    R("det(A + t B)", "t", {"t": SC}),
    R("logdet(A + t B)", "t", {"t": SC}),
    R("tr(exp(t X))", "t", {"t": SC}),
    R("sin(t) x + cos(t) y", "t", {"t": SC}),
    R("(A + t I)^-1 b", "t", {"t": SC}),
    R("x^T (A + t B) x", "t", {"t": SC}),
    R("t^3", "t", {"t": SC}),
    R("sqrt(t)", "t", {"t": SC}, dom="pos"),
    R("sigmoid(t x)", "t", {"t": SC}),
    R("(A + t B)^2", "t", {"t": SC}),
    R("t A + t^2 B", "t", {"t": SC}),
    R("x^T (t x)", "t", {"t": SC}),
    R("(t a)^T A (t a)", "t", {"t": SC}),
    R("t x^T A", "t", {"t": SC}, id="row-vector-valued t x^T A"),
    R("exp(t A) x", "t", {"t": SC}),
    R("tr(A)", "t", {"t": SC}, id="constant wrt t"),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", WRT_SCALAR)
def test_wrt_scalar(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- structured variables

STRUCTURED = [
    R("tr(A X)", "X", {"X": "symmetric"}),
    R("x^T X x", "X", {"X": "symmetric"}),
    R("logdet(X)", "X", {"X": "spd"}),
    R("tr(X^-1 A)", "X", {"X": "spd"}),
    R("a^T X b", "X", {"X": "symmetric"}),
    R("tr(X X)", "X", {"X": "symmetric"}),
    R("det(X)", "X", {"X": "symmetric"}),
    R("tr(A X B X)", "X", {"X": "symmetric"}),
    R("sum(exp(X))", "X", {"X": "symmetric"}),
    R("||X - A||_F^2", "X", {"X": "symmetric"}),
    R("tr(A X)", "X", {"X": "diagonal"}),
    R("a^T X b", "X", {"X": "diagonal"}),
    R("logdet(D)", "D", {"D": "diagonal"}),
    R("x^T D x", "D", {"D": "diagonal"}),
    R("tr(D^2 A)", "D", {"D": "diagonal"}),
    R("tr(D^-1 A)", "D", {"D": "diagonal"}),
    R("tr(A X)", "X", {"X": "symmetric"}, symmetric="cookbook", id="cookbook tr(A X)"),
    R("logdet(X)", "X", {"X": "spd"}, symmetric="cookbook", id="cookbook logdet"),
    R("x^T X x", "X", {"X": "symmetric"}, symmetric="cookbook", id="cookbook x^T X x"),
    R("a^T X b", "X", {"X": "symmetric"}, symmetric="cookbook", id="cookbook a^T X b"),
    R("tr(X^-1 A)", "X", {"X": "spd"}, symmetric="cookbook", id="cookbook tr(X^-1 A)"),
    R("tr(X^T A X)", "X", {"X": "symmetric(3)"}),
    R("logdet(S)", "S", {"S": "spd(4)"}),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", STRUCTURED)
def test_structured_variables(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


COOKBOOK = [
    ("tr(A X)", {"X": "symmetric"}),
    ("logdet(X)", {"X": "spd"}),
    ("a^T X b", {"X": "symmetric"}),
    ("tr(X^-1 A)", {"X": "spd"}),
    ("tr(A X B X)", {"X": "symmetric"}),
]


@pytest.mark.parametrize("expr,symbols", COOKBOOK, ids=[c[0] for c in COOKBOOK])
def test_cookbook_is_2S_minus_diag_S(expr, symbols):
    """symmetric="cookbook" gives 2S − I∘S where S = sym(G) is the default answer."""
    sym = matcalc.diff(expr, wrt="X", symbols=symbols)
    cook = matcalc.diff(expr, wrt="X", symbols=symbols, symmetric="cookbook")
    vals = draw(sym.symbols, np.random.default_rng(3))
    S = sym.evaluate(vals)
    C = cook.evaluate(vals)
    assert rel_err(C, 2 * S - np.diag(np.diag(S))) < 1e-9
    # and the unstructured gradient's symmetric part is S
    G = matcalc.diff(expr, wrt="X", symbols={k: v for k, v in symbols.items() if k != "X"})
    vG = dict(vals)
    Gv = G.evaluate(vG)
    assert rel_err(S, (Gv + Gv.T) / 2) < 1e-9


def test_diagonal_variable_is_diag_of_G():
    d = matcalc.diff("tr(A X)", wrt="X", symbols={"X": "diagonal"})
    vals = draw(d.symbols, np.random.default_rng(4))
    assert rel_err(d.evaluate(vals), np.diag(np.diag(vals["A"]).copy())) < 1e-12


# ---------------------------------------------------------------------------- structured constants

CONSTANTS = [
    R("x^T A x", "x", {"A": "symmetric"}),
    R("x^T S x", "x", {"S": "spd"}),
    R("tr(X^T A X)", "X", {"A": "symmetric"}),
    R("x^T D x", "x", {"D": "diagonal"}),
    R("a^T S^-1 x", "x", {"S": "spd"}),
    R("x^T A^-1 x", "x", {"A": "symmetric"}),
    R("(x - mu)^T S^-1 (x - mu)", "x", {"S": "spd"}),
    R("tr(X S X^T)", "X", {"S": "spd"}),
    R("x^T D^2 x", "x", {"D": "diagonal"}),
    R("x^T A x + c", "x", {"A": "symmetric", "c": SC}),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", CONSTANTS)
def test_structured_constants(expr, wrt, symbols, dom, kw):
    run(expr, wrt, symbols, dom, kw)


# ---------------------------------------------------------------------------- NumPy references

def _sig(z):
    return 1 / (1 + np.exp(-z))


REFERENCES = [
    ("log(1 + exp(a^T x))", "x", None, "any",
     lambda v: np.log1p(np.exp(v["a"] @ v["x"]))),
    ("exp(-(x - mu)^T S^-1 (x - mu)/2)", "x", {"S": "spd"}, "any",
     lambda v: np.exp(-(v["x"] - v["mu"]) @ np.linalg.solve(v["S"], v["x"] - v["mu"]) / 2)),
    ("exp(-(x - mu)^T S^-1 (x - mu)/2)", "S", {"S": "spd"}, "any",
     lambda v: np.exp(-(v["x"] - v["mu"]) @ np.linalg.solve(v["S"], v["x"] - v["mu"]) / 2)),
    ("tr((X^T X)^-1)", "X", None, "any",
     lambda v: np.trace(np.linalg.inv(v["X"].T @ v["X"]))),
    ("logdet(X^T X + I)", "X", None, "any",
     lambda v: np.linalg.slogdet(v["X"].T @ v["X"] + np.eye(v["X"].shape[1]))[1]),
    ("sum(log(sigmoid(y .* (A w))))", "w", None, "any",
     lambda v: np.sum(np.log(_sig(v["y"] * (v["A"] @ v["w"]))))),
    ("||A X B - C||_F^2", "X", None, "any",
     lambda v: np.sum((v["A"] @ v["X"] @ v["B"] - v["C"]) ** 2)),
    ("tr(X^T A X)", "X", None, "any",
     lambda v: np.trace(v["X"].T @ v["A"] @ v["X"])),
    ("x^T A^T A x / (x^T x)", "x", None, "any",
     lambda v: (v["A"] @ v["x"]) @ (v["A"] @ v["x"]) / (v["x"] @ v["x"])),
    ("a^T X^-1 b", "X", None, "any",
     lambda v: v["a"] @ np.linalg.solve(v["X"], v["b"])),
    ("|X| |A|", "X", None, "any",
     lambda v: np.linalg.det(v["X"]) * np.linalg.det(v["A"])),
    ("sum(X ./ (1 + X .* X))", "X", None, "any",
     lambda v: np.sum(v["X"] / (1 + v["X"] ** 2))),
    ("tr(A ⊗ X)", "X", None, "any",
     lambda v: np.trace(np.kron(v["A"], v["X"]))),
    ("a^T diag(X)", "X", None, "any", lambda v: v["a"] @ np.diag(v["X"])),
    ("tr(diag(x) A)", "x", None, "any", lambda v: np.trace(np.diag(v["x"]) @ v["A"])),
    ("sum(vec(A X))", "X", None, "any", lambda v: np.sum(v["A"] @ v["X"])),
    ("||x||", "x", None, "any", lambda v: np.linalg.norm(v["x"])),
    ("||X||_F", "X", None, "any", lambda v: np.linalg.norm(v["X"], "fro")),
    ("softplus(a^T x) + sqrt(x^T x)", "x", None, "any",
     lambda v: np.logaddexp(0, v["a"] @ v["x"]) + np.sqrt(v["x"] @ v["x"])),
    ("(A + t B)^-1", "t", {"t": SC}, "any",
     lambda v: np.linalg.inv(v["A"] + v["t"] * v["B"])),
    ("logdet(X)", "X", {"X": "spd"}, "any", lambda v: np.linalg.slogdet(v["X"])[1]),
    ("x^T A x", "x", {"A": "symmetric"}, "any", lambda v: v["x"] @ v["A"] @ v["x"]),
    ("tr(X^3)", "X", None, "any", lambda v: np.trace(v["X"] @ v["X"] @ v["X"])),
    ("-t X^T", "t", {"t": SC}, "any", lambda v: -v["t"] * v["X"].T),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,ref", REFERENCES,
                         ids=[f"numpy d/d{r[1]} {r[0]}" for r in REFERENCES])
def test_against_numpy_reference(expr, wrt, symbols, dom, ref):
    """The same check with f written in NumPy by hand, so that a mistake shared by
    matcalc's evaluator and its derivative cannot hide."""
    d = check_derivative(expr, wrt, symbols=symbols, dom=dom, f=ref)
    # matcalc's own evaluation of f agrees with the reference
    rng = np.random.default_rng(7)
    vals = draw(d.symbols, rng, dom, sizes=fitting_sizes(d, rng))
    assert rel_err(matcalc.evaluate(expr, vals, symbols=symbols), ref(vals)) < 1e-9


# ---------------------------------------------------------------------------- canonical text

CANONICAL = [
    ("tr(X^T A X)", "X", None, "(A + A^T) X"),
    ("x^T A x", "x", {"A": "symmetric"}, "2 A x"),
    ("x^T A x + c", "x", {"A": "symmetric", "c": SC}, "2 A x"),
    ("a^T x", "x", None, "a"),
    ("x^T x", "x", None, "2 x"),
    ("tr(A X)", "X", None, "A^T"),
    ("a^T X b", "X", None, "a b^T"),
    ("logdet(X)", "X", None, "X^-T"),
    ("logdet(S)", "S", {"S": "spd"}, "S^-1"),
    ("t^2 a", "t", {"t": SC}, "2 t a"),
]


@pytest.mark.parametrize("expr,wrt,symbols,text", CANONICAL, ids=[c[0] for c in CANONICAL])
def test_canonical_text(expr, wrt, symbols, text):
    d = check_derivative(expr, wrt, symbols=symbols, trials=1)
    assert str(d) == text


# ---------------------------------------------------------------------------- not yet in scope

JACOBIANS = [
    R("A x", "x"),
    R("exp(x)", "x"),
    R("A X B", "X"),
    R("X^-1", "X"),
    R("x x^T", "x"),
    R("X^T", "X"),
    R("sigmoid(W x)", "W"),
    R("A x", "x", layout="denominator", id="A x denominator"),
    R("X a", "X", layout="numerator", id="X a numerator"),
]


@pytest.mark.parametrize("expr,wrt,symbols,dom,kw", JACOBIANS)
def test_jacobians_are_right_or_unsupported(expr, wrt, symbols, dom, kw):
    """Jacobians of vector/matrix-valued functions: UnsupportedError, or a right answer
    (entry (i,j) = ∂vec(F)_i/∂vec(X)_j), never a wrong one."""
    try:
        run(expr, wrt, symbols, dom, dict(kw, allow_unsupported=True))
    except Unsupported:
        pass


HESSIANS = [
    ("x^T A x", "x", None),
    ("log(1 + exp(a^T x))", "x", None),
    ("tr(X^T A X)", "X", None),
    ("logdet(X)", "X", None),
    ("||A x - b||^2", "x", None),
]


@pytest.mark.parametrize("expr,wrt,symbols", HESSIANS, ids=[h[0] for h in HESSIANS])
def test_hessians_are_right_or_unsupported(expr, wrt, symbols):
    try:
        check_hessian(expr, wrt, symbols)
    except Unsupported:
        pass


@pytest.mark.parametrize("expr", ["t^3", "exp(2 t)", "log(t) t", "sin(t)^2"])
def test_second_derivative_wrt_scalar(expr):
    check_hessian(expr, "t", {"t": SC}, dom="pos", allow_unsupported=False)


# ---------------------------------------------------------------------------- the checker can fail

@pytest.mark.parametrize("expr,wrt,symbols,kw,wrong", [
    ("tr(A X)", "X", None, {}, lambda G, v: G.T),                       # transposed
    ("x^T A x", "x", None, {}, lambda G, v: 2 * v["A"] @ v["x"]),       # assumed A symmetric
    ("tr(X^T A X)", "X", None, {}, lambda G, v: 0.5 * G),               # a factor off
    ("tr(A X)", "X", {"X": "symmetric"}, {}, lambda G, v: v["A"].T),    # unsymmetrized G
    ("tr(A X)", "X", {"X": "symmetric"}, {"symmetric": "cookbook"},
     lambda G, v: (v["A"] + v["A"].T) / 2),                             # sym(G) for cookbook
    ("tr(A X)", "X", {"X": "diagonal"}, {}, lambda G, v: v["A"].T),     # not projected
    ("exp(t) A", "t", {"t": "scalar"}, {}, lambda G, v: G + 1e-4),      # slightly off
    ("a^T x", "x", None, {"layout": "numerator"}, lambda G, v: G.reshape(-1)),  # wrong shape
])
def test_checker_detects_wrong_derivatives(monkeypatch, expr, wrt, symbols, kw, wrong):
    """The finite-difference helper itself rejects typical wrong answers."""
    orig = matcalc.Derivative.evaluate

    def bad(self, values):
        return wrong(np.asarray(orig(self, values)), values)

    monkeypatch.setattr(matcalc.Derivative, "evaluate", bad)
    with pytest.raises(AssertionError):
        check_derivative(expr, wrt, symbols=symbols, round_trip=False, **kw)


def test_checker_detects_a_bad_round_trip(monkeypatch):
    monkeypatch.setattr(matcalc.Derivative, "__str__", lambda self: "A^T")
    with pytest.raises(AssertionError):
        check_derivative("tr(X^T A X)", "X")


# ---------------------------------------------------------------------------- random compositions

def _random_expressions(seed, count):
    """Well-typed random scalar functions of a 3×3 matrix X and a vector x, built from
    the language's operations (each subexpression parenthesized)."""
    import random
    r = random.Random(seed)

    def P(t):
        return "(" + t + ")"

    def mat(d):
        if d <= 0:
            return r.choice(["X", "A", "B", "X", "I(3)"])
        k = r.randrange(14)
        return P([
            lambda: f"{mat(d - 1)} {mat(d - 1)}",
            lambda: f"{mat(d - 1)} + {mat(d - 1)}",
            lambda: f"{mat(d - 1)} - {mat(d - 1)}",
            lambda: f"{mat(d - 1)}^T",
            lambda: f"inv({mat(d - 1)} + 4 I(3))",
            lambda: f"{mat(d - 1)} .* {mat(d - 1)}",
            lambda: f"{sca(d - 1)} {mat(d - 1)}",
            lambda: f"exp(0.1 {mat(d - 1)})",
            lambda: f"{mat(d - 1)}^2",
            lambda: f"{vec(d - 1)} {vec(d - 1)}^T",
            lambda: f"diag({vec(d - 1)})",
            lambda: f"tanh({mat(d - 1)})",
            lambda: f"sigmoid({mat(d - 1)})",
            lambda: f"{mat(d - 1)} ./ (2 + {mat(d - 1)} .* {mat(d - 1)})",
        ][k]())

    def vec(d):
        if d <= 0:
            return r.choice(["x", "a", "b", "x"])
        k = r.randrange(10)
        return P([
            lambda: f"{mat(d - 1)} {vec(d - 1)}",
            lambda: f"{vec(d - 1)} + {vec(d - 1)}",
            lambda: f"{vec(d - 1)} .* {vec(d - 1)}",
            lambda: f"{sca(d - 1)} {vec(d - 1)}",
            lambda: f"diag({mat(d - 1)})",
            lambda: f"sin({vec(d - 1)})",
            lambda: f"softplus({vec(d - 1)})",
            lambda: f"{mat(d - 1)}^T {vec(d - 1)}",
            lambda: f"{vec(d - 1)} .^ 2",
            lambda: f"1 + {vec(d - 1)}",
        ][k]())

    def sca(d):
        if d <= 0:
            return r.choice(["s", "2", "0.5", "(a^T x)"])
        k = r.randrange(12)
        return P([
            lambda: f"tr({mat(d - 1)})",
            lambda: f"{vec(d - 1)}^T {vec(d - 1)}",
            lambda: f"{vec(d - 1)}^T {mat(d - 1)} {vec(d - 1)}",
            lambda: f"sum({mat(d - 1)})",
            lambda: f"||{vec(d - 1)}||",
            lambda: f"||{mat(d - 1)}||_F^2",
            lambda: f"logdet(4 I(3) + {mat(d - 1)} {mat(d - 1)}^T)",
            lambda: f"{sca(d - 1)} {sca(d - 1)}",
            lambda: f"exp(0.1 {sca(d - 1)})",
            lambda: f"{sca(d - 1)}^2",
            lambda: f"sqrt(1 + {sca(d - 1)}^2)",
            lambda: f"det(I(3) + 0.1 {mat(d - 1)})",
        ][k]())

    import re
    out = []
    while len(out) < count:
        e = sca(r.choice([2, 3]))
        for v in ("X", "x"):
            if re.search(r"(?<![A-Za-z])" + v + r"(?![A-Za-z0-9_])", e) and len(out) < count:
                out.append((e, v))
    return out


RANDOM = _random_expressions(20241121, 60)


def _present(symbols, expr, wrt):
    """The declarations of the symbols expr has (a declaration naming nothing is an error)."""
    import re
    names = set(re.findall(r"[A-Za-z][A-Za-z0-9_]*", expr)) | {wrt}
    return {k: v for k, v in symbols.items() if k in names}


@pytest.mark.parametrize("expr,wrt", RANDOM, ids=[f"d/d{w} {e}" for e, w in RANDOM])
def test_random_compositions(expr, wrt):
    symbols = _present({"s": SC, "X": "matrix(3,3)"}, expr, wrt)
    try:
        d = matcalc.diff(expr, wrt=wrt, symbols=symbols)
    except matcalc.UnsupportedError:
        return          # a decline is allowed; a wrong answer is not
    check_derivative(expr, wrt, symbols=symbols, trials=1, tol=1e-5, round_trip=str(d) != "0")


RANDOM_STRUCTURED = [(e, w, kind) for (e, w), kind in zip(
    [r for r in _random_expressions(777, 80) if r[1] == "X"][:30],
    ["symmetric(3)", "spd(3)", "diagonal(3)"] * 10)]


@pytest.mark.parametrize("expr,wrt,kind", RANDOM_STRUCTURED,
                         ids=[f"{k} d/dX {e}" for e, _, k in RANDOM_STRUCTURED])
def test_random_compositions_structured(expr, wrt, kind):
    symbols = _present({"s": SC, "X": kind}, expr, wrt)
    try:
        d = matcalc.diff(expr, wrt=wrt, symbols=symbols)
    except matcalc.UnsupportedError:
        return
    check_derivative(expr, wrt, symbols=symbols, trials=1, tol=1e-5, round_trip=str(d) != "0")
