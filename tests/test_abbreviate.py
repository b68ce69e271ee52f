"""Abbreviated answers (issue 14, part 1): a long repeated subexpression named once,
"2 W B^T X A … where W = (R + B^T X B)^-1", in the CLI, LaTeX, the notebook and --json;
and the where form read back by the language.

Every derivative here is checked against finite differences (helpers.check_derivative),
and every abbreviated answer is read back (text and LaTeX) and evaluated against
d.evaluate at the same values."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import matcalc
from matcalc import abbreviate as A
from helpers import check_derivative, check_hessian, draw, fitting_sizes, katex_or_skip, rel_err

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (expr, wrt, symbols, kind): answers that repeat a long subexpression
EXAMPLES = [
    # the Riccati map's gradient repeats (R + B^T X B)^-1
    ("tr(A^T X B (R + B^T X B)^-1 B^T X A)", "X", None, "diff"),
    # the Riccati map itself: its Jacobian repeats B (R + B^T X B)^-1 B^T X A
    ("A^T X A - A^T X B (R + B^T X B)^-1 B^T X A", "X", None, "diff"),
    # attention: the softmax's exp(K q), four times
    ("a^T V^T (exp(K q) / sum(exp(K q)))", "q", None, "diff"),
    # a two-layer network: sigmoid(W1 x + b1) three times
    ("norm(W2 sigmoid(W1 x + b1) + b2 - y)^2", "W1", None, "diff"),
    ("norm(W2 sigmoid(W1 x + b1) + b2 - y)^2", "b1", None, "diff"),
    ("norm(W2 sigmoid(W1 x + b1) + b2 - y)^2", "x", None, "diff"),
    # a Hessian (log(1 + …): log(sum(exp(A x)))'s is short now, written with softmax)
    ("log(1 + sum(exp(A x)))", "x", None, "hessian"),
]


def derive(expr, wrt, symbols, kind):
    if kind == "hessian":
        return check_hessian(expr, wrt, symbols=symbols)
    return check_derivative(expr, wrt, symbols=symbols)


def values_for(d, seed=0):
    rng = np.random.default_rng(seed)
    return draw(d.symbols, rng, sizes=fitting_sizes(d, rng))


def _latex_reads_back(d):
    """Whether d.latex() itself reads back (the LaTeX input reads \\sigma as a symbol, so
    the LaTeX of a sigmoid does not)."""
    try:
        vals = values_for(d)
        return rel_err(matcalc.evaluate(d.latex(), vals, symbols=d.symbols), d.evaluate(vals)) < 1e-9
    except matcalc.MatcalcError:
        return False


def assert_reads_back(d, text, seed=0, latex=False):
    """text (an abbreviated form of d) parses and evaluates to d's value; LaTeX where the
    flat LaTeX reads back."""
    if latex and not _latex_reads_back(d):
        return
    for s in range(seed, seed + 2):
        vals = values_for(d, s)
        want = np.asarray(d.evaluate(vals), dtype=float)
        got = np.asarray(matcalc.evaluate(text, vals, symbols=d.symbols), dtype=float)
        assert got.shape == want.shape, f"{text!r}: shape {got.shape}, d.evaluate {want.shape}"
        assert rel_err(got, want) < 1e-9, f"{'LaTeX ' if latex else ''}{text!r} differs from {str(d)!r}"


@pytest.mark.parametrize("expr,wrt,symbols,kind", EXAMPLES, ids=[f"{e[0]}-d{e[1]}" for e in EXAMPLES])
def test_examples_abbreviate_and_read_back(expr, wrt, symbols, kind):
    d = derive(expr, wrt, symbols, kind)
    ab = A.of_derivative(d)
    assert ab, f"{d} is not abbreviated"
    flat = str(d)
    short = ab.text()
    assert " where " in short and len(short) <= len(flat) - A.SAVED
    assert str(d) == flat and " where " not in flat                 # str(d) stays flat
    assert "where" not in d.latex()                                 # so does d.latex()
    assert_reads_back(d, short)
    assert_reads_back(d, ab.text(ascii=True))
    assert_reads_back(d, ab.latex(), latex=True)
    assert_reads_back(d, d.latex(abbreviate=True), latex=True)
    # the names are fresh: no symbol, no size name, no two alike
    names = [s.name for s, _ in ab.definitions]
    assert len(set(names)) == len(names)
    assert not set(names) & A.taken_names(d.typed_symbols)


def test_riccati_names_the_inverse_once():
    d = check_derivative("tr(A^T X B (R + B^T X B)^-1 B^T X A)", "X")
    text = A.of_derivative(d).text()
    body, _, defs = text.partition(" where ")
    assert text.count("(R + B^T X B)^-1") == 1 and "R + B^T X B" not in body
    assert defs.startswith("W = ") and body.count("W") == 3


def test_attention_names_exp_Kq():
    d = check_derivative("a^T V^T (exp(K q) / sum(exp(K q)))", "q")
    text = A.of_derivative(d).text()
    assert text.endswith(" where w = exp(K q)") and text.count("exp(") == 1


def test_names_avoid_the_users_symbols_and_sizes():
    # the user's symbols take the first names of both pools: the abbreviations take others
    expr = "tr(W V U Q (R + B^T X B)^-1 w v^T (R + B^T X B)^-1 u u^T)"
    square = {n: "matrix(n,n)" for n in ("W", "V", "U", "Q", "R", "B", "X")}
    d = check_derivative(expr, "X", symbols=dict(square, w="vector(n)", v="vector(n)", u="vector(n)"))
    ab = A.abbreviate(d.expr, A.taken_names(d.typed_symbols))
    assert ab
    names = {s.name for s, _ in ab.definitions}
    assert not names & set(d.symbols) and not names & {"n"}
    assert_reads_back(d, ab.text())


def test_size_names_are_taken():
    d = check_derivative("tr(A^T X B (R + B^T X B)^-1 B^T X A)", "X",
                         symbols={"X": "matrix(W,W)", "B": "matrix(W,V)", "A": "matrix(W,U)",
                                  "R": "matrix(V,V)"}, sizes={"W": 4, "V": 3, "U": 2})
    assert {"W", "V", "U"} <= A.taken_names(d.typed_symbols)
    ab = A.of_derivative(d)
    assert ab and not {s.name for s, _ in ab.definitions} & {"W", "V", "U"}
    assert_reads_back(d, ab.text())


def test_nested_abbreviations_read_back():
    # (A + B X)^-1 C^T (A + B X)^-1 three times: W = (A + B X)^-1 inside V = W C^T W
    text = ("(A + B X)^-1 C^T (A + B X)^-1 + D (A + B X)^-1 C^T (A + B X)^-1 E (A + B X)^-1 C^T "
            "(A + B X)^-1")
    decls = {n: "matrix(n,n)" for n in "ABCDEX"}
    tree = matcalc.parse(text, decls)
    ab = A.abbreviate(tree, {"A", "B", "C", "D", "E", "X", "n"})
    assert len(ab.definitions) >= 2
    defined, nested = set(), False
    for s, e in ab.definitions:                     # each uses only the names before it
        used = set(matcalc.expr.symbols_of(e)) & {x.name for x, _ in ab.definitions}
        assert used <= defined, f"{s.name} = {e} uses {used - defined} before it is defined"
        nested |= bool(used)
        defined.add(s.name)
    assert nested, ab.text()
    rng = np.random.default_rng(0)
    vals = {n: rng.standard_normal((3, 3)) + 3 * np.eye(3) for n in "ABCDEX"}
    want = matcalc.evaluate(text, vals, symbols=decls)
    for form in (ab.text(), ab.latex()):
        assert rel_err(matcalc.evaluate(form, vals, symbols=decls), want) < 1e-10, form


def _corpus():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import test_cookbook
    import test_everyday
    out = []
    for p in test_everyday.PROBLEMS + test_cookbook.PROBLEMS:
        if p.unsupported:
            continue
        for w in p.grads:
            out.append((p, w))
    return out


def test_every_abbreviation_of_the_suites_reads_back():
    """Every answer of the everyday and cookbook suites, abbreviated with small thresholds
    (so that most of them get names) and with the printed rule, evaluates like d."""
    from _fd_everyday import make_values
    named = 0
    for p, w in _corpus():
        try:
            d = matcalc.diff(p.expr, w, symbols=p.symbols, symmetric=p.symmetric)
        except matcalc.UnsupportedError:
            continue
        taken = A.taken_names(d.typed_symbols)
        forms = [A.abbreviate(d.expr, taken, min_length=3, min_saving=1)]
        if A.of_derivative(d):
            forms.append(A.of_derivative(d))
        for ab in forms:
            if not ab:
                continue
            named += 1
            assert not {s.name for s, _ in ab.definitions} & taken
            vals = make_values(p, d.symbols, np.random.default_rng(1))
            want = np.asarray(d.evaluate(vals), dtype=float)
            for text in (ab.text(), ab.latex()) if _latex_reads_back(d) else (ab.text(),):
                got = np.asarray(matcalc.evaluate(text, vals, symbols=d.symbols), dtype=float)
                assert got.shape == want.shape and rel_err(got, want) < 1e-8, \
                    f"{p.expr} d/d{w}: {text!r} is not {str(d)!r}"
    assert named >= 30


def test_short_answers_stay_flat():
    for expr, wrt in [("tr(X^T A X)", "X"), ("x^T A x", "x"), ("log(det(X))", "X"),
                      ("norm(W2 tanh(W1 x + b1) + b2 - y)^2", "W1")]:
        d = check_derivative(expr, wrt)
        assert A.of_derivative(d) is None
        assert d.latex(abbreviate=True) == d.latex()


def test_worth_it_rule():
    assert A.worth_it("x" * 100, "x" * 84)          # 16 characters, 16 %
    assert not A.worth_it("x" * 100, "x" * 86)      # 14 characters
    assert not A.worth_it("x" * 200, "x" * 175)     # 25 characters but 12.5 %


# ---------------------------------------------------------------------------- the notebook, JSON


def test_notebook_shows_the_abbreviated_form():
    d = check_derivative("tr(A^T X B (R + B^T X B)^-1 B^T X A)", "X")
    r = d._repr_latex_()
    assert r == "$" + d.latex(abbreviate=True) + "$" and "\\text{where }" in r
    assert "where" not in d.latex()


def cli(*args):
    p = subprocess.run([sys.executable, "-m", "matcalc", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, PYTHONIOENCODING="utf-8"))
    return p.returncode, p.stdout, p.stderr


def test_cli_abbreviates_and_flat_prints_str():
    expr = "tr(A^T X B (R + B^T X B)^-1 B^T X A)"
    d = check_derivative(expr, "X")
    code, out, err = cli("diff", expr, "--wrt", "X")
    assert code == 0, err
    assert out.strip() == A.of_derivative(d).text()
    assert_reads_back(d, out.strip())
    code, out, _ = cli("diff", expr, "--wrt", "X", "--flat")
    assert code == 0 and out.strip() == str(d)
    code, out, _ = cli("diff", expr, "--wrt", "X", "--latex")
    assert code == 0 and out.strip() == d.latex(abbreviate=True)
    assert_reads_back(d, out.strip(), latex=True)
    code, out, _ = cli("diff", expr, "--wrt", "X", "--latex", "--flat")
    assert code == 0 and out.strip() == d.latex()


def test_cli_short_answer_is_unchanged():
    code, out, _ = cli("diff", "tr(X^T A X)", "--wrt", "X")
    assert code == 0 and out.strip() == str(matcalc.diff("tr(X^T A X)", "X"))


def test_json_has_the_abbreviated_form_beside_the_flat_one():
    expr = "a^T V^T (exp(K q) / sum(exp(K q)))"
    d = check_derivative(expr, "q")
    code, out, err = cli("diff", expr, "--wrt", "q", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["derivative"] == str(d) and doc["latex"] == d.latex()
    assert doc["abbreviated"] == A.of_derivative(d).text() != doc["derivative"]
    assert doc["abbreviated_latex"] == d.latex(abbreviate=True)
    assert_reads_back(d, doc["abbreviated"])
    code, out, _ = cli("diff", "tr(X^T A X)", "--wrt", "X", "--json")
    doc = json.loads(out)
    assert doc["abbreviated"] == doc["derivative"] and doc["abbreviated_latex"] == doc["latex"]


def test_cli_ascii_output_reads_back():
    expr = "A^T X A - A^T X B (R + B^T X B)^-1 B^T X A"
    d = check_derivative(expr, "X")
    p = subprocess.run([sys.executable, "-m", "matcalc", "diff", expr, "--wrt", "X"], cwd=ROOT,
                       capture_output=True, timeout=60, env=dict(os.environ, PYTHONIOENCODING="ascii"))
    text = p.stdout.decode("ascii").strip()
    assert p.returncode == 0 and " where " in text and "⊗" not in text
    assert_reads_back(d, text)


def test_abbreviated_latex_renders_in_katex():
    runner = katex_or_skip()
    texs = []
    for expr, wrt, symbols, kind in EXAMPLES:
        fn = matcalc.hessian if kind == "hessian" else matcalc.diff
        d = fn(expr, wrt, symbols=symbols)
        texs.append(d.latex(abbreviate=True))
        texs.append(A.abbreviate(d.expr, A.taken_names(d.typed_symbols), min_length=3, min_saving=1).latex())
    bad = runner.Katex(texs).problems(texs)
    assert not bad, bad


# ---------------------------------------------------------------------------- reading where


def test_where_substitutes():
    t = matcalc.parse("2 W B^T X A where W = (R + B^T X B)^-1")
    assert t == matcalc.parse("2 (R + B^T X B)^-1 B^T X A")
    # definitions may use each other, in either order
    want = matcalc.parse("(A + B) C (A + B)")
    assert matcalc.parse("V W where W = A + B, V = W C") == want
    assert matcalc.parse("V W where V = W C, W = A + B") == want
    # the LaTeX form
    assert matcalc.parse(r"2 W B^\top X A \quad \text{where } W = \left(R + B^\top X B\right)^{-1}") == \
        matcalc.parse("2 (R + B^T X B)^-1 B^T X A")
    assert matcalc.parse(r"V W \text{ where } W = A + B,\; V = W C") == want
    # whereas, nowhere: names, not the keyword
    assert str(matcalc.parse("whereas + nowhere")) == "whereas + nowhere"


def test_where_evaluates_and_differentiates():
    text = "x^T W x where W = (A + B^T B)^-1"
    d = check_derivative(text, "x")
    flat = check_derivative("x^T (A + B^T B)^-1 x", "x")
    assert str(d) == str(flat)
    d = check_derivative("tr(W) + sum(v) where W = X^T X, v = W a", "X")


@pytest.mark.parametrize("text,message,caret", [
    ("X where W = A, W = B", "W is defined twice", "W = B"),
    ("W where W = W A", "defines W through itself (W → W)", "W = W"),
    ("W where W = V, V = W A", "through itself (W → V → W)", "W = V"),
    ("X where W = A B", "W is defined in the where clause but not used", "W = A"),
    ("A w where W = B", "did you mean w?", "W = B"),
    ("X = A", "an equation is not an expression", "= A"),
    ("X where W = A where V = B", "comes once, at the end", "where V"),
    ("(X where W = A)", "comes once, at the end", "where W"),
    ("X where W", "expected '='", ""),
    ("X where W = ", "expected an operand", ""),
])
def test_where_errors_have_a_caret(text, message, caret):
    with pytest.raises(matcalc.ParseError) as e:
        matcalc.parse(text)
    assert message in e.value.message
    start, end = e.value.span
    assert text[start:].startswith(caret.split(" ")[0]) or start >= len(text.rstrip())
    assert "^" in e.value.render()


def test_where_cannot_define_the_variable():
    with pytest.raises(matcalc.ParseError) as e:
        matcalc.diff("x^T A x where x = B y", "x")
    assert "x is the variable" in e.value.message and e.value.span[0] == 14
    code, _, err = cli("diff", "x^T A x where x = B y", "--wrt", "x")
    assert code == 2 and "^" in err and "Traceback" not in err


def test_where_that_writes_out_too_large_is_refused():
    # each name doubles the one before: 2^40 nodes written out
    defs = ", ".join(f"W{i} = W{i + 1} W{i + 1}" for i in range(40))
    with pytest.raises(matcalc.ParseError) as e:
        matcalc.parse(f"tr(W0) where {defs}, W40 = A")
    assert "writes out to more than" in e.value.message


def test_where_nesting_too_deep_is_refused():
    defs = ", ".join(f"W{i} = (W{i + 1})^T" for i in range(300))
    with pytest.raises(matcalc.ParseError):
        matcalc.parse(f"W0 where {defs}, W300 = A")


def test_steps_still_abbreviate_with_the_shared_picker():
    d = check_derivative("norm(W2 tanh(W1 x + b1) + b2 - y)^2", "W1")
    lets = [s for s in d.steps if s.quantity == "let"]
    assert lets and all(s.lhs not in d.symbols for s in lets)
    from matcalc.steps import check_steps
    assert check_steps(d) < 1e-6
