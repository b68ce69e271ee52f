"""Inlining: an array temporary read once, by the next statement, is folded into it,
within the width limit; results, parameters and scalars stay named (a scalar is folded
into the sum or store that reads it)."""
from cgtools import A, N, fn
from matcalc.codegen import ir
from matcalc.codegen.passes import inline

AX = ir.Bin("@", N("A"), N("x"))


def test_single_use_array_is_folded():
    f = fn([A("t1", AX, "V"), A("g", ir.Bin("-", N("t1"), N("b")), "V"), ir.Return(N("g"))],
           temps={"t1"}, keep={"g"})
    out = inline.run(f)
    assert out.body == (A("g", ir.Bin("-", AX, N("b")), "V"), ir.Return(N("g")))


def test_chain_of_folds():
    f = fn([A("t1", AX, "V"), A("t2", ir.Bin("-", N("t1"), N("b")), "V"),
            A("g", ir.Bin("*", ir.Const("2.0"), N("t2")), "V"), ir.Return(N("g"))],
           temps={"t1", "t2"}, keep={"g"})
    out = inline.run(f)
    assert len(out.body) == 2 and out.body[0].value == ir.Bin("*", ir.Const("2.0"), ir.Bin("-", AX, N("b")))


def test_not_folded():
    twice = fn([A("t1", AX, "V"), A("g", ir.Bin("+", N("t1"), N("t1")), "V"), ir.Return(N("g"))],
               temps={"t1"}, keep={"g"})
    assert inline.run(twice).body == twice.body                    # read twice
    scalar = fn([A("t1", AX, "S"), A("g", ir.Bin("-", N("t1"), N("b")), "S"), ir.Return(N("g"))],
                temps={"t1"}, keep={"g"})
    assert inline.run(scalar).body == scalar.body                  # a scalar
    later = fn([A("t1", AX, "V"), A("t2", N("y"), "S"), A("g", ir.Bin("-", N("t1"), N("t2")), "V"),
                ir.Return(N("g"))], temps={"t1", "t2"}, keep={"g"})
    assert inline.run(later).body[0] == later.body[0]              # not read by the next one
    result = fn([A("g", AX, "V"), A("h", ir.Bin("-", N("g"), N("b")), "V"), ir.Return(ir.Tuple_((N("g"), N("h"))))],
                temps={"g"}, keep={"g", "h"})
    assert inline.run(result).body == result.body                  # a result
    long = ir.Call("np.some_function_with_a_long_name", tuple(N(f"argument_{k}") for k in range(8)))
    wide = fn([A("t1", long, "V"), A("g", ir.Bin("-", N("t1"), N("b")), "V"), ir.Return(N("g"))],
              temps={"t1"}, keep={"g"})
    assert inline.run(wide).body == wide.body                      # too wide


def test_scalar_folded_into_a_sum():
    vdot = ir.Call("np.vdot", (N("t1"), N("t1")))
    f = fn([A("t1", AX, "M"), A("t2", vdot, "S", "||r||^2"), ir.AddTo("acc", N("t2")), ir.Return(N("acc"))],
           temps={"t1", "t2"})
    out = inline.run(f)
    assert out.body[1] == ir.AddTo("acc", vdot, "||r||^2")
