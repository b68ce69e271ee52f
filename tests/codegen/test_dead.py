"""Dead stores: values nobody reads are dropped, and the ones only they read."""
from cgtools import A, N, fn
from matcalc.codegen import ir
from matcalc.codegen.passes import dead


def test_dead_chain_is_dropped():
    f = fn([A("n", ir.Index(ir.Attr(N("x"), "shape"), (ir.Const("0"),)), "I"),
            A("t1", ir.Call("np.eye", (N("n"),)), "M"),
            A("t2", ir.Bin("@", N("t1"), N("x")), "V"),
            A("g", ir.Bin("*", ir.Const("2.0"), N("x")), "V"), ir.Return(N("g"))],
           temps={"t1", "t2"}, keep={"g"}, sizes={"n"})
    out = dead.run(f)
    assert out.body == (f.body[3], f.body[4])


def test_live_and_partly_live_statements_stay():
    pair = ir.Assign(("t1", "t2"), ir.Call("_spd_inv_logdet", (N("S"),)), ("M", "S"))
    f = fn([pair, A("g", N("t1"), "M"), ir.Return(N("g"))], temps={"t1", "t2"}, keep={"g"})
    assert dead.run(f).body == f.body
    store = fn([A("t1", ir.Call("np.empty", (N("m"),)), "V"), ir.Store("t1", (ir.Slice(),), N("x")),
                ir.Return(N("x"))], temps={"t1"})
    assert dead.run(store).body == store.body            # a store is not dead code
