"""The simplifier: canonical builders, one per node type, applied bottom-up.

``simplify(e)`` rebuilds e from the leaves with ``BUILDERS[type](node, args)``; each
builder assumes its arguments are canonical and returns a canonical node.  The rules
each builder applies are listed in its docstring; the main ones:

* transposes pushed in: (AB)ᵀ = BᵀAᵀ, (A + B)ᵀ = Aᵀ + Bᵀ, (X⁻¹)ᵀ = X⁻ᵀ, Aᵀ = A for a
  symmetric A or a scalar, (f(A))ᵀ = f(Aᵀ) elementwise  (``transpose``);
* products: numbers multiplied into one coefficient in front, scalar factors gathered
  in front with their powers merged (s s⁻¹ = 1), identities dropped, X X⁻¹ = I,
  Xᵃ Xᵇ = Xᵃ⁺ᵇ, zeros absorbing  (``mul``);
* sums: flattened, zeros dropped, like terms collected, common factors pulled out
  ((A + Aᵀ) X rather than A X + Aᵀ X; c (A + B)), terms in a canonical order  (``add``);
* traces of 1×1 products dropped and products rotated to a scalar (tr(a xᵀ) = xᵀ a),
  tr(Aᵀ) = tr(A), scalars out of traces, sums, Hadamard and Kronecker products.

``tidy(e)`` is the last, presentational pass: it pulls transposes back out where that
is shorter (Aᵀ Bᵀ → (B A)ᵀ) and moves a minus sign into a difference
(−2 X (y − Xᵀw) → 2 X (Xᵀw − y)).  It never changes the value.
"""
import functools
from fractions import Fraction

from . import expr as E
from .budget import SimplifyCounter
from .operators import ELEMENTWISE_RECORDS


def _unsupported(what):
    from .errors import UnsupportedError
    return UnsupportedError(what)

# ---------------------------------------------------------------------------- ordering

_RANK = {t: i for i, t in enumerate((
    E.Num, E.Sym, E.Diff, E.Identity, E.Commutation, E.Zero, E.Fill, E.Transpose, E.Inverse,
    E.MatPow, E.Pow, E.Func, E.ArrayFunc, E.Trace, E.Det, E.LogDet, E.Sum, E.Norm, E.SpecNorm, E.Vec,
    E.Unvec, E.DiagMat, E.DiagVec, E.ElemPow, E.Hadamard, E.Kron, E.Mul, E.Add))}

_KEYS = {}


def order_key(e):
    """A total order on canonical expressions (deterministic term and factor order)."""
    k = _KEYS.get(id(e))
    if k is not None and k[0] is e:
        return k[1]
    if isinstance(e, E.Num):
        data = (e.value,)            # exact: float() overflows past 1.8e308
    elif isinstance(e, E.Sym):
        data = (e.name,)
    elif isinstance(e, E.Diff):
        data = (e.var.name,)
    elif isinstance(e, (E.Func, E.ArrayFunc)):
        data = (e.name,)
    elif isinstance(e, E.MatPow):
        data = (e.k,)
    elif isinstance(e, (E.Identity, E.Zero, E.Commutation, E.Fill, E.Unvec)):
        data = tuple(str(x) for x in e.key() if not isinstance(x, E.Expr))
    else:
        data = ()
    key = (_RANK.get(type(e), 99), data, tuple(order_key(a) for a in e.args))
    if len(_KEYS) > 200_000:
        _KEYS.clear()
    _KEYS[id(e)] = (e, key)
    return key


# ---------------------------------------------------------------------------- helpers


def zero_of(shape):
    return E.Num(0) if E.is_scalar_shape(shape) else E.Zero(*shape)


def is_zero(e):
    return isinstance(e, E.Zero) or (isinstance(e, E.Num) and e.value == 0)


def split_coef(t):
    """(numeric coefficient, rest or None) of a canonical term."""
    if isinstance(t, E.Num):
        return t.value, None
    if isinstance(t, E.Mul) and isinstance(t.items[0], E.Num):
        rest = t.items[1:]
        return t.items[0].value, (rest[0] if len(rest) == 1 else E.Mul(rest))
    return Fraction(1), t


def with_coef(c, rest, shape):
    if c == 0:
        return zero_of(shape)
    if rest is None:
        return E.Num(c)
    if c == 1:
        return rest
    return mul((E.Num(c), rest), shape)


def factors(t):
    """(coefficient, scalar factors, chain) of a canonical term."""
    c, rest = split_coef(t)
    if rest is None:
        return c, [], []
    items = rest.items if isinstance(rest, E.Mul) and not _atomic(rest) else (rest,)
    scal = [f for f in items if f.is_scalar]
    chain = [f for f in items if not f.is_scalar]
    return c, scal, chain


def _atomic(m):
    """A scalar product with a chain inside (xᵀ A y): one scalar factor, not spliced."""
    return m.is_scalar and any(not f.is_scalar for f in m.items)


def is_symmetric(e):
    """Whether e equals its transpose (structurally, after canonicalization; products
    of sums are compared expanded, so Aᵀ C (A − y yᵀ C A) is seen to be symmetric)."""
    if e.is_scalar:
        return True
    r, c = e.shape
    if r != c:
        return False
    if transpose(e) == e:
        return True
    x = expand(e)
    return x is not None and transpose(x) == x


def expand(e, limit=64):
    """e with products distributed over sums (canonical), or None past `limit` terms."""
    terms = _expand_terms(e, limit)
    if terms is None:
        return None
    return add(tuple(terms), e.shape, factor=False) if len(terms) != 1 else terms[0]


def _expand_terms(e, limit):
    if isinstance(e, E.Add):
        out = []
        for t in e.items:
            sub = _expand_terms(t, limit)
            if sub is None or len(out) + len(sub) > limit:
                return None
            out.extend(sub)
        return out
    if isinstance(e, E.Mul) and not _atomic(e):
        partial = [[]]
        for f in e.items:
            options = _expand_terms(f, limit) if isinstance(f, E.Add) else [f]
            if options is None or len(partial) * len(options) > limit:
                return None
            partial = [p + [o] for p in partial for o in options]
        return [mul(tuple(p), e.shape) for p in partial]
    return [e]


_CMP = {}


def _compare(a, b):
    """-1, 0 or 1 as order_key(a) is below, equal to or above order_key(b), found level by
    level and remembered per pair of nodes: comparing the keys of deeply nested factors
    (exp(exp(… x …))) as tuples walks down the shared depth on every comparison, which
    made long products of nested functions quartic in the depth (a Hessian of 50
    nested exp took 10 s); remembered, each pair of nodes is compared once."""
    if a is b:
        return 0
    k = (id(a), id(b))
    hit = _CMP.get(k)
    if hit is not None and hit[0] is a and hit[1] is b:
        return hit[2]
    ka, kb = order_key(a), order_key(b)
    c = (ka[:2] > kb[:2]) - (ka[:2] < kb[:2])
    if not c:
        aa, ba = a.args, b.args
        for x, y in zip(aa, ba):
            c = _compare(x, y)
            if c:
                break
        else:
            c = (len(aa) > len(ba)) - (len(aa) < len(ba))
    if len(_CMP) > 200_000:
        _CMP.clear()
    _CMP[k] = (a, b, c)
    return c


def sort_canonical(items):
    """items (a list) sorted in place by order_key."""
    if len(items) < 8:
        items.sort(key=order_key)           # short lists: the keys' own comparison is fastest
    else:
        items.sort(key=functools.cmp_to_key(_compare))


# ---------------------------------------------------------------------------- transpose


_TRANSPOSES = {}


def transpose(x):
    """xᵀ pushed inward, for a canonical x (cached: nodes are immutable)."""
    if x.is_scalar:
        return x
    hit = _TRANSPOSES.get(id(x))
    if hit is not None and hit[0] is x:
        return hit[1]
    out = _transpose(x)
    if len(_TRANSPOSES) > 100_000:
        _TRANSPOSES.clear()
    _TRANSPOSES[id(x)] = (x, out)
    return out


def _transpose(x):
    t = type(x)
    if t is E.Sym:
        return x if x.kind in E.SYMMETRIC_KINDS else E.Transpose(x)
    if t is E.Transpose:
        return x.arg
    if t is E.Diff:
        return x if x.var.kind in E.SYMMETRIC_KINDS else E.Transpose(x)
    if t in (E.Identity, E.DiagMat):
        return x
    if t is E.Zero:
        return E.Zero(x.cols, x.rows)
    if t is E.Fill:
        return E.Fill(x.value, x.cols, x.rows)
    if t is E.Commutation:
        return E.Commutation(x.n, x.m)
    if t is E.Mul:
        # a canonical product stays canonical under transposition: its scalars stay in
        # front and its chain reverses (no new cancellations appear)
        scal = [f for f in x.items if f.is_scalar]
        chain = [transpose(f) for f in reversed([f for f in x.items if not f.is_scalar])]
        if any(isinstance(f, E.Mul) or f.is_scalar for f in chain):
            return mul(tuple(scal + chain), (x.shape[1], x.shape[0]))
        return E.Mul(tuple(scal + chain))
    if t is E.Add:
        # transposition maps distinct terms to distinct terms and keeps their
        # coefficients, so a canonical sum needs only its order restored
        items = [transpose(a) for a in x.items]
        if any(isinstance(a, E.Add) or is_zero(a) for a in items):
            return add(tuple(items), (x.shape[1], x.shape[0]))
        return E.Add(tuple(sorted(items, key=_term_key)))
    if t is E.Inverse:
        return inverse(transpose(x.arg))
    if t is E.MatPow:
        return matpow(transpose(x.arg), x.k)
    if t is E.Hadamard:
        return hadamard(tuple(transpose(a) for a in x.items), (x.shape[1], x.shape[0]))
    if t is E.Kron:
        return kron(tuple(transpose(a) for a in x.items), (x.shape[1], x.shape[0]))
    if t is E.Func:
        return E.Func(x.name, transpose(x.arg))
    if t is E.ElemPow:
        return E.ElemPow(transpose(x.base), x.exp)
    return E.Transpose(x)


# ---------------------------------------------------------------------------- products


def _base_exp(f):
    """A scalar factor as (base, numeric exponent)."""
    if isinstance(f, E.Pow) and isinstance(f.exp, E.Num):
        return f.base, f.exp.value
    return f, Fraction(1)


def _flatten_mul(items):
    """Nested products spliced in; a 1×1 chain (xᵀ A y) stays one factor, but the
    numbers and scalars in front of it join the outer product."""
    out = []
    for f in items:
        if isinstance(f, E.Mul) and not _atomic(f):
            out.extend(_flatten_mul(f.items))
        elif isinstance(f, E.Mul) and f.items[0].is_scalar:
            scal = [g for g in f.items if g.is_scalar]
            chain = tuple(g for g in f.items if not g.is_scalar)
            out.extend(_flatten_mul(scal))
            out.append(chain[0] if len(chain) == 1 else E.Mul(chain))
        else:
            out.append(f)
    return out


def _chain_base(f):
    """A chain factor as (base, integer exponent): X⁻² is (X, −2)."""
    if isinstance(f, E.MatPow):
        if isinstance(f.arg, E.Inverse):
            return f.arg.arg, -f.k
        return f.arg, f.k
    if isinstance(f, E.Inverse):
        return f.arg, -1
    return f, 1


def _from_base(b, k):
    if k == 0:
        return None
    if k > 0:
        return matpow(b, k)
    return matpow(inverse(b), -k)


def _merge_chain(chain):
    """Adjacent factors: X X⁻¹ = I, Xᵃ Xᵇ = Xᵃ⁺ᵇ (when one is a power or an inverse)."""
    out = []
    for f in chain:
        if isinstance(f, E.Identity) and (out or len(chain) > 1):
            continue
        if out and isinstance(f, E.Kron) and isinstance(out[-1], E.Kron):
            g = out[-1]
            if len(g.items) == len(f.items) == 2 and all(
                    a.shape[1] == b.shape[0] for a, b in zip(g.items, f.items)):
                # mixed product: (A ⊗ B)(C ⊗ D) = AC ⊗ BD
                prods = tuple(mul((a, b), (a.shape[0], b.shape[1])) for a, b in zip(g.items, f.items))
                out[-1] = kron(prods, (g.shape[0], f.shape[1]))
                continue
        if out and isinstance(f, E.DiagMat) and isinstance(out[-1], E.DiagMat):
            g = out.pop()                                # diag(a) diag(b) = diag(a ∘ b)
            out.append(diagmat(hadamard((g.arg, f.arg), g.arg.shape)))
            continue
        if out and isinstance(f, E.Commutation) and isinstance(out[-1], E.Commutation) \
                and (out[-1].m, out[-1].n) == (f.n, f.m):
            out.pop()                                    # K(n,m) K(m,n) = I
            continue
        if out:
            (bg, kg), (bf, kf) = _chain_base(out[-1]), _chain_base(f)
            if bg == bf and not (kg == 1 and kf == 1) and bg.shape[0] == bg.shape[1]:
                out.pop()
                merged = _from_base(bg, kg + kf)
                if merged is not None:
                    out.append(merged)
                continue
        out.append(f)
    return out


_PLAIN_CHAIN = (E.Sym, E.Transpose, E.Diff, E.Add, E.Hadamard, E.Func, E.ElemPow, E.Vec, E.DiagVec)


def _square(f):
    return f.shape[0] == f.shape[1]


def _cancel_into_inverses(chain):
    """H (F G H)⁻¹ = (F G)⁻¹ and (F G H)⁻¹ F = (G H)⁻¹ when every factor is square
    ((F G H)⁻¹ = H⁻¹ G⁻¹ F⁻¹)."""
    changed = True
    while changed:
        changed = False
        for i, f in enumerate(chain):
            if not (isinstance(f, E.Inverse) and isinstance(f.arg, E.Mul)):
                continue
            inner = list(f.arg.items)
            if any(g.is_scalar or not _square(g) for g in inner):
                continue
            if i > 0 and chain[i - 1] == inner[-1]:
                rest = inner[:-1]
                chain[i - 1:i + 1] = [inverse(rest[0] if len(rest) == 1 else E.Mul(tuple(rest)))]
                changed = True
                break
            if i + 1 < len(chain) and chain[i + 1] == inner[0]:
                rest = inner[1:]
                chain[i:i + 2] = [inverse(rest[0] if len(rest) == 1 else E.Mul(tuple(rest)))]
                changed = True
                break
    return chain


# 10^1000 (parse.MAX_EXPONENT) has 3,322 bits: every literal the parser reads is a coefficient
_COEF_BITS = 3340


def mul(items, shape):
    """A canonical product: [coefficient] + scalar factors (sorted, powers merged) + chain."""
    items = _flatten_mul(items)
    if all(type(f) in _PLAIN_CHAIN and not f.is_scalar for f in items):
        # nothing to merge, cancel or reorder: a chain of plain factors is canonical
        return items[0] if len(items) == 1 else E.Mul(tuple(items))
    coef = Fraction(1)
    scal, chain = [], []
    for f in items:
        if isinstance(f, E.Num):
            coef *= f.value
            if max(abs(coef.numerator), coef.denominator).bit_length() > _COEF_BITS:
                raise _unsupported("a numeric coefficient beyond 10^1000")
        elif is_zero(f):
            return zero_of(shape)
        elif f.is_scalar:
            scal.append(f)
        else:
            chain.append(f)
    if coef == 0:
        return zero_of(shape)
    # scalar factors: merge powers of equal bases
    powers = {}
    order = []
    for f in scal:
        b, p = _base_exp(f)
        if b in powers:
            powers[b] += p
        else:
            powers[b] = p
            order.append(b)
    # s^(2k) |s|^p = |s|^(2k + p): even powers meet the absolute value
    for b in list(order):
        if isinstance(b, E.Func) and b.name == "abs" and b.arg in powers:
            p = powers[b.arg]
            if p.denominator == 1 and p % 2 == 0:
                powers[b] += p
                powers[b.arg] = Fraction(0)
    scal = []
    for b in order:
        p = powers[b]
        if p == 0:
            continue
        if isinstance(b, E.Num):
            v = pow_num(b.value, p)
            if v is not None:
                coef *= v
                continue
        scal.append(b if p == 1 else E.Pow(b, E.Num(p)))
    scal = _logistic(scal, power=lambda f: (f.base, f.exp) if isinstance(f, E.Pow) else (None, None),
                     one=lambda t: isinstance(t, E.Num) and t.value == 1)
    sort_canonical(scal)
    if chain:
        chain = _merge_chain(chain)
        if any(isinstance(f, E.Inverse) for f in chain):
            chain = _merge_chain(_cancel_into_inverses(chain))
        if not chain:
            chain = [E.Identity(shape[0])] if not E.is_scalar_shape(shape) else []
        if len(chain) == 1 and isinstance(chain[0], E.Fill):
            # c s 1 = (c s) 1: a broadcast scalar absorbs the scalars in front
            inner = mul((E.Num(coef),) + tuple(scal) + (chain[0].value,), E.SCALAR)
            return fill(inner, chain[0].rows, chain[0].cols)
        if len(chain) == 2 and isinstance(chain[1], E.Fill) and chain[1].cols == 1 \
                and chain[0].shape[0] == 1:
            # vᵀ (s 1) = s sum(v)
            v, ones = chain
            total = entry_sum(v.arg if isinstance(v, E.Transpose) else v)
            return mul((E.Num(coef),) + tuple(scal) + (ones.value, total), shape)
        if len(chain) == 2 and isinstance(chain[0], E.Fill) and chain[0].rows == 1 \
                and chain[1].shape[1] == 1:
            # (s 1ᵀ) v = s sum(v)
            ones, v = chain
            return mul((E.Num(coef),) + tuple(scal) + (ones.value, entry_sum(v)), shape)
    if chain and scal:
        scal, chain = _softmax(scal, chain)
    out = ([E.Num(coef)] if coef != 1 or not (scal or chain) else []) + scal + chain
    if len(out) == 1:
        return out[0]
    return E.Mul(tuple(out))


def _softmax(scal, chain):
    """exp(x) / sum(exp(x)) = softmax(x) for a column vector x, as the last factor of the
    chain (and exp(xᵀ) / sum(exp(x)) = softmax(x)ᵀ as its first, xᵀ any row)."""
    def column(x):
        return x if x.shape[1] == 1 and not x.is_scalar else None

    def last(f):                    # exp(x) -> x
        return column(f.arg) if isinstance(f, E.Func) and f.name == "exp" else None

    def first(f):                   # exp(xᵀ) or exp(x)ᵀ -> x
        if isinstance(f, E.Transpose):
            return last(f.arg)
        if isinstance(f, E.Func) and f.name == "exp" and f.arg.shape[0] == 1:
            return column(transpose(f.arg))
        return None
    for pos, find, wrap in ((len(chain) - 1, last, lambda s: s), (0, first, E.Transpose)):
        x = find(chain[pos])
        if x is None:
            continue
        den = E.Pow(E.Sum(E.Func("exp", x)), E.MINUS_ONE)
        if den in scal:
            rest = list(scal)
            rest.remove(den)
            chain = list(chain)
            chain[pos] = wrap(E.ArrayFunc("softmax", x))
            return rest, chain
    return scal, chain


def pow_num(b, p):
    """b^p for numbers when exact, else None."""
    if p.denominator == 1:
        if b == 0 and p < 0:
            return None
        if abs(b) != 1 and (abs(p) > 64 or abs(p) * max(abs(b.numerator), b.denominator).bit_length() > 4096):
            return None                     # keep huge exact powers symbolic
        return b ** int(p)
    return None


# ---------------------------------------------------------------------------- sums


def _flatten_add(items):
    """Nested sums spliced in; c (a + b) too, as c a + c b, so that like terms meet
    (the common coefficient is pulled out again at the end if it is still common)."""
    out = []
    for t in items:
        if isinstance(t, E.Add):
            out.extend(_flatten_add(t.items))
        elif isinstance(t, E.Mul) and len(t.items) == 2 and isinstance(t.items[0], E.Num) \
                and isinstance(t.items[1], E.Add):
            c = t.items[0].value
            out.extend(with_coef(c * split_coef(u)[0], split_coef(u)[1], t.shape)
                       for u in _flatten_add(t.items[1].items))
        else:
            out.append(t)
    return out


def add(items, shape, factor=True):
    """A canonical sum: flat, no zeros, like terms collected, common factors out (unless
    factor=False), ordered."""
    items = _flatten_add(items)
    fills = []
    coefs, order = {}, []
    for t in items:
        if is_zero(t):
            continue
        if isinstance(t, E.Fill):
            fills.append(t.value)
            continue
        c, rest = split_coef(t)
        if rest in coefs:
            coefs[rest] += c
        else:
            coefs[rest] = c
            order.append(rest)
    if fills:
        v = add(tuple(fills), E.SCALAR) if len(fills) > 1 else fills[0]
        if not is_zero(v):
            if E.is_scalar_shape(shape):
                c, rest = split_coef(v)
                if rest in coefs:
                    coefs[rest] += c
                else:
                    coefs[rest] = c
                    order.append(rest)
            else:
                f = E.Fill(v, *shape)
                coefs[f] = Fraction(1)
                order.append(f)
    terms = [(coefs[r], r) for r in order if coefs[r] != 0]
    if not terms:
        return zero_of(shape)
    if len(terms) == 1:
        return with_coef(terms[0][0], terms[0][1], shape)
    terms = [with_coef(c, r, shape) for c, r in terms]
    if not factor:
        return E.Add(tuple(sorted(terms, key=_term_key)))
    expanded = _expand_elementwise(terms, shape)
    if expanded is not None:
        return expanded
    terms = _factor(terms, shape)
    if len(terms) == 1:
        return terms[0]
    return _common_coef(terms, shape)


def _size(e):
    """Nodes in e (a measure of how long it prints)."""
    return 1 + sum(_size(a) for a in e.args)


def _hadamard_with_sum(t):
    """(scalars, Hadamard items, index of a sum among them) for s (A ∘ (B + C)), or None."""
    c, scal, chain = factors(t)
    if len(chain) == 1 and isinstance(chain[0], E.Hadamard):
        items = chain[0].items
        for i, a in enumerate(items):
            if isinstance(a, E.Add):
                return [E.Num(c)] + scal, items, i
    return None


def _expand_elementwise(terms, shape):
    """A ∘ (B + C) + ... distributed, when collecting the expanded terms makes the sum
    shorter (σ ∘ (1 − y) − y ∘ (1 − σ) = σ − y); None when it does not."""
    if not any(_hadamard_with_sum(t) for t in terms):
        return None
    out = []
    for t in terms:
        h = _hadamard_with_sum(t)
        if h is None:
            out.append(t)
            continue
        scal, items, i = h
        for u in items[i].items:
            part = hadamard(items[:i] + (u,) + items[i + 1:], shape)
            out.append(mul(tuple(scal) + (part,), shape))
    if len(out) > 64:
        return None
    expanded = add(tuple(out), shape)
    if _size(expanded) < sum(_size(t) for t in terms) + len(terms) - 1:
        return expanded
    return None


def _common_coef(terms, shape):
    """c A + c B = c (A + B) when every term has the same coefficient c ≠ ±1."""
    cs = [split_coef(t)[0] for t in terms]
    c = abs(cs[0])
    if all(x < 0 for x in cs):
        c = -c                      # -A - B = -(A + B): the sign goes out with the factor
    if len(terms) > 1 and all(abs(x) == abs(c) for x in cs) and c != 1:
        inner = [with_coef(x / c, split_coef(t)[1], shape) for x, t in zip(cs, terms)]
        inner.sort(key=_term_key)
        return E.Mul((E.Num(c), E.Add(tuple(inner))))
    terms.sort(key=_term_key)
    return E.Add(tuple(terms))


def _term_key(t):
    c, rest = split_coef(t)
    return (c < 0, order_key(rest) if rest is not None else (-1,))


def _factor(terms, shape):
    """Pull common factors out of groups of terms, greedily, the largest group first."""
    while len(terms) > 1:
        decomposed = [factors(t) for t in terms]
        counts = {}
        for idx, (c, scal, chain) in enumerate(decomposed):
            cands = set()
            if chain:
                cands.add(("suffix", chain[-1], len(chain) > 1))
                cands.add(("prefix", chain[0], len(chain) > 1))
            for s in scal:
                cands.add(("scalar", s, True))
            for k in cands:
                counts.setdefault(k, []).append(idx)
        best = None
        for k, idxs in counts.items():
            if len(idxs) < 2:
                continue
            pref = {"suffix": 2, "prefix": 1, "scalar": 0}[k[0]]
            score = (len(idxs), pref)
            if best is None or score > best[0]:
                best = (score, k, idxs)
        if best is None:
            return terms
        _, (how, f, _longer), idxs = best
        inner = []
        for i in idxs:
            c, scal, chain = decomposed[i]
            if how == "suffix":
                rest = [E.Num(c)] + scal + chain[:-1]
            elif how == "prefix":
                rest = [E.Num(c)] + scal + chain[1:]
            else:
                s2 = list(scal)
                s2.remove(f)
                rest = [E.Num(c)] + s2 + chain
            inner.append(rest)
        if how == "scalar":
            ishape = shape
        elif how == "suffix":
            ishape = (shape[0], f.shape[0])
        else:
            ishape = (f.shape[1], shape[1])
        inner_terms = tuple(mul(tuple(r), ishape) for r in inner)
        inner_sum = add(inner_terms, ishape)
        merged = mul((inner_sum, f) if how == "suffix" else (f, inner_sum), shape)
        grouped = set(idxs)
        terms = [t for i, t in enumerate(terms) if i not in grouped] + [merged]
    return terms


# ---------------------------------------------------------------------------- the rest


def hadamard(items, shape):
    """A canonical elementwise product: scalars (and broadcast scalars) pulled out in front,
    nested products flattened, equal bases merged into powers (a ∘ a⁻¹ = 1), (a ∘ b).^k
    split, exp(a) ∘ (1 + exp(a)).^-1 = sigmoid(a), I ∘ M = M for a diagonal M."""
    scal, arrays = [], []
    work = list(items)
    while work:
        f = work.pop(0)
        if is_zero(f):
            return zero_of(shape)
        if f.is_scalar:
            scal.append(f)
        elif isinstance(f, E.Fill):
            scal.append(f.value)
        elif isinstance(f, E.Hadamard):
            work[:0] = list(f.items)
        elif isinstance(f, E.Mul) and any(g.is_scalar for g in f.items) and not _atomic(f):
            c, sc, ch = factors(f)
            scal.extend([E.Num(c)] + sc)
            work.insert(0, mul(tuple(ch), f.shape))
        elif isinstance(f, E.ElemPow) and isinstance(f.base, E.Hadamard) and isinstance(f.exp, E.Num) \
                and f.exp.value.denominator == 1:
            work[:0] = [elempow(b, f.exp, f.shape) for b in f.base.items]   # (a ∘ b).^k = a.^k ∘ b.^k
        else:
            arrays.append(f)
    # vec(A) ∘ vec(B) = vec(A ∘ B) when a factor is diagonal: the rule below then takes
    # elementwise functions of the diagonal only (the Jacobians of diag(f(X)) meet this)
    if len(arrays) > 1 and all(isinstance(a, E.Vec) for a in arrays) \
            and len({a.arg.shape for a in arrays}) == 1 and any(_diagonal_factor(a.arg) for a in arrays):
        inner = hadamard(tuple(a.arg for a in arrays), arrays[0].arg.shape)
        core = vec(inner)
        return mul(tuple(scal) + (core,), shape) if scal else core
    # equal factors merge into elementwise powers
    powers, order = {}, []
    for f in arrays:
        if isinstance(f, E.ElemPow) and isinstance(f.exp, E.Num):
            b, p = f.base, f.exp.value
        else:
            b, p = f, Fraction(1)
        if b in powers:
            powers[b] += p
        else:
            powers[b] = p
            order.append(b)
    arrays = []
    for b in order:
        p = powers[b]
        if p == 0:
            continue
        arrays.append(b if p == 1 else elempow(b, E.Num(p), b.shape))
    arrays = _logistic(arrays, power=lambda f: (f.base, f.exp) if isinstance(f, E.ElemPow) else (None, None),
                       one=lambda t: isinstance(t, E.Fill) and isinstance(t.value, E.Num) and t.value.value == 1)
    # I ∘ f(X) = diag(f(diag(X))): with a diagonal factor only the diagonal survives, and
    # an elementwise function or power is taken of the diagonal alone (I ./ X is 0/0 off
    # the diagonal where X has zeros; diag(diag(X) .^ -1) is finite wherever f' is)
    if len(arrays) > 1 and shape[0] == shape[1] and shape[1] != 1 \
            and any(_diagonal_factor(a) for a in arrays) \
            and any(_has_entrywise_func(a) for a in arrays if not _diagonal_factor(a)):
        core = diagmat(hadamard(tuple(_diagonal_of(a, shape[0]) for a in arrays), (shape[0], 1)))
        return mul(tuple(scal) + (core,), shape) if scal else core
    # I ∘ Aᵀ = I ∘ A: only the diagonal survives;  I ∘ M = M for a diagonal M
    if any(isinstance(a, (E.Identity, E.DiagMat)) for a in arrays):
        arrays = [a.arg if isinstance(a, E.Transpose) else a for a in arrays]
        if any(is_diagonal(a) and not isinstance(a, E.Identity) for a in arrays):
            arrays = [a for a in arrays if not isinstance(a, E.Identity)]
        elif len(arrays) == 2 and any(isinstance(a, E.Identity) for a in arrays):
            other = next(a for a in arrays if not isinstance(a, E.Identity))
            if isinstance(other, E.Add):        # I ∘ (A + B) = I ∘ A + I ∘ B
                eye = next(a for a in arrays if isinstance(a, E.Identity))
                core = add(tuple(hadamard((eye, t), shape) for t in other.items), shape)
                return mul(tuple(scal) + (core,), shape) if scal else core
    # I ∘ diag(x) = diag(x);  I ∘ I = I
    if any(isinstance(a, E.DiagMat) for a in arrays):
        arrays = [a for a in arrays if not isinstance(a, E.Identity)]
    sort_canonical(arrays)
    if not arrays:
        core = E.Fill(E.ONE, *shape)
    elif len(arrays) == 1:
        core = arrays[0]
    else:
        core = E.Hadamard(tuple(arrays))
    if not scal:
        return core
    return mul(tuple(scal) + (core,), shape)


def _diagonal_factor(a):
    return isinstance(a, (E.Identity, E.DiagMat)) or is_diagonal(a)


def _has_entrywise_func(a):
    """Whether an elementwise function or power of a matrix is reached from a through
    entrywise operations (sums, elementwise products, scalar multiples, transposes)."""
    t = type(a)
    if t in (E.Func, E.ElemPow):
        return True
    if t in (E.Hadamard, E.Add):
        return any(_has_entrywise_func(x) for x in a.items)
    if t is E.Transpose:
        return _has_entrywise_func(a.arg)
    if t is E.Mul and not _atomic(a):
        chain = [f for f in a.items if not f.is_scalar]
        return len(chain) == 1 and _has_entrywise_func(chain[0])
    return False


def _diagonal_of(a, n):
    """The diagonal of the n×n matrix a as a vector, taken inside entrywise operations:
    diag(f(A) ∘ B + s C) = f(diag(A)) ∘ diag(B) + s diag(C), diag(I) = 1, diag(diag(v)) = v."""
    t = type(a)
    col = (n, 1)
    if t is E.Identity:
        return E.Fill(E.ONE, n, 1)
    if t is E.DiagMat:
        return a.arg
    if t is E.Fill:
        return fill(a.value, n, 1)
    if t is E.Transpose:
        return _diagonal_of(a.arg, n)
    if t is E.Func:
        return func(a.name, _diagonal_of(a.arg, n), col)
    if t is E.ElemPow:
        return elempow(_diagonal_of(a.base, n), a.exp, col)
    if t is E.Hadamard:
        return hadamard(tuple(_diagonal_of(x, n) for x in a.items), col)
    if t is E.Add:
        return add(tuple(_diagonal_of(x, n) for x in a.items), col)
    if t is E.Mul and not _atomic(a):
        scal = tuple(f for f in a.items if f.is_scalar)
        chain = [f for f in a.items if not f.is_scalar]
        if len(chain) == 1:
            return mul(scal + (_diagonal_of(chain[0], n),), col)
    return diagvec(a)


def _logistic(fs, power, one):
    """exp(a) (1 + exp(a))⁻¹ = sigmoid(a): the factors fs with each such pair replaced."""
    exps = {f.arg: f for f in fs if isinstance(f, E.Func) and f.name == "exp"}
    if not exps:
        return fs
    out = list(fs)
    for f in fs:
        base, p = power(f)
        if base is None or not (isinstance(p, E.Num) and p.value == -1) or not isinstance(base, E.Add):
            continue
        if len(base.items) != 2:
            continue
        a, b = base.items
        if one(b):
            a, b = b, a
        if one(a) and isinstance(b, E.Func) and b.name == "exp" and b.arg in exps and exps[b.arg] in out \
                and f in out:
            out.remove(f)
            out.remove(exps[b.arg])
            out.append(E.Func("sigmoid", b.arg))
    return out


def is_diagonal(e):
    """Whether e is a diagonal matrix by its structure."""
    t = type(e)
    if t in (E.Identity, E.DiagMat):
        return True
    if t is E.Sym:
        return e.kind == "diagonal"
    if t in (E.Inverse, E.Transpose, E.MatPow):
        return is_diagonal(e.arg)
    if t is E.Mul:
        chain = [f for f in e.items if not f.is_scalar]
        return bool(chain) and all(is_diagonal(f) for f in chain)
    if t is E.Add:
        return all(is_diagonal(a) for a in e.items)
    if t is E.Hadamard:
        return any(is_diagonal(a) for a in e.items)
    return False


def kron(items, shape):
    flat = []
    for f in items:
        flat.extend(f.items if isinstance(f, E.Kron) else (f,))
    scal, arrays = [], []
    for f in flat:
        if is_zero(f):
            return zero_of(shape)
        if f.is_scalar:
            scal.append(f)
        elif isinstance(f, E.Mul) and any(g.is_scalar for g in f.items):
            c, s, ch = factors(f)
            scal.extend([E.Num(c)] + s)
            arrays.append(mul(tuple(ch), f.shape))
        else:
            arrays.append(f)
    # I(1) ⊗ A = A;  I(m) ⊗ I(n) = I(mn)
    arrays = [a for a in arrays if not (isinstance(a, E.Identity) and a.n == 1)] or [E.ONE]
    if all(isinstance(a, E.Identity) for a in arrays):
        n = 1
        for a in arrays:
            n = E.size_mul(n, a.n)
        arrays = [E.Identity(n)]
    core = arrays[0] if len(arrays) == 1 else E.Kron(tuple(arrays))
    return mul(tuple(scal) + (core,), shape) if scal else core


def _scalars_out(x, build):
    """Pull the scalar factors of a product x out of a linear operation build(·)."""
    if isinstance(x, E.Mul) and not _atomic(x) and any(f.is_scalar for f in x.items):
        scal = [f for f in x.items if f.is_scalar]
        chain = [f for f in x.items if not f.is_scalar]
        inner = chain[0] if len(chain) == 1 else E.Mul(tuple(chain))
        out = build(inner)
        return mul(tuple(scal) + (out,), out.shape)
    return None


def trace(x):
    if x.is_scalar:
        return x
    if is_zero(x):
        return E.ZERO
    if isinstance(x, E.Transpose):
        return trace(x.arg)
    if isinstance(x, E.DiagMat):
        return entry_sum(x.arg)
    if isinstance(x, E.Kron) and all(a.shape[0] == a.shape[1] for a in x.items):
        return mul(tuple(trace(a) for a in x.items), E.SCALAR)
    pulled = _scalars_out(x, trace)
    if pulled is not None:
        return pulled
    if isinstance(x, E.Mul):
        chain = list(x.items)
        for i, f in enumerate(chain):
            if i > 0 and f.shape[0] == 1:
                # tr(P r Q) with r a row: the rotation r Q P is 1×1
                return mul(tuple(chain[i:] + chain[:i]), E.SCALAR)
    return E.Trace(x)


def entry_sum(x):
    if x.is_scalar:
        return x
    if x.shape[0] == 1:
        t = transpose(x)                         # the sum of a row is the sum of its column,
        if not (isinstance(t, E.Transpose) and t.arg is x):
            return entry_sum(t)
        return E.Sum(x)                          # unless only a Transpose node wraps it (no loop)
    if is_zero(x):
        return E.ZERO
    if isinstance(x, (E.Transpose, E.Vec)):
        return entry_sum(x.arg)
    if isinstance(x, E.DiagMat):
        return entry_sum(x.arg)
    pulled = _scalars_out(x, entry_sum)
    if pulled is not None:
        return pulled
    return E.Sum(x)


def det(x):
    if x.is_scalar:
        return x
    if is_zero(x):
        return E.ZERO
    if isinstance(x, E.Transpose):
        return det(x.arg)
    if isinstance(x, E.Inverse):
        return power(det(x.arg), E.MINUS_ONE)
    if isinstance(x, E.Identity):
        return E.ONE
    return E.Det(x)


def logdet(x):
    if isinstance(x, E.Transpose):
        return logdet(x.arg)
    if isinstance(x, E.Inverse):
        return mul((E.MINUS_ONE, logdet(x.arg)), E.SCALAR)
    if isinstance(x, E.Identity):
        return E.ZERO
    return E.LogDet(x)


def inverse(x):
    if x.is_scalar:
        return power(x, E.MINUS_ONE)
    if isinstance(x, E.Inverse):
        return x.arg
    if isinstance(x, E.MatPow):
        return matpow(inverse(x.arg), x.k)
    if isinstance(x, E.DiagMat):
        return diagmat(elempow(x.arg, E.MINUS_ONE, x.arg.shape))  # diag(v)⁻¹ = diag(v .^ -1)
    if isinstance(x, E.Identity):
        return x
    if isinstance(x, E.Mul) and not _atomic(x):
        scal = [f for f in x.items if f.is_scalar]
        chain = [f for f in x.items if not f.is_scalar]
        if scal and len(chain) == 1:
            return mul(tuple(power(s, E.MINUS_ONE) for s in scal) + (inverse(chain[0]),), x.shape)
    return E.Inverse(x)


def matpow(x, k):
    if k == 0:
        return E.Identity(x.shape[0])
    if k == 1 or is_zero(x):
        return x
    if isinstance(x, E.DiagMat):
        return diagmat(elempow(x.arg, E.Num(k), x.arg.shape))     # diag(v)^k = diag(v .^ k)
    if isinstance(x, E.MatPow):
        return matpow(x.arg, x.k * k)
    if isinstance(x, E.Identity):
        return x
    return E.MatPow(x, k)


def power(b, p):
    if isinstance(p, E.Num):
        if p.value == 0:
            return E.ONE
        if p.value == 1:
            return b
        if isinstance(b, E.Num):
            v = pow_num(b.value, p.value)
            if v is not None:
                return E.Num(v)
        if isinstance(b, E.Pow) and isinstance(b.exp, E.Num) and p.value.denominator == 1:
            return power(b.base, E.Num(b.exp.value * p.value))
        if isinstance(b, E.Mul) and p.value.denominator == 1 and not _atomic(b):
            return mul(tuple(power(f, p) for f in b.items), E.SCALAR)
    if isinstance(b, E.Num) and b.value == 1:
        return E.ONE
    return E.Pow(b, p)


# from the operator records: f at its special points, the functions with f(0) = 0 (so
# f(D) = diag(f(diag(D))) for a diagonal D), and those never negative (|f(x)| = f(x))
_FUNC_AT = {(r.name, Fraction(x)): Fraction(v) for r in ELEMENTWISE_RECORDS for x, v in r.at.items()}
ZERO_AT_ZERO = tuple(r.name for r in ELEMENTWISE_RECORDS if r.zero_at_zero)
NONNEGATIVE = tuple(r.name for r in ELEMENTWISE_RECORDS if r.nonnegative)


def array_func(name, a):
    """softmax(t) = 1 and logsumexp(t) = t at a scalar t (the record says which)."""
    if a.is_scalar:
        from .operators import ARRAY_FUNCTIONS
        return ARRAY_FUNCTIONS[name].scalar(a)
    return E.ArrayFunc(name, a)


def func(name, a, shape):
    if isinstance(a, E.Vec):                      # f(vec(M)) = vec(f(M))
        return vec(func(name, a.arg, a.arg.shape))
    if isinstance(a, E.Zero):                     # f(0) on an array: a broadcast constant
        return fill(func(name, E.ZERO, E.SCALAR), a.rows, a.cols)
    if name in ZERO_AT_ZERO and not a.is_scalar and a.shape[1] != 1 and is_diagonal(a):
        return diagmat(func(name, diagvec(a), (a.shape[0], 1)))
    if isinstance(a, E.Num) and (name, a.value) in _FUNC_AT:
        return E.Num(_FUNC_AT[(name, a.value)])
    if isinstance(a, E.Func) and ((name, a.name) in (("log", "exp"),)):
        return a.arg
    if name == "abs" and isinstance(a, E.Func) and a.name in NONNEGATIVE:
        return a
    if isinstance(a, E.Fill):
        return fill(func(name, a.value, E.SCALAR), a.rows, a.cols)
    return E.Func(name, a)


def elempow(b, p, shape):
    if isinstance(b, E.Vec):                      # vec(M) .^ p = vec(M .^ p)
        return vec(elempow(b.arg, p, b.arg.shape))
    if isinstance(b, E.Zero) and isinstance(p, E.Num) and p.value > 0:
        return b
    if isinstance(p, E.Num) and p.value > 0 and b.shape[1] != 1 and is_diagonal(b):
        return diagmat(elempow(diagvec(b), p, (b.shape[0], 1)))  # D .^ p = diag(diag(D) .^ p)
    if isinstance(p, E.Num):
        if p.value == 1:
            return b
        if p.value == 0:
            return E.Fill(E.ONE, *shape)
        if isinstance(b, E.ElemPow) and isinstance(b.exp, E.Num) and p.value.denominator == 1:
            return elempow(b.base, E.Num(b.exp.value * p.value), shape)
    if isinstance(b, E.Fill):
        return fill(power(b.value, p), b.rows, b.cols)
    return E.ElemPow(b, p)


def fill(v, r, c):
    if is_zero(v):
        return E.Zero(r, c)
    if r == 1 and c == 1:
        return v
    return E.Fill(v, r, c)


def vec(x):
    if is_zero(x):
        return zero_of(E.Vec(x).shape)
    if x.shape[1] == 1:
        return x
    if x.shape[0] == 1:
        return transpose(x)                       # vec of a row is its transpose
    if isinstance(x, E.Unvec):                    # vec(unvec(v, m)) = v
        return x.arg
    pulled = _scalars_out(x, vec)
    return pulled if pulled is not None else E.Vec(x)


def unvec(x, m, n):
    """unvec(x, m): the vector x (length m·n) as an m×n matrix, column-major."""
    if is_zero(x):
        return zero_of((m, n))
    if n == 1:
        return x                                  # an m×1 matrix is the vector
    if m == 1:
        return transpose(x)                       # a 1×n matrix is the row xᵀ
    if isinstance(x, E.Vec) and x.arg.shape == (m, n):
        return x.arg                              # unvec(vec(X), rows X) = X
    if isinstance(x, E.Fill):
        return fill(x.value, m, n)
    pulled = _scalars_out(x, lambda y: unvec(y, m, n))
    return pulled if pulled is not None else E.Unvec(x, m, n)


def diagmat(x):
    if is_zero(x):
        return zero_of(E.DiagMat(x).shape)
    if isinstance(x, E.Fill):                    # diag(s 1) = s I
        return mul((x.value, E.Identity(x.rows)), (x.rows, x.rows))
    pulled = _scalars_out(x, diagmat)
    return pulled if pulled is not None else E.DiagMat(x)


def diagvec(x):
    if is_zero(x):
        return zero_of(E.DiagVec(x).shape)
    if isinstance(x, E.Fill):                    # the diagonal of s 1 1ᵀ is s 1
        return fill(x.value, x.rows, 1)
    if isinstance(x, E.Identity):                # the diagonal of I is 1
        return E.Fill(E.ONE, x.n, 1)
    if isinstance(x, E.Mul) and not _atomic(x):  # diag(s u vᵀ) = s u ∘ v
        chain = [f for f in x.items if not f.is_scalar]
        if len(chain) == 2 and chain[0].shape[1] == 1 and chain[1].shape[0] == 1:
            u, v = chain[0], transpose(chain[1])
            return mul(tuple(f for f in x.items if f.is_scalar) + (hadamard((u, v), u.shape),), u.shape)
    if isinstance(x, E.DiagMat):
        return x.arg
    if isinstance(x, E.Transpose):
        return diagvec(x.arg)
    pulled = _scalars_out(x, diagvec)
    return pulled if pulled is not None else E.DiagVec(x)


def norm(x):
    if is_zero(x):
        return E.ZERO
    if isinstance(x, (E.Transpose, E.Vec)):
        return norm(x.arg)
    if isinstance(x, E.Kron):                      # ||A ⊗ B|| = ||A|| ||B||
        return mul(tuple(norm(a) for a in x.items), E.SCALAR)
    c, rest = split_coef(x)
    if c != 1 and rest is not None:
        return mul((E.Num(abs(c)), norm(rest)), E.SCALAR)
    if x.is_scalar:
        return func("abs", x, E.SCALAR)
    return E.Norm(x)


def spec_norm(x):
    if isinstance(x, E.Transpose):
        return spec_norm(x.arg)
    return E.SpecNorm(x)


BUILDERS = {
    E.Num: lambda e, a: e,
    E.Sym: lambda e, a: e,
    E.Diff: lambda e, a: e,
    E.Identity: lambda e, a: E.ONE if e.n == 1 else e,
    E.Zero: lambda e, a: e,
    E.Commutation: lambda e, a: E.Identity(e.shape[0]) if 1 in (e.m, e.n) else e,
    E.Fill: lambda e, a: fill(a[0], e.rows, e.cols),
    E.Add: lambda e, a: add(a, e.shape),
    E.Mul: lambda e, a: mul(a, e.shape),
    E.Hadamard: lambda e, a: hadamard(a, e.shape),
    E.Kron: lambda e, a: kron(a, e.shape),
    E.Transpose: lambda e, a: transpose(a[0]),
    E.Inverse: lambda e, a: inverse(a[0]),
    E.Det: lambda e, a: det(a[0]),
    E.LogDet: lambda e, a: logdet(a[0]),
    E.Trace: lambda e, a: trace(a[0]),
    E.Sum: lambda e, a: entry_sum(a[0]),
    E.Norm: lambda e, a: norm(a[0]),
    E.SpecNorm: lambda e, a: spec_norm(a[0]),
    E.Vec: lambda e, a: vec(a[0]),
    E.Unvec: lambda e, a: unvec(a[0], e.m, e.n),
    E.DiagMat: lambda e, a: diagmat(a[0]),
    E.DiagVec: lambda e, a: diagvec(a[0]),
    E.Func: lambda e, a: func(e.name, a[0], e.shape),
    E.ArrayFunc: lambda e, a: array_func(e.name, a[0]),
    E.MatPow: lambda e, a: matpow(a[0], e.k),
    E.Pow: lambda e, a: power(a[0], a[1]),
    E.ElemPow: lambda e, a: elempow(a[0], a[1], e.shape),
}


def simplify(e):
    """The canonical form of e (bottom-up, each distinct subexpression once)."""
    memo = {}
    count = SimplifyCounter()        # the size budget: refuse a swell before combining it

    def go(x):
        k = id(x)
        hit = memo.get(k)
        if hit is not None:
            return hit[1]
        args = x.args
        if args:
            parts = []
            for a in args:              # a loop, not a generator: one frame per level
                parts.append(go(a))
            parts = tuple(parts)
            count.check(parts)
            out = BUILDERS[type(x)](x, parts)
        else:
            out = BUILDERS[type(x)](x, ())
        memo[k] = (x, out)
        return out

    out = go(e)
    return _absorb_minus(out) if isinstance(out, E.Mul) else out


# ---------------------------------------------------------------------------- tidy


def _neg_count(t):
    return 1 if split_coef(t)[0] < 0 else 0


def tidy(e):
    """Presentation: transposes pulled out where shorter, minus signs moved into
    differences.  The value is unchanged."""
    memo = {}
    tcount = {}

    def tc(x):
        """Transposes a reader sees in x."""
        k = id(x)
        hit = tcount.get(k)
        if hit is not None and hit[0] is x:
            return hit[1]
        n = (1 if isinstance(x, E.Transpose) else 0) + sum(tc(a) for a in x.args)
        tcount[k] = (x, n)
        return n

    def go(x, pull_sums=True):
        k = (id(x), pull_sums)
        hit = memo.get(k)
        if hit is not None and hit[0] is x:
            return hit[1]
        args = x.args
        if args:
            new = tuple(go(a) for a in args)
            y = x if all(a is b for a, b in zip(args, new)) else x.rebuild(new)
        else:
            y = x
        if isinstance(y, E.Mul):
            y = _pull_runs(y)
        elif isinstance(y, (E.Func, E.ElemPow)) and isinstance(y.args[0], E.Transpose):
            y = E.Transpose(y.rebuild((y.args[0].arg,) + y.args[1:]))   # f(Aᵀ) = f(A)ᵀ
        elif pull_sums and isinstance(y, E.Add) and not y.is_scalar and tc(y) >= 2:
            alt = go(transpose(x), False)
            if tc(alt) + 1 < tc(y):
                y = E.Transpose(alt)
        memo[k] = (x, y)
        return y

    return go(e)


def _pull_runs(m):
    """Aᵀ Bᵀ → (B A)ᵀ for runs of two or more transposed factors of a chain."""
    items = list(m.items)
    out, run = [], []

    def flush():
        if len(run) >= 2:
            inner = E.Mul(tuple(f.arg for f in reversed(run)))
            out.append(E.Transpose(inner))
        else:
            out.extend(run)
        run.clear()

    for f in items:
        if isinstance(f, E.Transpose) and not f.is_scalar:
            run.append(f)
        else:
            flush()
            out.append(f)
    flush()
    if len(out) == len(items):
        return m
    return E.Mul(tuple(out)) if len(out) > 1 else out[0]


def _absorb_minus(m):
    """−c P (a − b) Q → c P (b − a) Q when the difference has more minus signs."""
    c, rest = split_coef(m)
    if c >= 0 or rest is None:
        return m
    items = list(m.items[1:])
    for i, f in enumerate(items):
        if isinstance(f, E.Add):
            negs = sum(_neg_count(t) for t in f.items)
            if 2 * negs >= len(f.items) and negs > 0:
                flipped = E.Add(tuple(_negate(t) for t in f.items))
                flipped = E.Add(tuple(sorted(flipped.items, key=_term_key)))
                items[i] = flipped
                out = ([E.Num(-c)] if c != -1 else []) + items
                return E.Mul(tuple(out)) if len(out) > 1 else out[0]
    return m


def _negate(t):
    c, rest = split_coef(t)
    if rest is None:
        return E.Num(-c)
    if -c == 1:
        return rest
    items = rest.items if isinstance(rest, E.Mul) and not _atomic(rest) else (rest,)
    return E.Mul((E.Num(-c),) + tuple(items))
