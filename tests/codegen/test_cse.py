"""Common subexpressions: a repeated value is computed once, never one that is written
into later, and a loop's body has its own table."""
import numpy as np

import matcalc
from cgtools import A, N, calls, close, fn, functions
from matcalc import codegen
from matcalc.codegen import ir
from matcalc.codegen.passes import cse

AX = ir.Bin("@", N("A"), N("x"))


def test_repeated_value_is_shared():
    f = fn([A("t1", AX, "V"), A("t2", AX, "V"), A("g", ir.Bin("+", N("t1"), N("t2")), "V"),
            ir.Return(N("g"))], temps={"t1", "t2"}, keep={"g"})
    out = cse.run(f)
    assert [s.targets for s in out.body if isinstance(s, ir.Assign)] == [("t1",), ("g",)]
    assert out.body[1].value == ir.Bin("+", N("t1"), N("t1"))
    assert "t2" not in out.temps


def test_values_written_into_are_not_shared():
    empty = ir.Call("np.empty", (ir.Tuple_((N("m"),)),))
    f = fn([A("t1", empty, "V"), A("t2", empty, "V"),
            ir.Store("t1", (ir.Slice(),), N("x")), ir.Store("t2", (ir.Slice(),), N("y")),
            ir.Return(ir.Tuple_((N("t1"), N("t2"))))], temps={"t1", "t2"}, keep={"t1", "t2"})
    assert cse.run(f).body == f.body


def test_loop_body_has_its_own_table():
    f = fn([A("t1", AX, "V"),
            ir.For("i", (ir.Const("0"), N("m"), N("s")), (A("t2", AX, "V"), ir.AddTo("acc", N("t2")))),
            ir.Return(N("acc"))], temps={"t1", "t2"})
    out = cse.run(f)
    assert out.body[1].body[0].targets == ("t2",)


def test_repeated_solve_of_a_derivative():
    # tr(A X^-1): f and the derivative -X^-1 A X^-1 both need A X^-1; it is solved for once
    d = matcalc.diff("tr(A X^-1)", wrt="X", layout="numerator")
    on = functions(d)[0]["f_and_grad"]
    off = functions(d, optimizations={"cse": False})[0]["f_and_grad"]
    assert calls(on, "np.linalg.solve") == 2 and calls(off, "np.linalg.solve") == 3
    rng = np.random.default_rng(1)
    X, Am = rng.standard_normal((4, 4)) + 4 * np.eye(4), rng.standard_normal((4, 4))
    for src in (codegen.generate(d), codegen.generate(d, optimizations={"cse": False})):
        fv, g = codegen.load(src)["f_and_grad"](X, Am)
        assert close(fv, np.trace(Am @ np.linalg.inv(X))) and close(g, d.evaluate({"X": X, "A": Am}))
