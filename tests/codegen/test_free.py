"""Freeing: a matrix temporary is deleted after its last use, never just before the
function returns; one last read in a loop after the loop."""
from cgtools import A, N, fn
from matcalc.codegen import ir
from matcalc.codegen.passes import free

MM = ir.Bin("@", N("A"), N("B"))


def test_del_after_last_use():
    f = fn([A("t1", MM, "M"), A("t2", ir.Call("np.vdot", (N("t1"), N("t1"))), "S"),
            A("g", ir.Bin("*", N("t2"), N("A")), "M"), A("h", ir.Call("float", (N("t2"),)), "S"),
            ir.Return(ir.Tuple_((N("h"), N("g"))))], temps={"t1", "t2"}, keep={"g", "h"})
    out = free.run(f).body
    assert out[2] == ir.Del(("t1",)) and sum(isinstance(s, ir.Del) for s in out) == 1


def test_nothing_freed_before_return():
    f = fn([A("t1", MM, "M"), A("g", ir.Bin("*", ir.Const("2.0"), N("t1")), "M"), ir.Return(N("g"))],
           temps={"t1"}, keep={"g"})
    assert free.run(f).body == f.body


def test_loops():
    loop = ir.For("i", (ir.Const("0"), N("m"), N("s")), (
        A("t2", ir.Bin("@", N("t1"), N("x")), "M"), A("t3", ir.Bin("*", N("t2"), N("t2")), "M"),
        ir.AddTo("acc", ir.Call("np.sum", (N("t3"),)))))
    f = fn([A("t1", MM, "M"), loop, A("g", ir.Call("float", (N("acc"),)), "S"), A("h", N("acc"), "S"),
            ir.Return(N("g"))], temps={"t1", "t2", "t3"}, keep={"g"})
    out = free.run(f).body
    assert out[2] == ir.Del(("t1",))                       # read in the loop: after it
    assert out[1].body[2] == ir.Del(("t2",))               # a loop's own temporary, inside
    assert not any(isinstance(s, ir.Del) and "t3" in s.names for s in ir.walk_stmts(out))
