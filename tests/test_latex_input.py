"""LaTeX input (CONTRACT §5.4): a formula pasted from a paper reads like its plain twin,
its derivatives are right (finite differences), and its errors point into the LaTeX."""
import os
import subprocess
import sys

import numpy as np
import pytest

import matcalc
from matcalc import expr as E
from matcalc import shapes as S
from helpers import check_derivative, draw, rel_err

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def kinds(text, symbols=None):
    tree = matcalc.parse(text, symbols)
    return {n: S.kind_string(s) for n, s in E.symbols_of(tree).items()}


# (LaTeX, its plain twin, declarations)
TWINS = [
    (r"\operatorname{tr}(X^\top A X)", "tr(X^T A X)", None),
    (r"\mathrm{tr}(X^{\top} A X)", "tr(X^T A X)", None),
    (r"\operatorname{Tr}(X^{T} A X)", "tr(X^T A X)", None),
    (r"\operatorname{tr} X^T A X", "tr(X^T A X)", None),
    (r"\det X", "det(X)", None),
    (r"\det(X^{-1})", "det(X^-1)", None),
    (r"\log\det X", "logdet(X)", None),
    (r"\log|X|", "logdet(X)", None),
    (r"\exp(\mathbf{x})^\top \mathbf{a}", "exp(x)^T a", None),
    (r"\det A \det B", "det(A) det(B)", None),
    (r"\sin x \cos y", "sin(x) cos(y)", {"x": "scalar", "y": "scalar"}),
    (r"\tanh(W\mathbf{x})^\top \mathbf{c}", "tanh(W x)^T c", None),
    (r"\ln(1 + x^\top x)", "log(1 + x^T x)", None),
    (r"\frac{1}{1 + e^{-\mathbf{w}^\top \mathbf{x}}}", "1 / (1 + exp(-w^T x))", None),
    (r"\log(1 + e^{\mathbf{x}})^\top \mathbf{e} + \mathbf{e}^\top x + e_1^2",
     "log(1 + exp(x))^T e + e^T x + e_1^2", {"e_1": "scalar"}),
    (r"\sqrt{x^\top x}", "sqrt(x^T x)", None),
    (r"\operatorname{logdet}(X)", "logdet(X)", None),
    (r"\mathrm{vec}(X)^\top \mathbf{c}", "vec(X)^T c", None),
    (r"\operatorname{diag}(\mathbf{x})", "diag(x)", None),
    (r"\operatorname{sum}(X \circ X)", "sum(X .* X)", None),
    (r"X^{-1}", "X^-1", None),
    (r"X^{-\top} A", "X^-T A", None),
    (r"X^{-T} A", "X^-T A", None),
    (r"X^\intercal A", "X^T A", None),
    (r"X^{\mathsf{T}} A", "X^T A", None),
    (r"\mathbf{X}^TAX", "X^T A X", None),
    (r"\frac{1}{2} x^\top x", "1/2 x^T x", None),
    (r"\frac12 x^\top x", "1/2 x^T x", None),
    (r"\frac{x^\top A x}{x^\top x}", "(x^T A x) / (x^T x)", None),
    (r"\left( A + B \right) X", "(A + B) X", None),
    (r"\left[ A + B \right] X", "(A + B) X", None),
    (r"\bigl( A + B \bigr) X", "(A + B) X", None),
    (r"\|\mathbf{x}\|_2^2", "||x||^2", None),
    (r"\|X\|_F^2", "||X||_F^2", None),
    (r"\|X\|_{F}", "||X||_F", None),
    (r"\|X\|_2 + \|X\|", "||X||_2 + ||X||_F", None),
    (r"\lVert \mathbf{x} \rVert", "||x||", None),
    (r"||\mathbf{x}||^2 + |\det X|", "||x||^2 + abs(det(X))", None),
    (r"\norm{\mathbf{x}}_2^2", "||x||^2", None),
    (r"\left\| \mathbf{x} \right\|", "||x||", None),
    (r"\left| X \right| + |A|", "det(X) + det(A)", None),
    (r"A \circ B", "A .* B", None),
    (r"A \odot B", "A .* B", None),
    (r"A \otimes B", "kron(A, B)", None),
    (r"\langle A, X \rangle + \left\langle \mathbf{a}, \mathbf{x} \right\rangle", "tr(A^T X) + a^T x", None),
    (r"X^{\circ 2} \circ A", "X .^ 2 .* A", None),
    (r"A \cdot B", "A B", None),
    (r"A \times B", "A B", None),
    (r"\mathbf{x}^\top \mathbf{A} \mathbf{x}", "x^T A x", None),
    (r"\boldsymbol{\mu}^\top \boldsymbol{\Sigma} \boldsymbol{\mu}", "mu^T Sigma mu", None),
    (r"\bm{x}^\top \bm{x}", "x^T x", None),
    (r"\mu^\top \Sigma \mu", "mu^T Sigma mu", None),
    (r"\alpha \, \mathbf{x}^\top \mathbf{x}", "alpha x^T x", {"alpha": "scalar"}),
    (r"\mathbf{w}_{2}^\top \mathbf{x}_i", "w_2^T x_i", None),
    (r"W_1 \mathbf{x} + \mathbf{b}_1", "W_1 x + b_1", None),
    (r"A\,X\;B\!\quad C \qquad D", "A X B C D", None),
    (r"{(A + B)}^{\top} X", "(A + B)^T X", None),
    (r"\mathbf{x}^\top A \mathbf{x} \cdot \frac{1}{3}", "x^T A x / 3", None),
    (r"X^\top \top", "X", None),
    (r"(\mathbf{x}^\top \mathbf{x})^{-1/2} \mathbf{x}", "(x^T x)^(-1/2) x", None),
    (r"\mathbf{I}_n + X", "I + X", None),
    (r"\operatorname{tr}(A \exp(X))", "tr(A exp(X))", None),
    (r"$x^\top A x$", "x^T A x", None),
    (r"\[ x^\top A x. \]", "x^T A x", None),
    (r"\|A\mathbf{x} - \mathbf{b}\|_2^2", "||A x - b||^2", None),
    (r"\frac{1}{2}\lVert X - U V^\top \rVert_F^2", "1/2 ||X - U V^T||_F^2", None),
    (r"\log\det\boldsymbol{\Sigma} + (\mathbf{x}-\boldsymbol{\mu})^\top \boldsymbol{\Sigma}^{-1}"
     r"(\mathbf{x}-\boldsymbol{\mu})", "logdet(Sigma) + (x - mu)^T Sigma^-1 (x - mu)",
     {"Sigma": "spd"}),
]


@pytest.mark.parametrize("latex,plain,symbols", TWINS, ids=[t[0] for t in TWINS])
def test_latex_evaluates_like_its_plain_twin(latex, plain, symbols):
    want_kinds = kinds(plain, symbols)
    assert kinds(latex, symbols) == want_kinds
    for seed in (0, 1):
        vals = draw(want_kinds, np.random.default_rng(seed), dom="spd")
        got = matcalc.evaluate(latex, vals, symbols=symbols)
        want = matcalc.evaluate(plain, vals, symbols=symbols)
        assert np.shape(got) == np.shape(want)
        assert rel_err(np.asarray(got, float), np.asarray(want, float)) < 1e-12


def test_twins_comparison_can_fail():
    """The other reading of a function without parentheses evaluates differently, so the
    comparison above tells the readings apart: det(A det(B)) = det(A) det(B)^n."""
    vals = draw({"A": "matrix(3,3)", "B": "matrix(3,3)"}, np.random.default_rng(0))
    vals["B"] = vals["B"] + 2 * np.eye(3)
    got = matcalc.evaluate(r"\det A \det B", vals)
    assert rel_err(got, matcalc.evaluate("det(A) det(B)", vals)) < 1e-12
    assert rel_err(got, matcalc.evaluate("det(A det(B))", vals)) > 1e-3


DERIVATIVES = [
    (r"\operatorname{tr}(X^\top A X)", "X", None),
    (r"\log\det\boldsymbol{\Sigma} + (\mathbf{x}-\boldsymbol{\mu})^\top \boldsymbol{\Sigma}^{-1}"
     r"(\mathbf{x}-\boldsymbol{\mu})", "Sigma", {"Sigma": "spd"}),
    (r"\|A\mathbf{x} - \mathbf{b}\|_2^2", "x", None),
    (r"\frac{1}{2}\lVert X - U V^\top \rVert_F^2", "U", None),
    (r"\frac{1}{2}\lVert X - U V^\top \rVert_F^2", "V", None),
    (r"\mathbf{w}_2^\top \tanh(W_1 \mathbf{x} + \mathbf{b}_1)", "W_1", None),
    (r"\frac{\mathbf{x}^\top A \mathbf{x}}{\mathbf{x}^\top \mathbf{x}}", "x", None),
    (r"\exp(-\frac{1}{2} \mathbf{x}^\top \Sigma^{-1} \mathbf{x})", "x", {"Sigma": "spd"}),
    (r"\det(X^\top X)", "X", None),
    (r"\langle A, X^\top X \rangle", "X", None),
    (r"\log(1 + e^{-\mathbf{w}^\top \mathbf{x}})", "w", None),
    (r"\operatorname{tr}(A \circ X) + \mathbf{a}^\top X \mathbf{c}", "X", None),
]


@pytest.mark.parametrize("latex,wrt,symbols", DERIVATIVES, ids=[d[0] for d in DERIVATIVES])
def test_latex_derivative_matches_finite_differences(latex, wrt, symbols):
    d = check_derivative(latex, wrt, symbols=symbols, dom="spd")
    assert wrt in d.symbols


def test_hessian_of_latex():
    from helpers import check_hessian
    check_hessian(r"\mathbf{x}^\top A \mathbf{x} + \|\mathbf{x}\|^2", "x")


def test_symbols_and_declarations_use_the_translated_names():
    d = matcalc.diff(r"\log\det\boldsymbol{\Sigma} + \boldsymbol{\mu}^\top \Sigma^{-1} \mu",
                     "Sigma", symbols={"Sigma": "spd"})
    assert set(d.symbols) == {"Sigma", "mu"}
    assert d.symbols["Sigma"].startswith("spd")
    d = matcalc.diff(r"\mathbf{w}_{2}^\top \mathbf{x}", "w_2")
    assert set(d.symbols) == {"w_2", "x"}


def test_wrt_and_declarations_may_be_written_in_latex():
    text = r"\log\det\boldsymbol{\Sigma} + \boldsymbol{\mu}^\top \Sigma^{-1} \mu"
    d = matcalc.diff(text, r"\boldsymbol{\Sigma}", symbols={r"\Sigma": "spd"})
    assert d.wrt == "Sigma" and d.symbols["Sigma"].startswith("spd")
    plain = check_derivative(text, "Sigma", symbols={"Sigma": "spd"}, dom="spd")
    assert str(d) == str(plain)
    ds = matcalc.diff(text, r"\mu, \Sigma", symbols={r"\Sigma": "spd"})
    assert [x.wrt for x in ds] == ["mu", "Sigma"]
    with pytest.raises(matcalc.ParseError) as ei:
        matcalc.diff(text, r"\mu + 1")
    assert ei.value.text == r"\mu + 1"
    with pytest.raises(matcalc.ParseError) as ei:
        matcalc.diff(text, r"\mux")
    assert ei.value.text == r"\mux" and "\\mu" in ei.value.message


@pytest.mark.parametrize("target", ["numpy"])
def test_generated_code_of_latex_input_compiles_and_agrees(target):
    """The input text is quoted in the generated module's docstrings: its backslashes
    (\\xi, \\top, \\frac, \\boldsymbol) must not become escapes."""
    import ast
    import warnings
    text = r"\xi^\top \boldsymbol{\Sigma} \mathbf{x} + \frac{1}{2}\|\mathbf{x}\|^2"
    src = matcalc.diff(text, "x").to_code(target)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree = ast.parse(src)
    assert text in ast.get_docstring(tree)
    fn = matcalc.compile(text, "x")
    d = check_derivative(text, "x")
    vals = draw(d.symbols, np.random.default_rng(3))
    f, g = fn(**vals)
    assert rel_err(f, matcalc.evaluate(text, vals)) < 1e-12
    assert rel_err(g, d.evaluate(vals)) < 1e-12


# ---------------------------------------------------------------------------- errors


def caret_under(err, text, fragment):
    """The error's span covers fragment of the LaTeX text (not of the translation)."""
    assert err.text == text
    s, e = err.span
    start = text.rindex(fragment)
    assert s <= start and e >= start + 1 and s < start + len(fragment), (err.span, text[s:e])
    return text[s:e]


@pytest.mark.parametrize("text,fragment,nearest", [
    (r"\opertorname{tr}(X)", r"\opertorname", r"\operatorname"),
    (r"\operatorname{tr}(X) + \Sgma", r"\Sgma", r"\Sigma"),
    (r"\operatorname{tr}(X) + \frak{1}{2}", r"\frak", r"\frac"),
    (r"x^\top \foo x", r"\foo", None),
])
def test_unknown_command_is_a_parse_error_naming_it(text, fragment, nearest):
    with pytest.raises(matcalc.ParseError) as ei:
        matcalc.parse(text)
    assert fragment in ei.value.message
    if nearest:
        assert nearest in ei.value.message
    assert caret_under(ei.value, text, fragment).startswith(fragment)


@pytest.mark.parametrize("text,fragment", [
    (r"\operatorname{tr}(X^\top A X) + )", ")"),
    (r"\left( X + A", r"\left("),
    (r"\frac{1}{2} \mathbf{x}^\top + * x", "*"),
    (r"\sum_i x_i", r"\sum"),
    (r"x^\top A x = 1", "="),
    (r"A \ b", "\\"),
    (r"\mathbf{1}^\top \mathbf{x}", r"\mathbf{1}"),
])
def test_parse_error_points_into_the_latex(text, fragment):
    with pytest.raises(matcalc.ParseError) as ei:
        matcalc.parse(text)
    caret_under(ei.value, text, fragment)


def test_shape_error_points_into_the_latex():
    text = r"\frac{1}{2}\operatorname{tr}(X^\top + \mathbf{x})"
    with pytest.raises(matcalc.ShapeError) as ei:
        matcalc.diff(text, "X")
    assert caret_under(ei.value, text, r"X^\top + \mathbf{x}") == r"X^\top + \mathbf{x}"
    assert r"\mathbf{x}" in ei.value.render()


def test_deep_nesting_is_a_parse_error():
    with pytest.raises(matcalc.ParseError):
        matcalc.parse("{" * 5000 + r"\mathbf{x}" + "}" * 5000)


# ---------------------------------------------------------------------------- the CLI


def cli(*args):
    p = subprocess.run([sys.executable, "-m", "matcalc", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_cli_reads_latex():
    code, out, err = cli("diff", r"\operatorname{tr}(X^\top A X)", "--wrt", "X")
    assert code == 0, err
    d = matcalc.diff("tr(X^T A X)", "X")
    vals = draw(d.symbols, np.random.default_rng(0))
    got = matcalc.evaluate(out.splitlines()[0], vals, symbols=d.symbols)
    assert rel_err(got, d.evaluate(vals)) < 1e-9
    code, out, err = cli("diff", r"\log\det\boldsymbol{\Sigma}", "--wrt", "Sigma", "--let", "Sigma=spd")
    assert code == 0, err
    assert out.splitlines()[0] == "Sigma^-1"       # spd: the symmetric gradient, no transpose
    code, out2, err = cli("diff", r"\log\det\boldsymbol{\Sigma}", "--wrt", r"\Sigma", "--let",
                          r"\Sigma=spd")
    assert code == 0 and out2 == out, err


def test_cli_latex_error_has_a_caret_under_the_latex():
    text = r"\operatorname{tr}(X^\top A X) + \opertorname{tr}(X)"
    code, out, err = cli("diff", text, "--wrt", "X")
    assert code == 2 and "Traceback" not in err
    lines = err.rstrip("\n").splitlines()
    assert "opertorname" in lines[0] and "operatorname" in lines[0]
    assert lines[-2].strip() == text
    col = lines[-1].index("^")
    assert lines[-2][col:].startswith(r"\opertorname")


def test_diff_of_latex_imports_neither_numpy_nor_sympy():
    script = (
        "import sys, io, contextlib\n"
        "from matcalc import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    rc = cli.main(['diff', r'\\operatorname{tr}(X^\\top A X)', '--wrt', 'X'])\n"
        "assert rc == 0, rc\n"
        "print('LOADED', [m for m in sys.modules if m.split('.')[0] in ('numpy', 'sympy', 'scipy')])\n"
    )
    p = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    assert "LOADED []" in p.stdout, p.stdout


def test_plain_text_never_loads_the_translator():
    script = ("import sys, matcalc\nmatcalc.parse('tr(X^T A X)')\n"
              "print('matcalc.latex_input' in sys.modules)\n")
    p = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                       timeout=30)
    assert p.stdout.strip() == "False", p.stderr
