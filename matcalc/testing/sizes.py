"""What an expression itself requires of its sizes, read from the fuzzer's tree, and
random sizes that a new user may choose under those requirements."""
import math
import re

from .tree import is_scalar


# ============================================================================ the new user
#
# A user picks sizes for the symbols knowing only what the expression requires: vec(A)ᵀ
# vec(B) needs A and B to have as many entries, not one shape.  This module reads those
# requirements from its own tree (never from matcalc.shapes): every dimension is a
# monomial over size unknowns, each operation adds equations between monomials, and a
# random solution gives each symbol its sizes.  The engine must accept values of those
# sizes (else "valid values rejected"), its answers there must be right, and their
# printed forms must read back.

class Dims:
    """Size unknowns and the equations between monomials (coef, (unknown, ...))."""

    def __init__(self):
        self.count = 0
        self.named = {}          # a size name the user wrote -> its unknown
        self.eqs = []

    def fresh(self):
        self.count += 1
        return (1, (self.count,))

    def name(self, text):
        text = text.strip()
        if text.isdigit():
            return (int(text), ())
        if text not in self.named:
            self.named[text] = self.fresh()
        return self.named[text]

    def eq(self, a, b):
        if a != b:
            self.eqs.append((a, b))


ONE = (1, ())


def mono_mul(a, b):
    return (a[0] * b[0], tuple(sorted(a[1] + b[1])))


def _decl_dims(dims, decl, kind):
    """(rows, cols) monomials of a symbol from its declaration (None: undeclared)."""
    sizes = []
    if decl:
        m = re.fullmatch(r"\s*(\w+)\s*(?:\((.*)\))?\s*", decl)
        if m.group(2):
            sizes = [dims.name(s) for s in m.group(2).split(",")]
    if kind == "scalar":
        return ONE, ONE
    if kind == "vector":
        return (sizes[0] if sizes else dims.fresh()), ONE
    if kind == "matrix":
        return tuple(sizes) if len(sizes) == 2 else (dims.fresh(), dims.fresh())
    n = sizes[0] if sizes else dims.fresh()
    return n, n


def _size_args(text):
    """'I(3)' -> ['3'], 'K(m,n)' -> ['m', 'n'], 'I' -> []."""
    inner = text.partition("(")[2].rstrip(")")
    return [s for s in inner.split(",") if s.strip()]


def requirements(ex):
    """(Dims, node shapes, symbol shapes) for the example's tree: what the expression
    itself requires of the sizes, as read from this module's tree."""
    dims = Dims()
    syms = {}
    for name, (kind, _) in ex.shapes.items():
        syms[name] = _decl_dims(dims, ex.symbols.get(name), kind)
    shapes = {}

    def sc(n):
        return is_scalar(n.shape)

    def go(n):
        if id(n) in shapes:
            return shapes[id(n)]
        ks = [go(k) for k in n.kids]
        op, a = n.op, n.a
        if op == "sym":
            out = syms[a["name"]]
        elif op == "num":
            out = (ONE, ONE)
        elif op in ("I", "In"):
            args = _size_args(a.get("text", "I"))
            s = dims.name(args[0]) if args else dims.fresh()
            out = (s, s)
        elif op == "K":
            m, k = (dims.name(t) for t in _size_args(a["text"]))
            s = mono_mul(m, k)
            out = (s, s)
            shapes[("K", id(n))] = (m, k)
        elif op in ("add", "had", "ediv"):
            x, y = n.kids
            if sc(x) and not sc(y):
                out = ks[1]
            elif sc(y) and not sc(x):
                out = ks[0]
            else:
                dims.eq(ks[0][0], ks[1][0])
                dims.eq(ks[0][1], ks[1][1])
                out = ks[0]
        elif op in ("neg", "func", "div"):
            out = ks[0]
        elif op == "mul":
            x, y = n.kids
            if sc(x):
                out = ks[1] if not sc(y) else (ONE, ONE)
            elif sc(y):
                out = ks[0]
            else:
                dims.eq(ks[0][1], ks[1][0])
                out = (ks[0][0], ks[1][1])
        elif op == "kron":
            out = (mono_mul(ks[0][0], ks[1][0]), mono_mul(ks[0][1], ks[1][1]))
        elif op == "T":
            out = (ks[0][1], ks[0][0])
        elif op in ("inv", "invT", "mpow", "mfunc"):
            dims.eq(ks[0][0], ks[0][1])
            out = ks[0]
        elif op == "frechet":               # dexpm(X, E): X square, E of X's shape
            dims.eq(ks[0][0], ks[0][1])
            dims.eq(ks[0][0], ks[1][0])
            dims.eq(ks[0][1], ks[1][1])
            out = ks[0]
        elif op in ("det", "logdet", "tr"):
            if not sc(n.kids[0]):
                dims.eq(ks[0][0], ks[0][1])
            out = (ONE, ONE)
        elif op in ("sum", "norm", "specnorm", "absbar", "spow", "nuclear", "norm1"):
            out = (ONE, ONE)
        elif op == "lambda":                # of a square (symmetric) matrix
            dims.eq(ks[0][0], ks[0][1])
            out = (ONE, ONE)
        elif op == "afunc":                 # softmax(column) is a column; logsumexp a scalar
            if n.a["name"] == "softmax":
                dims.eq(ks[0][1], ONE)
                out = ks[0]
            else:
                out = (ONE, ONE)
        elif op == "epow":
            out = ks[0]
        elif op == "vec":
            out = (mono_mul(ks[0][0], ks[0][1]), ONE)
        elif op == "diagm":
            out = (ks[0][0], ks[0][0])
        elif op == "diagv":
            dims.eq(ks[0][0], ks[0][1])
            out = (ks[0][0], ONE)
        else:
            raise AssertionError(op)
        if n.req in ("inv", "posdet") and not sc(n):
            # the domain: what must be invertible is square (and so is each factor of a
            # product that the generator made invertible factor by factor)
            dims.eq(out[0], out[1])
        shapes[id(n)] = out
        return out
    go(ex.tree)
    return dims, shapes, syms


def solve_sizes(dims, rng, choices=(2, 3, 4, 5), tries=60):
    """A random assignment {unknown: size >= 2} satisfying every equation (None if the
    random search finds none)."""
    unknowns = list(range(1, dims.count + 1))
    for _ in range(tries):
        val = {}
        ok = True
        while ok:
            progress = False
            for a, b in dims.eqs:
                free = [u for u in a[1] + b[1] if u not in val]
                if len(set(free)) != 1:
                    continue
                u = free[0]
                # coefA * prod(A) = coefB * prod(B), u appearing ka times in A, kb in B
                ka, kb = a[1].count(u), b[1].count(u)
                pa = a[0] * math.prod(val[x] for x in a[1] if x != u)
                pb = b[0] * math.prod(val[x] for x in b[1] if x != u)
                k = ka - kb
                if k == 0:
                    if pa != pb:
                        ok = False
                        break
                    continue
                num, den = (pb, pa) if k > 0 else (pa, pb)
                if num % den:
                    ok = False
                    break
                q = num // den
                r = int(round(q ** (1.0 / abs(k))))
                if r < 2 or r ** abs(k) != q:
                    ok = False
                    break
                val[u] = r
                progress = True
            if not ok:
                break
            if progress:
                continue
            free = [u for u in unknowns if u not in val]
            if not free:
                break
            val[free[int(rng.integers(len(free)))]] = int(rng.choice(choices))
        if not ok:
            continue
        if all(_mono(a, val) == _mono(b, val) for a, b in dims.eqs):
            return val
    return None


def _mono(m, val):
    out = m[0]
    for u in m[1]:
        out *= val[u]
    return out


class Sizes:
    """The concrete sizes of a solution, for this module's evaluator: I's side and K's
    (m, n) by node."""

    def __init__(self, shapes, val):
        self.shapes, self.val = shapes, val

    def rows(self, n):
        return _mono(self.shapes[id(n)][0], self.val)

    def K(self, n):
        m, k = self.shapes[("K", id(n))]
        return _mono(m, self.val), _mono(k, self.val)


def new_user_shapes(ex, rng):
    """(symbol shapes {name: (kind, (rows, cols))}, Sizes) that a user may choose, drawn
    from the expression's own requirements; None when it has no freedom (every size
    fixed by declarations) or no solution was found."""
    if ex.tree is None:
        return None
    dims, shapes, syms = requirements(ex)
    if dims.count == 0:
        return None
    val = solve_sizes(dims, rng)
    if val is None:
        return None
    out = {}
    for name, (kind, _) in ex.shapes.items():
        r, c = syms[name]
        out[name] = (kind, (_mono(r, val), _mono(c, val)))
    return out, Sizes(shapes, val)
