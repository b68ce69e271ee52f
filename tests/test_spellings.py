"""Numbers as people write them, and matrixcalculus.org's spellings (issue 14 items 2 and
5, CONTRACT §5.4).

Numbers: a decimal literal prints back as that decimal, exact products of long literals
as the shortest decimal that reads back to the same float, short fractions (2/3 from
``/ 3``) exactly.  Every answer is checked against finite differences and read back:
``evaluate(str(d))`` gives what ``d.evaluate`` gives.

Spellings: each parses and evaluates like its plain twin (numerically, at random
values), and derivatives through them are checked against finite differences.
"""
import os
import re
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import matcalc
from matcalc import expr as E
from matcalc.printing import number_form

from helpers import check_derivative, draw, rel_err, katex_or_skip

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

GELU = "0.5 x .* (1 + tanh(0.7978845608028654 (x + 0.044715 x .^ 3)))"


def read_back(d, seed=0, tol=1e-12):
    """str(d) parsed again evaluates to d.evaluate at random values."""
    vals = draw(d.symbols, np.random.default_rng(seed))
    want = np.asarray(d.evaluate(vals), dtype=float)
    got = np.asarray(matcalc.evaluate(str(d), vals, symbols=d.symbols), dtype=float)
    assert np.shape(got) == np.shape(want), (str(d), np.shape(got), np.shape(want))
    assert rel_err(got, want) < tol, f"{str(d)!r} reads back to other numbers"


def long_integers(text):
    """Integer literals of more than 8 digits (the 3989422804014327 / 1e16 of old)."""
    return [m for m in re.findall(r"(?<![.\d])\d+(?![.\d])", text) if len(m) > 8]


# ---------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("expr,wrt,symbols,text,latex", [
    # the GELU: its constants print as written, their products as short decimals
    (GELU, "x", {"x": "vector"}, "0.7978845608028654", "0.7978845608028654"),
    ("sum(" + GELU + ")", "x", {"x": "vector"}, "0.3989422804014327 x", "0.3989422804014327 x"),
    ("0.1 x^T x", "x", None, "0.2 x", "0.2 x"),
    ("1e-3 ||w||^2", "w", None, "0.002 w", "0.002 w"),
    ("x^T x / 3", "x", None, "2 x / 3", "\\frac{2}{3} x"),
    ("0.1 x^T A x", "x", None, "0.1 (A + A^T) x", "0.1 \\left(A + A^{\\top}\\right) x"),
    ("3.14159 x^T x", "x", None, "6.28318 x", "6.28318 x"),
    ("0.7978845608028654 x^T x / 3", "x", None, "0.5319230405352436 x", "0.5319230405352436 x"),
    ("1e-40 x^T x", "x", None, "2e-40 x", "2 \\times 10^{-40} x"),
    ("0.7978845608028654 x^T x / c", "x", {"c": "scalar"}, "1.5957691216057308 x / c",
     "1.5957691216057308 \\frac{x}{c}"),
    ("x^T x / (2 c)", "x", {"c": "scalar"}, "x / c", "\\frac{x}{c}"),
    ("x^T x / (4 c)", "x", {"c": "scalar"}, "x / (2 c)", "\\frac{x}{2 c}"),
])
def test_numbers_print_as_written(expr, wrt, symbols, text, latex):
    d = check_derivative(expr, wrt, symbols=symbols)       # finite differences, and read-back
    assert text in str(d), str(d)
    assert latex in d.latex(), d.latex()
    assert not long_integers(str(d)), str(d)
    assert not long_integers(d.latex()), d.latex()
    assert "\\times 10^{-1}" not in d.latex()
    read_back(d)


def test_gelu_derivative_prints_short_and_reads_back():
    d = check_derivative(GELU, "x", symbols={"x": "vector"})
    s = str(d)
    assert "0.7978845608028654" in s and "0.044715" in s and "0.134145" in s, s
    assert "1e16" not in s and "/ 5e15" not in s, s
    for seed in range(3):
        read_back(d, seed)
    h = check_derivative("sum(" + GELU + ")", "x", symbols={"x": "vector"})
    assert "0.05351611220445019" in str(h), str(h)     # 0.7978845608028654 · 0.044715 · 1.5
    read_back(h)


@pytest.mark.parametrize("literal", ["0.1", "0.5", "123.25", "0.7978845608028654", "0.044715",
                                     "1e-3", "2.5e-7", "1e-40", "6.02e23", "1e100", "0.000001",
                                     "3", "1000000"])
def test_literal_prints_back_as_the_same_number(literal):
    f = matcalc.parse(f"{literal} x", {"x": "vector"})
    lit = str(f).split(" ")[0]
    assert float(Fraction(lit)) == float(literal)
    assert len(lit) <= max(len(literal), len(repr(float(literal)))), lit


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.floats(min_value=1e-30, max_value=1e30, allow_nan=False, allow_infinity=False),
       st.floats(min_value=1e-30, max_value=1e30, allow_nan=False, allow_infinity=False))
def test_products_of_literals_read_back_to_the_same_float(a, b):
    # the exact product of two decimal literals prints as at most 17 significant digits
    # that read back to the float of the exact product
    v = Fraction(repr(a)) * Fraction(repr(b))
    form = number_form(v)
    assert form[0] == "dec"
    assert len(form[1]) <= 17
    s = str(matcalc.parse(f"{repr(a)} {repr(b)} x", {"x": "vector"}))
    # (a short fraction may print as a quotient: 0.0625 0.03125 x is x / 512)
    assert float(np.ravel(matcalc.evaluate(s, {"x": np.ones(2)}))[0]) == float(v), (a, b, s)
    for lit in re.findall(r"[\d.]+(?:e-?\d+)?", s):
        if "." in lit:
            assert len(lit.partition("e")[0].replace(".", "").strip("0")) <= 17, s


@pytest.mark.parametrize("value,kind", [
    (Fraction(2, 3), "frac"), (Fraction(355, 113), "frac"), (Fraction(1, 10), "dec"),
    (Fraction(0.1), "dec"),                       # a binary float's exact fraction: 0.1
    (Fraction(3989422804014327, 15 * 10 ** 15), "dec"),
])
def test_number_form(value, kind):
    form = number_form(value)
    assert form[0] == kind
    if kind == "dec":
        assert float(int(form[1]) * Fraction(10) ** form[2]) == float(value)
    assert number_form(Fraction(0.1)) == ("dec", "1", -1)


def test_exact_rationals_stay_exact():
    d = check_derivative("(x^T x)^(1/3)", "x")
    assert str(d) == "2 x / (3 (x^T x)^(2 / 3))", str(d)
    assert "\\frac{2}{3}" in d.latex(), d.latex()
    read_back(d)
    e = matcalc.parse("(2/3) x", {"x": "vector"})
    assert str(e) in ("2 x / 3", "(2/3) x", "2/3 x"), str(e)


# ---------------------------------------------------------------------------- spellings


A_SQ = {"A": "matrix(n,n)", "x": "vector(n)", "X": "matrix(n,n)", "e": "vector(m)",
        "E": "matrix(m,p)"}

TWINS = [
    ("x'*A*x", "x^T A x"),
    ("norm2(e)", "norm(e)"),
    ("norm2(e)^2", "||e||^2"),
    ("norm2(E)", "||E||_F"),
    ("norm2(E)^2", "tr(E^T E)"),
    ("norm1(e)", "sum(abs(e))"),
    ("norm1(E)", "sum(abs(E))"),
    ("tr(X + eye)", "tr(X + I)"),
    ("tr(X*eye(n))", "tr(X I(n))"),
    ("x'*eye*x", "x^T x"),
    ("vector(1)'*x", "sum(x)"),
    ("x .* vector(1)", "x"),
    ("x + vector(2)", "x + 2 ones(n)"),
    ("vector(0) + x", "x"),
    ("vector(1)'*A*vector(1)", "sum(A)"),
    ("sum(matrix(1) .* E)", "sum(E)"),
    ("x'*matrix(1)*x", "x^T ones(n,n) x"),
    ("A + matrix(1)", "A + ones(n,n)"),
    ("inv(A)*x", "A^-1 x"),
    ("det(X)", "|X|"),
    ("logdet(X'*X)", "log(det(X^T X))"),
    ("tr(A*X)", "trace(A X)"),
    ("x .* x", "x ∘ x"),
    ("x ./ (x .* x)", "x .^ -1"),
    ("x .^ 3", "x ∘ x ∘ x"),
]


@pytest.mark.parametrize("a,b", TWINS, ids=[a for a, _ in TWINS])
def test_spelling_evaluates_like_its_twin(a, b):
    rng = np.random.default_rng(1)
    for _ in range(3):
        vals = draw(A_SQ, rng, sizes={"n": 3, "m": 4, "p": 2})
        vals["X"] = vals["X"] + 3 * np.eye(3)
        used = set(E.symbols_of(matcalc.parse(b, A_SQ))) | set(E.symbols_of(matcalc.parse(a, A_SQ)))
        sub = {k: v for k, v in vals.items() if k in used}
        decls = {k: v for k, v in A_SQ.items() if k in used}
        got = matcalc.evaluate(a, sub, symbols=decls)
        want = matcalc.evaluate(b, sub, symbols=decls)
        assert np.shape(got) == np.shape(want), (a, np.shape(got), np.shape(want))
        assert rel_err(got, want) < 1e-12, (a, got, want)


DERIVATIVES = [
    ("x'*A*x", "x", None),
    ("norm2(x - a)", "x", None),
    ("norm2(A*x - b)^2", "x", None),
    ("norm2(X)^2", "X", None),
    ("norm2(X'*X - eye)", "X", None),
    ("norm1(X)", "X", None),
    ("norm1(A*x - b)", "x", None),
    ("vector(1)'*exp(x)", "x", None),
    ("x'*matrix(1)*x", "x", None),
    ("tr(inv(X + eye))", "X", None),
    ("tr(inv(X + 2*eye(n)))", "X", None),
    ("logdet(X'*X + eye)", "X", None),
    ("sum(x .^ 2 ./ (vector(1) + x .* x))", "x", None),
    ("log(vector(1)'*exp(A*x))", "x", None),
    ("det(X)", "X", None),
    ("tr(A*inv(X)*B)", "X", None),
    ("(x'*A*x) ./ norm2(x)^2", "x", None),
]


@pytest.mark.parametrize("expr,wrt,symbols", DERIVATIVES, ids=[e for e, _, _ in DERIVATIVES])
def test_derivative_through_spelling(expr, wrt, symbols):
    # the helper checks against central differences and reads str(d) back
    check_derivative(expr, wrt, symbols=symbols, dom="pos" if "norm1" in expr else "any")


def test_declared_vector_keeps_its_meaning():
    # vector(n) in a declaration declares; vector(1) in the expression is the ones vector
    d = check_derivative("vector(1)'*x + x'*x", "x", symbols={"x": "vector(n)"})
    assert d.symbols["x"] == "vector(n)"
    with pytest.raises(matcalc.ParseError) as info:
        matcalc.parse("vector(n)'*x")
    assert "vector(1)" in str(info.value) and "--let x=vector(n)" in str(info.value)
    assert info.value.span == (0, 9)
    with pytest.raises(matcalc.ParseError) as info:
        matcalc.parse("x'*matrix(x)*x")
    assert "matrix(1)" in str(info.value)


def test_spellings_are_not_listed_as_functions():
    from matcalc.parse import FUNCTIONS, FOREIGN_FUNCTIONS, FUNCTION_NAMES
    for name in ("norm2", "norm1", "vector", "matrix"):
        assert name in FUNCTION_NAMES and name not in FUNCTIONS
        assert name not in FOREIGN_FUNCTIONS
    assert "eye" not in FOREIGN_FUNCTIONS


def test_eye_is_a_word_not_a_prefix():
    # eyes, eye2 and eye_1 stay symbols
    tree = matcalc.parse("eyes'*eye2 + eye_1", {"eyes": "vector", "eye2": "vector",
                                                "eye_1": "scalar"})
    assert set(E.symbols_of(tree)) == {"eyes", "eye2", "eye_1"}


def test_cli_reads_the_spellings():
    p = subprocess.run([sys.executable, "-m", "matcalc", "diff", "norm2(A*x - b)^2 + 0.1*x'*x",
                        "--wrt", "x"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = p.stdout.splitlines()[0]
    d = matcalc.diff("||A x - b||^2 + 0.1 x^T x", "x")
    vals = draw(d.symbols, np.random.default_rng(0))
    assert rel_err(matcalc.evaluate(out, vals, symbols=d.symbols), d.evaluate(vals)) < 1e-9
    assert "0.2 x" in out, out


# ---------------------------------------------------------------------------- KaTeX



def test_number_latex_renders():
    runner = katex_or_skip()
    texs = [matcalc.diff(e, "x", symbols={"x": "vector"}).latex() for e in (
        GELU, "sum(" + GELU + ")", "1e-40 x^T x", "x^T x / 3")]
    texs.append(matcalc.diff("0.7978845608028654 x^T x / c", "x", symbols={"c": "scalar"}).latex())
    texs += [matcalc.diff(e, w).latex() for e, w, _ in DERIVATIVES]
    bad = runner.Katex(texs).problems(texs)
    assert not bad, bad


@pytest.mark.parametrize("expr,wrt", [("norm2(A*x - b)^2 + 0.1*x'*x", "x"),
                                      ("logdet(X'*X + eye)", "X")])
def test_hessian_through_spelling(expr, wrt):
    from helpers import check_hessian
    h = check_hessian(expr, wrt)
    read_back(h)
