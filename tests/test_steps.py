"""The derivation steps: every line a true equation, checked numerically; the student
examples of the issue read as a textbook page; --json and the rule catalogue."""
import json
import os
import subprocess
import sys

import pytest

import matcalc
from matcalc import expr as E
from matcalc.steps import Step, check_steps

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
     ["d-det", "DD1", "d-product", "cyclic trace"], "det(A X B) X^-T"),
    ("logdet(Sigma) + tr(Sigma^-1 S)", "Sigma", {"Sigma": "spd", "S": "symmetric"},
     ["d-logdet", "DD3", "d-inv", "sym(G)"], "Sigma^-1 - Sigma^-1 S Sigma^-1"),
    ("sum(log(1 + exp(-y .* (A w))))", "w", None,
     ["d-sum-entries", "d-log", "d-exp", "d-hadamard", "Hadamard ↔ trace"], None),
]


@pytest.mark.parametrize("expr,wrt,symbols,rules,answer", STUDENT, ids=[s[0] for s in STUDENT])
def test_student_examples_read_like_a_textbook(expr, wrt, symbols, rules, answer):
    d = matcalc.diff(expr, wrt=wrt, symbols=symbols)
    text = str(d.steps)
    for r in rules:
        assert r in text, f"{r!r} not named in\n{text}"
    lines = text.splitlines()
    assert lines[0].strip().startswith("f = ")
    assert 4 <= len(lines) <= 14, text               # few steps, each checkable
    if answer is not None:
        assert str(d) == answer
    assert check_steps(d) < 1e-6
    assert d.steps.latex().startswith("\\begin{aligned}")


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
    from matcalc.differential import FUNC_DERIVATIVES, RULES
    from matcalc.jacobian import VEC_IDENTITIES
    code, out, err = cli("rules")
    assert code == 0, err
    for rule in RULES.values():
        if rule.name != "d-elementwise":
            assert rule.name in out
    for name in FUNC_DERIVATIVES:
        assert f"d-{name}" in out
    for table in (IDENTITIES, VEC_IDENTITIES):
        for name, formula, _ in table.values():
            assert name in out and formula in out
