"""Statements know what they read and write: the passes rely on it, never on text."""
from matcalc.codegen import ir

N = ir.Name


def test_reads_and_writes_of_every_statement():
    a = ir.Assign(("t1",), ir.Bin("@", N("A"), N("x")), ("V",))
    assert a.writes == ("t1",) and a.reads == {"A", "x"}
    add = ir.AddTo("acc", ir.Call("np.vdot", (N("t1"), N("t1"))))
    assert add.writes == () and add.reads == {"acc", "t1"}
    st = ir.Store("g", (ir.Slice(N("i"), N("j")),), N("t1"))
    assert st.reads == {"g", "i", "j", "t1"}
    d = ir.Del(("t1",))
    assert d.reads == {"t1"} and d.writes == ()
    loop = ir.For("i", (ir.Const("0"), N("m"), N("s")), (a, add))
    assert set(loop.writes) == {"i", "t1"} and loop.reads == {"m", "s", "A", "x", "acc", "t1"}
    cond = ir.If(ir.Bin(">", N("m"), ir.Const("9")), (a, ir.Return(N("t1"))))
    assert cond.writes == ("t1",) and cond.reads == {"m", "A", "x", "t1"}
    ret = ir.Return(ir.Tuple_((N("f"), N("g"))))
    assert ret.reads == {"f", "g"}
    assert loop.rename({"t1": "t9"}).writes == ("i", "t9")
