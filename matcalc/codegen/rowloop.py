"""Lowering a row-block plan (``rowblocks.Plan``) into a loop over blocks of rows.

The constants the plan reads are computed whole before the loop; the loop computes its
items a block at a time: a result with s rows written block by block into a
preallocated array, a sum accumulated over the blocks.  The items' nodes are then
memoised in the lowerer as those arrays and sums, for the rest of the function to read.
``dispatch`` is the condition under which the plain function calls the one with the
loop (the intermediate is larger than a block, every whole factor at most a block).
"""
import matcalc.codegen.ir as ir
from .lowering import Lowerer
from .printer import expr as source
from .rowblocks import BLOCK
from .values import ZERO, V, rep_of, short

# rows per block: about 512 KiB of the widest intermediate, which stays in a core's L2
# cache from the statement that makes it to the ones that read it.  The loop runs when
# that intermediate is larger than one block and every whole matrix that multiplies a
# block (V^T in U[i:j] V^T, read again by each block) is at most that size.
ROW_BLOCK_ENTRIES = 1 << 16


def lower_row_loop(low, plan):
    names = low.names
    consts = {sym.name: low.ev(node) for node, sym in plan.consts}
    i, j, step = names.take("i"), names.take("j"), names.take("step")
    rows = (ir.Slice(ir.Name(i), ir.Name(j)),)
    syms, params = dict(low.syms), dict(low.params)
    for name, b in plan.blocks.items():
        syms[b.name], params[b.name] = b, ir.Index(low.param(name), rows)
    for node, sym in plan.consts:
        syms[sym.name], params[sym.name] = sym, consts[sym.name].code
    body = Lowerer(low.B, syms, params, names, low.opts)
    body.intern, body.ntemp, body.sizes = low.intern, low.ntemp, dict(low.sizes)
    body.temps, body.size_names = low.temps, low.size_names
    blocks = body.prepare([it.block for it in plan.items])
    m, width = low.size(plan.size), low.size(plan.big.shape[1])
    init = []
    for it, tree in zip(plan.items, blocks):
        v = body.ev(tree)
        shape, rep = it.node.shape, rep_of(it.node.shape)
        if it.kind == "sum":
            name = names.take("acc")
            start = ZERO if rep == "S" else low.B.zeros(low.shape_code(shape))
            init.append(ir.Assign((name,), start, (rep,), f"{short(it.node)}, summed over the blocks"))
            body.body.append(ir.AddTo(name, v.code))
        else:
            name = low.temp()
            init.append(ir.Assign((name,), low.B.empty(low.shape_code(shape)), (rep,), short(it.node)))
            body.body.append(ir.Store(name, rows, v.code))
        low.memo[it.node] = V(ir.Name(name), rep, shape)
    low.ntemp = body.ntemp
    low.extra_sizes += [x for x in body.extra_sizes if x not in low.extra_sizes]
    big = short(plan.big)
    one = ir.Const("1")
    low.body.append(ir.Assign((step,), ir.Call("max", (one, ir.Bin("//", ir.Const(str(ROW_BLOCK_ENTRIES)),
                                                                     ir.Call("max", (one, width))))),
                              ("I",), f"rows per block: about 512 KiB of {big}"))
    low.body += init
    # comments name the block as [i:j] and the constants by their code
    marks = [(BLOCK, f"[{i}:{j}]")] + [(n, source(v.code)) for n, v in consts.items()]
    loop = [ir.Assign((j,), ir.Bin("+", ir.Name(i), ir.Name(step)), ("I",))]
    for s in body.body:
        if s.comment:
            text = str(s.comment)
            for a, b in marks:
                text = text.replace(a, b)
            s = _with_comment(s, text)
        loop.append(s)
    low.body.append(ir.For(i, (ir.Const("0"), m, ir.Name(step)), tuple(loop),
                           f"{big}: a block of rows at a time"))


def _with_comment(s, text):
    if isinstance(s, ir.Assign):
        return ir.Assign(s.targets, s.value, s.rep, text)
    if isinstance(s, ir.AddTo):
        return ir.AddTo(s.target, s.value, text)
    if isinstance(s, ir.Store):
        return ir.Store(s.target, s.index, s.value, text)
    return s


def dispatch(low, plan, blocks, params):
    """if <the intermediate is large>: return <blocks>(params...)."""
    big = plan.big
    limit = ir.Const(str(ROW_BLOCK_ENTRIES))
    conds = [ir.Bin(">", ir.Bin("*", low.size(big.shape[0]), low.size(big.shape[1])), limit)]
    factors = {}
    for r, c in plan.factors:
        pair = sorted((low.size(r), low.size(c)), key=source)
        e = ir.Bin("<=", ir.Bin("*", pair[0], pair[1]), limit)
        factors[source(e)] = e
    conds += [factors[k] for k in sorted(factors)]
    cond = conds[0]
    for c in conds[1:]:
        cond = ir.Bin("and", cond, c)
    call = ir.Call(blocks, tuple(ir.Name(p) for p in params))
    return ir.If(cond, (ir.Return(call),), f"{short(big)} over about 512 KiB: {blocks}")
