"""Lowerings of leaves, sums, elementwise operations and matrix functions (one function
per node type; ``NODE_LOWERINGS`` is their table)."""
from fractions import Fraction

import matcalc.codegen.ir as ir
from .chains import Chain
from .lower_matfun import inverse_from_eigh, lower_inverse_from_eigh
from .lower_reductions import sqnorm
from .values import ONE, ZERO, V, is_one, lit, product, rep_of, scalar, short
from .. import expr as E
from ..errors import MatcalcError, UnsupportedError
from ..simplify import split_coef


# ----------------------------------------------------------------------------- leaves


def lower_num(low, e):
    return scalar(lit(e.value))


def lower_sym(low, e):
    return V(low.param(e.name), rep_of(e.shape), e.shape)


def lower_identity(low, e):
    if e.n == 1:
        return scalar(ONE)
    return low.emit(low.B.eye(low.size(e.n)), "M", e.shape, e)


def lower_zero(low, e):
    rep = rep_of(e.shape)
    if rep == "S":
        return scalar(ZERO)
    return low.emit(low.B.zeros(low.shape_code(e.shape)), rep, e.shape, e)


def lower_commutation(low, e):
    return low.emit(low.B.create("commutation", low.size(e.m), low.size(e.n)), "M", e.shape, e)


def lower_fill(low, e):
    v = low.ev(e.value)
    rep = rep_of(e.shape)
    if rep == "S":
        return v
    return low.emit(low.B.full(low.shape_code(e.shape), v.code), rep, e.shape, e)


def lower_diff(low, e):  # pragma: no cover - derivatives carry no differentials
    raise MatcalcError(f"cannot generate code for the differential d{e.var.name}")


# ----------------------------------------------------------------------------- sums


def _plus(codes):
    out = codes[0]
    for c in codes[1:]:
        out = ir.Bin("+", out, c)
    return out


def _kron_sum(low, e):
    """A sum of Kronecker products of matrices of one shape written into one buffer
    (``kron_sum``), or None."""
    if len(e.items) < 2 or not low.opts.enabled("kron_sum"):
        return None
    terms, shapes = [], set()
    for t in e.items:
        c, rest = split_coef(t)
        if not (isinstance(rest, E.Kron) and len(rest.items) == 2):
            return None
        a, b = rest.items
        if any(isinstance(x, E.Identity) or rep_of(x.shape) != "M" for x in (a, b)):
            return None
        shapes.add((a.shape, b.shape))
        terms.append((c, a, b))
    if len(shapes) != 1:
        return None
    code = low.B.kron_sum([(lit(c), low.ev(a).code, low.ev(b).code) for c, a, b in terms])
    if code is None:
        return None
    low.opts("kron_sum")
    return low.emit(code, "M", e.shape, e)


def _ones_factor(low, t):
    """For a term c u (s 1ᵀ) or c (s 1) vᵀ of a matrix sum (an outer product with a row or
    column of a constant s: a bias added to every column, or row, of a matrix): (c, the
    vector c' u s or vᵀ s as a node, its axis: "col" for u, "row" for vᵀ); else None."""
    c, rest = split_coef(t)
    if not isinstance(rest, E.Mul):
        return None
    scal = tuple(f for f in rest.items if f.is_scalar)
    mats = [f for f in rest.items if not f.is_scalar]
    if len(mats) != 2:
        return None
    a, b = mats
    if isinstance(b, E.Fill) and b.rows == 1 and a.shape[1] == 1 and not isinstance(a, E.Fill):
        vec, fill, axis = a, b, "col"
    elif isinstance(a, E.Fill) and a.cols == 1 and b.shape[0] == 1 and not isinstance(b, E.Fill):
        vec, fill, axis = b, a, "row"
    else:
        return None
    factors = scal + ((fill.value,) if not is_one(fill.value) else ()) + (vec,)
    node = vec if len(factors) == 1 else low.intern(E.Mul(factors))
    return c, node, axis


def _ones_broadcasts(low, items, shape):
    """The terms of a matrix sum that are outer products with a constant row or column,
    as {term: (coefficient, V of the broadcast u[:, None] or v[None, :])}
    (``ones_broadcast``): the sum broadcasts them, the outer product is never formed.
    Only where another term of the sum has the sum's full shape."""
    if not low.opts.enabled("ones_broadcast"):
        return {}
    found = {}
    for t in items:
        hit = _ones_factor(low, t)
        if hit is not None:
            found[t] = hit
    full = [t for t in items if t not in found and not isinstance(t, (E.Fill, E.Zero)) and
            split_coef(t)[1] is not None]
    if not found or not full:
        return {}
    low.opts("ones_broadcast")
    out = {}
    for t, (c, node, axis) in found.items():
        v = low.ev(node)
        items_ = (ir.Slice(), ir.Const("None")) if axis == "col" else (ir.Const("None"), ir.Slice())
        out[t] = (c, V(ir.Index(v.code, items_), "M", shape))
    return out


def lower_add(low, e):
    shape = e.shape
    rep = rep_of(shape)
    if rep == "M":
        v = _kron_sum(low, e)
        if v is not None:
            return v
    broadcasts = _ones_broadcasts(low, e.items, shape) if rep == "M" else {}
    terms, fills = [], []
    # the terms in a canonical order, not the answer's presentation order (which follows
    # the user's text): the products they share are then found the same way every time
    for t in sorted(e.items, key=str):
        if E.is_zero(t):
            continue
        if isinstance(t, E.Fill) and rep != "S":
            fills.append(low.ev(t.value).code)
            continue
        if t in broadcasts:
            terms.append(broadcasts[t])
            continue
        c, rest = split_coef(t)
        if rest is None:
            if rep != "S":
                fills.append(lit(c))
            else:
                terms.append((Fraction(1), scalar(lit(c))))
            continue
        if c != 1 and c != -1 and isinstance(rest, E.Mul) and any(
                f.is_scalar and not isinstance(f, E.Num) for f in rest.items):
            # 2 (s x): one pass, (2 s) x, with the coefficient among the scalars
            terms.append((Fraction(1 if c > 0 else -1),
                          low.ev(low.intern(E.Mul((E.Num(abs(c)),) + rest.items)))))
            continue
        terms.append((c, low.ev(rest)))
    if not terms:
        if not fills:
            return low.ev(E.Zero(*shape)) if rep != "S" else scalar(ZERO)
        return low.emit(low.B.full(low.shape_code(shape), _plus(fills)), rep, shape, e)
    if len(terms) == 1 and not fills and terms[0][0] == 1:
        return terms[0][1]
    code = None
    if fills and terms[0][0] < 0:         # 1 - x rather than -x + 1
        code = _plus(fills)
        fills = []
    elif terms[0][0] < 0:
        # a positive term first (b - y, not (-y) + b: no pass to negate y); the order
        # of lowering above, which finds the shared products, is unchanged
        terms.sort(key=lambda cv: cv[0] < 0)
    for c, v in terms:
        mag = abs(c)
        body = v.code if mag == 1 else ir.Bin("*", lit(mag), v.code)
        if code is None:
            code = body if c > 0 else ir.Neg(body)
        else:
            code = ir.Bin("+" if c > 0 else "-", code, body)
    for f in fills:
        code = ir.Bin("+", code, f)
    return low.emit(code, rep, shape, e)


# ----------------------------------------------------------------------------- elementwise


def lower_hadamard(low, e):
    shape = e.shape
    rep = rep_of(shape)
    scal, arrs = [], []
    ident = False
    for t in e.items:
        if isinstance(t, E.Fill):
            scal.append(low.ev(t.value).code)
        elif t.is_scalar:
            scal.append(low.ev(t).code)
        elif isinstance(t, E.Identity):
            ident = True
        else:
            arrs.append(t)
    if ident and rep == "M":
        if not arrs:                        # I .* I .* s: s I
            code = low.B.eye(low.size(shape[0]))
        else:
            rest = arrs[0] if len(arrs) == 1 else low.intern(E.Hadamard(tuple(arrs)))
            d = low.ev(low.intern(E.DiagVec(rest)))
            code = low.B.call("diag", d.code)
        if scal:
            code = ir.Bin("*", product(scal), code)
        return low.emit(code, rep, shape, e)
    if not arrs:
        if rep == "S":
            return low.emit(product(scal), rep, shape, e)
        return low.emit(low.B.full(low.shape_code(shape), product(scal)), rep, shape, e)
    return low.emit(product(scal + [low.ev(t).code for t in arrs]), rep, shape, e)


def _fold(name, value):
    """f(number) at generation time, with the evaluator's own NumPy function (its
    overflow to inf, its nan), so that the code computes what Derivative.evaluate does."""
    import numpy as np
    from ..numeric import FUNCS, num_float
    with np.errstate(all="ignore"):
        return float(FUNCS[name](np.float64(num_float(value))))


def lower_func(low, e):
    a = e.arg
    if isinstance(a, E.Num):
        return scalar(lit(_fold(e.name, a.value)))
    rep = rep_of(e.shape)
    B = low.B
    if e.name == "log" and isinstance(a, E.Add) and len(a.items) == 2 and low.opts.enabled("log1p"):
        one = [t for t in a.items if (isinstance(t, E.Fill) and is_one(t.value)) or is_one(t)]
        if len(one) == 1:
            low.opts("log1p")
            other = a.items[1] if a.items[0] is one[0] else a.items[0]
            return low.emit(B.func("log1p", low.ev(other).code), rep, e.shape, e)
    if e.name == "sigmoid" and low.opts.enabled("sigmoid_exp"):
        ex = low.intern(E.Func("exp", a))
        if ex in low.nodes or ex in low.memo:
            low.opts("sigmoid_exp")
            x = low.ev(ex)
            return low.emit(ir.Bin("/", x.code, ir.Bin("+", ONE, x.code)), rep, e.shape, e,
                            comment=f"{short(e)}  (from exp)")
    if e.name == "sigmoid" and B.name == "numpy" and low.opts.enabled("sigmoid_softplus"):
        sp = low.intern(E.Func("softplus", a))
        if sp in low.nodes or sp in low.memo:
            # σ(u) = 1 − exp(−softplus(u)) = −expm1(−softplus(u)): exact in the tail
            # (−expm1(−s) ≈ s for small s) and 1 at u = +inf, without overflow
            low.opts("sigmoid_softplus")
            s = low.ev(sp)
            return low.emit(ir.Neg(B.func("expm1", ir.Neg(s.code))), rep, e.shape, e,
                            comment=f"{short(e)}  (from softplus)")
    return low.emit(B.func(e.name, low.ev(a).code), rep, e.shape, e)


def _power(low, v, pv, rep, shape, e):
    """v ** pv for a number pv (squares and square roots spelt out)."""
    if pv == 1:
        return v
    if pv == 2:
        return low.emit(ir.Bin("*", v.code, v.code), rep, shape, e)
    if pv == -1:
        return low.emit(ir.Bin("/", ONE, v.code), rep, shape, e)
    if pv == Fraction(1, 2):
        return low.emit(low.B.func("sqrt", v.code), rep, shape, e)
    if pv.denominator == 1:
        k = pv.numerator
        code = ir.Bin("**", v.code, ir.Const(str(k))) if k > 0 else \
            ir.Bin("/", ONE, ir.Bin("**", v.code, ir.Const(str(-k))))
        return low.emit(code, rep, shape, e)
    return low.emit(low.B.power(v.code, lit(pv)), rep, shape, e)


def lower_pow(low, e):
    b, p = e.base, e.exp
    if isinstance(p, E.Num):
        pv = p.value
        if isinstance(b, E.Norm) and pv.denominator == 1 and pv.numerator % 2 == 0 \
                and rep_of(b.arg.shape) != "S" and low.opts.enabled("sqnorm_dot"):
            sq = sqnorm(low, b.arg)
            half = pv.numerator // 2
            if half == 1:
                return sq
            code = ir.Bin("**", sq.code, ir.Const(str(half))) if half > 0 else \
                ir.Bin("/", ONE, ir.Bin("**", sq.code, ir.Const(str(-half))))
            return low.emit(code, "S", E.SCALAR, e)
        return _power(low, low.ev(b), pv, "S", E.SCALAR, e)
    v, q = low.ev(b), low.ev(p)
    return low.emit(low.B.power(v.code, q.code), "S", E.SCALAR, e)


def lower_elempow(low, e):
    rep = rep_of(e.shape)
    v = low.ev(e.base)
    if isinstance(e.exp, E.Num):
        return _power(low, v, e.exp.value, rep, e.shape, e)
    q = low.ev(e.exp)
    return low.emit(low.B.power(v.code, q.code), rep, e.shape, e)


# ----------------------------------------------------------------------------- matrices


def lower_transpose(low, e):
    return low.T(low.ev(e.arg))


def _spd(a):
    return isinstance(a, E.Sym) and a.kind == "spd"


def lower_inverse(low, e):
    if e.is_scalar:
        v = low.ev(e.arg)
        return low.emit(ir.Bin("/", ONE, v.code), "S", E.SCALAR, e)
    if isinstance(e.arg, E.Transpose):
        return low.T(low.ev(low.intern(E.Inverse(e.arg.arg))))
    if low.opts.enabled("eigh_inverse") and inverse_from_eigh(e):
        low.opts("eigh_inverse")
        return lower_inverse_from_eigh(low, e)
    v = low.ev(e.arg)
    if _spd(e.arg) and low.opts.enabled("spd"):
        code = low.B.spd_inv_logdet(v.code)
        if code is not None:
            low.opts("spd")
            ld = low.intern(E.LogDet(e.arg))
            note = f"(Cholesky: {e.arg.name} is spd)"
            if ld in low.nodes and ld not in low.memo:
                inv_name, ld_name = low.temp(), low.temp()
                low.body.append(ir.Assign((inv_name, ld_name), code, ("M", "S"),
                                          f"{short(e)}, {short(ld)}  {note}"))
                low.memo[ld] = scalar(ir.Name(ld_name))
                return V(ir.Name(inv_name), "M", e.shape)
            return low.emit(ir.Index(code, (ir.Const("0"),)), "M", e.shape, e, comment=f"{short(e)}  {note}")
    return low.emit(low.B.call("inv", v.code), "M", e.shape, e)


def lower_det(low, e):
    v = low.ev(e.arg)
    if v.rep == "S":
        return v
    return low.emit(low.B.call("det", v.code), "S", E.SCALAR, e)


def lower_logdet(low, e):
    v = low.ev(e.arg)
    B = low.B
    if v.rep == "S":
        return low.emit(B.func("log", v.code), "S", E.SCALAR, e)
    if _spd(e.arg) and low.opts.enabled("spd"):
        low.opts("spd")
        inv = low.intern(E.Inverse(e.arg))
        if inv in low.nodes and e.arg in low.inv_mat and B.spd_inv_logdet(ir.Name("a")) is not None:
            low.ev(inv)                     # one factorisation gives both
            hit = low.memo.get(e)
            if hit is not None:
                return hit
        return low.emit(B.chol_logdet(v.code), "S", E.SCALAR, e,
                        comment=f"{short(e)}  (Cholesky: {e.arg.name} is spd)")
    return low.emit(B.call("logdet", v.code), "S", E.SCALAR, e)


def lower_matpow(low, e):
    if e.k == 0:
        return low.ev(low.intern(E.Identity(e.shape[0])))
    if e.k == 1:
        return low.ev(e.arg)
    if e.k <= 4:
        return Chain(low, [e.arg] * e.k).value()
    v = low.ev(e.arg)
    return low.emit(low.B.call("matrix_power", v.code, ir.Const(str(e.k))), "M", e.shape, e)


def lower_kron(low, e):
    B = low.B
    items = [t for t in e.items if not (isinstance(t, E.Num) and t.value == 1)]
    if len(items) == 1:
        return low.ev(items[0])
    if (len(items) == 2 and sum(isinstance(t, E.Identity) for t in items) == 1
            and all(t.shape[0] != 1 and t.shape[1] != 1 for t in items)):
        first = isinstance(items[0], E.Identity)
        eye, a = items if first else items[::-1]
        if low.opts("kron_identity"):
            code = B.kron_identity(low.ev(a).code, low.size(eye.n), first)
        else:
            code = B.kron_identity_formed(low.ev(a).code, low.size(eye.n), first)
        return low.emit(code, "M", e.shape, e)
    codes = []
    for t in items:
        if isinstance(t, E.Identity):
            codes.append(B.eye(low.size(t.n)))
            continue
        v = low.ev(t)
        if v.rep == "V":
            dims = (ir.Const("-1"), ir.Const("1")) if t.shape[1] == 1 else (ir.Const("1"), ir.Const("-1"))
            codes.append(ir.Method(v.code, "reshape", dims))
        elif v.rep == "S":
            codes.append(B.full(ir.Tuple_((ir.Const("1"), ir.Const("1"))), v.code))
        else:
            codes.append(v.code)
    code = codes[0]
    for c in codes[1:]:
        code = B.kron(code, c)
    rep = rep_of(e.shape)
    if rep == "V":
        code = ir.Method(code, "reshape", (ir.Const("-1"),))
    elif rep == "S":
        code = ir.Index(code, (ir.Const("0"), ir.Const("0")))
    return low.emit(code, rep, e.shape, e)


def lower_vec(low, e):
    v = low.ev(e.arg)
    if v.rep != "M":
        return V(v.code, v.rep, e.shape)
    return low.emit(ir.Method(low.T(v).code, "reshape", (ir.Const("-1"),)), "V", e.shape, e)


def lower_unvec(low, e):
    """unvec(v, m), column-major: v.reshape(-1, m).T (torch has no order="F"; the same
    spelling serves NumPy and JAX)."""
    v = low.ev(e.arg)
    rep = rep_of(e.shape)
    if rep != "M":                  # m×1 or 1×n: the same 1-D array
        return V(v.code, rep, e.shape)
    rows = ir.Method(v.code, "reshape", (ir.Const("-1"), low.size(e.m)))
    return low.emit(ir.Attr(rows, "T"), "M", e.shape, e)


def lower_array_func(low, e):
    """softmax(x), logsumexp(X): the record's spelling (at a scalar the simplifier has
    already written 1 and t)."""
    v = low.ev(e.arg)
    if v.rep == "S":
        return scalar(ONE) if e.name == "softmax" else v
    if v.rep == "V" and e.name in _SHARED_EXP:
        out = _softmax_logsumexp(low, e, v)
        if out is not None:
            return out
    return low.emit(low.B.array_func(e.name, v.code), rep_of(e.shape), e.shape, e)


_SHARED_EXP = {"softmax": "logsumexp", "logsumexp": "softmax"}


def _terms_key(x):
    """x, or a sum's terms in a canonical order (f has softmax(b + A x) where its
    gradient has A x + b; lower_add computes both alike)."""
    return tuple(sorted(x.items, key=str)) if isinstance(x, E.Add) else x


def _softmax_logsumexp(low, e, v):
    """softmax(z) and logsumexp(z) of one vector z, both needed (the value and the
    gradient of a cross-entropy), from one exp(z - max z) (``softmax_logsumexp``): the
    other one is memoised; None where only e is needed or the target fuses them."""
    if not low.opts.enabled("softmax_logsumexp"):
        return None
    want, key = _SHARED_EXP[e.name], _terms_key(e.arg)
    other = next((n for n in low.nodes if isinstance(n, E.ArrayFunc) and n.name == want
                  and n not in low.memo and _terms_key(n.arg) == key), None)
    if other is None:
        return None
    code = low.B.softmax_logsumexp(v.code)
    if code is None:
        return None
    low.opts("softmax_logsumexp")
    sm, lse = (e, other) if e.name == "softmax" else (other, e)
    sm_name, lse_name = low.temp(), low.temp()
    low.body.append(ir.Assign((sm_name, lse_name), code, ("V", "S"), f"{short(sm)}, {short(lse)}"))
    low.memo[sm] = V(ir.Name(sm_name), "V", sm.shape)
    low.memo[lse] = scalar(ir.Name(lse_name))
    return low.memo[e]


def lower_diagmat(low, e):
    v = low.ev(e.arg)
    if v.rep == "S":
        return v
    return low.emit(low.B.call("diag", v.code), "M", e.shape, e)


def record_lowering(cls):
    """The lowering a unary node's record gives: its NumPy function's call in the
    target (None where the record gives none)."""
    from ..operators.nodes import record_of_unary
    rec = record_of_unary(cls)
    if rec is None or rec.numpy is None:
        return None

    def lower(low, e):
        spelling = rec.spelling(low.B.name)
        if spelling is None:
            raise UnsupportedError(f"the operator {rec.name} has no {low.B.name} spelling: "
                                   f"give its record a NumPy one (np.…)")
        v = low.ev(e.arg)
        return low.emit(ir.Call(spelling, (v.code,)), rep_of(e.shape), e.shape, e)
    return lower


NODE_LOWERINGS = {
    E.Num: lower_num, E.Sym: lower_sym, E.Identity: lower_identity, E.Zero: lower_zero,
    E.Commutation: lower_commutation, E.Fill: lower_fill, E.Diff: lower_diff,
    E.Add: lower_add, E.Hadamard: lower_hadamard, E.Func: lower_func, E.Pow: lower_pow,
    E.ElemPow: lower_elempow, E.Transpose: lower_transpose, E.Inverse: lower_inverse,
    E.Det: lower_det, E.LogDet: lower_logdet, E.MatPow: lower_matpow, E.Kron: lower_kron,
    E.Vec: lower_vec, E.Unvec: lower_unvec, E.DiagMat: lower_diagmat,
    E.ArrayFunc: lower_array_func,
}
