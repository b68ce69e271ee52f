"""The derivation steps: every line a true equation, checked numerically; the student
examples of the issue read as a textbook page; --json and the rule catalogue."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import matcalc
from matcalc import expr as E
from matcalc.steps import Step, check_steps
from helpers import katex_or_skip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFORMANCE = os.path.join(ROOT, "..", "shared", "conformance")


def conformance_cases():
    if not os.path.isdir(CONFORMANCE):
        return []
    sys.path.insert(0, CONFORMANCE)
    dont = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        import cases
    finally:
        sys.dont_write_bytecode = dont
        sys.path.remove(CONFORMANCE)
    return cases.CASES


CASES = conformance_cases()


@pytest.mark.skipif(not CASES, reason="the conformance suite (../shared/conformance) is not beside the checkout")
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_every_step_of_every_conformance_derivation_is_true(case):
    fn = matcalc.hessian if case["kind"] == "hessian" else matcalc.diff
    kw = {"wrt": case["wrt"]}
    if case.get("symbols"):
        kw["symbols"] = case["symbols"]
    if case["layout"] != "gradient":
        kw["layout"] = case["layout"]
    d = fn(case["expr"], **kw)
    err = check_steps(d)
    assert err is not None, "no finite sample point"
    assert err < 1e-6, f"a step of {case['expr']} is off by {err:.2e}:\n{d.steps}"


def test_check_steps_catches_a_wrong_line():
    d = matcalc.diff("tr(X^T A X)", wrt="X")
    s = d.steps[3]
    d.steps[3] = Step(s.lhs, E.Mul((E.Num(1.001), s.rhs)), s.rule, s.quantity)
    assert check_steps(d) > 1e-4


STUDENT = [
    # (expression, wrt, symbols, rules that must be named, the answer)
    ("tr(X^T A X)", "X", None, ["d-trace", "d-product", "d-transpose", "cyclic trace",
                                "first identification theorem"], "(A + A^T) X"),
    ("det(A X B)", "X", {"A": "matrix(n,n)", "X": "matrix(n,n)", "B": "matrix(n,n)"},
     ["d-det", "d|X| = |X| tr(X⁻¹ dX)", "d-product", "cyclic trace"], "det(A X B) X^-T"),
    ("logdet(Sigma) + tr(Sigma^-1 S)", "Sigma", {"Sigma": "spd", "S": "symmetric"},
     ["d-logdet", "d-inv: d(X⁻¹) = −X⁻¹ dX X⁻¹", "sym(G)"], "Sigma^-1 - Sigma^-1 S Sigma^-1"),
    ("sum(log(1 + exp(-y .* (A w))))", "w", None,
     ["d-sum-entries", "d-log", "d-exp", "d-hadamard", "Hadamard ↔ trace"], None),
    # the examples: the logistic loss, a two-layer network, the Gaussian likelihood
    ("sum(log(1 + exp(-y .* (X w))))", "w", None, ["d-log: d log(x) = dx ./ x"], None),
    ("||W2 tanh(W1 x + b1) + b2 - y||^2", "W1", None,
     ["d-squared-norm: d‖X‖² = 2 tr(Xᵀ dX)", "d-tanh", "let r = "], None),
    ("logdet(Sigma) + (x - mu)^T Sigma^-1 (x - mu)", "Sigma", {"Sigma": "spd"},
     ["d-logdet: d log|X| = tr(X⁻¹ dX)", "d-inv"], None),
]


@pytest.mark.parametrize("expr,wrt,symbols,rules,answer", STUDENT, ids=[s[0] for s in STUDENT])
def test_student_examples_read_like_a_textbook(expr, wrt, symbols, rules, answer):
    d = matcalc.diff(expr, wrt=wrt, symbols=symbols)
    text = str(d.steps)
    for r in rules:
        assert r in text, f"{r!r} not named in\n{text}"
    lines = text.splitlines()
    assert lines[0].strip().startswith("f = ")
    assert 4 <= len(lines) <= 16, text               # few steps, each checkable
    if answer is not None:
        assert str(d) == answer
    assert check_steps(d) < 1e-6
    assert d.steps.latex().startswith("\\begin{aligned}")
    assert d.check().ok


NOTE_IDS = re.compile(r"\b00\d\b|\bD[DT]\d\b|corrected")


@pytest.mark.parametrize("expr,wrt,symbols,rules,answer", STUDENT, ids=[s[0] for s in STUDENT])
def test_steps_cite_no_course_note_ids_and_name_each_rule_with_its_formula(expr, wrt, symbols, rules,
                                                                          answer):
    d = matcalc.diff(expr, wrt=wrt, symbols=symbols)
    assert not NOTE_IDS.search(str(d.steps)), str(d.steps)
    assert not NOTE_IDS.search(d.steps.latex())
    catalogue = cli("rules")[1]
    for s in d.steps:
        if s.rule and s.rule.startswith("d-"):
            name, formula = s.rule.split(": ", 1)      # one differential rule per line
            assert f"{name}" in catalogue and formula in catalogue, s.rule
            assert ";" not in formula


def test_the_differential_lines_are_the_rules_the_engine_applied():
    """The steps render the engine's record: the differential rules they cite are those
    differentiate() applied (with d‖r‖² one rule), in the order outside in."""
    from matcalc.derive import _prepared
    from matcalc.differential import differentiate
    for expr, wrt, symbols, *_ in STUDENT:
        d = matcalc.diff(expr, wrt=wrt, symbols=symbols)
        record = []
        differentiate(_prepared(d.f), d.var, trace=record)
        engine = {name for _, name, *_ in record}
        if any(n == "d-norm" for n in engine) and "d-squared-norm" in str(d.steps):
            engine = (engine - {"d-norm"}) | {"d-squared-norm"}
            if not any(name == "d-power" and not isinstance(node.base, E.Norm)
                       for node, name, *_ in record):
                engine.discard("d-power")
        cited = {s.rule.split(":")[0] for s in d.steps if s.rule.startswith("d-")}
        assert cited == engine, (expr, cited, engine)


def test_importing_steps_changes_no_other_table():
    code = ("import matcalc.simplify as S; n = dict(S.BUILDERS); import matcalc.steps; "
            "assert dict(S.BUILDERS) == n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr


def test_squared_norm_is_one_rule_and_a_long_residual_is_named_once():
    d = matcalc.diff("||W2 tanh(W1 x + b1) + b2 - y||^2", wrt="W1")
    lets = [s for s in d.steps if s.quantity == "let"]
    assert lets and lets[0].lhs == "r"
    r = lets[0]
    # the let line holds: r is the residual, and it is used in the later lines
    values = {"W2": np.random.default_rng(1).normal(size=(3, 4)), "W1": np.random.default_rng(2).normal(size=(4, 5)),
              "x": np.arange(5.0) / 5, "b1": np.ones(4), "b2": np.ones(3), "y": np.arange(3.0)}
    got = matcalc.evaluate(str(r.rhs), values)
    want = values["W2"] @ np.tanh(values["W1"] @ values["x"] + values["b1"]) + values["b2"] - values["y"]
    assert np.allclose(np.ravel(got), want)
    text = str(d.steps)
    assert "2 (r^T dr)" in text and "||r||" in text
    assert "2 ||" not in text.split("d-squared-norm")[0].splitlines()[-1]   # not 2‖r‖ d‖r‖
    # written once after f (the let line, in the user's order), never again
    after_f = [line for line in text.splitlines() if not line.strip().startswith("f =")]
    assert sum(str(r.rhs) in line for line in after_f) == 1
    assert "let r = W2 tanh(W1 x + b1) + b2 - y" in text
    assert check_steps(d) < 1e-6


def test_steps_of_a_diagonal_variable_start_finite():
    d = matcalc.diff("sum(abs(D))", wrt="D", symbols={"D": "diagonal"})
    err = check_steps(d)
    assert err is not None and err < 1e-6


def test_steps_are_strings_with_their_parts():
    d = matcalc.diff("x^T A x", wrt="x")
    assert all(isinstance(s, str) for s in d.steps)
    assert d.steps[0].lhs == "f" and d.steps[-1].quantity == "answer"


def cli(*args):
    p = subprocess.run([sys.executable, "-m", "matcalc", *args], capture_output=True, text=True,
                       cwd=ROOT, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_json_output():
    code, out, err = cli("diff", "x^T A x", "--wrt", "x", "--let", "A=symmetric", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["derivative"] == "2 A x"
    assert data["symbols"]["A"].startswith("symmetric(")
    assert data["layout"] == "gradient" and data["kind"] == "gradient"
    assert "A" in data["latex"] and data["steps"][0].startswith("f = ")
    d = matcalc.diff("x^T A x", wrt="x", symbols={"A": "symmetric"})
    assert d.check().ok


def test_rule_catalogue_lists_every_rule_of_the_tables():
    from matcalc.canon import IDENTITIES
    from matcalc.differential import ARRAY_DERIVATIVES, FUNC_DERIVATIVES, MATRIX_DERIVATIVES, RULES
    from matcalc.jacobian import VEC_IDENTITIES
    code, out, err = cli("rules")
    assert code == 0, err
    for rule in RULES.values():
        if rule.name not in ("d-elementwise", "d-array-function", "d-matrix-function"):   # per function
            assert rule.name in out
    for name in list(FUNC_DERIVATIVES) + list(ARRAY_DERIVATIVES) + list(MATRIX_DERIVATIVES):
        assert f"d-{name}" in out
    for table in (IDENTITIES, VEC_IDENTITIES):
        for name, formula, _ in table.values():
            assert name in out and formula in out



def test_the_steps_of_the_examples_render_in_katex():
    """Every rule's formula is written in LaTeX as math: the steps of the examples, of
    every kind of derivation and of every rule in the tables render without a warning."""
    runner = katex_or_skip()
    texs = [matcalc.diff(e, wrt=w, symbols=s).steps.latex() for e, w, s, *_ in STUDENT]
    texs += [matcalc.diff("x^T S x", wrt="S", symbols={"S": "symmetric"}, symmetric="cookbook").steps.latex(),
             matcalc.diff("sum(abs(D))", wrt="D", symbols={"D": "diagonal"}).steps.latex(),
             matcalc.diff("t^2 A", wrt="t", symbols={"t": "scalar"}).steps.latex(),
             matcalc.hessian("logdet(S)", wrt="S", symbols={"S": "spd"}).steps.latex(),
             matcalc.diff("A X B", wrt="X", layout="denominator").steps.latex()]
    from matcalc.rules import catalogue
    from matcalc.steps import _rule_latex
    texs += [_rule_latex(f"{name}: {formula}") for _, rows in catalogue() for name, formula in rows]
    bad = runner.Katex(texs).problems(texs)
    assert not bad, "KaTeX rejects:\n" + "\n".join(f"  {t}\n    -> {m}" for t, m in bad)


FUZZ_FOUND = [
    # (expression, wrt, symbols, hessian): derivations whose steps once crashed or were off
    ("y_1.T / c * ((-B2ᵀ) (A x2 sum((x2 + R x)')))", "R",       # d(·) of a row in the simplifier
     {"A": "matrix(r,5)", "B2": "diagonal(r)", "R": "symmetric(5)", "c": "scalar", "x": "vector(5)",
      "x2": "vector(5)", "y_1": "vector(r)"}, False),
    ("abs(vec(abs(A))^{T} * K(5,5) (vec(A^T) + B A2 z))", "A2",  # dG = 0: every line is rounding
     {"A": "matrix(5,5)", "A2": "symmetric(2)", "B": "matrix(25,2)", "z": "vector(2)"}, True),
    ("(y_1.T @ A * (B C) ./ (x.T ./ x.T + (1 + abs(x1^{T}))))^{T}", "x",
     {"A": "matrix(3,5)", "B": "matrix(5,4)", "C": "matrix(4,5)", "x": "vector(5)", "x1": "vector(5)",
      "y_1": "vector(3)"}, False),
    ("||A x - b||^2 + ||A x - b||", "x", None, False),
]


@pytest.mark.parametrize("expr,wrt,symbols,hess", FUZZ_FOUND, ids=[c[0][:30] for c in FUZZ_FOUND])
def test_steps_found_by_the_fuzzer(expr, wrt, symbols, hess):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = (matcalc.hessian if hess else matcalc.diff)(expr, wrt=wrt, symbols=symbols)
    err = check_steps(d)
    assert err is not None and err < 1e-6, str(d.steps)
    assert d.check().ok


def test_rule_catalogue_lists_every_rule_the_steps_can_cite():
    """`matcalc rules` is the catalogue the steps cite: every differential rule, identity,
    reading-off rule and every named rule of the simplifier (simplify.RULES and
    BUILDER_RULES), each with its name and formula, in a group of its operation."""
    from matcalc import simplify
    from matcalc.canon import IDENTITIES
    from matcalc.differential import ARRAY_DERIVATIVES, FUNC_DERIVATIVES, MATRIX_DERIVATIVES, RULES
    from matcalc.jacobian import VEC_IDENTITIES
    from matcalc.rules import catalogue
    from matcalc.steps import READ_OFF
    code, out, err = cli("rules")
    assert code == 0, err
    listed = {row for _, rows in catalogue() for row in rows}
    # d-elementwise, d-array-function, d-spectral and d-matrix-function dispatch to each
    # function's own rule, cited instead
    citable = [(r.name, r.formula) for r in RULES.values()
               if r.name not in ("d-elementwise", "d-array-function", "d-spectral", "d-matrix-function",
                                 "d-const")]
    citable += [(f"d-{n}", f) for n, (f, _) in FUNC_DERIVATIVES.items()]
    citable += [(f"d-{n}", f) for n, (f, _) in ARRAY_DERIVATIVES.items()]
    from matcalc.operators import SPECTRAL_RECORDS
    citable += [(f"d-{r.name}", r.formula) for r in SPECTRAL_RECORDS if r.differential]
    citable += [(f"d-{n}", f) for n, f in MATRIX_DERIVATIVES.items()]
    citable += [(n, f) for table in (IDENTITIES, VEC_IDENTITIES) for n, f, _ in table.values()]
    citable += list(READ_OFF.values())
    simplifier = list(simplify.BUILDER_RULES) + [r for rs in simplify.RULES.values() for r in rs]
    assert len(simplifier) > 50
    citable += [(r.name, r.formula) for r in simplifier]
    missing = [row for row in citable if row not in listed]
    assert not missing, missing
    for name, formula in citable:
        assert name in out and formula in out, (name, formula)
    # the simplifier's rules sit in their own groups, after the derivation's tables
    sections = [s for s, _ in catalogue()]
    assert sections[0].startswith("differential rules")
    assert any(s == "simplifier: traces" for s in sections)
    groups = {s: {n for n, _ in rows} for s, rows in catalogue()}
    assert "tr-transpose" in groups["simplifier: traces"]
    assert "add-collect" in groups["simplifier: sums"]
    # and every step cited by a derivation names a rule of the catalogue
    names = {n for n, _ in listed}
    for expr, wrt, symbols, *_ in STUDENT:
        for s in matcalc.diff(expr, wrt=wrt, symbols=symbols).steps:
            for cited in filter(None, (s.rule or "").split("; ")):
                if ": " in cited:
                    assert cited.split(": ", 1)[0] in names, cited


@pytest.mark.parametrize("expr, wrt", [
    ("a^T (X .* B) c + tr(X^T A X)", "X"),
    ("||W2 tanh(W1 x + b1) + b2 - y||^2", "W1"),
    ("tr(A (X .* B) C) + sum(exp(X))", "X"),
    ("tr(inv(X) A) + b^T X^T X c", "X"),
])
def test_the_trace_identities_one_per_line(expr, wrt):
    """Where the canonical form needs several identities, each has its line (a form that
    holds numerically, checked by check_steps), in the order the user wrote the terms."""
    d = matcalc.diff(expr, wrt=wrt)
    canon_rules = ("cyclic trace", "Hadamard", "transpose", "trace", "linearity", "vec", "diag",
                   "Kronecker", "unvec")
    lines = [s for s in d.steps if s.quantity == "df" and s.rule.startswith(canon_rules)]
    assert lines, str(d.steps)
    assert all("; " not in s.rule for s in lines), str(d.steps)
    assert check_steps(d) < 1e-6
