"""The command line (CONTRACT §4): `python -m matcalc …` in a subprocess."""
import os
import subprocess
import sys

import numpy as np
import pytest

import matcalc
from helpers import check_derivative, draw, rel_err

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args, timeout=30):
    p = subprocess.run([sys.executable, "-m", "matcalc", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def first_line(out):
    return out.splitlines()[0]


def same_value(text, d, rng_seed=0):
    """The CLI's text read back evaluates like the API's (numerically checked) answer."""
    vals = draw(d.symbols, np.random.default_rng(rng_seed))
    got = matcalc.evaluate(text, vals, symbols=d.symbols)
    want = d.evaluate(vals)
    assert np.shape(got) == np.shape(want) or np.size(got) == np.size(want)
    assert rel_err(np.reshape(got, np.shape(want)), want) < 1e-9


@pytest.mark.parametrize("expr,wrt,lets,symbols", [
    ("tr(X^T A X)", "X", [], None),
    ("x^T A x", "x", ["A=symmetric"], {"A": "symmetric"}),
    ("x^T A x + c", "x", ["A=symmetric", "c=scalar"], {"A": "symmetric", "c": "scalar"}),
    ("logdet(X) + tr(X^-1 S)", "X", [], None),
    ("||A x - b||^2", "x", [], None),
    ("logdet(S) + (x - mu)^T S^-1 (x - mu)", "S", ["S=spd"], {"S": "spd"}),
    ("(A + t B)^-1", "t", ["t=scalar"], {"t": "scalar"}),
    ("a^T X b", "X", ["X=matrix(3,5)"], {"X": "matrix(3,5)"}),
    ("sum(log(1 + exp(-y .* (A w))))", "w", [], None),
])
def test_first_line_reads_back_like_the_api(expr, wrt, lets, symbols):
    d = check_derivative(expr, wrt, symbols=symbols, trials=1)
    args = ["diff", expr, "--wrt", wrt]
    for let in lets:
        args += ["--let", let]
    code, out, err = cli(*args)
    assert code == 0, err
    assert "Traceback" not in err
    line = first_line(out)
    matcalc.parse(line, symbols=d.symbols)
    same_value(line, d)


def test_canonical_cli_output():
    code, out, _ = cli("diff", "tr(X^T A X)", "--wrt", "X")
    assert code == 0 and first_line(out) == "(A + A^T) X"
    code, out, _ = cli("diff", "x^T A x", "--wrt", "x", "--let", "A=symmetric")
    assert code == 0 and first_line(out) == "2 A x"


def test_steps():
    d = check_derivative("logdet(X) + tr(X^-1 S)", "X", trials=1)
    code, out, err = cli("diff", "logdet(X) + tr(X^-1 S)", "--wrt", "X", "--steps")
    assert code == 0, err
    same_value(first_line(out), d)
    for rule in ("d-inv", "d-logdet"):
        assert rule in out
    assert len(out.splitlines()) >= 4


def test_latex():
    check_derivative("tr(X^T A X)", "X", trials=1)
    code, out, err = cli("diff", "tr(X^T A X)", "--wrt", "X", "--latex")
    assert code == 0, err
    assert "\\top" in out
    code, out, err = cli("diff", "tr(A X) tr(X)", "--wrt", "X", "--latex")
    assert code == 0, err
    assert "\\operatorname{tr}" in out or "\\mathrm{tr}" in out or "\\text{tr}" in out


@pytest.mark.parametrize("expr,wrt", [("tr(A X B)", "X"), ("x^T A x", "x"), ("a^T X b", "X")])
def test_layout_numerator(expr, wrt):
    d = check_derivative(expr, wrt, layout="numerator", trials=1)
    g = check_derivative(expr, wrt, trials=1)
    code, out, err = cli("diff", expr, "--wrt", wrt, "--layout", "numerator")
    assert code == 0, err
    vals = draw(g.symbols, np.random.default_rng(5))
    got = np.asarray(matcalc.evaluate(first_line(out), vals, symbols=d.symbols))
    G = np.asarray(g.evaluate(vals))
    # numerator layout is the transpose of the gradient: a row for a vector
    want = G.reshape(1, -1) if G.ndim == 1 else G.T
    assert got.shape == want.shape
    assert rel_err(got, want) < 1e-9


def test_symmetric_cookbook_option():
    d = check_derivative("logdet(X)", "X", symbols={"X": "spd"}, symmetric="cookbook", trials=1)
    code, out, err = cli("diff", "logdet(X)", "--wrt", "X", "--let", "X=spd", "--symmetric", "cookbook")
    assert code == 0, err
    same_value(first_line(out), d)


def test_check():
    code, out, err = cli("diff", "tr(X^T A X)", "--wrt", "X", "--check")
    assert code == 0, err
    assert "relative error" in out
    assert "ok" in out.lower()


def test_hessian_command():
    code, out, err = cli("hessian", "x^T A x", "--wrt", "x")
    assert "Traceback" not in err
    if code == 2:
        assert "Unsupported" in err
        return
    assert code == 0, err
    vals = draw({"x": "vector(3)", "A": "matrix(3,3)"}, np.random.default_rng(0))
    H = matcalc.evaluate(first_line(out), vals)
    assert rel_err(H, vals["A"] + vals["A"].T) < 1e-12


ERRORS = [
    (["diff", "tr(X^T A X", "--wrt", "X"], "ParseError"),
    (["diff", "x^T A x)", "--wrt", "x"], "ParseError"),
    (["diff", "X + * Y", "--wrt", "X"], "ParseError"),
    (["diff", "tr(A, B)", "--wrt", "A"], "ParseError"),
    (["diff", "A x + x", "--wrt", "x", "--let", "x=vector(3)", "--let", "A=matrix(2,3)"], "ShapeError"),
    (["diff", "x^T A x", "--wrt", "x", "--let", "A=matrix(3,4)"], "ShapeError"),
    (["diff", "a^T eigvec_max(S)", "--wrt", "S", "--let", "S=symmetric"], "UnsupportedError"),
    (["diff", "x\x07 + y", "--wrt", "x"], "ParseError"),
]


@pytest.mark.parametrize("args,kind", ERRORS, ids=[a[1] for a, _ in ERRORS])
def test_errors_exit_2_with_a_caret(args, kind):
    code, out, err = cli(*args)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert kind in err
    lines = err.rstrip("\n").splitlines()
    assert lines[-1].strip() and set(lines[-1].strip()) == {"^"}, err
    # the caret sits under the offending text: the line above is the input
    caret_col = len(lines[-1]) - len(lines[-1].lstrip())
    assert caret_col < len(lines[-2]) + 1


@pytest.mark.parametrize("args", [
    ["diff", "x^T x", "--wrt", "2"],
    ["diff", "x^T x", "--wrt", "x", "--let", "x=blob"],
    ["diff", "x^T x", "--wrt", "x", "--let", "A"],
    ["diff", "x^T x", "--wrt", "x", "--layout", "bogus"],
    ["diff", "x^T x"],
    ["diff", "", "--wrt", "x"],
])
def test_bad_input_exits_2_without_traceback(args):
    code, out, err = cli(*args)
    assert code == 2, (code, err[-500:])
    assert "Traceback" not in err
    assert err.strip()


@pytest.mark.parametrize("args", [
    ["diff", " ".join(["x^T x"] * 3000), "--wrt", "x"],
    ["diff", "10^5000 a^T x", "--wrt", "x"],
])
def test_extreme_input_answers_or_exits_2(args):
    """An answer (exit 0) or an input error (exit 2); never an internal error (3)."""
    code, out, err = cli(*args)
    assert code in (0, 2), (code, err[-500:])
    assert "Traceback" not in err
    if code == 0:
        assert out.strip()
    else:
        assert err.strip()


def test_huge_coefficient_answers_or_exits_2():
    code, out, err = cli("diff", "1e299^20 a^T x", "--wrt", "x")
    assert "Traceback" not in err
    assert code in (0, 2), (code, err)
    if code == 0:
        assert first_line(out) == "1e299^20 a"


def test_zero_derivative_says_so():
    code, out, err = cli("diff", "tr(A)", "--wrt", "X")
    assert code == 0, err
    symbols = matcalc.diff("tr(A)", wrt="X").symbols
    vals = draw(symbols, np.random.default_rng(0), sizes={"m": 3, "p": 4})
    back = np.asarray(matcalc.evaluate(first_line(out), vals, symbols=symbols))
    assert back.shape == (3, 4) and not np.any(back)       # zeros(m,p), not a scalar 0
    assert "does not depend on X" in out


def test_diff_imports_neither_numpy_nor_sympy():
    script = (
        "import sys, io, contextlib\n"
        "from matcalc import cli\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    rc = cli.main(['diff', 'logdet(X) + tr(X^-1 S)', '--wrt', 'X', '--steps', '--latex'])\n"
        "    rc2 = cli.main(['diff', 'x^T A x', '--wrt', 'x', '--let', 'A=symmetric'])\n"
        "assert rc == 0 and rc2 == 0, (rc, rc2)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('numpy', 'sympy')]\n"
        "print('LOADED', bad)\n"
    )
    p = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "LOADED []" in p.stdout, p.stdout


def test_diff_imports_neither_numpy_nor_sympy_importtime():
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "matcalc", "diff", "tr(X^T A X)", "--wrt", "X"],
                       cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0
    imported = [line.split("|")[-1].strip() for line in p.stderr.splitlines() if "|" in line]
    assert not [m for m in imported if m.split(".")[0] in ("numpy", "sympy")]
    assert any(m.startswith("matcalc") for m in imported)
