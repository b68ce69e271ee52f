"""Renumbering: temporaries t1, t2, ... in the order they are assigned, skipping the
names the function uses otherwise."""
from cgtools import A, N, fn
from matcalc.codegen import ir
from matcalc.codegen.passes import renumber


def test_numbers_in_order_of_assignment():
    f = fn([A("t7", N("x"), "V"), A("t3", ir.Bin("+", N("t7"), N("x")), "V"),
            ir.For("i", (ir.Const("0"), N("m"), N("s")), (A("t9", N("t3"), "V"),)),
            A("g", ir.Bin("*", N("t3"), N("t9")), "V"), ir.Return(N("g"))],
           temps={"t7", "t3", "t9"}, keep={"g"})
    out = renumber.run(f)
    assert [s.targets[0] for s in out.body if isinstance(s, ir.Assign)] == ["t1", "t2", "g"]
    assert out.body[1].value == ir.Bin("+", N("t1"), N("x"))
    assert out.body[2].body[0] == A("t3", N("t2"), "V") and out.temps == {"t1", "t2", "t3"}


def test_names_in_use_are_skipped():
    # a symbol called t1 is a parameter: the first temporary is t2
    f = fn([A("t5", ir.Bin("*", N("t1"), N("t1")), "V"), ir.Return(N("t5"))],
           temps={"t5"}, params=("t1",))
    out = renumber.run(f)
    assert out.body[0].targets == ("t2",) and out.body[1] == ir.Return(N("t2"))
