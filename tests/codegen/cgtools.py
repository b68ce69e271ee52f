"""Helpers for the code generator's tests: the IR of a derivative's module, and counts
of what it calls (read off the IR, never off the text)."""
import numpy as np

from matcalc import codegen
from matcalc.codegen import ir


def functions(d, target="numpy", optimizations=None):
    """{name: ir.Function} of the generated module, and the Program (opts.fired)."""
    module, prog = codegen.program(d, target, optimizations)
    return {f.name: f for f in module.functions}, prog


def exprs(fn):
    """Every expression node of a function's body."""
    stack = []
    for s in ir.walk_stmts(fn.body):
        for f in ("value", "cond"):
            if hasattr(s, f):
                stack.append(getattr(s, f))
        stack.extend(getattr(s, "range_args", ()))
        stack.extend(getattr(s, "index", ()))
    while stack:
        n = stack.pop()
        yield n
        stack.extend(n.children())


def calls(fn, name):
    """How many calls of the function name (np.linalg.solve, _kron_identity, ...)."""
    return sum(1 for n in exprs(fn) if isinstance(n, ir.Call) and n.func == name)


def close(got, want, rtol=1e-8):
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    if got.shape != want.shape:
        return False
    scale = max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
    return bool(np.all(np.isfinite(got))) and float(np.max(np.abs(got - want), initial=0.0)) <= rtol * scale


def fn(stmts, temps=(), keep=(), params=("x",), sizes=()):
    """An ir.Function over hand-written statements."""
    return ir.Function("f", tuple(params), (), "doc", tuple(stmts), frozenset(temps), frozenset(keep),
                       frozenset(sizes))


def A(target, value, rep="M", comment=None):
    return ir.Assign((target,), value, (rep,), comment)


N = ir.Name
