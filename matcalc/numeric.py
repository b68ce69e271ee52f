"""NumPy evaluation of a typed tree: one entry per node type in ``EVAL``.

Inside, scalars are floats and every array is 2-D (a vector is a column).  ``bind``
reads the values a user gives (numbers, 1-D and 2-D arrays) and ``to_user`` turns a
result back into the user's shapes (a float, a 1-D vector, a 2-D matrix).
"""
import math
from fractions import Fraction

import numpy as np

from . import expr as E
from .errors import EvaluationError, ShapeError, MatcalcError
from .operators import ARRAY_RECORDS, SPECTRAL, OperatorTable, matrix_function, table, resolve_numpy
from .operators.nodes import record_of_unary


# name -> the NumPy function, from the operator records: the evaluator, the constant
# folder of codegen and the check's error propagation all read this one table
FUNCS = table("evaluator", lambda r: r.evaluator())
ARRAY_FUNCS = table("evaluator", lambda r: r.evaluator(), ARRAY_RECORDS)   # softmax, logsumexp


def commutation_matrix(m, n):
    """K (mn×mn) with K vec(X) = vec(Xᵀ) for an m×n X (column-major vec)."""
    K = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            K[j + i * n, i + j * m] = 1.0
    return K


def num_float(v):
    """A Fraction as a float: ±inf past the float range, never OverflowError."""
    try:
        return float(v)
    except OverflowError:
        return float("inf") if v > 0 else float("-inf")


def _scalar(v):
    return float(np.asarray(v).reshape(-1)[0])


def _arr(v, shape=None):
    if isinstance(v, np.ndarray):
        return v
    return np.array([[float(v)]])


class NoValue(np.linalg.LinAlgError):
    """The node has no value at these values (numpy's LinAlgError, or no memory for it);
    still a LinAlgError for the code that evaluates trees, and read by ``user_error``."""

    def __init__(self, node, cause):
        super().__init__(str(cause))
        self.node = node
        self.cause = cause


_NO_VALUE_WHAT = {
    E.Inverse: "its inverse is taken",
    E.MatPow: "its power is taken",
    E.SpecNorm: "its spectral norm is taken",
    E.Det: "its determinant is taken",
    E.LogDet: "its log-determinant is taken",
}


def user_error(err):
    """The EvaluationError (a MatcalcError) that says what a NoValue means."""
    from .errors import EvaluationError
    from .printing import to_text
    node = err.node
    if isinstance(err.cause, MemoryError):
        return EvaluationError(f"evaluating {to_text(node)} needs more memory than there is: "
                               f"the sizes are too large to evaluate")
    arg = node.args[0] if node.args else node
    what = _NO_VALUE_WHAT.get(type(node), f"{type(node).__name__} is evaluated")
    if "singular" in str(err.cause).lower():
        return EvaluationError(f"the matrix {to_text(arg)} is singular at these values, where "
                               f"{what}: the expression has no value there")
    return EvaluationError(f"{to_text(node)} cannot be evaluated at these values "
                           f"({err.cause}), where {what}")


def size_value(s, sizes):
    """The number a size (an int, a size name, or a SizeProd of those) stands for, with the
    names bound by sizes (a KeyError names a size they do not bind)."""
    if isinstance(s, int):
        return s
    if isinstance(s, E.SizeProd):
        out = s[0]
        for f in s[1:]:
            out *= size_value(f, sizes)
        return out
    return sizes[s]


class Evaluator:
    def __init__(self, env, sizes):
        self.env = env          # name -> float or 2-D array
        self.sizes = sizes      # size name -> int
        self.memo = {}
        self.ext_memo = {}      # id -> (node, (m, k)): scalars past the float range
        self.nonfinite = False  # an argument of a node not in _PROPAGATES is not finite

    def size(self, s):
        try:
            return size_value(s, self.sizes)
        except KeyError:
            raise ShapeError(f"the size {s} is not known: give a value whose shape fixes it, "
                             f"or pass symbols= with the sizes") from None

    def ev(self, e):
        k = id(e)
        if k in self.memo:
            return self.memo[k][1]
        try:
            v = EVAL[type(e)](self, e)
        except NoValue:
            raise
        except np.linalg.LinAlgError as err:
            raise NoValue(e, err) from None
        except MemoryError:
            raise NoValue(e, MemoryError("the arrays are too large for this machine's memory")) from None
        if e.is_scalar and isinstance(v, np.ndarray):
            v = _scalar(v)
        if not self.nonfinite and type(e) not in _PROPAGATES:
            memo = self.memo
            self.nonfinite = not all(_sums_finite(memo[id(a)][1]) for a in e.args if id(a) in memo)
        self.memo[k] = (e, v)
        return v


# Nodes whose value has an inf or NaN entry wherever an argument's entries make it so
# (inf + 1, 0 · inf, a sum, a selection of entries keep it or leave the other entries
# exact): a value that is not finite on the way reaches the root or a node of another
# type (1 / inf, tanh(inf), exp(-inf) are finite), whose arguments ``ev`` checks.
_PROPAGATES = frozenset([E.Num, E.Sym, E.Diff, E.Identity, E.Zero, E.Commutation, E.Fill,
                         E.Add, E.Mul, E.Hadamard, E.Kron, E.Transpose, E.Trace, E.Sum,
                         E.Norm, E.Vec, E.Unvec, E.DiagMat, E.DiagVec, E.MatPow])


def _sums_finite(v):
    """Whether v (a float or an array) is finite: one pass summing the entries, and only
    when the sum is not finite (an inf or NaN entry, or a sum past the float range) a
    second pass to tell which."""
    if isinstance(v, float):
        return math.isfinite(v)
    if math.isfinite(v.sum()):
        return True
    return bool(np.all(np.isfinite(v)))


# ------------------------------------------------------- scalars past the float range
# A product of scalars is accumulated as a mantissa and a binary exponent (m, k), the
# value m·2^k with 0.5 <= |m| < 1 (or m = 0), so that an intermediate that overflows or
# underflows (exp(700)^2 exp(-700)^2, 1e200 1e200 1e-400) does not turn a representable
# product into inf, 0 or NaN.  Constants, integer powers, exp(…) and nested products of
# scalars keep their exponent; any other scalar enters with its float value.

_LN2 = math.log(2.0)
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10


def _ext_norm(m, k):
    if m == 0.0 or not math.isfinite(m):
        return m, 0
    f, j = math.frexp(m)
    return f, k + j


def _ext_mul(a, b):
    return _ext_norm(a[0] * b[0], a[1] + b[1])


def _ext_float(v):
    return _ext_norm(float(v), 0)


def _ext_fraction(v):
    """A Fraction as (m, k), exact to rounding whatever its size."""
    if v == 0:
        return 0.0, 0
    num, den = abs(v.numerator), v.denominator
    shift = num.bit_length() - den.bit_length()
    # num / den = (num·2^-shift / den)·2^shift, the first factor in (0.5, 2)
    if shift >= 0:
        q = Fraction(num, den << shift)
    else:
        q = Fraction(num << -shift, den)
    m, k = _ext_norm(float(q), shift)
    return (m if v > 0 else -m), k


def _ext_pow(b, p):
    """(m, k)^p for a float p; integer p exactly by squaring, others through log2."""
    m, k = b
    if m == 0.0 or not math.isfinite(m) or not math.isfinite(p):
        with np.errstate(all="ignore"):
            return _ext_float(np.power(_ext_value(b), p))
    if float(p).is_integer() and abs(p) < 2 ** 62:
        n = int(p)
        out, base = (1.0, 0), (m, k)
        e = abs(n)
        while e:
            if e & 1:
                out = _ext_mul(out, base)
            base = _ext_mul(base, base)
            e >>= 1
        if n < 0:
            out = _ext_norm(1.0 / out[0], -out[1])
        return out
    if m < 0:
        return _ext_float(float("nan"))
    v = _ext_value(b)
    if 0.0 < v < math.inf:      # within the float range: numpy's power, rounded once
        with np.errstate(all="ignore"):
            r = float(np.power(v, p))
        if 2.3e-308 < r < math.inf:
            return _ext_float(r)
    L = p * (math.log2(m) + k)
    if not math.isfinite(L):
        return _ext_float(math.inf if L > 0 else 0.0)
    j = math.floor(L)
    return _ext_norm(2.0 ** (L - j), j)


def _ext_value(x):
    m, k = x
    if m == 0.0 or not math.isfinite(m):
        return m
    if k > 1024:        # |m| >= 0.5: past the largest float
        return math.copysign(math.inf, m)
    if k < -1100:       # below the smallest subnormal
        return math.copysign(0.0, m)
    return math.ldexp(m, k)


def _ext(ev, e):
    """The scalar e as (m, k), keeping the exponent of a product past the float range."""
    memo = ev.ext_memo
    k = id(e)
    if k not in memo:
        memo[k] = (e, _ext_node(ev, e))
    return memo[k][1]


def _ext_sum(terms):
    """A sum of (m, k), exact then rounded once, so that terms past the float range
    (4e600 t - 2e600 t) cancel as they would in exact arithmetic instead of giving inf - inf,
    and a small term beside two that cancel (1e400 t - 1e400 t + t) is kept."""
    big = [t for t in terms if t[0] != 0.0]
    if not big:
        return 0.0, 0
    if not all(math.isfinite(t[0]) for t in big):
        return _ext_float(sum(t[0] for t in big))
    top, low = max(t[1] for t in big), min(t[1] for t in big)
    if top - low > 20000:       # a term 2^20000 below the others: aligned to the largest
        return _ext_norm(math.fsum(math.ldexp(m, max(k - top, -1100)) for m, k in big), top)
    total = sum(Fraction(m) * (1 << (k - low)) for m, k in big)
    m, k = _ext_fraction(total)
    return _ext_norm(m, k + low)


def _ext_node(ev, e):
    if isinstance(e, E.Add) and e.is_scalar:
        return _ext_sum([_ext(ev, t) for t in e.items])
    if isinstance(e, E.Num):
        return _ext_fraction(e.value)
    if isinstance(e, E.Mul) and all(f.is_scalar for f in e.items):
        out = (1.0, 0)
        for f in e.items:
            out = _ext_mul(out, _ext(ev, f))
        return out
    if isinstance(e, E.Pow):
        return _ext_pow(_ext(ev, e.base), float(ev.ev(e.exp)))
    if isinstance(e, E.Func) and e.name == "exp":
        x = float(ev.ev(e.arg))
        if abs(x) < 700 or not math.isfinite(x) or abs(x) > 1e9:
            with np.errstate(all="ignore"):
                return _ext_float(np.exp(x))
        # exp(x) = exp(r)·2^j, r = x - j·ln2 in two parts (fdlibm's split) so that r is exact
        j = round(x / _LN2)
        r = (x - j * _LN2_HI) - j * _LN2_LO
        return _ext_norm(math.exp(r), j)
    return _ext_float(ev.ev(e))


def _scale_array(a, x):
    """The array a times the scalar (m, k), without forming 2^k as a float."""
    m, k = x
    if (m, k) == (0.5, 1):     # exactly 1
        return a
    if -1000 < k < 1000:
        return a * _ext_value(x)
    fa, ka = np.frexp(a * m)
    kk = np.clip(ka.astype(np.int64) + k, -100000, 100000)
    return np.ldexp(fa, kk)


def _mul_factors(e):
    """The factors of a product, nested products with a scalar factor inlined (the product is
    associative), so that exp(700)^3 x / exp(2100) scales x once by a representable 1."""
    for f in e.items:
        if isinstance(f, E.Mul) and not f.is_scalar and any(g.is_scalar for g in f.items):
            yield from _mul_factors(f)
        elif isinstance(f, E.Transpose) and isinstance(f.arg, E.Mul) and not f.is_scalar \
                and any(g.is_scalar for g in f.arg.items):
            # (s A B)ᵀ = s Bᵀ Aᵀ: the scalars join this product
            inner = list(_mul_factors(f.arg))
            yield from (g for g in inner if g.is_scalar)
            yield from (E.Transpose(g) for g in reversed(inner) if not g.is_scalar)
        else:
            yield f


_TINY = 2.2250738585072014e-308     # the smallest normal float


def _plain_product(vals):
    """The float product of vals when no step overflows, underflows or turns subnormal (then
    it is the product rounded as before), else None: the extended arithmetic takes over."""
    if len(vals) > 1 and 0.0 in vals:
        return None             # 0.0 may be an underflow (8e-600, exp(-800)), not a zero
    p = 1.0
    for v in vals:
        q = p * v
        if not math.isfinite(q) or (q != 0 and abs(q) < _TINY) or (q == 0 and p != 0 and v != 0):
            return None
        p = q
    return p


def _mul(ev, e):
    factors = list(_mul_factors(e))
    scalars = [float(ev.ev(f)) for f in factors if f.is_scalar]
    plain = _plain_product(scalars)
    if plain is not None:       # the common case, as fast as plain floats
        acc = None
        for f in factors:
            if not f.is_scalar:
                v = ev.ev(f)
                acc = v if acc is None else acc @ v
        if acc is None:
            return plain
        return acc * plain if plain != 1.0 else acc
    return _mul_ext(ev, e, factors)


def _mul_ext(ev, e, factors):
    scale = (1.0, 0)
    exact = Fraction(1)     # the constants, multiplied exactly (1e200 1e200 1e-400 is 1)
    acc = None
    for f in factors:
        if isinstance(f, E.Num):
            exact *= f.value
        elif f.is_scalar:
            scale = _ext_mul(scale, _ext(ev, f))
        else:
            v = ev.ev(f)
            acc = v if acc is None else acc @ v
    if exact != 1:
        scale = _ext_mul(scale, _ext_fraction(exact))
    if acc is None:
        return _ext_value(scale)
    return _scale_array(acc, scale)


def _hadamard(ev, e):
    out = ev.ev(e.items[0])
    for f in e.items[1:]:
        out = out * ev.ev(f)
    return out


def _kron(ev, e):
    out = _arr(ev.ev(e.items[0]))
    for f in e.items[1:]:
        out = np.kron(out, _arr(ev.ev(f)))
    return out


def _add(ev, e):
    if e.is_scalar:
        vals = [float(ev.ev(t)) for t in e.items]
        total = math.fsum(vals) if all(math.isfinite(v) for v in vals) else float("nan")
        if math.isfinite(total):
            return total
        return _ext_value(_ext(ev, e))
    vals = [ev.ev(t) for t in e.items]
    out = vals[0]
    for v in vals[1:]:
        out = out + v
    return out


def _logdet(ev, e):
    a = _arr(ev.ev(e.arg))
    sign, val = np.linalg.slogdet(a)
    return float(val) if sign > 0 else (float("-inf") if sign == 0 else float("nan"))


def _elempow(ev, e):
    b = ev.ev(e.base)
    p = ev.ev(e.exp)
    if float(p).is_integer():
        return b ** int(p) if int(p) >= 0 else 1.0 / (b ** -int(p))
    return np.power(b, p)


def _pow(ev, e):
    b = float(ev.ev(e.base))
    p = float(ev.ev(e.exp))
    if p.is_integer() and b == 0 and p < 0:
        return float("inf")
    with np.errstate(all="ignore"):
        return float(np.power(b, p))


def _norm2(v):
    """The 2-norm (Frobenius for a matrix), scaled by the largest magnitude as LAPACK's nrm2
    does, so that it neither underflows (1e-200 x) nor overflows (1e200 x) when it fits."""
    a = np.abs(np.asarray(v, dtype=float))
    if a.size == 0:
        return 0.0
    big = float(np.max(a))
    if big == 0.0 or not math.isfinite(big):
        return float(np.sqrt(np.sum(np.square(a))))
    return big * float(np.sqrt(np.sum(np.square(a / big))))


def _unvec(ev, e):
    """unvec(v, m): v reshaped column-major to m rows."""
    v = _arr(ev.ev(e.arg))
    m = ev.size(e.m)
    if v.size % m:
        raise ShapeError(f"unvec(v, {m}) of a vector of length {v.size}: the length is not a "
                         f"multiple of {m}")
    return v.reshape((m, v.size // m), order="F")


def _spec_norm(ev, e):
    return float(np.linalg.norm(_arr(ev.ev(e.arg)), 2))


def _spectral(ev, e):
    """λ_max, ‖X‖_*, eigvec_max, polar, ... by the record's value; NaN where the argument
    has an entry that is not finite (an overflow on the way: the extended evaluator then
    takes the argument scaled by a power of two)."""
    a = _arr(ev.ev(e.arg))
    if not np.all(np.isfinite(a)):
        return np.full(e.shape, np.nan) if not e.is_scalar else float("nan")
    return SPECTRAL[e.name].value(a)


def _record_evaluator(cls):
    """The evaluator a unary node's record gives (its NumPy function), or None."""
    rec = record_of_unary(cls)
    if rec is None or rec.numpy is None:
        return None
    fn = resolve_numpy(rec.numpy)
    return lambda ev, e: fn(_arr(ev.ev(e.arg)))


def _mat_func(ev, e):
    return matrix_function(e.name, "evaluator").value(_arr(ev.ev(e.arg)), e.p)


def _frechet(ev, e):
    X, D = _arr(ev.ev(e.arg)), _arr(ev.ev(e.dir))
    return matrix_function(e.name, "evaluator").frechet_value(X, D, e.p)


def _frechet_jac(ev, e):
    return matrix_function(e.name, "evaluator").jacobian_value(_arr(ev.ev(e.arg)), e.p)


EVAL = OperatorTable("NumPy evaluator (numeric.EVAL)", {
    E.Num: lambda ev, e: num_float(e.value),
    E.Sym: lambda ev, e: ev.env[e.name],
    E.Diff: lambda ev, e: ev.env["d" + e.var.name] if ("d" + e.var.name) in ev.env else _missing(e),
    E.Identity: lambda ev, e: np.eye(ev.size(e.n)),
    E.Zero: lambda ev, e: np.zeros((ev.size(e.rows), ev.size(e.cols))),
    E.Commutation: lambda ev, e: commutation_matrix(ev.size(e.m), ev.size(e.n)),
    E.Fill: lambda ev, e: np.full((ev.size(e.rows), ev.size(e.cols)), float(ev.ev(e.value))),
    E.Add: _add,
    E.Mul: _mul,
    E.Hadamard: _hadamard,
    E.Kron: _kron,
    E.Transpose: lambda ev, e: ev.ev(e.arg) if e.arg.is_scalar else ev.ev(e.arg).T,
    E.Inverse: lambda ev, e: np.linalg.inv(_arr(ev.ev(e.arg))),
    E.Det: lambda ev, e: float(np.linalg.det(_arr(ev.ev(e.arg)))),
    E.LogDet: _logdet,
    E.Trace: lambda ev, e: float(np.trace(_arr(ev.ev(e.arg)))),
    E.Sum: lambda ev, e: float(np.sum(ev.ev(e.arg))),
    E.Norm: lambda ev, e: _norm2(ev.ev(e.arg)),
    E.SpecNorm: _spec_norm,
    E.Vec: lambda ev, e: _arr(ev.ev(e.arg)).reshape((-1, 1), order="F"),
    E.Unvec: _unvec,
    E.DiagMat: lambda ev, e: np.diag(_arr(ev.ev(e.arg))[:, 0]),
    E.DiagVec: lambda ev, e: np.diag(_arr(ev.ev(e.arg))).reshape(-1, 1).copy(),
    E.Func: lambda ev, e: FUNCS[e.name](ev.ev(e.arg)),
    E.ArrayFunc: lambda ev, e: ARRAY_FUNCS[e.name](ev.ev(e.arg)),
    E.Spectral: _spectral,
    E.SpectralVec: _spectral,
    E.MatPow: lambda ev, e: np.linalg.matrix_power(_arr(ev.ev(e.arg)), e.k),
    E.Pow: _pow,
    E.ElemPow: _elempow,
    E.MatFunc: _mat_func,
    E.Frechet: _frechet,
    E.FrechetJac: _frechet_jac,
}, derive=_record_evaluator)


def _missing(e):
    raise MatcalcError(f"no value for the differential d{e.var.name}")


# ---------------------------------------------------------------------------- values


def real_array(v, name=None):
    """A user's value as a real float array of 0, 1 or 2 dimensions, or a ShapeError that
    says why it is not one: None, strings, complex numbers (the language is real: the
    imaginary part would be dropped), objects that are not numbers, ragged lists, arrays
    of more than 2 dimensions.  NaN and ±inf are numbers: they are the user's business."""
    import numbers
    what = f"the value of {name}" if name else "a value"
    if v is None:
        raise ShapeError(f"{what} is None; give a number or an array of numbers")
    if isinstance(v, (str, bytes)):
        raise ShapeError(f"{what} is a string ({v!r:.40}); give a number or an array of numbers")
    try:
        a = np.asarray(v)
    except (ValueError, TypeError) as err:
        raise ShapeError(f"{what} is not an array of numbers ({err})") from None
    if a.dtype.kind == "O":
        for x in a.reshape(-1):
            if x is None:
                raise ShapeError(f"{what} holds None; give numbers")
            if isinstance(x, (str, bytes)):
                raise ShapeError(f"{what} holds a string ({x!r:.40}); give numbers")
            if isinstance(x, numbers.Complex) and not isinstance(x, numbers.Real):
                raise ShapeError(f"{what} holds a complex number ({x}); the language is real "
                                 f"(the imaginary part would be dropped): give real values")
            if not isinstance(x, numbers.Real):
                raise ShapeError(f"{what} holds an object of type {type(x).__name__}, which is not a number "
                                 f"(ragged lists and nested objects are not arrays of numbers)")
        try:
            a = a.astype(float)
        except (ValueError, TypeError, OverflowError) as err:
            raise ShapeError(f"{what} is not an array of real numbers ({err})") from None
    kind = a.dtype.kind
    if kind == "c":
        raise ShapeError(f"{what} is complex; the language is real (the imaginary part would be "
                         f"dropped): give real values")
    if kind in "US":
        raise ShapeError(f"{what} holds strings; give numbers")
    if kind not in "biuf":
        raise ShapeError(f"{what} is an array of {a.dtype}, not of numbers")
    if a.ndim > 2:
        raise ShapeError(f"values must be numbers, 1-D or 2-D arrays; {what} is an array of "
                         f"{a.ndim} dimensions")
    return a.astype(float, copy=False)


def value_kind(v, name=None):
    """(kind, shape) of a user's value: a number is a scalar, 1-D a vector, 2-D a matrix."""
    a = real_array(v, name)
    if a.ndim == 0:
        return "scalar", ()
    if a.ndim == 1:
        return "vector", a.shape
    return "matrix", a.shape


def internal(v, name=None):
    """A user value as the evaluator holds it: float, or a 2-D array (vectors as columns)."""
    a = real_array(v, name)
    if a.ndim == 0:
        return float(a)
    if a.ndim == 1:
        return a.reshape(-1, 1)
    return a


def structure_error(name, kind, v):
    """Why the value v (as ``internal`` holds it) does not fit the kind declared for name,
    or None when it fits: a symmetric or spd symbol needs a symmetric square matrix, a
    diagonal one a diagonal square matrix, up to rounding relative to the values' scale
    (entries that are NaN or inf are left to the user)."""
    if kind not in E.SQUARE_KINDS:
        return None
    if not isinstance(v, np.ndarray) or v.shape[0] != v.shape[1]:
        got = "is a number" if not isinstance(v, np.ndarray) else f"has shape {v.shape}"
        return f"the value of {name} {got}, but {name} is declared {kind}: give a square matrix"
    finite = np.isfinite(v)
    if v.size == 0 or not finite.any():
        return None
    scale = float(np.max(np.abs(v[finite])))
    tol = 1e-8 * scale
    if kind == "diagonal":
        off = v - np.diag(np.diag(v))
        bad = np.isfinite(off) & (np.abs(off) > tol)
        if bad.any():
            i, j = (int(k) for k in np.argwhere(bad)[0])
            return (f"the value of {name} is not diagonal (entry ({i},{j}) is {v[i, j]:.6g}), but "
                    f"{name} is declared diagonal: give a diagonal matrix, or declare {name} a matrix")
        return None
    gap = v - v.T
    bad = np.isfinite(gap) & (np.abs(gap) > tol)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        return (f"the value of {name} is not symmetric (entries ({i},{j}) and ({j},{i}) are "
                f"{v[i, j]:.6g} and {v[j, i]:.6g}), but {name} is declared {kind}: the derivative is taken "
                f"over symmetric matrices; give a symmetric matrix, or declare {name} a matrix")
    return None


def to_user(node_shape, v):
    """A result in the user's shapes: float for 1×1, 1-D for a column, 2-D otherwise."""
    if node_shape == E.SCALAR:
        return float(v) if not isinstance(v, np.ndarray) else float(v.reshape(-1)[0])
    a = np.asarray(v, dtype=float)
    if node_shape[1] == 1:
        return a.reshape(-1)
    return a.reshape(1, 1) if a.ndim == 0 else a


def guarded_nodes(f, var_name):
    """The nodes of f that depend on the variable and have a guard (operators.guard_of:
    λ_max, ‖X‖₂, ‖X‖_*, ‖x‖₁, and logm, sqrtm, X^p off their principal domain), as
    (node, guard); empty for every other f, so that its evaluation pays nothing."""
    from .operators import guard_of
    out = []
    for node in E.walk(f):
        guard = guard_of(node)
        if guard is not None and var_name in E.symbols_of(node.arg):
            out.append((node, guard))
    return tuple(out)


def check_guards(guards, env, sizes):
    """Each guard on its node's argument at these values: an EvaluationError that says why
    where f is not differentiable there (a repeated λ_max, a rank-deficient X, a zero
    entry), rather than a number for a derivative that does not exist."""
    if not guards:
        return
    ev = Evaluator(env, sizes)
    for node, guard in guards:
        if any(n not in env for n in E.symbols_of(node.arg)):
            continue                    # not all its values given: the answer's own check
        try:
            with np.errstate(all="ignore"):
                value = ev.ev(node.arg)
        except NoValue as err:
            raise user_error(err) from None
        try:
            guard(_arr(value))
        except EvaluationError as err:
            from .printing import to_text
            text = to_text(node)
            text = text if len(text) <= 80 else text[:77] + "..."
            raise EvaluationError(f"{err} (in {text}): the derivative does not exist at these "
                                  f"values") from None
