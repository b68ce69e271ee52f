"""The shrinker: a failing example reduced to a smaller one that fails the same way."""
import time

from .tree import Node, SCALAR, _replace, is_scalar, render, sym_names
from .generator import example_from_tree
from .oracle import _vseed, check_example


def _same_failure(ex, out, seeds):
    for s in seeds:
        o = check_example(ex, seed=s)
        if o.status == out.status and o.sig == out.sig:
            return o
    return None


def _size(tree):
    return len(render(tree))


def shrink(ex, out, budget=400, seconds=120.0):
    """A smaller example that fails the same way (same status and failure class)."""
    if ex.tree is None or ex.gen is None:
        return ex, out
    gen = ex.gen
    seeds = [_vseed(0), (1, 2, 3), (4, 5, 6)]
    t0 = time.time()
    tries = 0
    best, best_out = ex, out
    improved = True
    while improved and tries < budget and time.time() - t0 < seconds:
        improved = False
        for cand in _candidates(best, gen):
            if tries >= budget or time.time() - t0 >= seconds:
                break
            if _size(cand.tree) > _size(best.tree) or (
                    _size(cand.tree) == _size(best.tree) and cand.text == best.text
                    and cand.symbols == best.symbols):
                continue
            tries += 1
            o = _same_failure(cand, out, seeds[:2])
            if o is not None:
                best, best_out = cand, o
                improved = True
                break
    return best, best_out


def _candidates(ex, gen):
    tree = ex.tree
    nodes = list(tree.walk())
    var = gen.syms[gen.var]

    def mk(t):
        gen.var = ex.wrt
        return example_from_tree(gen, t, ex.op)

    # whole subtrees by one of their children, or by a leaf of the same shape
    for n in nodes:
        if n.a.get("fixed"):
            continue
        for k in n.kids:
            if k.shape == n.shape and (n.req is None or k.req == n.req):
                yield mk(_replace(tree, n, k))
        if n.op in ("sym", "num"):
            continue
        leaves = []
        if n.shape == var.shape and gen.compatible(var, n.req):
            leaves.append(gen.symnode(gen.var, n.req))
        if is_scalar(n.shape):
            leaves.append(Node("num", (), SCALAR, text="2"))
        others = [s.name for s in gen.syms.values() if s.shape == n.shape and s.name != gen.var
                  and gen.compatible(s, n.req)]
        for name in others[:2]:
            leaves.append(gen.symnode(name, n.req))
        if n.shape[0] == () and n.shape[1] != ():
            leaves.append(Node("T", [gen.symnode(gen.pick_sym((n.shape[1], ()), n.req), n.req)],
                               n.shape, n.req, sp="^T"))
        elif not others:
            try:
                leaves.append(gen.symnode(gen.new_sym(n.shape, n.req, kind=None if n.shape[0] != n.shape[1]
                                                       or is_scalar(n.shape) or n.shape[1] == ()
                                                       else "spd" if n.req == "posdet" else "matrix"),
                                          n.req))
            except Exception:
                pass
        for leaf in leaves:
            yield mk(_replace(tree, n, leaf))
    # spellings to the plainest one
    plain = {"T": "^T", "inv": "^-1", "invT": "^-T", "det": "det", "logdet": "logdet", "tr": "tr",
             "had": " .* ", "kron": " ⊗ ", "mul": " "}
    for n in nodes:
        if n.op in plain and n.a.get("sp") not in (None, plain[n.op]):
            m = n.copy()
            m.a = dict(n.a, sp=plain[n.op])
            yield mk(_replace(tree, n, m))
        if n.a.get("paren") or n.a.get("chain") or n.a.get("space"):
            m = n.copy()
            m.a = {k: v for k, v in n.a.items() if k not in ("paren", "chain", "space")}
            yield mk(_replace(tree, n, m))
    # structured kinds to plain matrices
    for name in sorted(sym_names(tree)):
        s = gen.syms[name]
        if name != gen.var and s.kind in ("symmetric", "spd", "diagonal"):
            new = gen.new_sym(s.shape, kind="matrix")
            def swap(n, name=name, new=new):
                return n.op == "sym" and n.a["name"] == name
            t = tree
            for n in [n for n in t.walk() if swap(n)]:
                t = _replace(t, n, gen.symnode(new, n.req))
            yield mk(t)
