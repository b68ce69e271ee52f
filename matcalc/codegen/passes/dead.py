"""Dead stores: an assignment whose every target is a temporary or a size that nothing
reads is dropped, and so, in turn, are the ones only it read (a worklist over read
counts: linear)."""
import matcalc.codegen.ir as ir


def run(fn):
    reads = {}
    for s in ir.walk_stmts(fn.body):
        for n in ir.occurrences(s):
            reads[n] = reads.get(n, 0) + 1
    removable = {}          # name -> the top-level or nested statement defining it
    for s in ir.walk_stmts(fn.body):
        if isinstance(s, ir.Assign) and all(_droppable(t, fn) for t in s.targets):
            for t in s.targets:
                removable[t] = s
    dead = set()            # ids of statements dropped
    work = [t for t in removable if reads.get(t, 0) == 0]
    while work:
        t = work.pop()
        s = removable[t]
        if id(s) in dead or any(reads.get(x, 0) for x in s.targets):
            continue
        dead.add(id(s))
        for n in ir.occurrences(s):
            reads[n] -= 1
            if reads[n] == 0 and n in removable:
                work.append(n)
    if not dead:
        return fn
    return fn.with_body(_strip(fn.body, dead))


def _droppable(t, fn):
    return t not in fn.keep and (t in fn.temps or t in fn.sizes)


def _strip(stmts, dead):
    out = []
    for s in stmts:
        if id(s) in dead:
            continue
        if isinstance(s, ir.For):
            s = ir.For(s.var, s.range_args, tuple(_strip(s.body, dead)), s.comment)
        elif isinstance(s, ir.If):
            s = ir.If(s.cond, tuple(_strip(s.body, dead)), s.comment)
        out.append(s)
    return out
