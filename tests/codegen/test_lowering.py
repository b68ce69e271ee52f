"""Lowering: one entry per node type, every target spells every operation, and a node
without a lowering is an UnsupportedError naming it."""
import pytest

import matcalc
from matcalc import codegen
from matcalc import expr as E
from matcalc.codegen import backends
from matcalc.codegen.lowering import LOWERINGS

SUGAR = {E.RawPower, E.RawDiv, E.RawBars, E.RawDiag, E.RawNorm}     # gone after parsing


def test_every_node_type_has_a_lowering():
    from matcalc.operators import node_record
    # a node whose record declares its lowering absent says why (tests/test_operators.py)
    missing = [t.__name__ for t in E.NODE_TYPES if t not in LOWERINGS and t not in SUGAR
               and "lowering" not in node_record(t).absent]
    assert not missing, missing


@pytest.mark.parametrize("target", backends.TARGETS)
def test_every_target_spells_every_operation(target):
    b = backends.backend(target)
    for op in backends.Backend._kf:
        assert op in b.unspelt or b.spelling(op), op
    for helper in b.helpers:
        assert b.helpers[helper].startswith(f"def {helper}(")


def test_node_without_a_lowering(monkeypatch):
    d = matcalc.diff("tr(X^T X)", wrt="X")
    monkeypatch.delitem(LOWERINGS, E.Trace)
    with pytest.raises(matcalc.UnsupportedError, match="no lowering for Trace"):
        codegen.generate(d)


def test_unknown_target():
    with pytest.raises(matcalc.MatcalcError, match="unknown target 'tensorflow'"):
        codegen.generate(matcalc.diff("x^T x", wrt="x"), target="tensorflow")
