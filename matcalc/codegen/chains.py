"""Product chains: association by cost, and the factors that multiply without being formed.

A chain is a product of non-scalar factors.  :class:`Chain` associates it by dynamic
programming on estimated sizes (vectors first); a sub-product already computed, or its
transpose, costs nothing.  Past ``LONG_CHAIN`` factors the O(k³) search gives way to a
fold from the thin end.  With the optimisation ``chain_dp`` off, every chain is folded
left to right.

An operator factor is applied to what it multiplies instead of being formed:

* an inverse that only multiplies is a solve (``solve``; ``spd``: by Cholesky);
* ``diag(v) M`` is ``v[:, None] * M`` (``diag_broadcast``);
* a commutation matrix is a reshape (``commutation_reshape``);
* (A ⊗ B) vec(X) = vec(B X Aᵀ) (``kron_apply``);
* a row or column of ones is a sum (``sum_rowcol``);
* a sum of such operators, or of matrices where the distributed products are at hand,
  is applied term by term.
"""
import matcalc.codegen.ir as ir
from .lower_matfun import inverse_from_eigh
from .values import est, is_one, lit, rep_of, signed_sum
from .. import expr as E
from ..simplify import split_coef, transpose

LONG_CHAIN = 24          # longer chains are folded from the thin end, without the O(k³) search


class Chain:
    """A product of non-scalar factors, associated by cost."""

    def __init__(self, low, factors):
        self.low = low
        self.f = list(factors)
        self.k = len(self.f)
        self.kind = [factor_kind(low, x) for x in self.f]
        self.dp = {}
        self.keys = {}
        self.tkeys = {}
        self.tf = None                  # the factors transposed (for the keys' transposes)
        self.sums = [0]                 # sums[i]: how many of the first i factors are sums
        for f in self.f:
            self.sums.append(self.sums[-1] + isinstance(f, E.Add))
        self.odd = None                 # odd[i]: how many of the first i transposes are products
        # a chain of three or more factors has an order to choose
        self.search = low.opts("chain_dp") if self.k > 2 else low.opts.enabled("chain_dp")

    def rows(self, i):
        return self.f[i].shape[0]

    def cols(self, i):
        return self.f[i].shape[1]

    def key(self, i, j):
        k = self.keys.get((i, j))
        if k is None:
            k = E.Mul(tuple(self.f[i:j + 1]))
            self.keys[(i, j)] = k
        return k

    def tkey(self, i, j):
        """The transpose of key(i, j), as simplify.transpose gives it: the transposed
        factors reversed (built from the factors' transposes, computed once)."""
        k = self.tkeys.get((i, j))
        if k is None:
            self._transposes()
            if self.odd[j + 1] > self.odd[i]:
                k = transpose(self.key(i, j))
            else:
                k = E.Mul(tuple(reversed(self.tf[i:j + 1])))
            self.tkeys[(i, j)] = k
        return k

    def _transposes(self):
        if self.tf is None:
            self.tf = [transpose(f) for f in self.f]
            self.odd = [0]
            for t in self.tf:
                self.odd.append(self.odd[-1] + (isinstance(t, E.Mul) or t.is_scalar))

    def at_hand(self, i, j):
        """Whether the product of factors i..j (or its transpose) may be computed already:
        False only when no product with its ends is."""
        ends = self.low.memo.ends
        n = j - i + 1
        if (self.f[i], self.f[j], n) in ends:
            return True
        self._transposes()
        if self.odd[j + 1] > self.odd[i]:
            return True
        return (self.tf[j], self.tf[i], n) in ends

    def known(self, i, j):
        if not self.at_hand(i, j):
            return self.sums[j + 1] > self.sums[i] and self.low.lookup_negated(self.f[i:j + 1]) is not None
        return self.low.lookup(self.key(i, j), self.tkey(i, j)) is not None or \
            (self.sums[j + 1] > self.sums[i] and self.low.lookup_negated(self.f[i:j + 1]) is not None)

    def side_kind(self, i, j):
        return self.kind[i] if i == j else "dense"

    def comb_cost(self, i, s, j):
        lk, rk = self.side_kind(i, s), self.side_kind(s + 1, j)
        r, m, c = est(self.rows(i)), est(self.cols(s)), est(self.cols(j))
        low = self.low
        if lk == "dense" and rk == "dense":
            return r * m * c + r * c
        if rk == "dense":
            return op_cost(low, self.f[i], c, self.key(s + 1, j) if s + 1 < j else self.f[j], "left")
        if lk == "dense":
            return op_cost(low, self.f[j], r, self.key(i, s) if i < s else self.f[i], "right")
        return min(materialize_cost(low, self.f[j]) + op_cost(low, self.f[i], c),
                   materialize_cost(low, self.f[i]) + op_cost(low, self.f[j], r))

    def cost(self, i, j):
        """(cost, split) of the product of factors i..j."""
        hit = self.dp.get((i, j))
        if hit is not None:
            return hit
        if i == j or self.known(i, j):
            out = (0.0, None)
        elif not self.search:
            s = j - 1
            out = (self.cost(i, s)[0] + self.cost(s + 1, j)[0] + self.comb_cost(i, s, j), s)
        elif self.k > LONG_CHAIN:
            # fold from the thin end: right to left when the chain ends in a column
            if self.cols(self.k - 1) == 1 and self.rows(0) != 1:
                s = i
            else:
                s = j - 1
            out = (self.cost(i, s)[0] + self.cost(s + 1, j)[0] + self.comb_cost(i, s, j), s)
        else:
            best = None
            for s in range(i, j):
                left = 0.0 if self.mirrored(i, s, j) else self.cost(i, s)[0]
                c = left + self.cost(s + 1, j)[0] + self.comb_cost(i, s, j)
                if best is None or c < best[0] - 1e-9:
                    best = (c, s)
            out = best
        self.dp[(i, j)] = out
        return out

    def mirrored(self, i, s, j):
        """Whether factors i..s are the transpose of factors s+1..j (xᵀAᵀ and A x):
        the left side is then free once the right one is computed."""
        if s - i != j - s - 1 or self.kind[i] != "dense" or self.kind[j] != "dense":
            return False
        if i == s:
            return transpose(self.f[i]) == self.f[j]
        return transpose(self.key(s + 1, j)) == self.key(i, s)

    def item(self, i):
        if self.kind[i] == "dense":
            return ("dense", self.low.ev(self.f[i]), self.f[i])
        return ("op", self.f[i], self.f[i])

    def lower(self, i, j):
        """('dense', V, node) or ('op', factor, node) for the product of factors i..j."""
        if i == j:
            return self.item(i)
        low = self.low
        key = self.key(i, j)
        hit = low.lookup(key, self.tkey(i, j)) if self.at_hand(i, j) else None
        if hit is not None:
            return ("dense", hit, key)
        neg = low.lookup_negated(self.f[i:j + 1]) if self.sums[j + 1] > self.sums[i] else None
        if neg is not None:
            v = low.emit(ir.Neg(neg.code), neg.rep, (self.rows(i), self.cols(j)), key)
            low.memo[key] = v
            return ("dense", v, key)
        if self.search and self.k > LONG_CHAIN:
            return self.lower_long(i, j, key)
        s = self.cost(i, j)[1]
        if self.mirrored(i, s, j):
            right = self.lower(s + 1, j)
            lkey = self.key(i, s) if i < s else self.f[i]
            hit = low.lookup(lkey)
            if hit is None:
                hit = low.T(right[1])
                low.memo[lkey] = hit
            left = ("dense", hit, lkey)
        else:
            left, right = self.lower(i, s), self.lower(s + 1, j)
        v = combine(low, left, right, key)
        low.memo[key] = v
        return ("dense", v, key)

    # -- long chains: known blocks, then folds that grow from them -------------

    def known_block(self, a, b, from_left):
        """The far end of the longest product already at hand that starts at factor a
        (from_left) or ends at factor b, within a..b and of two factors or more (None:
        none is).  Only the lengths of the products the memo holds with that end factor
        are tried, longest first."""
        memo = self.low.memo
        self._transposes()
        if from_left:
            lengths = memo.by_first.get(self.f[a], set()) | memo.by_last.get(self.tf[a], set())
        else:
            lengths = memo.by_last.get(self.f[b], set()) | memo.by_first.get(self.tf[b], set())
        top = b - a + 1
        for n in sorted((n for n in lengths if 2 <= n <= top), reverse=True):
            i, j = (a, a + n - 1) if from_left else (b - n + 1, b)
            if self.at_hand(i, j) and self.known(i, j):
                return j if from_left else i
        return None

    def lower_long(self, i, j, key):
        """The product of factors i..j of a long chain, without the O(k³) search: the
        longest product at hand at either end is taken whole, and the rest is folded
        from the side next to it, so that the products it makes on the way (each one
        memoised) are the ones the next terms of a sum of rotations meet at their ends.
        Linear in the chain for tr(A1 X … Ak X) and its gradient."""
        low = self.low
        q = self.known_block(i, j - 1, True)
        p = self.known_block(i + 1, j, False)
        lp = 0 if q is None else q - i + 1
        lq = 0 if p is None else j - p + 1
        if lp == 0 and lq == 0:
            # fold from the thin end: right to left when the chain ends in a column
            return self.fold(i, j, not (self.cols(j) == 1 and self.rows(i) != 1), key)
        if lp >= lq:
            left, right = self.lower(i, q), self.fold(q + 1, j, True)
        else:
            left, right = self.fold(i, p - 1, False), self.lower(p, j)
        v = combine(low, left, right, key)
        low.memo[key] = v
        return ("dense", v, key)

    def fold(self, a, b, from_left, key=None):
        """The product of factors a..b accumulated from one end (from_left: a first),
        each step taking the longest product at hand that follows, else one factor;
        every product accumulated is memoised."""
        if a == b:
            return self.item(a)
        low = self.low
        if key is None:
            key = self.key(a, b)
            hit = low.lookup(key, self.tkey(a, b)) if self.at_hand(a, b) else None
            if hit is not None:
                return ("dense", hit, key)
        c = a if from_left else b
        acc = self.item(c)
        while (c < b) if from_left else (c > a):
            if from_left:
                e = self.known_block(c + 1, b, True) or c + 1
                piece = self.lower(c + 1, e)
                lo, hi = a, e
            else:
                e = self.known_block(a, c - 1, False)
                e = c - 1 if e is None else e
                piece = self.lower(e, c - 1)
                lo, hi = e, b
            k = key if (lo, hi) == (a, b) else self.key(lo, hi)
            hit = low.lookup(k, self.tkey(lo, hi)) if self.at_hand(lo, hi) else None
            if hit is None:
                hit = combine(low, acc, piece, k) if from_left else combine(low, piece, acc, k)
                low.memo[k] = hit
            acc = ("dense", hit, k)
            c = e
        return acc

    def value(self):
        kind, v, _ = self.lower(0, self.k - 1)
        return v if kind == "dense" else self.low.ev(v)


# ----------------------------------------------------------------------------- operator factors


def factor_kind(low, f):
    """How a chain factor is applied: "dense" (formed and multiplied) or an operator."""
    on = low.opts.enabled
    if on("solve") and isinstance(f, E.Inverse) and not f.is_scalar and low.inv_base(f) not in low.inv_mat \
            and not (on("eigh_inverse") and inverse_from_eigh(f)):
        return "inv"
    if on("diag_broadcast") and isinstance(f, E.DiagMat) and not f.arg.is_scalar:
        return "diag"
    if on("kron_apply") and isinstance(f, E.Kron) and _kron_ok(f):
        return "kron"
    if on("commutation_reshape") and isinstance(f, E.Commutation):
        return "perm"
    if on("sum_rowcol") and isinstance(f, E.Fill) and (f.rows == 1 or f.cols == 1) and not f.is_scalar:
        return "fill"
    if isinstance(f, E.Add) and _opsum_ok(low, f):
        return "opsum"
    if isinstance(f, E.Add) and rep_of(f.shape) == "M" and all(
            split_coef(t)[1] is not None and not isinstance(t, (E.Fill, E.Zero)) for t in f.items):
        return "dsum"
    return "dense"


def _kron_ok(f):
    return len(f.items) == 2 and all(isinstance(a, E.Identity) or rep_of(a.shape) == "M" for a in f.items)


def _opsum_ok(low, f):
    ok = False
    for t in f.items:
        c, rest = split_coef(t)
        if rest is None:
            return False
        if isinstance(rest, E.Identity):
            continue
        if factor_kind(low, rest) not in ("diag", "kron", "perm"):
            return False
        ok = True
    return ok


def dsum_costs(low, f, other, node=None, side="left"):
    """(distributed, formed) costs of a sum of matrices times an array with `other`
    columns: sum of the products (a product already at hand is free), or the sum formed
    first (free if at hand) and multiplied once."""
    n, m = est(f.shape[0]), est(f.shape[1])
    dist = 0.0
    for t in f.items:
        rest = split_coef(t)[1]
        if isinstance(rest, E.Identity):
            dist += n * other
            continue
        if node is not None:
            sub = E.Mul((rest, node)) if side == "left" else E.Mul((node, rest))
            if low.lookup(sub) is not None:
                dist += n * other
                continue
        dist += n * m * other + n * other
    formed = n * m * other + (0.0 if low.lookup(f) is not None else n * m * len(f.items) * 1.5)
    return dist, formed


def op_cost(low, f, other, node=None, side="left"):
    """Cost of applying operator factor f to an array with `other` columns (or rows)."""
    n = est(f.shape[0])
    m = est(f.shape[1])
    kind = factor_kind(low, f)
    if kind == "dsum":
        return min(dsum_costs(low, f, other, node, side))
    if kind == "inv":
        return (2.0 / 3.0) * n ** 3 + 2 * n * n * other
    if kind in ("diag", "perm", "fill"):
        return n * other + m * other
    if kind == "kron":
        A, B = f.items
        pa, qa = est(A.shape[0]), est(A.shape[1])
        pb, qb = est(B.shape[0]), est(B.shape[1])
        c = 0.0 if isinstance(A, E.Identity) else pa * qa * qb * other
        c += 0.0 if isinstance(B, E.Identity) else pa * pb * qb * other
        return c + pa * pb * other
    if kind == "opsum":
        total = 0.0
        for t in f.items:
            rest = split_coef(t)[1]
            total += n * other if isinstance(rest, E.Identity) else op_cost(low, rest, other)
            total += n * other
        return total
    return n * m * other


def materialize_cost(low, f):
    n, m = est(f.shape[0]), est(f.shape[1])
    kind = factor_kind(low, f)
    if kind == "inv":
        return 2 * n ** 3
    if kind == "dsum":
        return 0.0 if low.lookup(f) is not None else n * m * len(f.items)
    return n * m


def matmul(low, a, b, key):
    shape = (a.shape[0], b.shape[1])
    rep = rep_of(shape)
    if a.rep == "S" or b.rep == "S":
        return low.emit(ir.Bin("*", a.code, b.code), rep, shape, key)
    if a.shape[1] == 1:
        return low.emit(low.B.call("outer", a.code, b.code), rep, shape, key)
    # Aᵀ x as x @ A (and yᵀ Bᵀ as B @ y): XLA copies a transposed operand first
    if b.rep == "V" and a.rep == "M" and ir.is_transposed_name(a.code):
        return low.emit(ir.Bin("@", b.code, a.code.obj), rep, shape, key)
    if a.rep == "V" and b.rep == "M" and ir.is_transposed_name(b.code):
        return low.emit(ir.Bin("@", b.code.obj, a.code), rep, shape, key)
    return low.emit(ir.Bin("@", a.code, b.code), rep, shape, key)


def combine(low, left, right, key):
    lk, lv, lnode = left
    rk, rv, rnode = right
    if lk == "dense" and rk == "dense":
        return matmul(low, lv, rv, key)
    if lk == "op" and rk == "dense":
        out = apply_left(low, lv, rv, key, rnode)
        return out if out is not None else matmul(low, low.ev(lv), rv, key)
    if lk == "dense":
        out = apply_right(low, rv, lv, key, lnode)
        return out if out is not None else matmul(low, lv, low.ev(rv), key)
    # two operators: form the one whose forming and applying the other costs less
    r, c = est(lv.shape[0]), est(rv.shape[1])
    if materialize_cost(low, lv) + op_cost(low, rv, r) < materialize_cost(low, rv) + op_cost(low, lv, c):
        lmat = low.ev(lv)
        out = apply_right(low, rv, lmat, key, lv)
        return out if out is not None else matmul(low, lmat, low.ev(rv), key)
    rmat = low.ev(rv)
    out = apply_left(low, lv, rmat, key, rv)
    return out if out is not None else matmul(low, low.ev(lv), rmat, key)


def _reshape(x, *dims):
    return ir.Method(x, "reshape", tuple(dims))


def _T(x):
    """x.T, and a for a.T."""
    return x.obj if isinstance(x, ir.Attr) and x.attr == "T" else ir.Attr(x, "T")


def _mul(a, b):
    return ir.Bin("*", a, b)


MINUS1 = ir.Const("-1")


def apply_left(low, f, r, key, rnode=None):
    """f @ r for an operator factor f and a lowered array r (None: not handled)."""
    shape = (f.shape[0], r.shape[1])
    rep = rep_of(shape)
    kind = factor_kind(low, f)
    if r.rep == "S":
        return None
    B = low.B
    if kind == "inv":
        low.opts("solve")
        a = low.ev(f.arg)
        if _spd(f.arg) and low.opts("spd"):
            return low.emit(B.spd_solve(a.code, r.code), rep, shape, key)
        return low.emit(B.solve(a.code, r.code), rep, shape, key)
    if kind == "diag":
        low.opts("diag_broadcast")
        v = low.ev(f.arg)
        if r.rep == "V":
            return low.emit(_mul(v.code, r.code), rep, shape, key)
        return low.emit(_mul(ir.Index(v.code, (ir.Slice(), ir.Const("None"))), r.code), rep, shape, key)
    if kind == "perm":
        low.opts("commutation_reshape")
        m, n = low.size(f.m), low.size(f.n)
        if r.rep == "V":
            return low.emit(_reshape(ir.Attr(_reshape(r.code, n, m), "T"), MINUS1), rep, shape, key)
        c = low.size(r.shape[1])
        return low.emit(_reshape(B.call("swapaxes", _reshape(r.code, n, m, c), ir.Const("0"), ir.Const("1")),
                                 _mul(m, n), c), rep, shape, key)
    if kind == "kron":
        low.opts("kron_apply")
        return kron_apply(low, f.items[0], f.items[1], r, shape, key)
    if kind == "dsum":
        return dsum_apply(low, f, r, key, rnode, "left")
    if kind == "fill":
        v = low.ev(f.value)
        if f.rows == 1:
            low.opts("sum_rowcol")
            s = B.call("sum", r.code) if r.rep == "V" else B.sum_axis(r.code, 0)
            return low.emit(s if is_one(f.value) else _mul(v.code, s), rep, shape, key)
        return None
    if kind == "opsum":
        return opsum_apply(low, f, r, rnode, "left", rep, shape, key)
    return None


def apply_right(low, f, l, key, lnode=None):
    """l @ f for an operator factor f and a lowered array l (None: not handled)."""
    shape = (l.shape[0], f.shape[1])
    rep = rep_of(shape)
    kind = factor_kind(low, f)
    if l.rep == "S":
        return None
    B = low.B
    if kind == "inv":
        low.opts("solve")
        a = low.ev(transpose(f.arg))
        solve = B.spd_solve if (_spd(f.arg) and low.opts("spd")) else B.solve
        if l.rep == "V":
            return low.emit(solve(a.code, l.code), rep, shape, key)
        return low.emit(_T(solve(a.code, _T(l.code))), rep, shape, key)
    if kind == "diag":
        low.opts("diag_broadcast")
        v = low.ev(f.arg)
        return low.emit(_mul(l.code, v.code), rep, shape, key)
    if kind == "dsum":
        return dsum_apply(low, f, l, key, lnode, "right")
    if kind == "perm":
        low.opts("commutation_reshape")
        m, n = low.size(f.m), low.size(f.n)
        if l.rep == "V":
            return low.emit(_reshape(ir.Attr(_reshape(l.code, m, n), "T"), MINUS1), rep, shape, key)
        r = low.size(l.shape[0])
        return low.emit(_reshape(B.call("swapaxes", _reshape(l.code, r, m, n), ir.Const("1"), ir.Const("2")),
                                 r, _mul(m, n)), rep, shape, key)
    if kind == "kron":
        low.opts("kron_apply")
        A, Bk = f.items
        At, Bt = low.intern(transpose(A)), low.intern(transpose(Bk))
        if l.rep == "V":
            return kron_apply(low, At, Bt, l, shape, key)
        out = kron_apply(low, At, Bt, low.T(l), (shape[1], shape[0]), None)
        return low.emit(_T(out.code), rep, shape, key)
    if kind == "fill":
        v = low.ev(f.value)
        if f.cols == 1:
            low.opts("sum_rowcol")
            s = B.call("sum", l.code) if l.rep == "V" else B.sum_axis(l.code, 1)
            return low.emit(s if is_one(f.value) else _mul(v.code, s), rep, shape, key)
        return None
    if kind == "opsum":
        return opsum_apply(low, f, l, lnode, "right", rep, shape, key)
    return None


def _spd(a):
    return isinstance(a, E.Sym) and a.kind == "spd"


def perm_sum_terms(low, f):
    """(c₁, c₂, K) where the operator sum f is c₁ I + c₂ K(m,n) (K a commutation matrix)
    and the target applies it in one pass (``perm_sum``), else None."""
    if not (isinstance(f, E.Add) and len(f.items) == 2 and low.opts.enabled("perm_sum")
            and low.B.spells("perm_sum")):
        return None
    found = {}
    for t in f.items:
        c, rest = split_coef(t)
        key = "I" if isinstance(rest, E.Identity) else "K" if isinstance(rest, E.Commutation) else None
        if key is None or key in found:
            return None
        found[key] = (c, rest)
    if set(found) != {"I", "K"} or factor_kind(low, found["K"][1]) != "perm":
        return None
    return found["I"][0], found["K"][0], found["K"][1]


def opsum_apply(low, f, x, xnode, side, rep, shape, key):
    """(Σ c_k T_k) x or x (Σ c_k T_k) for a sum of operators: each term applied on its
    own (reusing a product already computed), then summed; (c₁ I + c₂ K) x and
    x (c₁ I + c₂ K) of a matrix x in one pass (``perm_sum``)."""
    terms = perm_sum_terms(low, f) if x.rep == "M" else None
    if terms is not None:
        c1, c2, K = terms
        low.opts("perm_sum")
        return low.emit(low.B.perm_sum(x.code, lit(c1), lit(c2), low.size(K.m), low.size(K.n),
                                       right=side == "right"), rep, shape, key)
    apply = apply_left if side == "left" else apply_right
    parts = []
    for t in f.items:
        c, rest = split_coef(t)
        if isinstance(rest, E.Identity):
            code = x.code
        else:
            sub = None
            if xnode is not None:
                sub = low.intern(E.Mul((rest, xnode) if side == "left" else (xnode, rest)))
            hit = low.lookup(sub) if sub is not None else None
            if hit is None:
                hit = apply(low, rest, x, sub, None)
                if sub is not None:
                    low.memo[sub] = hit
            code = hit.code
        parts.append((c, code))
    return low.emit(signed_sum(parts), rep, shape, key)


def dsum_apply(low, f, x, key, node, side):
    """(A + B) x as A x + B x where that is cheaper (None: form the sum)."""
    other = est(x.shape[1] if side == "left" else x.shape[0])
    dist, formed = dsum_costs(low, f, other, node, side)
    if formed <= dist or node is None:
        return None
    parts = []
    for t in f.items:
        c, rest = split_coef(t)
        if isinstance(rest, E.Identity):        # I x is x
            parts.append((c, x.code))
            continue
        sub = low.intern(E.Mul((rest, node)) if side == "left" else E.Mul((node, rest)))
        hit = low.lookup(sub)
        if hit is None:
            m = low.ev(rest)
            hit = matmul(low, m, x, sub) if side == "left" else matmul(low, x, m, sub)
            low.memo[sub] = hit
        parts.append((c, hit.code))
    shape = (f.shape[0], x.shape[1]) if side == "left" else (x.shape[0], f.shape[1])
    return low.emit(signed_sum(parts), rep_of(shape), shape, key)


def kron_apply(low, A, B, r, shape, key):
    """(A ⊗ B) r without forming A ⊗ B: (A ⊗ B) vec(X) = vec(B X Aᵀ)."""
    pa, qa = low.size(A.shape[0]), low.size(A.shape[1])
    pb, qb = low.size(B.shape[0]), low.size(B.shape[1])
    a = None if isinstance(A, E.Identity) else low.ev(A)
    b = None if isinstance(B, E.Identity) else low.ev(B)
    rep = rep_of(shape)
    if r.rep == "V":
        x = _reshape(r.code, qa, qb)
        if a is not None:
            x = ir.Bin("@", a.code, x)
        if b is not None:
            x = ir.Bin("@", x, low.T(b).code)
        return low.emit(_reshape(x, MINUS1), rep, shape, key)
    c = low.size(r.shape[1])
    if a is not None:
        t = low.emit(_reshape(ir.Bin("@", a.code, _reshape(r.code, qa, _mul(qb, c))), pa, qb, c),
                     "M", shape, None, comment="(A ⊗ B) R: A applied")
        x = t.code
    else:
        x = _reshape(r.code, qa, qb, c)
    if b is not None:
        x = ir.Bin("@", b.code, x)
    return low.emit(_reshape(x, _mul(pa, pb), c), rep, shape, key)


def flatten_chain(low, items, scal):
    """Chain factors of a product: nested products flattened (their scalars moved to
    scal), identities dropped, small matrix powers unrolled, inverse transposes
    normalised, and Kronecker / commutation / diag(vec) products with vec(X) rewritten
    to the vec of a smaller product."""
    out = []
    for f in items:
        if f.is_scalar:
            scal.append(f)
        elif isinstance(f, E.Mul):
            out.extend(flatten_chain(low, f.items, scal))
        elif isinstance(f, E.Identity):
            continue
        elif isinstance(f, E.MatPow) and f.k <= 4:
            out.extend([low.intern(f.arg)] * f.k)
        elif isinstance(f, E.Transpose) and isinstance(f.arg, E.Inverse):
            out.append(low.intern(E.Inverse(transpose(f.arg.arg))))
        elif isinstance(f, E.Transpose) and isinstance(f.arg, E.Mul):
            out.extend(flatten_chain(low, (transpose(f.arg),), scal))
        else:
            out.append(f)
    return _vec_rewrites(low, out)


def _vec_rewrite(low, a, b):
    """The product a b of two adjacent factors as the vec of a smaller product, or None."""
    on = low.opts.enabled
    if isinstance(b, E.Vec) and not b.arg.is_scalar:
        X = b.arg
        if isinstance(a, E.Kron) and len(a.items) == 2 and on("kron_apply"):
            A, B = a.items
            if (A.shape[1], B.shape[1]) == (X.shape[1], X.shape[0]):
                low.opts("kron_apply")
                return E.Vec(E.Mul((B, X, transpose(A))))
        elif isinstance(a, E.Commutation) and (a.m, a.n) == X.shape and on("commutation_reshape"):
            low.opts("commutation_reshape")
            return E.Vec(transpose(X))
        elif isinstance(a, E.DiagMat) and isinstance(a.arg, E.Vec) and a.arg.arg.shape == X.shape \
                and on("diag_broadcast"):
            low.opts("diag_broadcast")
            return E.Vec(E.Hadamard((a.arg.arg, X)))
    elif isinstance(a, E.Transpose) and isinstance(a.arg, E.Vec) and not a.arg.arg.is_scalar:
        X = a.arg.arg
        if isinstance(b, E.Kron) and len(b.items) == 2 and on("kron_apply"):
            A, B = b.items
            if (A.shape[0], B.shape[0]) == (X.shape[1], X.shape[0]):
                low.opts("kron_apply")
                return E.Transpose(E.Vec(E.Mul((transpose(B), X, A))))
        elif isinstance(b, E.Commutation) and (b.n, b.m) == X.shape and on("commutation_reshape"):
            low.opts("commutation_reshape")
            return E.Transpose(E.Vec(transpose(X)))
    return None


def _times(a, b):
    """The product a b as a node (an identity factor dropped)."""
    if isinstance(a, E.Identity):
        return b
    if isinstance(b, E.Identity):
        return a
    return E.Mul((a, b))


def _kron_pair(f):
    return isinstance(f, E.Kron) and len(f.items) == 2 and not any(t.is_scalar for t in f.items)


def _kron_product(low, a, b):
    """The product a b of two adjacent factors, one of them a Kronecker product, as one
    Kronecker product of smaller products by the mixed-product property
    (``kron_mixed_product``), or None:

        (A ⊗ B)(C ⊗ D) = AC ⊗ BD              (A's columns C's rows, B's columns D's rows)
        (a ⊗ B) M = a ⊗ BM,  (A ⊗ b) M = AM ⊗ b     (a, b with one column: M = 1 ⊗ M)
        M (cᵀ ⊗ D) = cᵀ ⊗ MD,  M (C ⊗ dᵀ) = MC ⊗ dᵀ  (cᵀ, dᵀ with one row)

    so (x ⊗ I) M (xᵀ ⊗ I), the Hessian of f(W x) in W, is (x xᵀ) ⊗ M: no product of
    n² × n matrices, and no Kronecker product formed to be multiplied."""
    ka, kb = _kron_pair(a), _kron_pair(b)
    if not (ka or kb) or a.is_scalar or b.is_scalar or not low.opts.enabled("kron_mixed_product"):
        return None
    new = None
    if ka and kb:
        (A, B), (C, D) = a.items, b.items
        if A.shape[1] == C.shape[0] and B.shape[1] == D.shape[0]:
            new = E.Kron((_times(A, C), _times(B, D)))
    elif ka:
        A, B = a.items
        if A.shape[1] == 1 and B.shape[1] == b.shape[0]:
            new = E.Kron((A, _times(B, b)))
        elif B.shape[1] == 1 and A.shape[1] == b.shape[0]:
            new = E.Kron((_times(A, b), B))
    else:
        C, D = b.items
        if C.shape[0] == 1 and a.shape[1] == D.shape[0]:
            new = E.Kron((C, _times(a, D)))
        elif D.shape[0] == 1 and a.shape[1] == C.shape[0]:
            new = E.Kron((_times(a, C), D))
    if new is not None:
        low.opts("kron_mixed_product")
    return new


def _vec_rewrites(low, fs):
    """Apply _vec_rewrite and _kron_product to adjacent pairs until none applies (a
    stack: each factor is pushed once and each rewrite shortens the chain, so linear in
    the chain)."""
    out = []
    for f in fs:
        out.append(f)
        while len(out) > 1:
            new = _vec_rewrite(low, out[-2], out[-1])
            if new is None:
                new = _kron_product(low, out[-2], out[-1])
            if new is None:
                break
            out[-2:] = [low.intern(new)]
    return out
