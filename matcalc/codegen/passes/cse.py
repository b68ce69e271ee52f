"""Common subexpressions: a temporary assigned a value that an earlier temporary of the
same body already holds is dropped, and its readers read the earlier one.

The lowering computes each distinct tree node once already; this pass catches the
statements that come out the same from different nodes.  One forward pass with a
table from (renamed) value to name: linear.  Values that are written into later (the
blocks of a row loop's result, the sums it accumulates) are never shared, and a loop's
body has its own table (its values change from one iteration to the next).
"""
import matcalc.codegen.ir as ir


def run(fn):
    mutated = set()
    for s in ir.walk_stmts(fn.body):
        if isinstance(s, (ir.Store, ir.AddTo)):
            mutated.add(s.target)
    mapping = {}
    body = _body(fn.body, fn.temps, fn.keep, mutated, mapping)
    return fn.with_body(body, fn.temps - set(mapping))


def _body(stmts, temps, keep, mutated, mapping):
    seen = {}
    out = []
    for s in stmts:
        s = s.rename(mapping) if mapping else s
        if isinstance(s, (ir.If, ir.For)):
            # the nested body: renamed, with a table of its own
            inner = _body(s.body, temps, keep, mutated, mapping)
            s = ir.For(s.var, s.range_args, tuple(inner), s.comment) if isinstance(s, ir.For) \
                else ir.If(s.cond, tuple(inner), s.comment)
            out.append(s)
            continue
        if isinstance(s, ir.Assign) and len(s.targets) == 1:
            t = s.targets[0]
            if t in temps and t not in keep and t not in mutated:
                key = (s.value, s.rep)
                hit = seen.get(key)
                if hit is not None:
                    mapping[t] = hit
                    continue
                seen[key] = t
        out.append(s)
    return out
