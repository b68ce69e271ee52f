"""Issue 10, silent misreadings and broken texts: names that look like functions, scalars
taken for vectors, --let / symbols= validation, the messages that misled, and zeros/ones
in the language (a zero derivative prints with its shape).  Every derivative here is
checked against finite differences (helpers.check_derivative), and read back."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import matcalc
from matcalc import expr as E
from matcalc.parse import FOREIGN_FUNCTIONS, FUNCTION_NAMES, FUNCTIONS, function_suggestion
from helpers import check_derivative, draw, rel_err, katex_or_skip

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def cli(*args, timeout=60):
    p = subprocess.run([sys.executable, "-m", "matcalc", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def quiet_diff(*a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return matcalc.diff(*a, **kw)


# ---------------------------------------------------------------------------- function-like names

FUNCTION_LIKE = [
    # (text, the name under the caret, a function of the language the message names)
    ("Trace(X)", "Trace", "trace"),
    ("Det(X)", "Det", "det"),
    ("tr(Expm(X))", "Expm", "exp"),
    ("Exp(x)", "Exp", "exp"),
    ("sum(Log(x))", "Log", "log"),
    ("LogDet(X)", "LogDet", "logdet"),
    ("tr(Inv(X))", "Inv", "inv"),
    ("Sum(x)", "Sum", "sum"),
    ("tr(Diag(x))", "Diag", "diag"),
    ("tr(Sqrtm(X))", "Sqrtm", "sqrt"),
    ("TR(X)", "TR", "tr"),
    ("tr(Logm(X))", "Logm", "logm"),
    ("tr(expmm(X))", "expmm", "expm"),
    ("tr(fractional_matrix_power(X, 0.5))", "fractional_matrix_power", "X^p"),
    ("sum(sigmod(x))", "sigmod", "sigmoid"),
    ("sum(sigmiod(x))", "sigmiod", "sigmoid"),
    ("sum(softplu(x))", "softplu", "softplus"),
    ("nrom(x)", "nrom", "norm"),
    ("logdett(X)", "logdett", "logdet"),
    ("sum(softmax2(x))", "softmax2", "softmax"),
    ("max(x)", "max", "sum"),
    ("min(x)", "min", "sum"),
    ("dot(x, y)", "dot", "x^T y"),
    ("tr(pinv(X))", "pinv", "inv"),
    ("logdet(chol(X))", "chol", "logdet"),
    ("tr(X + identity(3))", "identity", "I(n)"),
]


@pytest.mark.parametrize("text,name,fn", FUNCTION_LIKE, ids=[t for t, _, _ in FUNCTION_LIKE])
def test_function_like_name_is_a_parse_error(text, name, fn):
    with pytest.raises(matcalc.ParseError) as info:
        matcalc.diff(text, wrt="X" if "X" in text else "x")
    e = info.value
    start = text.index(name + "(")
    assert e.span == (start, start + len(name)), (e.span, e.render())   # the caret under the name
    assert str(e).startswith(f"{name} is not a function of the language"), str(e)
    assert fn in str(e), str(e)


@pytest.mark.parametrize("text,name,fn", FUNCTION_LIKE[:6], ids=[t for t, _, _ in FUNCTION_LIKE[:6]])
def test_function_like_name_cli(text, name, fn):
    code, out, err = cli("diff", text, "--wrt", "X" if "X" in text else "x")
    assert code == 2 and out == "" and "Traceback" not in err
    line, caret = err.splitlines()[1:3]
    col = line.index(name + "(")
    assert caret[col:col + len(name)] == "^" * len(name) and caret.strip() == "^" * len(name)


@pytest.mark.parametrize("text,wrt,symbols", [
    ("(x - mu)^T Sigma(x - mu)", "x", {"Sigma": "spd"}),
    ("tr(A(B + C) X)", "X", None),
    ("sum(W(x + b))", "x", None),
    ("sum(W(x + b))", "W", None),
    ("tr(Sigma(X + A))", "X", None),
    ("tr(Trace * (X))", "X", {"Trace": "scalar"}),
    ("tr(Trace (X))", "X", {"Trace": "scalar"}),        # with a space: a product
    ("Exp (x^T x) + Exp^2", "x", {"Exp": "scalar"}),
    ("sigma(x^T x)", "x", {"sigma": "scalar"}),
])
def test_ordinary_symbols_before_parentheses_stay_products(text, wrt, symbols):
    check_derivative(text, wrt, symbols)


def test_one_list_of_function_names():
    """The grammar's FUNC is the list: every name in it lexes as a function, and a name
    next to it (another case) does not; the suggestion reads the same list."""
    grammar = open(os.path.join(ROOT, "grammar", "matcalc.lark"), encoding="utf-8").read()
    assert all(f"|{n}|" in grammar.replace("(", "|").replace(")", "|") for n in FUNCTION_NAMES)
    assert {"ones", "zeros", "tr", "logdet", "softplus"} <= set(FUNCTIONS)
    for n in FUNCTION_NAMES:
        assert function_suggestion(n) is None
        if n.capitalize() not in FUNCTION_NAMES:
            assert n in function_suggestion(n.capitalize()) or \
                function_suggestion(n.capitalize()).endswith("write tr(…)")
    # a name the language has is never suspected, even if NumPy has it too
    assert not set(FOREIGN_FUNCTIONS) & FUNCTION_NAMES
    assert function_suggestion("ones") is None and function_suggestion("zeros") is None


@pytest.mark.parametrize("name", ["Sigma", "W", "A", "mu", "beta", "theta", "x1", "K2", "Lambda",
                                  "alpha", "sigma", "data", "gamma", "phi", "cost", "sight", "eta",
                                  "W_1", "Σ", "mu2", "Omega"])
def test_ordinary_names_are_not_suspected(name):
    assert function_suggestion(name) is None


# ---------------------------------------------------------------------------- unknown functions

def test_unknown_function_error_says_so_first():
    for text in ("tr(foo(X))", "tr(X + foo(3))", "sum(bar(x) + x)"):
        with pytest.raises(matcalc.ShapeError) as info:
            matcalc.diff(text, wrt="X" if "X" in text else "x")
        msg = str(info.value)
        name = "foo" if "foo" in text else "bar"
        assert msg.startswith(f"{name} is not a function of the language"), msg
        assert "tr, unvec, vec, zeros" in msg       # the language's functions, from the one list
    # a product written with a space is a product: its error is the shapes' alone
    with pytest.raises(matcalc.ShapeError) as info:
        matcalc.diff("A (B + C) + x", wrt="x")
    assert str(info.value).startswith("cannot add A (B + C)")
    with pytest.raises(matcalc.ShapeError) as info:
        matcalc.diff("tr(X + identity (3))", wrt="X")
    assert str(info.value).startswith("identity is not a function of the language")


# ---------------------------------------------------------------------------- scalars taken for vectors

NOTED = [
    ("||X w - y||^2 + lambda ||w||^2", "w", "lambda"),
    ("x^T A x + c", "x", "c"),
    ("tr(X^T A X) + b", "X", "b"),
    ("a^T x + t", "x", "t"),
]


@pytest.mark.parametrize("text,wrt,name", NOTED, ids=[t for t, _, _ in NOTED])
def test_scalar_taken_for_a_vector_is_noted(text, wrt, name):
    with pytest.warns(UserWarning, match=f"--let {name}=scalar"):
        d = matcalc.diff(text, wrt=wrt)
    assert len(d.notes) == 1 and name in d.notes[0]
    assert f'symbols={{"{name}": "scalar"}}' in d.notes[0]
    # the answer as read is still right (a Jacobian of the vector-valued f) ...
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check_derivative(text, wrt)
    # ... and with the declaration f is scalar, the answer a gradient, and no note
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        d2 = check_derivative(text, wrt, {name: "scalar"})
    assert d2.kind == "gradient" and d2.notes == []
    code, out, err = cli("diff", text, "--wrt", wrt)
    assert code == 0 and out.splitlines()[0] == str(d)
    assert f"--let {name}=scalar" in err and "Warning" not in err
    code, out, err = cli("diff", text, "--wrt", wrt, "--let", f"{name}=scalar")
    assert code == 0 and err == ""


def test_scalar_note_with_other_declarations_and_groups():
    d = quiet_diff("x^T A x + c", wrt="x", symbols={"x": "vector(n)", "A": "symmetric"})
    assert len(d.notes) == 1 and "--let c=scalar" in d.notes[0]
    d = quiet_diff("a^T x + c + d", wrt="x")
    assert len(d.notes) == 1 and "--let c=scalar --let d=scalar" in d.notes[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check_derivative("a^T x + c + d", "x")
    check_derivative("a^T x + c + d", "x", {"c": "scalar", "d": "scalar"})


def test_hessian_of_a_scalar_taken_for_a_vector_says_which():
    with pytest.raises(matcalc.ShapeError, match="--let c=scalar"):
        matcalc.hessian("x^T A x + c", wrt="x")


@pytest.mark.parametrize("text,wrt,symbols", [
    ("exp(x)", "x", None), ("A x", "x", None), ("X^T", "X", None), ("x .* y", "x", None),
    ("sigmoid(W x)", "x", None), ("A X B", "X", None), ("t^2 a", "t", {"t": "scalar"}),
    ("exp(t A)", "t", {"t": "scalar"}), ("c .* sin(t b)", "t", {"t": "scalar"}),
    ("1 + exp(x)", "x", None), ("sum(x) y", "x", None)])
def test_genuine_vector_functions_are_not_noted(text, wrt, symbols):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        d = check_derivative(text, wrt, symbols)
    assert d.notes == []


def test_readme_example_declares_c():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    for line in readme.splitlines():
        if "x^T A x + c" in line:
            assert "c=scalar" in line or '"c": "scalar"' in line, line


# ---------------------------------------------------------------------------- --let and symbols=

BAD_LETS = [
    ("\u0425=matrix", "did you mean X?"),        # a Cyrillic Х
    ("I=matrix", "reserved"),
    ("=matrix", "empty"),
    ("3=scalar", "a number"),
    ("tr=scalar", "function"),
    ("Y=matrix", "not a symbol of"),
    ("x=matrix", "did you mean X?"),
    ("X=foo", "unknown kind"),
    ("X=matrix(0,2)", "size 0"),
]


@pytest.mark.parametrize("let,why", BAD_LETS, ids=[b for b, _ in BAD_LETS])
def test_bad_let_is_an_error(let, why):
    code, out, err = cli("diff", "tr(X^T A X)", "--wrt", "X", "--let", let)
    assert code == 2 and out == "" and "Traceback" not in err
    assert why in err, err
    name, _, kind = let.partition("=")
    with pytest.raises(matcalc.MatcalcError, match=why.replace("?", r"\?")):
        matcalc.diff("tr(X^T A X)", wrt="X", symbols={name: kind})


def test_let_twice_with_two_kinds():
    code, out, err = cli("diff", "x^T A x", "--wrt", "x", "--let", "A=symmetric", "--let", "A=matrix")
    assert code == 2 and "twice" in err


@pytest.mark.parametrize("bad", ["X=matrix", ["X", "matrix"], 3])
def test_symbols_must_be_a_dict(bad):
    for call in (lambda: matcalc.diff("tr(X)", wrt="X", symbols=bad),
                 lambda: matcalc.parse("tr(X)", symbols=bad),
                 lambda: matcalc.evaluate("tr(X)", {"X": np.eye(2)}, symbols=bad)):
        with pytest.raises(matcalc.MatcalcError, match="dict"):
            call()


def test_good_declarations_still_work():
    d = check_derivative("x^T A x + c", "x", {"A": "symmetric", "c": "scalar"})
    assert str(d) == "2 A x"
    # evaluate reads a printed answer with every symbol's kind, even those it lacks
    d = quiet_diff("tr(A X) + b^T b", wrt="X")
    vals = draw(d.symbols, np.random.default_rng(0))
    assert rel_err(matcalc.evaluate(str(d), vals, symbols=d.symbols), d.evaluate(vals)) < 1e-12


# ---------------------------------------------------------------------------- broken texts

def test_operand_text_keeps_its_parentheses():
    with pytest.raises(matcalc.ShapeError) as info:
        matcalc.diff("tr(X + (a)(3))", wrt="X")
    msg = str(info.value)
    assert "and (a)(3) (a vector" in msg, msg
    with pytest.raises(matcalc.ShapeError) as info:
        matcalc.diff("tr(X + foo(3))", wrt="X")
    assert "foo(3) (a" in str(info.value), str(info.value)
    with pytest.raises(matcalc.ShapeError) as info:
        matcalc.diff("x^T (A B) y + (x) (A)", wrt="x")
    assert "(A)" in str(info.value) and "(x)" in str(info.value)


@pytest.mark.parametrize("text,op,col", [("tr(X +)", "+", 5), ("tr(X + )", "+", 5), ("X *", "*", 2),
                                         ("tr(X -)", "-", 5), ("(x .*) y", ".*", 3),
                                         ("kron(A, )", ",", 6)])
def test_missing_operand_is_named(text, op, col):
    with pytest.raises(matcalc.ParseError) as info:
        matcalc.parse(text)
    e = info.value
    assert str(e).startswith(f"an operand is missing after '{op}'"), str(e)
    assert e.position == col
    assert "unbalanced" not in str(e)


def test_unbalanced_parentheses_still_said():
    with pytest.raises(matcalc.ParseError, match="unbalanced parentheses"):
        matcalc.parse("tr(X))")


def test_division_by_an_undeclared_vector_suggests_declaring_it():
    code, out, err = cli("diff", "tr(X) / n", "--wrt", "X")
    assert code == 2 and "--let n=scalar" in err
    check_derivative("tr(X) / n", "X", {"n": "scalar"})
    with pytest.raises(matcalc.ShapeError) as info:     # a declared vector: no such hint
        matcalc.diff("tr(X) / n", wrt="X", symbols={"n": "vector"})
    assert "--let" not in str(info.value) and "./" in str(info.value)


def test_non_integer_matrix_power_is_the_principal_power():
    """S^(1/2) is sqrtm(S) (CONTRACT §5.1), not a refusal; a power of a matrix to a
    symbol's power is a ShapeError that says what the exponent may be."""
    assert str(matcalc.parse("S^(1/2)")) == "sqrtm(S)"
    check_derivative("tr(S^(1/2))", "S", {"S": "spd"})
    with pytest.raises(matcalc.ShapeError) as info:
        matcalc.diff("tr(S^p)", wrt="S", symbols={"p": "scalar"})
    msg = str(info.value)
    assert "number exponent" in msg and "X^(1/3)" in msg
    assert "elementwise" in msg and "write .^" not in msg


# ---------------------------------------------------------------------------- zeros and ones

ONES_ZEROS = [
    ("x^T ones(n)", "x", None),
    ("ones(n)^T x + ones(3)^T y", "x", None),
    ("sum((X + ones(m,n)) .^ 2)", "X", {"X": "matrix(m,n)"}),
    ("tr(X^T ones(3,3) X)", "X", None),
    ("||x - ones(n)||^2", "x", None),
    ("sum(exp(X + zeros(3,3)))", "X", None),
    ("a^T (X + zeros(m,n)) b", "X", {"X": "matrix(m,n)"}),
    ("ones(n) + x", "x", None),
    ("ones(2, 3) .* X", "X", None),
    ("x^T zeros(n)", "x", None),
]


@pytest.mark.parametrize("text,wrt,symbols", ONES_ZEROS, ids=[t for t, _, _ in ONES_ZEROS])
def test_ones_zeros_derivatives(text, wrt, symbols):
    d = check_derivative(text, wrt, symbols)
    assert "diag(I(" not in str(d), str(d)


def test_ones_zeros_values():
    assert np.array_equal(matcalc.evaluate("ones(3)", {}), np.ones(3))
    assert np.array_equal(matcalc.evaluate("zeros(2,3)", {}), np.zeros((2, 3)))
    assert np.array_equal(matcalc.evaluate("ones(n, m) + X", {"X": np.eye(2)}), np.eye(2) + 1)
    assert matcalc.evaluate("ones(4)^T x", {"x": np.arange(4.0)}) == 6.0
    v = matcalc.evaluate("x + zeros(n)", {"x": np.arange(3.0)}, symbols={"x": "vector(n)"})
    assert np.array_equal(v, np.arange(3.0))
    with pytest.raises(matcalc.ShapeError):
        matcalc.evaluate("x + ones(4)", {"x": np.arange(3.0)})
    for bad in ("ones()", "ones(1,2,3)", "zeros(0)", "ones(x + 1)", "zeros(1.5)"):
        with pytest.raises(matcalc.ParseError):
            matcalc.parse(bad)


def test_ones_zeros_print_and_read_back():
    for text in ("ones(n)", "ones(m,n)", "zeros(n)", "zeros(m,n)", "3 ones(n)", "ones(1,n)"):
        e = matcalc.parse(text)
        assert str(e) == text.replace("ones(1,n)", "ones(1,n)")
        assert str(matcalc.parse(str(e))) == str(e)
    assert matcalc.parse("ones(m,n)").latex() == "\\mathbf{1}_{m\\times n}"
    assert matcalc.parse("zeros(m,n)").latex() == "\\mathbf{0}_{m\\times n}"
    assert matcalc.parse("zeros(n)").latex() == "\\mathbf{0}_{n}"


ZERO_DERIVATIVES = [
    ("A", "x", None), ("A", "X", None), ("tr(A)", "X", None), ("a^T b", "x", None),
    ("A x", "t", {"t": "scalar"}), ("A X", "B", None), ("x^T A x + c", "X", None),
    ("tr(A)", "t", {"t": "scalar"}), ("kron(A, B)", "X", None),
]


@pytest.mark.parametrize("text,wrt,symbols", ZERO_DERIVATIVES, ids=[f"{t} d{w}" for t, w, _ in ZERO_DERIVATIVES])
def test_zero_derivative_prints_with_its_shape(text, wrt, symbols):
    d = quiet_diff(text, wrt=wrt, symbols=symbols)
    vals = draw(d.symbols, np.random.default_rng(1))
    z = np.asarray(d.evaluate(vals))
    assert not np.any(z)
    if d.shape == E.SCALAR:
        assert str(d) == "0"
    else:
        assert "zeros(" in str(d) and str(d) != "0"
    back = np.asarray(matcalc.evaluate(str(d), vals, symbols=d.symbols))
    assert back.shape == z.shape and not np.any(back)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check_derivative(text, wrt, symbols)


def test_zero_scalar_stays_0():
    d = matcalc.diff("tr(A)", wrt="t", symbols={"t": "scalar"})
    assert str(d) == "0"
    code, out, err = cli("diff", "A", "--wrt", "X")
    assert code == 0 and out.splitlines()[0].startswith("zeros(")


def test_ones_not_diag_identity():
    d = check_derivative("sum(X)", "X")
    assert str(d) == "ones(m,n)"
    d = check_derivative("sum(x)", "x")
    assert str(d) == "ones(n)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        d = check_derivative("||X w - y||^2 + lambda ||w||^2", "w")
    assert "ones(" in str(d) and "diag(I(" not in str(d)


@pytest.mark.parametrize("target", ["jax", "torch"])
def test_ones_zeros_codegen_source(target):
    """The lowering of ones/zeros for every backend (the source at least compiles where
    the package is missing; test_ones_zeros_codegen runs it where it is installed)."""
    d = matcalc.diff("x^T ones(n) + ||x - ones(n)||^2 + sum(zeros(n,n) + x x^T)", wrt="x")
    src = d.to_code(target=target)
    compile(src, f"<{target}>", "exec")
    assert "ones" in src


@pytest.mark.parametrize("target", ["numpy", "jax", "torch"])
def test_ones_zeros_codegen(target):
    if target != "numpy":
        pytest.importorskip(target)
    for text, wrt in (("x^T ones(n) + ||x - ones(n)||^2", "x"), ("sum(X .* ones(m,m)) + tr(X + zeros(m,m))", "X")):
        d = matcalc.diff(text, wrt=wrt)
        f = matcalc.compile(text, wrt=wrt, target=target)
        vals = draw(d.symbols, np.random.default_rng(2), sizes={"m": 3, "n": 3})
        value, grad = f(**vals)
        assert rel_err(np.asarray(value, dtype=float), matcalc.evaluate(text, vals)) < 1e-10
        assert rel_err(np.asarray(grad, dtype=float), d.evaluate(vals)) < 1e-10


def test_ones_zeros_sympy():
    sp = pytest.importorskip("sympy")
    M = sp.matrices.expressions
    from matcalc.interop import from_sympy, to_sympy
    z = to_sympy(matcalc.parse("zeros(m,n)"))[0]
    o = to_sympy(matcalc.parse("ones(m,n)"))[0]
    assert isinstance(z, M.ZeroMatrix) and isinstance(o, M.OneMatrix)
    vals = {"X": np.arange(6.0).reshape(2, 3)}
    back = from_sympy(o + M.MatrixSymbol("X", o.shape[0], o.shape[1]))
    assert rel_err(matcalc.evaluate(back, vals), vals["X"] + 1) < 1e-12



def test_ones_zeros_latex_renders():
    kr = katex_or_skip()
    texs = [matcalc.parse(t).latex() for t in ("ones(n)", "ones(m,n)", "zeros(n)", "zeros(m,n)",
                                               "3 ones(n)", "ones(1,n)", "zeros(1,n)", "x^T ones(n)")]
    texs += [quiet_diff(t, wrt=w).latex() for t, w, _ in ZERO_DERIVATIVES[:4]]
    texs += [quiet_diff("sum(X)", wrt="X").latex(), quiet_diff("x^T A x + c", wrt="x").latex()]
    k = kr.Katex(texs)
    bad = k.problems(texs)
    assert not bad, bad


@pytest.mark.parametrize("text,wrt", [("x^T ones(n)", "x"), ("sum(x^T)", "x"), ("ones(n)^T x", "x"),
                                      ("sum(X) + ones(m)^T X ones(n)", "X")])
def test_steps_of_ones(text, wrt):
    """The steps of a sum of a row (sum(dx^T), which ones(n) brings) end, and hold."""
    from matcalc.steps import check_steps
    d = check_derivative(text, wrt)
    assert check_steps(d) < 1e-9
    code, out, err = cli("diff", text, "--wrt", wrt, "--steps")
    assert code == 0, err


def test_codegen_cli_prints_the_note_plainly():
    code, out, err = cli("codegen", "x^T A x + c", "--wrt", "x")
    assert code == 0 and "def f_and_grad" in out
    assert err.startswith("note: ") and "--let c=scalar" in err and "Warning" not in err


def test_lookalike_letters_are_named():
    with pytest.raises(matcalc.ParseError) as info:
        matcalc.parse("tr(\u0425^T A X)")                      # a Cyrillic Х in the expression
    assert "looks like the Latin X" in str(info.value) and info.value.position == 3
    with pytest.raises(matcalc.MatcalcError, match="did you mean A"):
        matcalc.diff("tr(X^T A X)", wrt="X", symbols={"\u0391": "symmetric"})   # a Greek Α


@pytest.mark.parametrize("text", ["1^T exp(x)", "1^T x", "(1)^T A x", "2^T x"])
def test_a_transposed_number_is_not_read_as_a_scalar(text):
    """1^T exp(x) was read as the scalar 1 times exp(x) (Jacobian diag(exp(x))), where the
    writer meant the all-ones vector: a ParseError that names ones(n), with a caret."""
    with pytest.raises(matcalc.ParseError, match=r"ones\(n\)\^T") as err:
        matcalc.diff(text, wrt="x")
    start, end = err.value.span
    assert start <= text.index("^T") < end           # the caret is under the number's ^T


def test_the_ones_vector_spelled_right_gives_the_gradient():
    d = check_derivative("vector(1)^T exp(x)", "x")
    assert "exp(x)" in str(d)
    d = check_derivative("ones(n)^T exp(x)", "x")
    assert "exp(x)" in str(d)
