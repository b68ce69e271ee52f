"""Inlining: an array temporary read once, by the very next statement, is folded into it
(``t2 = U @ V.T - X``): NumPy then reuses the unnamed intermediate's memory for the
result instead of allocating fresh memory next to a named one.

A statement is folded only while the two together stay within ``WIDTH`` characters of
code (they stay readable), and never when its target is one of the function's results
or parameters.  A scalar read once, by the next statement, which adds it to a sum or
stores it (``acc += t3``), is folded into that statement whatever its width.  One forward pass; a statement folded into the next one may in turn be
folded into the one after: each statement is folded at most once, so the pass is
linear (the width check prints at most ``WIDTH`` characters a time).
"""
import matcalc.codegen.ir as ir
from ..printer import expr as source

WIDTH = 88


def run(fn):
    uses = {}
    for s in ir.walk_stmts(fn.body):
        for n in ir.occurrences(s):
            uses[n] = uses.get(n, 0) + 1
    return fn.with_body(_body(fn.body, fn, uses), fn.temps)


def _sole(s, fn, uses):
    """A temporary's assignment, the temporary read once."""
    return (isinstance(s, ir.Assign) and len(s.targets) == 1 and s.targets[0] in fn.temps
            and s.targets[0] not in fn.keep and uses.get(s.targets[0]) == 1)


def _foldable(s, fn, uses):
    return _sole(s, fn, uses) and s.rep[0] in ("V", "M")


def _body(stmts, fn, uses):
    out = []
    widths = []             # widths[k]: _width(out[k].value), computed once
    for s in stmts:
        if isinstance(s, ir.For):
            s = ir.For(s.var, s.range_args, tuple(_body(s.body, fn, uses)), s.comment)
        if out and isinstance(s, (ir.AddTo, ir.Store)) and _sole(out[-1], fn, uses) \
                and s.value == ir.Name(out[-1].targets[0]):
            # acc += t3 with t3 = np.vdot(t2, t2) just before: acc += np.vdot(t2, t2)
            prev = out.pop()
            widths.pop()
            s = _replace(s, prev.targets[0], prev.value)
            s = ir.AddTo(s.target, s.value, prev.comment) if isinstance(s, ir.AddTo) else \
                ir.Store(s.target, s.index, s.value, prev.comment)
        width = None
        while out and isinstance(s, (ir.Assign, ir.AddTo, ir.Store)) and _foldable(out[-1], fn, uses):
            prev = out[-1]
            t = prev.targets[0]
            if width is None:
                width = _width(s.value)
            if t not in ir.occurrences(s) or widths[-1] + width > WIDTH:
                break
            out.pop()
            widths.pop()
            s = _replace(s, t, prev.value)
            width = None
        out.append(s)
        widths.append(_width(s.value) if width is None and hasattr(s, "value") else (width or 0))
    return out


def _width(node):
    """The printed width of an expression (WIDTH + 1 for anything wider: every node
    prints at least one character, so a larger tree is not printed to know it)."""
    if ir.count_nodes(node, WIDTH) > WIDTH:
        return WIDTH + 1
    return len(source(node))


def _replace(s, name, value):
    m = {name: value}
    if isinstance(s, ir.Assign):
        return ir.Assign(s.targets, ir.substitute(s.value, m), s.rep, s.comment)
    if isinstance(s, ir.AddTo):
        return ir.AddTo(s.target, ir.substitute(s.value, m), s.comment)
    return ir.Store(s.target, tuple(ir.substitute(i, m) for i in s.index), ir.substitute(s.value, m), s.comment)
