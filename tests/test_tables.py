"""Every core node type has an entry in every table (a missing differential rule would
otherwise be a silent gap), and a missing entry surfaces as UnsupportedError."""
import pytest

import matcalc
from matcalc import expr as E
from matcalc.differential import RULES, differentiate
from matcalc.numeric import EVAL
from matcalc.operators import node_record
from matcalc.printing import LatexPrinter, Printer
from matcalc.simplify import BUILDERS


@pytest.mark.parametrize("node", E.NODE_TYPES, ids=lambda t: t.__name__)
def test_every_node_has_every_entry(node):
    assert node in EVAL, f"no NumPy evaluation for {node.__name__}"
    assert node in BUILDERS, f"no simplifier builder for {node.__name__}"
    # a printer method, or a call spelling in the node's record (matcalc/operators/nodes.py)
    called = node_record(node).text is not None
    assert hasattr(Printer, "p_" + node.__name__) or called, f"no text printer for {node.__name__}"
    assert hasattr(LatexPrinter, "p_" + node.__name__) or called
    if node is not E.Diff:
        assert node in RULES, f"no differential rule for {node.__name__}"


def test_missing_rule_is_unsupported_not_zero(monkeypatch):
    """Take the rule for the inverse away: the engine must refuse, not answer 0."""
    monkeypatch.delitem(RULES, E.Inverse)
    with pytest.raises(matcalc.UnsupportedError):
        matcalc.diff("tr(X^-1)", wrt="X")


def test_constant_subtrees_need_no_rule(monkeypatch):
    """Rules are looked up only where the variable occurs."""
    monkeypatch.delitem(RULES, E.Inverse)
    d = matcalc.diff("tr(A^-1) + tr(X)", wrt="X")
    import numpy as np
    X = np.random.default_rng(0).standard_normal((3, 3))
    assert np.allclose(d.evaluate({"X": X}), np.eye(3))


def test_rule_names_are_unique_per_formula():
    names = {}
    for rule in RULES.values():
        names.setdefault(rule.name, set()).add(rule.formula)
    # one name may cover a family (d-const), but a name never hides two different laws
    # except for the constants
    for name, formulas in names.items():
        if name not in ("d-const", "d-diag"):
            assert len(formulas) == 1, (name, formulas)


def test_differentiate_returns_none_for_constants():
    f = matcalc.parse("tr(A B)")
    X = E.Sym("X", "matrix", "m", "n")
    assert differentiate(f, X) is None
