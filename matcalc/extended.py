"""Evaluation past the float range: every value, scalar or array, as a mantissa array M and
an integer exponent array K (each entry M·2^K, 0.5 <= |M| < 1 or M = 0, ±inf, NaN).

``evaluation.evaluate_tree`` evaluates with plain floats first; only when that value is not
finite at finite inputs does it evaluate again here, where a product or sum whose
intermediates overflow (the entries of (F.^2)ᵀ F.^2 at F ~ 1e100, 8e600 t vec(A) vec(A)ᵀ)
keeps its exponent, so that 0 · (an overflowed array) is 0 and log(tr((F.^2)ᵀ F.^2)) is
finite.  Products, sums, reductions, powers, exp, log, sqrt and abs are exact to rounding
at any exponent; a matrix function (inverse, det, norms) scales its argument by one power
of two first.  A value this arithmetic cannot give either (sin of 1e400, exp(1e400)) sets
``overflow``: the caller reports it, never returns it as a number.
"""
import math
from fractions import Fraction

import numpy as np

from . import expr as E
from .errors import ShapeError

_LOW = -(1 << 40)           # the exponent of a zero when exponents are compared
_LN2 = math.log(2.0)
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_SPREAD = 500               # exponent range a row (column) may span for a scaled BLAS product


class X:
    """An extended value: m (float ndarray) times 2**k (int64 ndarray of m's shape)."""
    __slots__ = ("m", "k")

    def __init__(self, m, k=0):
        m = np.asarray(m, dtype=float)
        f, e = np.frexp(m)
        ok = np.isfinite(f) & (f != 0)
        self.m = np.where(ok, f, m)
        self.k = np.where(ok, np.asarray(k, dtype=np.int64) + e, 0).astype(np.int64)

    @property
    def shape(self):
        return self.m.shape

    def in_range(self):
        """True when every finite entry is a float (no overflow on conversion)."""
        return not bool(np.any(self.k > 1024))

    def to_float(self):
        return np.ldexp(self.m, np.clip(self.k, -2000, 2000))

    def finite(self):
        return bool(np.all(np.isfinite(self.m)))


def from_value(v):
    return X(v, 0)


def _as_2d(x):
    if x.m.ndim == 2:
        return x
    return _raw(x.m.reshape(1, 1), x.k.reshape(1, 1))


def _as_scalar(x):
    return _raw(x.m.reshape(()), x.k.reshape(()))


def _raw(m, k):
    """An X from parts already normalised (reshaped, transposed, selected)."""
    out = X.__new__(X)
    out.m, out.k = m, k
    return out


def _mul(a, b):
    return X(a.m * b.m, a.k + b.k)


def _key(x):
    """Exponents for alignment: a zero (or non-finite) entry never sets the top."""
    return np.where(np.isfinite(x.m) & (x.m != 0), x.k, _LOW)


def _shift(m, d):
    return np.ldexp(m, np.clip(d, -1100, 0))


def _add(terms):
    """t1 + t2 + ... left to right, as floats would add them: each sum aligned to the larger
    exponent of its two operands (1e400 x - 1e400 x + x is x)."""
    out = terms[0]
    for t in terms[1:]:
        top = np.maximum(_key(out), _key(t))
        top = np.where(top == _LOW, 0, top)
        out = X(_shift(out.m, out.k - top) + _shift(t.m, t.k - top), top)
    return out


def _reduce(x, entries):
    """The sum of the selected entries (x.m[entries], x.k[entries]) as a scalar X."""
    m, k = x.m[entries], x.k[entries]
    kk = np.where(np.isfinite(m) & (m != 0), k, _LOW)
    top = int(kk.max()) if kk.size else _LOW
    if top == _LOW or not np.all(np.isfinite(m)):
        return X(float(np.sum(_shift(m, k - max(top, 0)) if top != _LOW else m)), max(top, 0))
    return X(math.fsum(_shift(m, k - top).reshape(-1).tolist()), top)


def _matmul(a, b):
    """a @ b entry by entry in extended range.  When no row of a and no column of b spans
    more than 2^_SPREAD, each is scaled by its largest power of two and the product is one
    BLAS call on mantissas in [2^-501, 1); otherwise the exact sum over the inner index,
    each entry aligned to its own largest term."""
    a, b = _as_2d(a), _as_2d(b)
    ka, kb = _key(a), _key(b)
    ra, cb = ka.max(axis=1), kb.max(axis=0)
    nza, nzb = ka != _LOW, kb != _LOW
    rmin = np.where(nza, ka, np.int64(1) << 40).min(axis=1) if ka.size else ra
    cmin = np.where(nzb, kb, np.int64(1) << 40).min(axis=0) if kb.size else cb
    ra0, cb0 = np.where(ra == _LOW, 0, ra), np.where(cb == _LOW, 0, cb)
    narrow = (not ka.size or np.all((ra == _LOW) | (ra - rmin <= _SPREAD))) and \
        (not kb.size or np.all((cb == _LOW) | (cb - cmin <= _SPREAD)))
    if narrow:
        am = _shift(a.m, a.k - ra0[:, None])
        bm = _shift(b.m, b.k - cb0[None, :])
        return X(am @ bm, ra0[:, None] + cb0[None, :])
    rows, inner, cols = a.shape[0], a.shape[1], b.shape[1]
    top = np.full((rows, cols), _LOW, dtype=np.int64)
    for l in range(inner):
        e = ka[:, l, None] + kb[None, l, :]
        e = np.where(nza[:, l, None] & nzb[None, l, :], e, _LOW)
        top = np.maximum(top, e)
    top = np.where(top == _LOW, 0, top)
    acc = np.zeros((rows, cols))
    for l in range(inner):
        t = a.m[:, l, None] * b.m[None, l, :]
        acc = acc + _shift(t, a.k[:, l, None] + b.k[None, l, :] - top)
    return X(acc, top)


def _block(x):
    """(M, j): the array x as M·2^j with one exponent j (its largest), M a float array."""
    kk = _key(x)
    j = int(kk.max()) if kk.size else 0
    j = 0 if j == _LOW else j
    return _shift(x.m, x.k - j), j


def _exp_ext(v):
    """exp of a float array as an X, exact to rounding for any finite argument."""
    v = np.asarray(v, dtype=float)
    with np.errstate(all="ignore"):
        j = np.where(np.isfinite(v) & (np.abs(v) < 1e15), np.round(v / _LN2), 0.0)
        r = (v - j * _LN2_HI) - j * _LN2_LO
        return X(np.exp(r), j.astype(np.int64))


def _pow(x, p):
    """x .^ p entry by entry; an integer p keeps signs (exactly, by squaring), other p need
    x >= 0 (else NaN)."""
    p = float(p)
    m, k = x.m, x.k
    with np.errstate(all="ignore"):
        if not math.isfinite(p):
            return X(np.power(x.to_float(), p))
        if p.is_integer() and abs(p) <= 64:         # m^p within [2^-64, 2^64]
            return X(np.power(m, p), k * int(p))
        if p.is_integer():
            n = abs(int(p))
            out, base = X(np.ones_like(m)), x
            while n:
                if n & 1:
                    out = _mul(out, base)
                base = _mul(base, base)
                n >>= 1
            return out if p > 0 else X(1.0 / out.m, -out.k)
        if abs(p) <= 64:
            kp = k.astype(float) * p
            j = np.floor(kp)
            return X(np.power(m, p) * np.exp2(kp - j), j.astype(np.int64))
        L = p * (np.log2(np.where(m > 0, m, 1.0)) + k)
        j = np.floor(L)
        out = X(np.exp2(L - j), j.astype(np.int64))
        plain = (m <= 0) | ~np.isfinite(m)            # 0 → 0 or inf, negative → NaN
        return _raw(np.where(plain, np.power(m, p), out.m), np.where(plain, 0, out.k))


class XEvaluator:
    """The extended value of each node (memoised by id); ``overflow`` names a node whose
    value this arithmetic cannot give."""

    def __init__(self, env, sizes):
        from .numeric import Evaluator
        self.plain = Evaluator(env, sizes)
        self.memo = {}
        self.overflow = None

    def size(self, s):
        return self.plain.size(s)

    def ev(self, e):
        key = id(e)
        if key in self.memo:
            return self.memo[key][1]
        from .numeric import NoValue
        fn = XEVAL.get(type(e))
        try:
            v = fn(self, e) if fn is not None else self.through_floats(e)
        except NoValue:
            raise
        except np.linalg.LinAlgError as err:
            raise NoValue(e, err) from None
        if e.is_scalar and v.m.ndim:
            v = _as_scalar(v)
        self.memo[key] = (e, v)
        return v

    def through_floats(self, e, args=None):
        """e evaluated by numeric's plain rule on its children's float values (a node this
        module has no rule for); a child past the float range marks an overflow."""
        from .numeric import EVAL, Evaluator
        plain = Evaluator(self.plain.env, self.plain.sizes)
        for c in (e.args if args is None else args):
            x = self.ev(c)
            if not x.in_range():
                self.overflow = self.overflow or e
            f = x.to_float()
            plain.memo[id(c)] = (c, float(f) if c.is_scalar else _as_2d(x).to_float())
        return X(EVAL[type(e)](plain, e))


def _mul_node(xe, e):
    from .numeric import _mul_factors
    scale, exact, acc = X(1.0), Fraction(1), None
    for f in _mul_factors(e):
        if isinstance(f, E.Num):
            exact *= f.value
        elif f.is_scalar:
            scale = _mul(scale, xe.ev(f))
        else:
            v = xe.ev(f)
            acc = v if acc is None else _matmul(acc, v)
    if exact != 1:
        scale = _mul(scale, _fraction(exact))
    return scale if acc is None else _mul(acc, scale)


def _fraction(v):
    from .numeric import _ext_fraction
    m, k = _ext_fraction(v)
    return X(m, k)


def _hadamard(xe, e):
    out = xe.ev(e.items[0])
    for f in e.items[1:]:
        out = _mul(out, xe.ev(f))
    return out


def _kron(xe, e):
    out = _as_2d(xe.ev(e.items[0]))
    for f in e.items[1:]:
        b = _as_2d(xe.ev(f))
        (m1, n1), (m2, n2) = out.shape, b.shape
        k = (out.k[:, None, :, None] + b.k[None, :, None, :]).reshape(m1 * m2, n1 * n2)
        out = X(np.kron(out.m, b.m), k)
    return out


def _func(xe, e):
    x = xe.ev(e.arg)
    name = e.name
    m, k = x.m, x.k
    big = k > 1024             # entries past the float range
    small = k < -500           # entries where f(x) = f(0) + f'(0) x to rounding
    with np.errstate(all="ignore"):
        if name == "exp":
            v = x.to_float()
            # exp(v) for v >= 1e15 has an exponent this arithmetic does not keep
            if np.any(big & (m > 0)) or np.any(np.isfinite(v) & (v >= 1e15)):
                xe.overflow = xe.overflow or e
            return _exp_ext(v)
        if name == "abs":
            return _raw(np.abs(m), k)
        if name == "log":
            return X(np.where(m > 0, np.log(np.abs(m)) + k * _LN2, np.log(m)))
        if name == "sqrt":
            odd = (k % 2) != 0
            return X(np.sqrt(np.where(odd, 2 * m, m)), (k - odd) // 2)
        v = x.to_float()
        if name in ("tanh", "sin") and np.any(small):
            out = X(np.where(small, 0.0, getattr(np, name)(v)))
            return _raw(np.where(small, m, out.m), np.where(small, k, out.k))
        if name == "softplus":
            out = X(np.logaddexp(0.0, v))
            return _raw(np.where(big & (m > 0), m, out.m), np.where(big & (m > 0), k, out.k))
        if name in ("tanh", "sigmoid"):
            from .numeric import FUNCS
            return X(FUNCS[name](v))
    return xe.through_floats(e)


def _order(mk):
    """A sort key of the value m·2^k (m normalised): positive above zero above negative."""
    m, k = mk
    return (1, k, m) if m > 0 else ((0, 0, 0.0) if m == 0 else (-1, -k, m))


def _array_func(xe, e):
    """softmax and logsumexp of entries past the float range: the differences from the
    largest entry (z − max z ≤ 0) in this arithmetic, then exp in floats, so softmax(z) =
    exp(d) / Σ exp(d) and logsumexp(z) = max z + log Σ exp(d) stay exact to rounding."""
    x = xe.ev(e.arg)
    if x.in_range() or not np.all(np.isfinite(x.m)):
        return xe.through_floats(e)
    flat = list(zip(x.m.reshape(-1).tolist(), x.k.reshape(-1).tolist()))
    top_m, top_k = max(flat, key=_order)
    top = _raw(np.full(x.shape, -top_m), np.full(x.shape, top_k, dtype=np.int64))
    d = _add([x, top]).to_float()           # ≤ 0; far below the largest: -inf, exp 0
    w = np.exp(d)
    total = float(np.sum(w))
    if e.name == "softmax":
        return X(w / total)
    if e.name == "logsumexp":
        return _add([_raw(np.asarray(top_m), np.asarray(top_k, dtype=np.int64)), X(math.log(total))])
    return xe.through_floats(e)


def _elempow(xe, e):
    return _pow(xe.ev(e.base), _exp_value(xe, e.exp))


def _exp_value(xe, node):
    p = xe.ev(node)
    if not p.in_range():
        xe.overflow = xe.overflow or node
    return float(p.to_float().reshape(-1)[0])


def _sum(xe, e):
    x = _as_2d(xe.ev(e.arg))
    return _reduce(x, (slice(None), slice(None)))


def _trace(xe, e):
    x = _as_2d(xe.ev(e.arg))
    idx = np.arange(min(x.shape))
    return _reduce(x, (idx, idx))


def _matrix_fn(fn):
    """A rule for a function of one matrix, through numeric's rule on the matrix scaled by
    one power of two: fn(M, j) gives the X of the value of M·2^j from numeric's value v of M."""
    def rule(xe, e):
        from .numeric import EVAL, Evaluator
        x = _as_2d(xe.ev(e.arg))
        M, j = _block(x)
        plain = Evaluator(xe.plain.env, xe.plain.sizes)
        plain.memo[id(e.arg)] = (e.arg, M)
        v = EVAL[type(e)](plain, e)
        return fn(v, j, M.shape[0], e)
    return rule


def _det(v, j, n, e):
    return X(v, j * n)


def _logdet(v, j, n, e):
    return X(v + j * n * _LN2)


def _inverse(v, j, n, e):
    return X(v, -j)


def _norm(v, j, n, e):
    return X(v, j)


def _matpow(xe, e):
    x = _as_2d(xe.ev(e.arg))
    if e.k < 0:
        M, j = _block(x)
        x = X(np.linalg.inv(M), -j)
    out = X(np.eye(x.shape[0]))
    base, n = x, abs(e.k)
    while n:
        if n & 1:
            out = _matmul(out, base)
        base = _matmul(base, base)
        n >>= 1
    return out


def _add_node(xe, e):
    terms = [xe.ev(t) for t in e.items]
    if not e.is_scalar:
        terms = [t if t.m.ndim == 2 else _as_2d(t) for t in terms]
    else:
        terms = [_as_scalar(t) for t in terms]
    return _add(terms)


def _reshaped(fn):
    def rule(xe, e):
        x = _as_2d(xe.ev(e.arg))
        return _raw(fn(x.m), fn(x.k))
    return rule


def _unvec(xe, e):
    x = _as_2d(xe.ev(e.arg))
    m = xe.size(e.m)
    if x.m.size % m:
        raise ShapeError(f"unvec(v, {m}) of a vector of length {x.m.size}: the length is not a "
                         f"multiple of {m}")
    shape = (m, x.m.size // m)
    return _raw(x.m.reshape(shape, order="F"), x.k.reshape(shape, order="F"))


def _fill(xe, e):
    v = _as_scalar(xe.ev(e.value))
    shape = (xe.size(e.rows), xe.size(e.cols))
    return _raw(np.full(shape, v.m), np.full(shape, v.k, dtype=np.int64))


def _diagmat(xe, e):
    x = _as_2d(xe.ev(e.arg))
    return _raw(np.diag(x.m[:, 0]), np.diag(x.k[:, 0]))


XEVAL = {
    E.Num: lambda xe, e: _fraction(e.value),
    E.Add: _add_node,
    E.Mul: _mul_node,
    E.Hadamard: _hadamard,
    E.Kron: _kron,
    E.Transpose: lambda xe, e: xe.ev(e.arg) if e.arg.is_scalar else
    _raw(xe.ev(e.arg).m.T, xe.ev(e.arg).k.T),
    E.Inverse: _matrix_fn(_inverse),
    E.Det: _matrix_fn(_det),
    E.LogDet: _matrix_fn(_logdet),
    E.Norm: _matrix_fn(_norm),
    E.SpecNorm: _matrix_fn(_norm),
    # positively homogeneous: λ(2ʲ M) = 2ʲ λ(M), ‖2ʲ M‖ = 2ʲ ‖M‖; the vectors and the polar
    # factor of 2ʲ M are M's
    E.Spectral: _matrix_fn(_norm),
    E.SpectralVec: _matrix_fn(lambda v, j, n, e: X(v)),
    E.Trace: _trace,
    E.Sum: _sum,
    E.Vec: _reshaped(lambda a: a.reshape((-1, 1), order="F")),
    E.Unvec: _unvec,
    E.DiagMat: _diagmat,
    E.DiagVec: _reshaped(lambda a: np.diag(a).reshape(-1, 1).copy()),
    E.Func: _func,
    E.ArrayFunc: _array_func,
    E.MatPow: _matpow,
    E.Pow: lambda xe, e: _pow(_as_scalar(xe.ev(e.base)), _exp_value(xe, e.exp)),
    E.ElemPow: _elempow,
    E.Fill: _fill,
}
# Leaves (symbols, I, K, zeros) are floats: numeric's rules through_floats give them.
# Nodes evaluated through floats on purpose (no rule here), and why:
FLOAT_ONLY = {
    E.MatFunc: "expm, logm, sqrtm, X^p of an argument past the float range have no scaled form "
               "(expm(2^k X) is not 2^j expm(X)): spectral_values raises EvaluationError when "
               "a value overflows float64, never returns inf or NaN",
    E.Frechet: "as MatFunc: the Fréchet derivative of a matrix function, EvaluationError past "
               "float64",
    E.FrechetJac: "as MatFunc: the Jacobian of a matrix function, EvaluationError past float64",
}


def evaluate(tree, env, sizes):
    """(X value of tree, the node whose value overflowed this arithmetic or None)."""
    xe = XEvaluator(env, sizes)
    with np.errstate(all="ignore"):
        v = xe.ev(tree)
    return v, xe.overflow
