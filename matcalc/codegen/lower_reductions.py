"""Lowerings of the reductions: traces (of products without the product), sums (through
row and column sums), norms (one dot product), the diagonal of a product."""
import matcalc.codegen.ir as ir
from .chains import Chain, combine, factor_kind, flatten_chain, materialize_cost, op_cost
from .lower_matfun import trace_of_matfunc
from .values import ZERO, est, rep_of, scalar, short, signed_sum
from .. import expr as E
from ..simplify import is_symmetric, split_coef


def _scaled_by(low, v, scal, e):
    coef, rest = low.split_scalars(scal)
    scale = low.scale_code(coef, rest)
    return v if scale is None else low.scaled(scale, v, e)


def lower_trace(low, e):
    a = e.arg
    B = low.B
    if a.is_scalar:
        return low.ev(a)
    if isinstance(a, E.Add):
        parts = []
        for t in a.items:
            c, rest = split_coef(t)
            if rest is None:
                continue
            parts.append((c, low.ev(low.intern(E.Trace(rest))).code))
        if not parts:
            return scalar(ZERO)
        return low.emit(signed_sum(parts), "S", E.SCALAR, e)
    if isinstance(a, E.Mul):
        scal = []
        chain = flatten_chain(low, a.items, scal)
        if chain:
            tr = trace_chain(low, chain)
        else:                               # only identities: tr(s I(n)) = n s
            tr = low.ev(low.intern(E.Trace(E.Identity(a.shape[0]))))
        return _scaled_by(low, tr, scal, e) if scal else tr
    if isinstance(a, E.MatPow) and 2 <= a.k <= 4 and low.opts.enabled("trace_product"):
        # tr(X^k): a chain of k factors, so that tr(X X) is not formed either
        return low.ev(low.intern(E.Trace(E.Mul((a.arg,) * a.k))))
    if isinstance(a, E.Identity):
        return scalar(B.to_float(low.size(a.n)))
    if isinstance(a, E.Transpose):
        return low.ev(low.intern(E.Trace(a.arg)))
    d = diagonal_of_elementwise(low, a)
    if d is not None:                       # tr(log(X)) = sum(log(diag(X)))
        return low.ev(low.intern(E.Sum(d)))
    if isinstance(a, E.DiagMat):
        return low.emit(B.call("sum", low.ev(a.arg).code), "S", E.SCALAR, e)
    if isinstance(a, E.Kron) and all(t.shape[0] == t.shape[1] for t in a.items):
        # tr(A ⊗ B) = tr(A) tr(B) for square A and B only (x ⊗ xᵀ = x xᵀ is square)
        codes = [low.ev(low.intern(E.Trace(t))).code for t in a.items]
        out = codes[0]
        for c in codes[1:]:
            out = ir.Bin("*", out, c)
        return low.emit(out, "S", E.SCALAR, e)
    if isinstance(a, E.Fill):
        return low.emit(ir.Bin("*", low.ev(a.value).code, low.size(a.rows)), "S", E.SCALAR, e)
    code = trace_of_matfunc(low, a)         # tr f(S) = sum f(λ), S symmetric
    if code is not None:
        return low.emit(code, "S", E.SCALAR, e)
    return low.emit(B.call("trace", low.ev(a).code), "S", E.SCALAR, e)


def trace_chain(low, factors):
    """tr(F1 ⋯ Fk): the cyclic rotation and the split (tr(P Q), P = F1 ⋯ Fs) chosen by
    cost, then tr(P Q) without forming P Q."""
    k = len(factors)
    if k == 0:
        return scalar(ir.Const("1.0"))
    if k == 1:
        return low.ev(low.intern(E.Trace(factors[0])))
    if not low.opts.enabled("trace_product"):
        ch = Chain(low, factors)
        prod = ch.value()
        node = low.intern(E.Trace(E.Mul(tuple(factors))))
        if prod.rep == "S":
            return prod
        return low.emit(low.B.call("trace", prod.code), "S", E.SCALAR, node)
    diag = [i for i, f in enumerate(factors) if isinstance(f, E.DiagMat) and not f.arg.is_scalar
            and f.arg.shape[1] == 1]
    if diag:
        # tr(diag(v) F2 ⋯ Fk) = vᵀ diag(F2 ⋯ Fk): the diagonal of the rest, never formed
        i = diag[0]
        rest = factors[i + 1:] + factors[:i]
        low.opts("trace_product")
        v = low.ev(factors[i].arg)
        other = rest[0] if len(rest) == 1 else low.intern(E.Mul(tuple(rest)))
        d = low.ev(low.intern(E.DiagVec(other)))
        node = low.intern(E.Trace(E.Mul(tuple(factors))))
        return low.emit(ir.Bin("@", v.code, d.code), "S", E.SCALAR, node)
    rots = range(k) if k <= 8 else [0] + [i for i in range(1, k) if factors[i].shape[0] == 1][:3]
    best = None
    for rot in rots:
        fs = factors[rot:] + factors[:rot]
        ch = Chain(low, fs)
        if fs[0].shape[0] == 1:          # a row first: the product is 1×1
            c = ch.cost(0, k - 1)[0]
            if best is None or c < best[0] - 1e-9:
                best = (c, rot, None, ch, ())
            continue
        r = est(fs[0].shape[0])
        for s in range(k - 1):
            lk, rk = ch.side_kind(0, s), ch.side_kind(s + 1, k - 1)
            m = est(fs[s].shape[1])
            pair = r * m                    # tr(P Q) from P and Q: one pass over r·m entries
            formed = ()                     # the operator sides formed first
            if lk == "dense" and rk == "dense":
                cheap = (s == 0 and isinstance(fs[0], E.Transpose)) or \
                    (s + 1 == k - 1 and isinstance(fs[k - 1], E.Transpose))
                tc = pair * (0.5 if cheap else 1.0)
            elif rk == "dense":
                # the operator applied to the other side (a product formed to take its
                # trace), or formed and paired: whichever costs less
                tc = op_cost(low, fs[0], r) + r
                alt = materialize_cost(low, fs[0]) + pair
                if _formable(low, fs[0]) and alt < tc:
                    tc, formed = alt, (0,)
            elif lk == "dense":
                tc = op_cost(low, fs[k - 1], r) + r
                alt = materialize_cost(low, fs[k - 1]) + pair
                if _formable(low, fs[k - 1]) and alt < tc:
                    tc, formed = alt, (k - 1,)
            else:
                tc = materialize_cost(low, fs[k - 1]) + op_cost(low, fs[0], r) + r
                alt = materialize_cost(low, fs[0]) + materialize_cost(low, fs[k - 1]) + pair
                if _formable(low, fs[0]) and _formable(low, fs[k - 1]) and alt < tc:
                    tc, formed = alt, (0, k - 1)
            c = ch.cost(0, s)[0] + ch.cost(s + 1, k - 1)[0] + tc
            if best is None or c < best[0] - 1e-9:
                best = (c, rot, s, ch, formed)
    _, rot, s, ch, formed = best
    if s is None:
        return ch.value()
    left, right = ch.lower(0, s), ch.lower(s + 1, k - 1)
    if 0 in formed and left[0] == "op":
        left = ("dense", low.ev(left[1]), left[2])
    if k - 1 in formed and right[0] == "op":
        right = ("dense", low.ev(right[1]), right[2])
    node = low.intern(E.Trace(E.Mul(tuple(ch.f))))
    if left[0] == "dense" and right[0] == "dense":
        sym = False
        if left[1].rep == "M" and right[1].rep == "M":
            sym = is_symmetric(ch.key(0, s) if s > 0 else ch.f[0]) or \
                is_symmetric(ch.key(s + 1, k - 1) if s + 1 < k - 1 else ch.f[k - 1])
        return trace_prod(low, left[1], right[1], node, sym)
    prod = combine(low, left, right, E.Mul(tuple(ch.f)))
    return low.emit(low.B.call("trace", prod.code), "S", E.SCALAR, node)


def _formable(low, f):
    """Whether a trace may form the operator factor f to pair it with the other side: a
    sum (A + B, applied term by term otherwise).  An inverse stays a solve (which f and
    the derivative share), diag(v) a broadcast."""
    return factor_kind(low, f) in ("dsum", "opsum")


def trace_prod(low, p, q, node, symmetric=False):
    """tr(P Q) without forming P Q: a sum of elementwise products (one dot product when
    P or Q is symmetric or at hand transposed)."""
    B = low.B
    if p.rep == "V" and q.rep == "V":
        return low.emit(ir.Bin("@", p.code, q.code), "S", E.SCALAR, node)
    if p.rep == "S" or q.rep == "S":
        return low.emit(ir.Bin("*", p.code, q.code), "S", E.SCALAR, node)
    low.opts("trace_product")
    if symmetric and p.rep == "M" and q.rep == "M":
        return low.emit(B.vdot(p.code, q.code, "M"), "S", E.SCALAR, node)
    if ir.is_transposed_name(q.code):
        return low.emit(B.vdot(p.code, q.code.obj, "M"), "S", E.SCALAR, node)
    if ir.is_transposed_name(p.code):
        return low.emit(B.vdot(p.code.obj, q.code, "M"), "S", E.SCALAR, node)
    return low.emit(B.einsum("ij,ji->", p.code, q.code), "S", E.SCALAR, node)


def lower_sum(low, e):
    a = e.arg
    B = low.B
    if a.is_scalar:
        return low.ev(a)
    if isinstance(a, E.Fill):
        r, c = a.shape
        code = ir.Bin("*", ir.Bin("*", low.ev(a.value).code, low.size(r)), low.size(c))
        return low.emit(code, "S", E.SCALAR, e)
    if isinstance(a, E.Hadamard) and len(a.items) == 2 and not any(
            isinstance(t, (E.Fill, E.Identity)) or t.is_scalar for t in a.items) and low.opts("sqnorm_dot"):
        x, y = (low.ev(t) for t in a.items)
        return low.emit(B.vdot(x.code, y.code, x.rep), "S", E.SCALAR, e)
    if isinstance(a, (E.Transpose, E.Vec, E.DiagMat)):
        return low.ev(low.intern(E.Sum(a.arg)))
    if isinstance(a, E.Add) and any(isinstance(t, (E.Mul, E.Fill)) for t in a.items):
        parts = []
        for t in a.items:
            c, rest = split_coef(t)
            if rest is None:
                r, cc = a.shape
                parts.append((c, ir.Bin("*", low.size(r), low.size(cc))))
                continue
            parts.append((c, low.ev(low.intern(E.Sum(rest))).code))
        return low.emit(signed_sum(parts), "S", E.SCALAR, e)
    if isinstance(a, E.Mul) and low.opts.enabled("sum_rowcol"):
        scal = []
        chain = flatten_chain(low, a.items, scal)
        if len(chain) >= 2:
            low.opts("sum_rowcol")
            r, c = chain[0].shape[0], chain[-1].shape[1]
            fs = list(chain)
            if r != 1:
                fs = [low.intern(E.Fill(E.ONE, 1, r))] + fs
            if c != 1:
                fs = fs + [low.intern(E.Fill(E.ONE, c, 1))]
            v = Chain(low, fs).value()
            return _scaled_by(low, v, scal, e)
    v = low.ev(a)
    return low.emit(B.call("sum", v.code), "S", E.SCALAR, e)


def sqnorm(low, x, redirect=True):
    """||x||² as one dot product (memoised under ("sqnorm", x))."""
    key = ("sqnorm", x)
    hit = low.memo.get(key)
    if hit is not None:
        return hit
    low.opts("sqnorm_dot")
    if redirect and isinstance(x, E.Add) and x not in low.memo and low.opts.enabled("negation_reuse"):
        # ||x||² = ||-x||²: use -x if the derivative computes that and not x
        neg = low.negation(x)
        if neg != x and (neg in low.memo or neg in low.nodes) and not low.used_elsewhere(x):
            low.opts("negation_reuse")
            out = sqnorm(low, neg, redirect=False)
            low.memo[key] = out
            return out
    v = low.ev(x)
    if v.rep == "S":
        code = ir.Bin("*", v.code, v.code)
    else:
        code = low.B.vdot(v.code, v.code, v.rep)
    out = low.emit(code, "S", E.SCALAR, None, comment=f"||{short(x)}||^2")
    low.memo[key] = out
    return out


def lower_norm(low, e):
    B = low.B
    if rep_of(e.arg.shape) == "S":
        return low.emit(B.func("abs", low.ev(e.arg).code), "S", E.SCALAR, e)
    if not low.opts.enabled("sqnorm_dot"):
        return low.emit(B.call("norm", low.ev(e.arg).code), "S", E.SCALAR, e)
    sq = sqnorm(low, e.arg)
    return low.emit(B.func("sqrt", sq.code), "S", E.SCALAR, e)


def lower_specnorm(low, e):
    v = low.ev(e.arg)
    B = low.B
    if v.rep == "S":
        return low.emit(B.func("abs", v.code), "S", E.SCALAR, e)
    if v.rep == "V":
        if not low.opts.enabled("sqnorm_dot"):
            return low.emit(B.call("norm", v.code), "S", E.SCALAR, e)
        return low.emit(B.func("sqrt", sqnorm(low, e.arg).code), "S", E.SCALAR, e)
    return low.emit(B.spec_norm(v.code), "S", E.SCALAR, e)


def diagonal_of_elementwise(low, a):
    """diag(f(X)) as f(diag(X)), diag(X .^ p) as diag(X) .^ p, diag(A .* B) as
    diag(A) .* diag(B) (``elementwise_diagonal``): the function is taken of the n
    diagonal entries only, not of all n² entries (log of X's zeros: -inf off the
    diagonal, and a warning).  None for another node."""
    if a.is_scalar or a.shape[0] != a.shape[1] or not low.opts.enabled("elementwise_diagonal"):
        return None
    if isinstance(a, E.Func):
        out = E.Func(a.name, E.DiagVec(a.arg))
    elif isinstance(a, E.ElemPow) and a.exp.is_scalar:
        out = E.ElemPow(E.DiagVec(a.base), a.exp)
    elif isinstance(a, E.Hadamard):
        out = E.Hadamard(tuple(E.DiagVec(t) for t in a.items))
    else:
        return None
    low.opts("elementwise_diagonal")
    return low.intern(out)


def lower_diagvec(low, e):
    a = e.arg
    if a.is_scalar:
        return low.ev(a)
    d = diagonal_of_elementwise(low, a)
    if d is not None:
        return low.ev(d)
    if isinstance(a, E.Transpose) and not a.arg.is_scalar:     # diag(Mᵀ) = diag(M)
        return low.ev(low.intern(E.DiagVec(a.arg)))
    if isinstance(a, E.Mul):
        scal = []
        chain = flatten_chain(low, a.items, scal)
        if len(chain) >= 2 and not scal:
            ch = Chain(low, chain)
            k = len(chain)
            best = None
            for s in range(k - 1):
                c = ch.cost(0, s)[0] + ch.cost(s + 1, k - 1)[0]
                if best is None or c < best[0]:
                    best = (c, s)
            s = best[1]
            left, right = ch.lower(0, s), ch.lower(s + 1, k - 1)
            if left[0] == "dense" and right[0] == "dense":
                p, q = left[1], right[1]
                if p.rep == "V" and q.rep == "V":
                    return low.emit(ir.Bin("*", p.code, q.code), "V", e.shape, e)
                if p.rep == "M" and q.rep == "M":
                    return low.emit(low.B.einsum("ij,ji->i", p.code, q.code), "V", e.shape, e)
    v = low.ev(a)
    return low.emit(low.B.diagonal(v.code), "V", e.shape, e)


REDUCTION_LOWERINGS = {
    E.Trace: lower_trace, E.Sum: lower_sum, E.Norm: lower_norm, E.SpecNorm: lower_specnorm,
    E.DiagVec: lower_diagvec,
}
