"""Renumbering: the temporaries called t1, t2, ... in the order they are first assigned
(inlining and sharing leave gaps).  A name the function uses otherwise (a parameter, a
size, a result) is skipped.  Two passes over the statements: linear."""
import matcalc.codegen.ir as ir


def run(fn):
    order = []
    seen = set()
    for s in ir.walk_stmts(fn.body):
        for t in s.writes:
            if t in fn.temps and t not in seen:
                seen.add(t)
                order.append(t)
    taken = set(fn.params) | set(fn.kwonly) | set(fn.keep)
    for s in ir.walk_stmts(fn.body):
        taken.update(s.writes)
    taken -= fn.temps
    mapping, k = {}, 0
    for t in order:
        k += 1
        while f"t{k}" in taken:
            k += 1
        mapping[t] = f"t{k}"
    mapping = {a: b for a, b in mapping.items() if a != b}
    if not mapping:
        return fn
    body = [s.rename(mapping) for s in fn.body]
    temps = {mapping.get(t, t) for t in fn.temps}
    return fn.with_body(body, temps)
