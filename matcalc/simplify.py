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
from .operators import ARRAY_FUNCTIONS, ELEMENTWISE_RECORDS, OperatorTable
from .operators.nodes import record_of_unary


def _unsupported(what):
    from .errors import UnsupportedError
    return UnsupportedError(what)

# ---------------------------------------------------------------------------- ordering

_RANK = {t: i for i, t in enumerate((
    E.Num, E.Sym, E.Diff, E.Identity, E.Commutation, E.Zero, E.Fill, E.Transpose, E.Inverse,
    E.MatPow, E.Pow, E.Func, E.ArrayFunc, E.Spectral, E.SpectralVec, E.MatFunc, E.Frechet, E.FrechetJac,
    E.Trace, E.Det, E.LogDet, E.Sum, E.Norm, E.SpecNorm, E.Vec,
    E.Unvec, E.DiagMat, E.DiagVec, E.ElemPow, E.Hadamard, E.Kron, E.Mul, E.Add))}

_ONE_Q = Fraction(1)               # the number 1 (immutable: shared, not built in every call)
_put = object.__setattr__          # the memo slots of a node (Expr._order, _transposed, _same_value)


def order_key(e):
    """A total order on canonical expressions (deterministic term and factor order),
    remembered on the node."""
    hit = e._order                # None until set (Expr, a class attribute)
    if hit is not None:
        return hit
    if isinstance(e, E.Num):
        data = (e.value,)            # exact: float() overflows past 1.8e308
    elif isinstance(e, E.Sym):
        data = (e.name,)
    elif isinstance(e, E.Diff):
        data = (e.var.name,)
    elif isinstance(e, (E.Func, E.ArrayFunc, E.Spectral, E.SpectralVec)):
        data = (e.name,)
    elif isinstance(e, (E.MatFunc, E.Frechet, E.FrechetJac)):
        data = (e.name, e.p if e.p is not None else Fraction(0))
    elif isinstance(e, E.MatPow):
        data = (e.k,)
    elif isinstance(e, (E.Identity, E.Zero, E.Commutation, E.Fill, E.Unvec)):
        data = tuple(str(x) for x in e.key() if not isinstance(x, E.Expr))
    else:
        data = ()
    key = (_RANK.get(type(e), 99), data, tuple([order_key(a) for a in e.args]))
    _put(e, "_order", key)
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
    return _ONE_Q, t


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
    if _product_of_functions(e):
        return True
    if isinstance(e, E.Add) and all(is_symmetric(t) for t in e.items):
        return True
    if isinstance(e, E.Mul) and not _atomic(e):
        chain = [f for f in e.items if not f.is_scalar]
        if len(chain) == 1 and len(e.items) > 1 and is_symmetric(chain[0]):     # s S
            return True
    x = expand(e)
    return x is not None and transpose(x) == x


def function_base(e):
    """The matrix X of which e is a function, as far as the forms show (X itself, a
    power, inverse or matrix function of such an e, sums and products of them with
    scalars and I), or None: functions of one matrix commute with each other."""
    if isinstance(e, (E.Inverse, E.MatPow, E.MatFunc)):
        return function_base(e.arg)
    if isinstance(e, (E.Add, E.Mul)) and not e.is_scalar and not (isinstance(e, E.Mul) and _atomic(e)):
        items = e.items
        bases = {function_base(f) for f in items if not (f.is_scalar or isinstance(f, E.Identity))}
        if len(bases) == 1:
            return bases.pop()
        return None
    if e.is_scalar or isinstance(e, (E.Identity, E.Zero)):
        return None
    return e


def _product_of_functions(e):
    """A product of functions of one symmetric matrix (expm(S) (I + expm(S))⁻¹): each
    factor symmetric, and they commute, so the product is symmetric."""
    if not isinstance(e, E.Mul) or _atomic(e):
        return False
    chain = [f for f in e.items if not f.is_scalar]
    if len(chain) < 2:
        return False
    base = function_base(e)
    return base is not None and transpose(base) == base


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


def _compare(a, b, memo):
    """-1, 0 or 1 as order_key(a) is below, equal to or above order_key(b), found level by
    level and remembered per pair of nodes (in memo, one sort's): comparing the keys of
    deeply nested factors (exp(exp(… x …))) as tuples walks down the shared depth on
    every comparison, which made long products of nested functions quartic in the depth
    (a Hessian of 50 nested exp took 10 s); remembered, each pair of nodes is compared
    once.  (The nodes outlive the sort, so their ids are theirs while memo lives.)"""
    if a is b:
        return 0
    k = (id(a), id(b))
    hit = memo.get(k)
    if hit is not None:
        return hit
    ka, kb = order_key(a), order_key(b)
    c = (ka[:2] > kb[:2]) - (ka[:2] < kb[:2])
    if not c:
        aa, ba = a.args, b.args
        for x, y in zip(aa, ba):
            c = _compare(x, y, memo)
            if c:
                break
        else:
            c = (len(aa) > len(ba)) - (len(aa) < len(ba))
    memo[k] = c
    return c


def sort_canonical(items):
    """items (a list) sorted in place by order_key."""
    if len(items) < 8:
        items.sort(key=order_key)           # short lists: the keys' own comparison is fastest
    else:
        memo = {}
        items.sort(key=functools.cmp_to_key(lambda a, b: _compare(a, b, memo)))


# ---------------------------------------------------------------------------- equal traces


def same_value_key(e):
    """A key equal for expressions that differ only by the rotations a trace allows:
    tr(A B) and tr(B A), tr(Aᵀ Bᵀ) and tr(B A) (tr(M) = tr(Mᵀ)), aᵀ x and xᵀ a (a 1×1
    product is its transpose), at any depth; otherwise the expression itself.

    Sums and products collect their terms and factors by this key and keep the first
    spelling met, so tr(A B) + tr(B A) = 2 tr(A B) and the user's rotation is the one
    printed.  The key is sound: every step preserves the value.  (Remembered on the node.)"""
    hit = e._same_value                # None until set (Expr, a class attribute)
    if hit is not None:
        return hit
    args = e.args
    if not args:
        return e
    new = tuple([same_value_key(a) for a in args])
    y = e if E.same_items(args, new) else e.rebuild(new)
    t = type(e)
    if t is E.Trace and not y.arg.is_scalar:
        chain = _chain_items(y.arg)
        if chain is not None:
            y = E.Trace(_least_rotation(chain))
    elif t is E.Mul and y.is_scalar:
        scal = sorted((f for f in y.items if f.is_scalar), key=order_key)
        chain = [f for f in y.items if not f.is_scalar]
        if chain:
            back = [same_value_key(transpose(f)) for f in reversed(chain)]
            chain = min(chain, back, key=lambda c: tuple(order_key(f) for f in c))
        y = E.Mul(tuple(scal + chain)) if len(scal) + len(chain) > 1 else (scal + chain)[0]
    elif t in (E.Add, E.Hadamard) and y is not e:
        y = type(y)(tuple(sorted(y.items, key=order_key)))
    _put(e, "_same_value", y)
    return y


def _may_rotate(t):
    """Whether a term can differ from an equal one by a rotation its key undoes: a scalar,
    or a product with scalar factors (tr(A B) X); a bare chain of matrices (the long
    terms of gradients) is compared as it is."""
    return t.is_scalar or (isinstance(t, E.Mul) and t.items[0].is_scalar) or not isinstance(t, E.Mul)


def _chain_items(m):
    """The factors of a traced product (scalars left out: they do not rotate), or None."""
    if isinstance(m, E.Mul):
        if any(f.is_scalar for f in m.items):
            return None
        return list(m.items)
    return [m]


def _least_rotation(chain):
    """Of the 2k products with the trace of chain (its k cyclic rotations and theirs of
    the transposed, reversed chain), the least in the canonical order."""
    back = [same_value_key(transpose(f)) for f in reversed(chain)]
    best = None
    for c in (chain, back):
        keys = [order_key(f) for f in c]
        for i in range(len(c)):
            k = tuple(keys[i:] + keys[:i])
            if best is None or k < best[0]:
                best = (k, c[i:] + c[:i])
    items = best[1]
    return items[0] if len(items) == 1 else E.Mul(tuple(items))


# ---------------------------------------------------------------------------- transpose


def transpose(x):
    """xᵀ pushed inward, for a canonical x (remembered on the node: nodes are immutable)."""
    if x.is_scalar:
        return x
    hit = x._transposed                # None until set (Expr, a class attribute)
    if hit is not None:
        return hit
    out = _transpose(x)
    _put(x, "_transposed", out)
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
    if t is E.MatFunc:                       # f(X)ᵀ = f(Xᵀ): f(S) of a symmetric S is symmetric
        return mat_func(x.name, transpose(x.arg), x.p)
    if t is E.Frechet:                       # L_f(X, E)ᵀ = L_f(Xᵀ, Eᵀ)
        return frechet(x.name, transpose(x.arg), transpose(x.dir), x.p)
    if t is E.SpectralVec and x.name == "polar":
        # polar(X)ᵀ = polar(Xᵀ) (U Vᵀ of Xᵀ = V Σ Uᵀ is V Uᵀ): for a symmetric S, polar(S)
        # is symmetric
        xt = transpose(x.arg)
        if xt == x.arg:
            return x
        return E.SpectralVec("polar", xt)
    return E.Transpose(x)


# ---------------------------------------------------------------------------- products


def _base_exp(f):
    """A scalar factor as (base, exponent): the exponent a Fraction when it is a number,
    else the exponent's expression (det(X)^(1/n - 1) is (det(X), 1/n - 1))."""
    if isinstance(f, E.Pow):
        if isinstance(f.exp, E.Num):
            return f.base, f.exp.value
        return f.base, f.exp
    return f, _ONE_Q


def _add_exp(a, b):
    """The sum of two exponents of _base_exp (sᵃ sᵇ = sᵃ⁺ᵇ)."""
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a + b
    s = add(tuple(E.Num(x) if isinstance(x, Fraction) else x for x in (a, b)), E.SCALAR)
    return s.value if isinstance(s, E.Num) else s


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


def _is_symmetriser(f):
    """Whether f is I(n n) + K(n,n) (twice the projection onto vec of symmetric matrices)."""
    if type(f) is not E.Add or len(f.items) != 2:
        return False
    a, b = f.items
    if isinstance(a, E.Commutation):
        a, b = b, a
    return isinstance(a, E.Identity) and isinstance(b, E.Commutation) and b.m == b.n


def _square_symmetrisers(chain):
    """(I + K(n,n)) (I + K(n,n)) = 2 (I + K(n,n)), as K(n,n)² = I: the chain with each
    such pair one factor, and how many pairs there were (a factor 2 each)."""
    out, doubled = [], 0
    for f in chain:
        if out and f == out[-1] and _is_symmetriser(f):
            doubled += 1
            continue
        out.append(f)
    return out, doubled


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


def _is_even(p):
    return isinstance(p, Fraction) and p != 0 and p.denominator == 1 and p % 2 == 0


def _split_abs_of_products(powers, order, first):
    """|s t|^p beside an even power s^(2k) becomes |s|^p |t|^p, so that the even powers
    meet their absolute values (s^2 / |s t| = |s| / |t|).  Without it the derivative of
    |c a| along c, c a^2 / |c a|, is 0/0 wherever a = 0, where f is 0 for every c and its
    derivative is 0; split, it is c |a| / |c|, finite there and not a number only at
    c = 0, where |c a| has a true kink (a ≠ 0).  The scalar factors of the product are its
    scalar items and the rest of it (a 1×1 chain such as wᵀ w) as one factor."""
    for b in list(order):
        p = powers.get(b)
        if not (isinstance(b, E.Func) and b.name == "abs" and isinstance(b.arg, E.Mul)
                and isinstance(p, Fraction) and p.denominator == 1):
            continue
        items = b.arg.items
        chain = [f for f in items if not f.is_scalar]
        parts = [f for f in items if f.is_scalar]
        if chain:
            parts.append(chain[0] if len(chain) == 1 else E.Mul(tuple(chain)))
        parts = [first.get(same_value_key(f), f) if f.args else f for f in parts]
        hit = [f for f in parts if not isinstance(f, E.Num) and _is_even(powers.get(f))]
        if not hit or len(parts) < 2:
            continue
        rest = [f for f in parts if f not in hit]
        del powers[b]
        order.remove(b)
        pieces = [func("abs", f, E.SCALAR) for f in hit]
        if rest:
            pieces.append(func("abs", mul(tuple(rest), E.SCALAR), E.SCALAR))
        for piece in pieces:
            for f in _flatten_mul([piece]):
                fb, fp = _base_exp(f)
                fp = fp * p if isinstance(fp, Fraction) else mul((E.Num(p), fp), E.SCALAR)
                if fb in powers:
                    powers[fb] = _add_exp(powers[fb], fp)
                else:
                    powers[fb] = fp
                    order.append(fb)


# 10^1000 (parse.MAX_EXPONENT) has 3,322 bits: every literal the parser reads is a coefficient
_COEF_BITS = 3340


def mul(items, shape):
    """A canonical product: [coefficient] + scalar factors (sorted, powers merged) + chain."""
    items = _flatten_mul(items)
    if all(type(f) in _PLAIN_CHAIN and not f.is_scalar for f in items):
        # nothing to merge, cancel or reorder: a chain of plain factors is canonical
        return items[0] if len(items) == 1 else E.Mul(tuple(items))
    coef = _ONE_Q
    scal, chain = [], []
    for f in items:
        if isinstance(f, E.Num):
            coef = f.value if coef is _ONE_Q else coef * f.value
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
    first = {}                          # same-value key -> the first spelling met
    for f in scal:
        b, p = _base_exp(f)
        if b.args:
            b = first.setdefault(same_value_key(b), b)
        if b in powers:
            powers[b] = _add_exp(powers[b], p)
        else:
            powers[b] = p
            order.append(b)
    _split_abs_of_products(powers, order, first)
    # s^(2k) |s|^p = |s|^(2k + p): even powers meet the absolute value
    for b in list(order):
        if isinstance(b, E.Func) and b.name == "abs" and b.arg in powers:
            p = powers[b.arg]
            if isinstance(p, Fraction) and p.denominator == 1 and p % 2 == 0:
                powers[b] = _add_exp(powers[b], p)
                powers[b.arg] = Fraction(0)
    scal = []
    for b in order:
        p = powers[b]
        if not isinstance(p, Fraction):
            scal.append(power(b, p))             # a symbolic exponent: det(X)^(1/n)
            continue
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
    if len(scal) > 1:
        scal = _sigmoid_complement(
            scal, power=lambda f: (f.base, f.exp) if isinstance(f, E.Pow) else (None, None),
            one_minus=lambda g: add((E.ONE, mul((E.MINUS_ONE, g), E.SCALAR)), E.SCALAR),
            pw=lambda g, k: E.Pow(g, E.Num(k)))
    sort_canonical(scal)
    if chain:
        chain = _merge_chain(chain)
        if any(isinstance(f, E.Inverse) for f in chain):
            chain = _merge_chain(_cancel_into_inverses(chain))
        if len(chain) > 1 and any(type(f) is E.Add for f in chain):
            chain, doubled = _square_symmetrisers(chain)
            if doubled:
                coef *= 2 ** doubled
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
            chain[pos] = wrap(ARRAY_FUNCTIONS["softmax"].node(x))
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
    first = {}                          # same-value key -> the first spelling met
    for t in items:
        if is_zero(t):
            continue
        if isinstance(t, E.Fill):
            fills.append(t.value)
            continue
        c, rest = split_coef(t)
        if rest is not None and rest.args and _may_rotate(rest):
            rest = first.setdefault(same_value_key(rest), rest)
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
                coefs[f] = _ONE_Q
                order.append(f)
    terms = [(coefs[r], r) for r in order if coefs[r] != 0]
    if not terms:
        return zero_of(shape)
    if len(terms) == 1:
        return with_coef(terms[0][0], terms[0][1], shape)
    terms = [with_coef(c, r, shape) for c, r in terms]
    collected = _collect_frechet(terms, shape)
    if collected is not None:
        return add(collected, shape, factor)
    if not factor:
        return E.Add(tuple(sorted(terms, key=_term_key)))
    expanded = _expand_elementwise(terms, shape)
    if expanded is not None:
        return expanded
    terms = _commute_kron(terms)
    terms = _factor(terms, shape)
    if len(terms) == 1:
        return terms[0]
    return _common_coef(terms, shape)


def _collect_frechet(terms, shape):
    """c L_f(X, A) + s L_f(X, B) = L_f(X, c A + s B): the Fréchet derivatives of one f at
    one X gathered into one (linear in the direction); None when no two share f and X."""
    groups = {}
    for i, t in enumerate(terms):
        c, scal, chain = factors(t)
        if len(chain) == 1 and isinstance(chain[0], E.Frechet):
            fr = chain[0]
            groups.setdefault((fr.name, fr.arg, fr.p), []).append((i, c, scal, fr.dir))
    if not any(len(g) > 1 for g in groups.values()):
        return None
    out = [t for i, t in enumerate(terms)
           if not any(len(g) > 1 and i in [m[0] for m in g] for g in groups.values())]
    for (name, x, p), members in groups.items():
        if len(members) < 2:
            continue
        d = add(tuple(mul((E.Num(c),) + tuple(scal) + (dr,), dr.shape) for _, c, scal, dr in members),
                x.shape)
        out.append(frechet(name, x, d, p))
    return tuple(out)


def _commute_kron(terms):
    """c (A ⊗ B) + c K(p,r) (A ⊗ B) = c (I + K(p,r)) (A ⊗ B), where the second term comes as
    (B ⊗ A) K(q,s) = K(p,r) (A ⊗ B)  or  K(r,p) (B ⊗ A) ... (A ⊗ B) K(s,q) on the other
    side, for B p×q and A r×s (Magnus and Neudecker, Theorem 3.9):
    Iₙ ⊗ Xᵀ + (Xᵀ ⊗ Iₙ) K(m,n) = (I + K(n,n)) (Iₙ ⊗ Xᵀ), as they write it."""
    kinds = [factors(t) for t in terms]
    if not any(len(ch) == 2 and any(isinstance(f, E.Commutation) for f in ch) for _, _, ch in kinds):
        return terms
    bare = {}                                       # (c, scalars, A ⊗ B) -> index of the term
    for i, (c, scal, ch) in enumerate(kinds):
        if len(ch) == 1 and isinstance(ch[0], E.Kron):
            bare.setdefault((c, tuple(scal), ch[0]), i)
    if not bare:
        return terms
    out = list(terms)
    used = set()
    for i, (c, scal, ch) in enumerate(kinds):
        if len(ch) != 2:
            continue
        left = isinstance(ch[0], E.Commutation)
        kr, K = (ch[1], ch[0]) if left else (ch[0], ch[1])
        if not (isinstance(kr, E.Kron) and len(kr.items) == 2 and isinstance(K, E.Commutation)):
            continue
        B, A = kr.items
        (p, q), (r, s) = B.shape, A.shape
        if (not left and (K.m, K.n) != (q, s)) or (left and (K.m, K.n) != (r, p)):
            continue
        swapped = kron((A, B), kr.shape)
        j = bare.get((c, tuple(scal), swapped))
        if j is None or j in used or i in used:
            continue
        # B ⊗ A K(q,s) = K(p,r) (A ⊗ B): the identity sits on the left;
        # K(r,p) (B ⊗ A) = (A ⊗ B) K(s,q): on the right
        if not left:
            Kn = E.Commutation(p, r)
            ipk = add((E.Identity(E.size_mul(p, r)), Kn), Kn.shape)
            merged = mul((E.Num(c),) + tuple(scal) + (ipk, swapped), terms[i].shape)
        else:
            Kn = E.Commutation(s, q)
            ipk = add((E.Identity(E.size_mul(s, q)), Kn), Kn.shape)
            merged = mul((E.Num(c),) + tuple(scal) + (swapped, ipk), terms[i].shape)
        out[j] = merged
        out[i] = None
        used.update((i, j))
    return [t for t in out if t is not None]


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
    # vec(A) ∘ vec(B) = vec(A ∘ B): the factors then merge inside (vec(X) ∘ vec(X .^ -2) =
    # vec(X .^ -1), so the Jacobian of X ./ X is 0), and with a diagonal factor the rule
    # below takes elementwise functions of the diagonal only (the Jacobians of diag(f(X)))
    if len(arrays) > 1 and all(isinstance(a, E.Vec) for a in arrays) \
            and len({a.arg.shape for a in arrays}) == 1:
        inner = hadamard(tuple(a.arg for a in arrays), arrays[0].arg.shape)
        core = vec(inner)
        return mul(tuple(scal) + (core,), shape) if scal else core
    # equal factors merge into elementwise powers
    powers, order = {}, []
    for f in arrays:
        if isinstance(f, E.ElemPow) and isinstance(f.exp, E.Num):
            b, p = f.base, f.exp.value
        else:
            b, p = f, _ONE_Q
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
    if len(arrays) > 1:
        arrays = _sigmoid_complement(
            arrays, power=lambda f: (f.base, f.exp) if isinstance(f, E.ElemPow) else (None, None),
            one_minus=lambda g: add((E.Fill(E.ONE, *g.shape), mul((E.MINUS_ONE, g), g.shape)), g.shape),
            pw=lambda g, k: elempow(g, E.Num(k), g.shape))
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


def _sigmoid_complement(fs, power, one_minus, pw):
    """exp(-a) sigmoid(a) = sigmoid(-a), exp(-a) sigmoid(a)ᵏ = sigmoid(a)ᵏ⁻¹ (1 − sigmoid(a))
    for k ≥ 2: the factors fs with each such pair replaced (power(f) is (base, exponent)
    of a power, else (None, None))."""
    sig = {}
    for f in fs:
        b, p = power(f)
        if b is None:
            b, p = f, E.ONE
        if isinstance(b, E.Func) and b.name == "sigmoid" and isinstance(p, E.Num) \
                and p.value >= 1 and p.value.denominator == 1:
            sig[b.arg] = (f, int(p.value))
    if not sig:
        return fs
    out = list(fs)
    for f in fs:
        if isinstance(f, E.Func) and f.name == "exp" and f in out:
            c, rest = split_coef(f.arg)
            if c < 0 and rest is not None:
                a = with_coef(-c, rest, f.arg.shape)
                if a in sig and sig[a][0] in out:
                    g, k = sig.pop(a)
                    out.remove(f)
                    out.remove(g)
                    s = E.Func("sigmoid", a)
                    if k == 1:
                        out.append(E.Func("sigmoid", f.arg))     # exp(-a) sigmoid(a) = sigmoid(-a)
                        continue
                    out.append(pw(s, k - 1))
                    out.append(one_minus(s))
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


# ---------------------------------------------------------------------------- named rules
#
# The builders of the operations below are lists of named rules, looked up by node type
# (SymPy's strategies: ``exhaust(typed({Trace: do_one(*rules)}))``).  A rule takes the
# node, whose arguments are canonical, and returns its canonical replacement, or None
# when it does not apply; ``rewrite`` applies the first rule that does.  A rule builds its
# result with the builders, so the result is canonical again (the ``exhaust``).
# Products, sums, Hadamard and Kronecker products and transposes are the hot path: they
# stay one-pass builders (above), and their identities are listed in ``BUILDER_RULES``.


class Rule:
    """One identity of the simplifier: its name, its formula, the node type it rewrites
    and its function (node -> canonical node, or None where it does not apply)."""
    __slots__ = ("name", "formula", "node", "fn")

    def __init__(self, name, formula, node, fn):
        self.name, self.formula, self.node, self.fn = name, formula, node, fn

    def __repr__(self):
        return f"Rule({self.name!r}, {self.formula!r})"


RULES = {}          # node type -> [Rule, ...], tried in order


def rule(node, name, formula):
    """Declare the decorated function a rule rewriting nodes of type node."""
    def register(fn):
        RULES.setdefault(node, []).append(Rule(name, formula, node, fn))
        return fn
    return register


def rewrite(node):
    """The first of node's rules that applies (do_one), else node itself."""
    for r in RULES.get(type(node), ()):
        out = r.fn(node)
        if out is not None:
            return out
    return node


def _pulled_scalars(build):
    """The rule 'scalars out of a linear operation build(·)' for unary nodes."""
    return lambda e: _scalars_out(e.arg, build)


# ---- traces


def trace(x):
    return rewrite(E.Trace(x))


rule(E.Trace, "tr-scalar", "tr(s) = s")(lambda e: e.arg if e.arg.is_scalar else None)
rule(E.Trace, "tr-zero", "tr(0) = 0")(lambda e: E.ZERO if is_zero(e.arg) else None)
rule(E.Trace, "tr-transpose", "tr(Aᵀ) = tr(A)")(
    lambda e: trace(e.arg.arg) if isinstance(e.arg, E.Transpose) else None)
rule(E.Trace, "tr-diag", "tr(diag(v)) = sum(v)")(
    lambda e: entry_sum(e.arg.arg) if isinstance(e.arg, E.DiagMat) else None)


@rule(E.Trace, "tr-kron", "tr(A ⊗ B) = tr(A) tr(B)  (A, B square)")
def _tr_kron(e):
    x = e.arg
    if isinstance(x, E.Kron) and all(a.shape[0] == a.shape[1] for a in x.items):
        return mul(tuple(trace(a) for a in x.items), E.SCALAR)
    return None


rule(E.Trace, "tr-scalars-out", "tr(s A) = s tr(A)")(_pulled_scalars(trace))


@rule(E.Trace, "tr-cyclic-scalar", "tr(P r Q) = r Q P  (r a row: the rotation is 1×1)")
def _tr_rotate(e):
    if isinstance(e.arg, E.Mul):
        chain = list(e.arg.items)
        for i, f in enumerate(chain):
            if i > 0 and f.shape[0] == 1:
                return mul(tuple(chain[i:] + chain[:i]), E.SCALAR)
    return None


# ---- sums of entries


def entry_sum(x):
    return rewrite(E.Sum(x))


rule(E.Sum, "sum-scalar", "sum(s) = s")(lambda e: e.arg if e.arg.is_scalar else None)


@rule(E.Sum, "sum-row", "sum(r) = sum(rᵀ)  (r a row)")
def _sum_row(e):
    x = e.arg
    if x.shape[0] == 1:
        t = transpose(x)                         # the sum of a row is the sum of its column,
        if not (isinstance(t, E.Transpose) and t.arg is x):
            return entry_sum(t)
        return e                                 # unless only a Transpose node wraps it (no loop)
    return None


rule(E.Sum, "sum-zero", "sum(0) = 0")(lambda e: E.ZERO if is_zero(e.arg) else None)
rule(E.Sum, "sum-transpose", "sum(Aᵀ) = sum(vec(A)) = sum(A)")(
    lambda e: entry_sum(e.arg.arg) if isinstance(e.arg, (E.Transpose, E.Vec)) else None)
rule(E.Sum, "sum-diag", "sum(diag(v)) = sum(v)")(
    lambda e: entry_sum(e.arg.arg) if isinstance(e.arg, E.DiagMat) else None)
rule(E.Sum, "sum-scalars-out", "sum(s A) = s sum(A)")(_pulled_scalars(entry_sum))


# ---- determinants


def det(x):
    return rewrite(E.Det(x))


rule(E.Det, "det-scalar", "det(s) = s  (1×1)")(lambda e: e.arg if e.arg.is_scalar else None)
rule(E.Det, "det-zero", "det(0) = 0")(lambda e: E.ZERO if is_zero(e.arg) else None)
rule(E.Det, "det-transpose", "det(Aᵀ) = det(A)")(
    lambda e: det(e.arg.arg) if isinstance(e.arg, E.Transpose) else None)
rule(E.Det, "det-inverse", "det(A⁻¹) = det(A)⁻¹")(
    lambda e: power(det(e.arg.arg), E.MINUS_ONE) if isinstance(e.arg, E.Inverse) else None)
rule(E.Det, "det-identity", "det(I) = 1")(lambda e: E.ONE if isinstance(e.arg, E.Identity) else None)


def logdet(x):
    return rewrite(E.LogDet(x))


rule(E.LogDet, "logdet-transpose", "log|Aᵀ| = log|A|")(
    lambda e: logdet(e.arg.arg) if isinstance(e.arg, E.Transpose) else None)
rule(E.LogDet, "logdet-inverse", "log|A⁻¹| = −log|A|")(
    lambda e: mul((E.MINUS_ONE, logdet(e.arg.arg)), E.SCALAR) if isinstance(e.arg, E.Inverse) else None)
rule(E.LogDet, "logdet-identity", "log|I| = 0")(
    lambda e: E.ZERO if isinstance(e.arg, E.Identity) else None)


# ---- inverses and powers


def inverse(x):
    return rewrite(E.Inverse(x))


rule(E.Inverse, "inv-scalar", "s⁻¹ = s^-1  (a scalar power)")(
    lambda e: power(e.arg, E.MINUS_ONE) if e.arg.is_scalar else None)
rule(E.Inverse, "inv-inverse", "(A⁻¹)⁻¹ = A")(lambda e: e.arg.arg if isinstance(e.arg, E.Inverse) else None)
rule(E.Inverse, "inv-power", "(Aᵏ)⁻¹ = (A⁻¹)ᵏ")(
    lambda e: matpow(inverse(e.arg.arg), e.arg.k) if isinstance(e.arg, E.MatPow) else None)
rule(E.Inverse, "inv-diag", "diag(v)⁻¹ = diag(v .^ -1)")(
    lambda e: diagmat(elempow(e.arg.arg, E.MINUS_ONE, e.arg.arg.shape)) if isinstance(e.arg, E.DiagMat) else None)
rule(E.Inverse, "inv-identity", "I⁻¹ = I")(lambda e: e.arg if isinstance(e.arg, E.Identity) else None)


@rule(E.Inverse, "inv-scalars-out", "(s A)⁻¹ = s⁻¹ A⁻¹")
def _inv_scalars(e):
    x = e.arg
    if isinstance(x, E.Mul) and not _atomic(x):
        scal = [f for f in x.items if f.is_scalar]
        chain = [f for f in x.items if not f.is_scalar]
        if scal and len(chain) == 1:
            return mul(tuple(power(s, E.MINUS_ONE) for s in scal) + (inverse(chain[0]),), x.shape)
    return None


def matpow(x, k):
    return rewrite(E.MatPow(x, k))


rule(E.MatPow, "matpow-zero", "A⁰ = I")(lambda e: E.Identity(e.arg.shape[0]) if e.k == 0 else None)
rule(E.MatPow, "matpow-one", "A¹ = A, 0ᵏ = 0")(lambda e: e.arg if e.k == 1 or is_zero(e.arg) else None)
rule(E.MatPow, "matpow-diag", "diag(v)ᵏ = diag(v .^ k)")(
    lambda e: diagmat(elempow(e.arg.arg, E.Num(e.k), e.arg.arg.shape)) if isinstance(e.arg, E.DiagMat) else None)
rule(E.MatPow, "matpow-power", "(Aʲ)ᵏ = Aʲᵏ")(
    lambda e: matpow(e.arg.arg, e.arg.k * e.k) if isinstance(e.arg, E.MatPow) else None)
rule(E.MatPow, "matpow-identity", "Iᵏ = I")(lambda e: e.arg if isinstance(e.arg, E.Identity) else None)


def power(b, p):
    return rewrite(E.Pow(b, p))


def _num_exp(e):
    return e.exp.value if isinstance(e.exp, E.Num) else None


rule(E.Pow, "pow-zero", "s⁰ = 1")(lambda e: E.ONE if _num_exp(e) == 0 else None)
rule(E.Pow, "pow-one", "s¹ = s")(lambda e: e.base if _num_exp(e) == 1 else None)


@rule(E.Pow, "pow-number", "2³ = 8  (exact powers of numbers)")
def _pow_number(e):
    if isinstance(e.base, E.Num) and isinstance(e.exp, E.Num):
        v = pow_num(e.base.value, e.exp.value)
        if v is not None:
            return E.Num(v)
    return None


@rule(E.Pow, "pow-power", "(sᵃ)ᵏ = sᵃᵏ  (k an integer)")
def _pow_power(e):
    p = _num_exp(e)
    b = e.base
    if p is not None and p.denominator == 1 and isinstance(b, E.Pow) and isinstance(b.exp, E.Num):
        return power(b.base, E.Num(b.exp.value * p))
    return None


@rule(E.Pow, "pow-product", "(s t)ᵏ = sᵏ tᵏ  (k an integer)")
def _pow_product(e):
    p = _num_exp(e)
    b = e.base
    if p is not None and p.denominator == 1 and isinstance(b, E.Mul) and not _atomic(b):
        return mul(tuple(power(f, e.exp) for f in b.items), E.SCALAR)
    return None


rule(E.Pow, "pow-of-one", "1ᵖ = 1")(
    lambda e: E.ONE if isinstance(e.base, E.Num) and e.base.value == 1 else None)


def _is_one(t):
    """1, or a broadcast 1 (the 1 of 1 + exp(x) for an array x)."""
    return (isinstance(t, E.Num) and t.value == 1) or \
        (isinstance(t, E.Fill) and isinstance(t.value, E.Num) and t.value.value == 1)


def _one_plus_exp(x):
    """a for x = 1 + exp(a), else None."""
    if isinstance(x, E.Add) and len(x.items) == 2:
        a, b = x.items
        if _is_one(b):
            a, b = b, a
        if _is_one(a) and isinstance(b, E.Func) and b.name == "exp":
            return b.arg
    return None


def _sigmoid_power(e, pw):
    """(1 + exp(-a))^-k = sigmoid(a)^k for a whole k > 0 (pw builds the power)."""
    p = _num_exp(e)
    if p is None or p >= 0 or p.denominator != 1:
        return None
    a = _one_plus_exp(e.base)
    if a is None:
        return None
    c, rest = split_coef(a)
    if c >= 0 or rest is None:
        return None
    s = func("sigmoid", with_coef(-c, rest, a.shape), a.shape)
    return pw(s, E.Num(-p))


rule(E.Pow, "pow-sigmoid", "(1 + exp(-a))⁻ᵏ = sigmoid(a)ᵏ")(lambda e: _sigmoid_power(e, power))


# ---- elementwise functions and powers


# from the operator records: f at its special points, the functions with f(0) = 0 (so
# f(D) = diag(f(diag(D))) for a diagonal D), and those never negative (|f(x)| = f(x))
_FUNC_AT = {(r.name, Fraction(x)): Fraction(v) for r in ELEMENTWISE_RECORDS for x, v in r.at.items()}
ZERO_AT_ZERO = tuple(r.name for r in ELEMENTWISE_RECORDS if r.zero_at_zero)
NONNEGATIVE = tuple(r.name for r in ELEMENTWISE_RECORDS if r.nonnegative)


def array_func(name, a):
    """softmax(t) = 1 and logsumexp(t) = t at a scalar t (the record says which)."""
    if a.is_scalar:
        return ARRAY_FUNCTIONS[name].scalar(a)
    return ARRAY_FUNCTIONS[name].node(a)


def func(name, a, shape):
    return rewrite(E.Func(name, a))


rule(E.Func, "f-vec", "f(vec(M)) = vec(f(M))")(
    lambda e: vec(func(e.name, e.arg.arg, e.arg.arg.shape)) if isinstance(e.arg, E.Vec) else None)
rule(E.Func, "f-zero-array", "f(0) = f(0) 1 1ᵀ  (a broadcast constant)")(
    lambda e: fill(func(e.name, E.ZERO, E.SCALAR), e.arg.rows, e.arg.cols) if isinstance(e.arg, E.Zero) else None)


@rule(E.Func, "f-diagonal", "f(D) = diag(f(diag(D)))  (D diagonal, f(0) = 0)")
def _f_diagonal(e):
    a = e.arg
    if e.name in ZERO_AT_ZERO and not a.is_scalar and a.shape[1] != 1 and is_diagonal(a):
        return diagmat(func(e.name, diagvec(a), (a.shape[0], 1)))
    return None


@rule(E.Func, "f-at-number", "exp(0) = 1, log(1) = 0, sin(0) = 0, cos(0) = 1, …")
def _f_at(e):
    a = e.arg
    if isinstance(a, E.Num) and _FUNC_AT.get((e.name, a.value)) is not None:
        return E.Num(_FUNC_AT[(e.name, a.value)])
    return None


rule(E.Func, "log-exp", "log(exp(a)) = a")(
    lambda e: e.arg.arg if e.name == "log" and isinstance(e.arg, E.Func) and e.arg.name == "exp" else None)
rule(E.Func, "log-softplus", "log(1 + exp(a)) = softplus(a)")(
    lambda e: func("softplus", _one_plus_exp(e.arg), e.shape)
    if e.name == "log" and _one_plus_exp(e.arg) is not None else None)
rule(E.Func, "abs-nonnegative", "|f(a)| = f(a)  (f never negative: abs, exp, sqrt, sigmoid, …)")(
    lambda e: e.arg if e.name == "abs" and isinstance(e.arg, E.Func) and e.arg.name in NONNEGATIVE else None)
rule(E.Func, "f-fill", "f(s 1 1ᵀ) = f(s) 1 1ᵀ")(
    lambda e: fill(func(e.name, e.arg.value, E.SCALAR), e.arg.rows, e.arg.cols) if isinstance(e.arg, E.Fill) else None)


def elempow(b, p, shape):
    return rewrite(E.ElemPow(b, p))


rule(E.ElemPow, "epow-vec", "vec(M) .^ p = vec(M .^ p)")(
    lambda e: vec(elempow(e.base.arg, e.exp, e.base.arg.shape)) if isinstance(e.base, E.Vec) else None)


def _pos(e):
    return isinstance(e.exp, E.Num) and e.exp.value > 0


rule(E.ElemPow, "epow-zero", "0 .^ p = 0  (p > 0)")(
    lambda e: e.base if isinstance(e.base, E.Zero) and _pos(e) else None)
rule(E.ElemPow, "epow-diagonal", "D .^ p = diag(diag(D) .^ p)  (D diagonal, p > 0)")(
    lambda e: diagmat(elempow(diagvec(e.base), e.exp, (e.base.shape[0], 1)))
    if _pos(e) and e.base.shape[1] != 1 and is_diagonal(e.base) else None)
rule(E.ElemPow, "epow-one", "A .^ 1 = A")(lambda e: e.base if _num_exp(e) == 1 else None)
rule(E.ElemPow, "epow-zero-exponent", "A .^ 0 = 1 1ᵀ")(
    lambda e: E.Fill(E.ONE, *e.shape) if _num_exp(e) == 0 else None)


@rule(E.ElemPow, "epow-power", "(A .^ a) .^ k = A .^ (a k)  (k an integer)")
def _epow_power(e):
    p = _num_exp(e)
    b = e.base
    if p is not None and p.denominator == 1 and isinstance(b, E.ElemPow) and isinstance(b.exp, E.Num):
        return elempow(b.base, E.Num(b.exp.value * p), e.shape)
    return None


rule(E.ElemPow, "epow-sigmoid", "(1 + exp(-A)) .^ -k = sigmoid(A) .^ k")(
    lambda e: _sigmoid_power(e, lambda b, p: elempow(b, p, b.shape)))
rule(E.ElemPow, "epow-fill", "(s 1 1ᵀ) .^ p = sᵖ 1 1ᵀ")(
    lambda e: fill(power(e.base.value, e.exp), e.base.rows, e.base.cols) if isinstance(e.base, E.Fill) else None)


def fill(v, r, c):
    return rewrite(E.Fill(v, r, c))


rule(E.Fill, "fill-zero", "0 1 1ᵀ = 0")(lambda e: E.Zero(e.rows, e.cols) if is_zero(e.value) else None)
rule(E.Fill, "fill-scalar", "s 1 1ᵀ = s  (1×1)")(lambda e: e.value if e.rows == 1 and e.cols == 1 else None)


# ---- vec, unvec and diag


def vec(x):
    return rewrite(E.Vec(x))


rule(E.Vec, "vec-zero", "vec(0) = 0")(lambda e: zero_of(e.shape) if is_zero(e.arg) else None)
rule(E.Vec, "vec-column", "vec(v) = v")(lambda e: e.arg if e.arg.shape[1] == 1 else None)
rule(E.Vec, "vec-row", "vec(r) = rᵀ")(lambda e: transpose(e.arg) if e.arg.shape[0] == 1 else None)
rule(E.Vec, "vec-unvec", "vec(unvec(v, m)) = v")(lambda e: e.arg.arg if isinstance(e.arg, E.Unvec) else None)
rule(E.Vec, "vec-scalars-out", "vec(s A) = s vec(A)")(_pulled_scalars(vec))


def unvec(x, m, n):
    """unvec(x, m): the vector x (length m·n) as an m×n matrix, column-major."""
    return rewrite(E.Unvec(x, m, n))


rule(E.Unvec, "unvec-zero", "unvec(0, m) = 0")(lambda e: zero_of((e.m, e.n)) if is_zero(e.arg) else None)
rule(E.Unvec, "unvec-column", "unvec(v, m) = v  (an m×1 matrix is the vector)")(
    lambda e: e.arg if e.n == 1 else None)
rule(E.Unvec, "unvec-row", "unvec(v, 1) = vᵀ")(lambda e: transpose(e.arg) if e.m == 1 else None)
rule(E.Unvec, "unvec-vec", "unvec(vec(X), rows of X) = X")(
    lambda e: e.arg.arg if isinstance(e.arg, E.Vec) and e.arg.arg.shape == (e.m, e.n) else None)
rule(E.Unvec, "unvec-fill", "unvec(s 1, m) = s 1 1ᵀ")(
    lambda e: fill(e.arg.value, e.m, e.n) if isinstance(e.arg, E.Fill) else None)
rule(E.Unvec, "unvec-scalars-out", "unvec(s v, m) = s unvec(v, m)")(
    lambda e: _scalars_out(e.arg, lambda y: unvec(y, e.m, e.n)))


def diagmat(x):
    return rewrite(E.DiagMat(x))


rule(E.DiagMat, "diag-zero", "diag(0) = 0")(lambda e: zero_of(e.shape) if is_zero(e.arg) else None)
rule(E.DiagMat, "diag-fill", "diag(s 1) = s I")(
    lambda e: mul((e.arg.value, E.Identity(e.arg.rows)), (e.arg.rows, e.arg.rows))
    if isinstance(e.arg, E.Fill) else None)
rule(E.DiagMat, "diag-scalars-out", "diag(s v) = s diag(v)")(_pulled_scalars(diagmat))


def diagvec(x):
    return rewrite(E.DiagVec(x))


rule(E.DiagVec, "diagvec-zero", "diag(0) = 0")(lambda e: zero_of(e.shape) if is_zero(e.arg) else None)
rule(E.DiagVec, "diagvec-fill", "diag(s 1 1ᵀ) = s 1")(
    lambda e: fill(e.arg.value, e.arg.rows, 1) if isinstance(e.arg, E.Fill) else None)
rule(E.DiagVec, "diagvec-identity", "diag(I) = 1")(
    lambda e: E.Fill(E.ONE, e.arg.n, 1) if isinstance(e.arg, E.Identity) else None)


@rule(E.DiagVec, "diagvec-outer", "diag(s u vᵀ) = s u ∘ v")
def _diagvec_outer(e):
    x = e.arg
    if isinstance(x, E.Mul) and not _atomic(x):
        chain = [f for f in x.items if not f.is_scalar]
        if len(chain) == 2 and chain[0].shape[1] == 1 and chain[1].shape[0] == 1:
            u, v = chain[0], transpose(chain[1])
            return mul(tuple(f for f in x.items if f.is_scalar) + (hadamard((u, v), u.shape),), u.shape)
    return None


rule(E.DiagVec, "diagvec-diag", "diag(diag(v)) = v")(lambda e: e.arg.arg if isinstance(e.arg, E.DiagMat) else None)
rule(E.DiagVec, "diagvec-transpose", "diag(Aᵀ) = diag(A)")(
    lambda e: diagvec(e.arg.arg) if isinstance(e.arg, E.Transpose) else None)
rule(E.DiagVec, "diagvec-scalars-out", "diag(s A) = s diag(A)")(_pulled_scalars(diagvec))


# ---- norms


def norm(x):
    return rewrite(E.Norm(x))


rule(E.Norm, "norm-zero", "‖0‖ = 0")(lambda e: E.ZERO if is_zero(e.arg) else None)
rule(E.Norm, "norm-transpose", "‖Aᵀ‖ = ‖vec(A)‖ = ‖A‖")(
    lambda e: norm(e.arg.arg) if isinstance(e.arg, (E.Transpose, E.Vec)) else None)
rule(E.Norm, "norm-kron", "‖A ⊗ B‖ = ‖A‖ ‖B‖")(
    lambda e: mul(tuple(norm(a) for a in e.arg.items), E.SCALAR) if isinstance(e.arg, E.Kron) else None)


@rule(E.Norm, "norm-coefficient", "‖c A‖ = |c| ‖A‖")
def _norm_coef(e):
    c, rest = split_coef(e.arg)
    if c != 1 and rest is not None:
        return mul((E.Num(abs(c)), norm(rest)), E.SCALAR)
    return None


rule(E.Norm, "norm-scalar", "‖s‖ = |s|")(lambda e: func("abs", e.arg, E.SCALAR) if e.arg.is_scalar else None)


def spec_norm(x):
    return rewrite(E.SpecNorm(x))


rule(E.SpecNorm, "specnorm-transpose", "‖Aᵀ‖₂ = ‖A‖₂")(
    lambda e: spec_norm(e.arg.arg) if isinstance(e.arg, E.Transpose) else None)


def spectral(cls, name, x):
    return rewrite(cls(name, x))


rule(E.Spectral, "spectral-scalar", "λ_max(s) = λ_min(s) = s for a scalar s")(
    lambda e: e.arg if e.arg.is_scalar and e.name in ("lambda_max", "lambda_min") else None)
rule(E.Spectral, "spectral-transpose", "‖Aᵀ‖_* = ‖A‖_*, ‖Aᵀ‖₁ = ‖A‖₁, λ(Sᵀ) = λ(S)")(
    lambda e: spectral(E.Spectral, e.name, e.arg.arg) if isinstance(e.arg, E.Transpose) else None)


# ---- functions of a square matrix (CONTRACT §5.1; records in operators/matrix.py)


def _mf_record(name):
    from .operators import matrix_function
    return matrix_function(name)


def mat_func(name, x, p=None):
    """f(X) over a canonical X, powers normalized (X^(1/2) = sqrtm(X), integer powers)."""
    from .operators import mat_func as node
    e = node(name, x, p)
    if not isinstance(e, E.MatFunc):
        return simplify(e)
    return rewrite(e)


def _prime(name, x, p):
    """f′(X), canonical."""
    return simplify(_mf_record(name).derivative(x, p))


def _chain(x):
    """x without its scalar factors (t A -> A): what decides whether something commutes with x."""
    if isinstance(x, E.Mul) and not _atomic(x):
        chain = [f for f in x.items if not f.is_scalar]
        if chain:
            return chain[0] if len(chain) == 1 else E.Mul(tuple(chain))
    return x


def commutes(e, x):
    """Whether e commutes with x, as far as the forms show: scalars, I, x itself, powers,
    inverses and functions of something that commutes with x, and sums and products of
    them (e = f(x), e = x^k, e = s I + x ...)."""
    if e.is_scalar or isinstance(e, E.Identity) or is_zero(e):
        return True
    if isinstance(e, E.Fill) and isinstance(x, E.Fill):
        return True
    if is_diagonal(e) and is_diagonal(x):          # diagonal matrices commute
        return True
    core = _chain(x)
    if e == x or e == core or _chain(e) == core:
        return True
    if isinstance(e, E.Transpose) and is_symmetric(core) and commutes(e.arg, x):
        return True
    if isinstance(e, (E.Inverse, E.MatPow, E.MatFunc)):
        return commutes(e.arg, x)
    if isinstance(e, E.Mul) and not _atomic(e):
        return all(commutes(f, x) for f in e.items)
    if isinstance(e, E.Add):
        return all(commutes(t, x) for t in e.items)
    return False


rule(E.MatFunc, "mf-scalar", "f(s) of a 1×1 s: exp(s), log(s), sqrt(s), s^p")(
    lambda e: simplify(_mf_record(e.name).scalar(e.arg, e.p)) if e.arg.is_scalar else None)


@rule(E.MatFunc, "mf-at-identity", "logm(I) = 0, sqrtm(I) = I, I^p = I, expm(0) = I")
def _mf_special(e):
    rec = _mf_record(e.name)
    a = e.arg
    at = rec.at_identity if isinstance(a, E.Identity) else rec.at_zero if is_zero(a) else None
    if at == "I":
        return E.Identity(e.shape[0])
    if at == "0":
        return E.Zero(*e.shape)
    return None


@rule(E.MatFunc, "mf-diagonal", "f(D) = diag(f(diag(D)))  (D diagonal: expm(D) = diag(exp(diag(D))), D^p = diag(diag(D) .^ p))")
def _mf_diagonal(e):
    a = e.arg
    if a.is_scalar or not is_diagonal(a):
        return None
    v = diagvec(a)
    if e.name == "powm":
        return diagmat(elempow(v, E.Num(e.p), v.shape))
    return diagmat(simplify(_mf_record(e.name).scalar(v, e.p)))


rule(E.MatFunc, "expm-logm", "expm(logm(X)) = X")(
    lambda e: e.arg.arg if e.name == "expm" and isinstance(e.arg, E.MatFunc) and e.arg.name == "logm" else None)
# (logm(expm(X)) = X only where every eigenvalue of X has |Im λ| < π: for a symmetric X)
rule(E.MatFunc, "logm-expm", "logm(expm(S)) = S  (S symmetric: real eigenvalues)")(
    lambda e: e.arg.arg if e.name == "logm" and isinstance(e.arg, E.MatFunc) and e.arg.name == "expm"
    and is_symmetric(e.arg.arg) else None)


# (No (X^k)^p = X^(k p): the principal power of X^k is X^(k p) only where k·arg λ stays
#  within (−π, π) for every eigenvalue λ, as (−1 + 0.1i)² shows.  The other way round,
#  (X^p)^k = X^(p k) always: matpow-of-power.)


@rule(E.MatPow, "matpow-of-power", "(X^p)^k = X^(p k), sqrtm(X)^2 = X  (p real, k an integer)")
def _matpow_of_power(e):
    a = e.arg
    if isinstance(a, E.MatFunc) and a.name in ("sqrtm", "powm"):
        p = Fraction(1, 2) if a.name == "sqrtm" else a.p
        return mat_func("powm", a.arg, p * e.k)
    return None


def frechet(name, x, d, p=None):
    return rewrite(E.Frechet(name, x, d, p))


rule(E.Frechet, "frechet-zero", "L_f(X, 0) = 0")(lambda e: zero_of(e.shape) if is_zero(e.dir) else None)
rule(E.Frechet, "frechet-scalars-out", "L_f(X, s E) = s L_f(X, E)  (linear in E)")(
    lambda e: _scalars_out(e.dir, lambda y: frechet(e.name, e.arg, y, e.p)))


@rule(E.Frechet, "frechet-commuting", "L_f(X, E) = f′(X) E  (E commutes with X: I, X, f(X), …)")
def _frechet_commuting(e):
    x, d = e.arg, e.dir
    if x.is_scalar or commutes(d, x):
        return mul((_prime(e.name, x, e.p), d), e.shape)
    return None


@rule(E.Frechet, "frechet-sum", "L_f(X, A + B) = L_f(X, A) + L_f(X, B)  (where a term commutes with X)")
def _frechet_sum(e):
    d = e.dir
    if isinstance(d, E.Add) and any(commutes(t, e.arg) for t in d.items):
        return add(tuple(frechet(e.name, e.arg, t, e.p) for t in d.items), e.shape)
    return None


def frechet_jac(name, x, p=None):
    return rewrite(E.FrechetJac(name, x, p))


rule(E.FrechetJac, "jfrechet-scalar", "J of f at a 1×1 x is f′(x)")(
    lambda e: _prime(e.name, e.arg, e.p) if e.arg.is_scalar else None)


rule(E.Trace, "tr-frechet", "tr L_f(X, E) = tr(f′(X) E)")(
    lambda e: trace(mul((_prime(e.arg.name, e.arg.arg, e.arg.p), e.arg.dir), e.arg.shape))
    if isinstance(e.arg, E.Frechet) else None)
rule(E.Trace, "tr-logm", "tr logm(X) = log|X|")(
    lambda e: logdet(e.arg.arg) if isinstance(e.arg, E.MatFunc) and e.arg.name == "logm" else None)
rule(E.LogDet, "logdet-expm", "log|expm(X)| = tr(X)")(
    lambda e: trace(e.arg.arg) if isinstance(e.arg, E.MatFunc) and e.arg.name == "expm" else None)
rule(E.Det, "det-expm", "det(expm(X)) = exp(tr(X))")(
    lambda e: func("exp", trace(e.arg.arg), E.SCALAR)
    if isinstance(e.arg, E.MatFunc) and e.arg.name == "expm" else None)


# The identities the one-pass builders apply (products, sums, Hadamard and Kronecker
# products, transposes): named here, each with its test row like the rules above.
BUILDER_RULES = [Rule(n, f, node, None) for node, n, f in (
    (E.Transpose, "t-product", "(A B)ᵀ = Bᵀ Aᵀ"),
    (E.Transpose, "t-sum", "(A + B)ᵀ = Aᵀ + Bᵀ"),
    (E.Transpose, "t-inverse", "(A⁻¹)ᵀ = (Aᵀ)⁻¹"),
    (E.Transpose, "t-symmetric", "Sᵀ = S  (S symmetric, or a scalar)"),
    (E.Transpose, "t-elementwise", "f(A)ᵀ = f(Aᵀ)"),
    (E.Transpose, "t-matrix-function", "f(A)ᵀ = f(Aᵀ), L_f(A, E)ᵀ = L_f(Aᵀ, Eᵀ)  (expm, logm, sqrtm, A^p)"),
    (E.Mul, "mul-coefficient", "2 A 3 = 6 A"),
    (E.Mul, "mul-scalar-powers", "s s⁻¹ = 1, s sᵃ = sᵃ⁺¹"),
    (E.Mul, "mul-symbolic-powers", "sᵃ sᵇ = sᵃ⁺ᵇ  (a, b any scalars)"),
    (E.Mul, "mul-identity", "A I = A"),
    (E.Mul, "mul-zero", "A 0 = 0"),
    (E.Mul, "mul-inverse", "A A⁻¹ = I"),
    (E.Mul, "mul-powers", "Aᵃ Aᵇ = Aᵃ⁺ᵇ"),
    (E.Mul, "mul-into-inverse", "(F G)⁻¹ F = G⁻¹  (square factors)"),
    (E.Mul, "mul-kron-mixed", "(A ⊗ B)(C ⊗ D) = AC ⊗ BD"),
    (E.Mul, "mul-diag", "diag(a) diag(b) = diag(a ∘ b)"),
    (E.Mul, "mul-commutation", "K(n,m) K(m,n) = I"),
    (E.Mul, "mul-symmetriser", "(I + K(n,n)) (I + K(n,n)) = 2 (I + K(n,n))"),
    (E.Mul, "mul-sigmoid", "exp(a) (1 + exp(a))⁻¹ = sigmoid(a)"),
    (E.Mul, "mul-ones", "vᵀ (s 1) = s sum(v)"),
    (E.Mul, "mul-sigmoid-complement", "exp(-a) sigmoid(a)ᵏ = sigmoid(a)ᵏ⁻¹ (1 − sigmoid(a)), k ≥ 2"),
    (E.Hadamard, "had-sigmoid-complement", "exp(-A) ∘ sigmoid(A) = sigmoid(-A)"),
    (E.Add, "add-collect", "A + 2 A = 3 A"),
    (E.Add, "add-frechet", "c L_f(X, A) + s L_f(X, B) = L_f(X, c A + s B)"),
    (E.Add, "add-equal-traces", "tr(A B) + tr(B A) = 2 tr(A B)"),
    (E.Add, "add-factor-right", "A X + B X = (A + B) X"),
    (E.Add, "add-factor-left", "X A + X B = X (A + B)"),
    (E.Add, "add-common-coefficient", "2 A + 2 B = 2 (A + B)"),
    (E.Add, "add-zero", "A + 0 = A"),
    (E.Add, "add-commutation", "A ⊗ B + (B ⊗ A) K(q,s) = (I + K(p,r)) (A ⊗ B)  (B p×q, A r×s)"),
    (E.Hadamard, "had-scalars", "(s A) ∘ B = s (A ∘ B)"),
    (E.Hadamard, "had-powers", "A ∘ A = A .^ 2, A ∘ A .^ -1 = 1 1ᵀ"),
    (E.Hadamard, "had-identity", "I ∘ D = D  (D diagonal)"),
    (E.Kron, "kron-identities", "I(m) ⊗ I(n) = I(m n)"),
    (E.Kron, "kron-scalars", "(s A) ⊗ B = s (A ⊗ B)"),
)]


def _record_builder(cls):
    """A unary node whose record gives its pieces is rebuilt over its simplified argument
    (its own identities, if any, are named rules in RULES)."""
    if record_of_unary(cls) is None:
        return None
    return lambda e, a: e if a[0] is e.arg else e.rebuild(a)


BUILDERS = OperatorTable("simplifier builder (simplify.BUILDERS)", {
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
    E.Spectral: lambda e, a: spectral(E.Spectral, e.name, a[0]),
    E.SpectralVec: lambda e, a: e if a[0] is e.arg else E.SpectralVec(e.name, a[0]),
    E.MatPow: lambda e, a: matpow(a[0], e.k),
    E.Pow: lambda e, a: power(a[0], a[1]),
    E.ElemPow: lambda e, a: elempow(a[0], a[1], e.shape),
    E.MatFunc: lambda e, a: mat_func(e.name, a[0], e.p),
    E.Frechet: lambda e, a: frechet(e.name, a[0], a[1], e.p),
    E.FrechetJac: lambda e, a: frechet_jac(e.name, a[0], e.p),
}, derive=_record_builder)


def simplify(e):
    """The canonical form of e (the bottom-up fold, each distinct subexpression once)."""
    count = SimplifyCounter()        # the size budget: refuse a swell before combining it

    def build(x, parts):
        if parts:
            count.check(parts)
        return BUILDERS[type(x)](x, parts)

    out = E.fold(e, build)
    return _absorb_minus(out) if isinstance(out, E.Mul) else out


# ---------------------------------------------------------------------------- tidy


def _neg_count(t):
    return 1 if split_coef(t)[0] < 0 else 0


def tidy(e, like=None):
    """Presentation: transposes pulled out where shorter, minus signs moved into
    differences; with like (the user's expression), the terms of sums and the scalar
    factors of products in the order the user wrote their symbols.  The value is
    unchanged."""
    out = _tidy(e)
    return in_users_order(out, like) if like is not None else out


def _symbols_in_order(e, out=None, sums=None):
    """{name: rank} of the symbols of e in the order they are met (the order written);
    with sums (a dict), the same walk puts there {frozenset(terms): terms} of each sum
    of distinct terms in e, the first met of equal sets."""
    out = {} if out is None else out
    seen = set()
    stack = [e]
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, E.Sym):
            out.setdefault(x.name, len(out))
        elif sums is not None and isinstance(x, E.Add) and len(set(x.items)) == len(x.items):
            sums.setdefault(frozenset(x.items), x.items)
        stack.extend(reversed(x.args))
    return out


def in_users_order(e, like):
    """e with the terms of each sum, the operands of each Hadamard product and the scalar
    factors of each product ordered as the user's expression like meets their symbols
    (W x + b stays W x + b, not b + W x); negative terms stay last, terms without symbols
    first; where the user's order says nothing, the canonical order stays."""
    if not E.contains(e, _may_reorder):
        return e                    # nothing to order: the walks of like and e are not needed
    # a sum the user wrote (R + Bᵀ X B), met again in the answer, keeps the user's order
    written = {}
    rank = _symbols_in_order(like, sums=written)
    seqs = {}

    def seq(x):
        hit = seqs.get(id(x))
        if hit is not None and hit[0] is x:
            return hit[1]
        names = {}
        stack = [x]
        while stack and len(names) < 4:      # the first few symbols decide an order
            y = stack.pop()
            if isinstance(y, E.Sym):
                names.setdefault(rank.get(y.name, len(rank)), None)
            stack.extend(reversed(y.args))
        out = tuple(names)
        seqs[id(x)] = (x, out)
        return out

    def order(y):
        """y (its children ordered already) with its own terms or factors ordered."""
        if isinstance(y, E.Add):
            users = written.get(frozenset(y.items)) if len(set(y.items)) == len(y.items) else None
            items = list(users) if users is not None else \
                sorted(y.items, key=lambda t: (_neg_count(t), seq(t)))
            if items != list(y.items):
                y = E.Add(tuple(items))
        elif isinstance(y, E.Hadamard):
            items = sorted(y.items, key=seq)
            if items != list(y.items):
                y = E.Hadamard(tuple(items))
        elif isinstance(y, E.Mul):
            items = list(y.items)
            lead, end = _scalar_run(items)
            if end - lead > 1:
                scal = sorted(items[lead:end], key=seq)
                if scal != items[lead:end]:
                    y = E.Mul(tuple(items[:lead] + scal + items[end:]))
        return y

    return E.rewrite(e, after=order)


def _scalar_run(items):
    """(lead, end): the scalar factors of a product's items after its number, items[lead:end]."""
    lead = 1 if isinstance(items[0], E.Num) else 0
    end = lead
    while end < len(items) and items[end].is_scalar:
        end += 1
    return lead, end


def _may_reorder(y):
    """Whether in_users_order may order y's own terms or factors: a sum, a Hadamard
    product, a product with two scalar factors or more."""
    if isinstance(y, (E.Add, E.Hadamard)):
        return True
    if isinstance(y, E.Mul):
        lead, end = _scalar_run(y.items)
        return end - lead > 1
    return False


def _tidy(e):
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
            new = []
            for a in args:              # a loop, not a generator: one frame per level
                new.append(go(a))
            new = tuple(new)
            y = x if E.same_items(args, new) else x.rebuild(new)
        else:
            y = x
        if isinstance(y, E.Mul):
            y = _pull_runs(y)
        elif isinstance(y, E.Trace) and isinstance(y.arg, E.Transpose):
            y = E.Trace(y.arg.arg)                                      # tr(Mᵀ) = tr(M)
        elif isinstance(y, (E.Func, E.ElemPow, E.MatFunc)) and isinstance(y.args[0], E.Transpose):
            y = E.Transpose(y.rebuild((y.args[0].arg,) + y.args[1:]))   # f(Aᵀ) = f(A)ᵀ
        elif pull_sums and isinstance(y, E.Add) and not y.is_scalar and tc(y) >= 2:
            alt = go(transpose(x), False)
            if tc(alt) + 1 < tc(y):
                y = E.Transpose(alt)
        memo[k] = (x, y)
        return y

    return go(e)


def _pull_runs(m):
    """Aᵀ Bᵀ → (B A)ᵀ for runs of two or more transposed factors of a chain, except
    where a run opens or closes a sandwich Xᵀ M X (X Mᵀ Xᵀ): the quadratic form keeps
    its spelling (Xᵀ Aᵀ X, not (A X)ᵀ X beside Xᵀ A X)."""
    items = list(m.items)
    chain = [f for f in items if not f.is_scalar]
    if len(chain) >= 3 and isinstance(chain[0], E.Transpose) and chain[0].arg == chain[-1]:
        return m
    if len(chain) >= 3 and isinstance(chain[-1], E.Transpose) and chain[-1].arg == chain[0]:
        return m
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
