"""Negations folded (``fold_negations``): a minus sign inside a product, a quotient or a
matrix product moves out of it, two cancel, and a negated term of a sum turns the sum
into a difference, so that -((y * (-s)) @ A) is (y * s) @ A: one array pass and one
call fewer per sign.  Exact in floating point: a negation is exact, and rounding to
nearest is symmetric, so (-a) * b, (-a) / b and (-a) @ b are -(a * b), -(a / b), -(a @ b)
bit for bit.  Linear: one bottom-up walk of each statement's expression."""
import matcalc.codegen.ir as ir

MOVES_OUT = ("*", "/", "@")


def fold(n):
    """n with its negations folded (children first)."""
    n = n.map(fold)
    if isinstance(n, ir.Neg) and isinstance(n.arg, ir.Neg):
        return n.arg.arg
    if isinstance(n, ir.Bin):
        left, right = n.left, n.right
        nl, nr = isinstance(left, ir.Neg), isinstance(right, ir.Neg)
        if n.op in MOVES_OUT and (nl or nr):
            inner = ir.Bin(n.op, left.arg if nl else left, right.arg if nr else right)
            return inner if (nl and nr) else ir.Neg(inner)
        if nr and n.op in ("+", "-"):
            return ir.Bin("-" if n.op == "+" else "+", left, right.arg)
        if nl and n.op == "+":                          # -a + b is b - a
            return ir.Bin("-", right, left.arg)
    return n


def run(fn):
    body = []
    changed = False
    for s in fn.body:
        t = s
        if isinstance(s, ir.Assign):
            t = ir.Assign(s.targets, fold(s.value), s.rep, s.comment)
        elif isinstance(s, ir.AddTo):
            t = ir.AddTo(s.target, fold(s.value), s.comment)
        elif isinstance(s, ir.Store):
            t = ir.Store(s.target, s.index, fold(s.value), s.comment)
        elif isinstance(s, ir.Return):
            t = ir.Return(fold(s.value))
        changed = changed or t != s
        body.append(t)
    return fn.with_body(tuple(body)) if changed else fn
