"""The printer: Python's precedence decides the parentheses; comments at column 50."""
import ast

import pytest

from cgtools import A, N, fn
from matcalc.codegen import ir, printer

C = ir.Const


@pytest.mark.parametrize("node, text", [
    (ir.Bin("@", ir.Bin("-", N("a"), N("b")), N("c")), "(a - b) @ c"),
    (ir.Bin("-", N("a"), ir.Bin("-", N("b"), N("c"))), "a - (b - c)"),
    (ir.Bin("-", ir.Bin("-", N("a"), N("b")), N("c")), "a - b - c"),
    (ir.Bin("*", C("2.0"), ir.Bin("@", N("t"), N("V"))), "2.0 * (t @ V)"),
    (ir.Bin("@", ir.Bin("*", N("y"), N("t")), N("A")), "(y * t) @ A"),
    (ir.Bin("@", ir.Neg(N("t")), N("A")), "(-t) @ A"),
    (ir.Bin("*", C("2.0"), ir.Neg(N("t"))), "2.0 * (-t)"),
    (ir.Neg(ir.Bin("*", N("a"), N("b"))), "-(a * b)"),
    (ir.Neg(ir.Bin("**", N("a"), C("2"))), "-a ** 2"),
    (ir.Bin("**", ir.Neg(N("a")), C("2")), "(-a) ** 2"),
    (ir.Bin("/", C("1.0"), ir.Bin("**", N("v"), C("3"))), "1.0 / v ** 3"),
    (ir.Bin("/", N("x"), ir.Bin("+", C("1.0"), N("x"))), "x / (1.0 + x)"),
    (ir.Attr(ir.Bin("@", N("a"), N("b")), "T"), "(a @ b).T"),
    (ir.Method(N("r"), "reshape", (N("n"), C("-1"))), "r.reshape(n, -1)"),
    (ir.Index(N("v"), (ir.Slice(), C("None"))), "v[:, None]"),
    (ir.Index(N("U"), (ir.Slice(N("i"), N("j")),)), "U[i:j]"),
    (ir.Call("np.zeros", (ir.Tuple_((N("n"),)),)), "np.zeros((n,))"),
    (ir.Call("torch.eye", (N("n"),), (("dtype", ir.Lib("torch.float64")),)), "torch.eye(n, dtype=torch.float64)"),
    (ir.Bin("and", ir.Bin(">", ir.Bin("*", N("m"), N("n")), C("65536")),
            ir.Bin("<=", N("p"), C("4"))), "m * n > 65536 and p <= 4"),
])
def test_precedence(node, text):
    assert printer.expr(node) == text
    # the text means the tree: Python parses it back to the same operations
    assert ast.dump(ast.parse(text, mode="eval")) == ast.dump(ast.parse(printer.expr(node), mode="eval"))


def test_statements_and_comments():
    f = fn([A("t1", ir.Bin("@", N("A"), N("x")), "V", "A x"),
            ir.For("i", (C("0"), N("m"), N("step")), (ir.AddTo("acc", N("t1")),), "loop"),
            ir.Del(("t1",)),
            ir.Return(ir.Tuple_((N("f"), ir.Tuple_((N("g"), N("h"))))))], temps={"t1"})
    src = printer.function(f)
    lines = src.splitlines()
    assert lines[0] == "def f(x):"
    assert lines[2].startswith("    t1 = A @ x") and lines[2].index("# A x") == 50
    assert lines[3].startswith("    for i in range(0, m, step):")
    assert lines[4] == "        acc += t1"
    assert lines[5] == "    del t1"
    assert lines[6] == "    return f, (g, h)"
    compile(src, "<test>", "exec")
