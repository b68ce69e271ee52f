"""Freeing: ``del`` each matrix temporary after its last use (a function that keeps every
large intermediate alive until it returns makes the allocator hand out fresh,
page-faulting memory for each new one).  A temporary last read inside a loop is freed
after the loop; a loop's own temporaries are freed inside its body.  Nothing is freed
after the last statement of a body (the function returns, or the iteration ends).  One
pass to find the last uses, one to insert: linear."""
import matcalc.codegen.ir as ir


def run(fn):
    return fn.with_body(_body(fn.body, fn), fn.temps)


def _matrices(stmts, fn):
    """The matrix temporaries assigned directly in this body."""
    out = []
    for s in stmts:
        if isinstance(s, ir.Assign):
            for t, r in zip(s.targets, s.rep):
                if r == "M" and t in fn.temps and t not in fn.keep:
                    out.append(t)
    return out


def _body(stmts, fn):
    stmts = [ir.For(s.var, s.range_args, tuple(_body(s.body, fn)), s.comment)
             if isinstance(s, ir.For) else s for s in stmts]
    mats = set(_matrices(stmts, fn))
    if not mats:
        return stmts
    last = {}
    for i, s in enumerate(stmts):
        names = set(s.writes) | set(s.reads)
        for t in names & mats:
            last[t] = i
    after = {}
    for t, i in last.items():
        after.setdefault(i, []).append(t)
    end = len(stmts) - 1
    while end > 0 and isinstance(stmts[end], ir.Return):
        end -= 1                # nothing to free just before returning
    out = []
    for i, s in enumerate(stmts):
        out.append(s)
        if i in after and i < end:
            out.append(ir.Del(tuple(sorted(after[i], key=lambda x: (len(x), x)))))
    return out
