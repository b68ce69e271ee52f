"""NumPy evaluation of a typed tree: one entry per node type in ``EVAL``.

Inside, scalars are floats and every array is 2-D (a vector is a column).  ``bind``
reads the values a user gives (numbers, 1-D and 2-D arrays) and ``to_user`` turns a
result back into the user's shapes (a float, a 1-D vector, a 2-D matrix).
"""
import numpy as np

from . import expr as E
from .errors import ShapeError, MatcalcError


def _sigmoid(x):
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


FUNCS = {
    "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
    "sqrt": np.sqrt, "sigmoid": _sigmoid, "softplus": lambda x: np.logaddexp(0.0, x),
    "abs": np.abs,
}


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


class Evaluator:
    def __init__(self, env, sizes):
        self.env = env          # name -> float or 2-D array
        self.sizes = sizes      # size name -> int
        self.memo = {}

    def size(self, s):
        if isinstance(s, int):
            return s
        if isinstance(s, E.SizeProd):
            out = s[0]
            for f in s[1:]:
                out *= self.size(f)
            return out
        if s not in self.sizes:
            raise ShapeError(f"the size {s} is not known: give a value whose shape fixes it, "
                             f"or pass symbols= with the sizes")
        return self.sizes[s]

    def ev(self, e):
        k = id(e)
        if k in self.memo:
            return self.memo[k][1]
        v = EVAL[type(e)](self, e)
        if e.is_scalar and isinstance(v, np.ndarray):
            v = _scalar(v)
        self.memo[k] = (e, v)
        return v


def _mul(ev, e):
    scale = 1.0
    acc = None
    for f in e.items:
        v = ev.ev(f)
        if f.is_scalar:
            scale = scale * v
        else:
            acc = v if acc is None else acc @ v
    if acc is None:
        return scale
    return acc * scale if scale != 1.0 else acc


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


def _spec_norm(ev, e):
    return float(np.linalg.norm(_arr(ev.ev(e.arg)), 2))


EVAL = {
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
    E.Norm: lambda ev, e: float(np.sqrt(np.sum(np.square(ev.ev(e.arg))))),
    E.SpecNorm: _spec_norm,
    E.Vec: lambda ev, e: _arr(ev.ev(e.arg)).reshape((-1, 1), order="F"),
    E.DiagMat: lambda ev, e: np.diag(_arr(ev.ev(e.arg))[:, 0]),
    E.DiagVec: lambda ev, e: np.diag(_arr(ev.ev(e.arg))).reshape(-1, 1).copy(),
    E.Func: lambda ev, e: FUNCS[e.name](ev.ev(e.arg)),
    E.MatPow: lambda ev, e: np.linalg.matrix_power(_arr(ev.ev(e.arg)), e.k),
    E.Pow: _pow,
    E.ElemPow: _elempow,
}


def _missing(e):
    raise MatcalcError(f"no value for the differential d{e.var.name}")


# ---------------------------------------------------------------------------- values


def value_kind(v):
    """(kind, shape) of a user's value: a number is a scalar, 1-D a vector, 2-D a matrix."""
    a = np.asarray(v, dtype=float)
    if a.ndim == 0:
        return "scalar", ()
    if a.ndim == 1:
        return "vector", a.shape
    if a.ndim == 2:
        return "matrix", a.shape
    raise ShapeError(f"values must be numbers, 1-D or 2-D arrays; got an array of {a.ndim} dimensions")


def internal(v):
    """A user value as the evaluator holds it: float, or a 2-D array (vectors as columns)."""
    a = np.asarray(v, dtype=float)
    if a.ndim == 0:
        return float(a)
    if a.ndim == 1:
        return a.reshape(-1, 1)
    return a


def to_user(node_shape, v):
    """A result in the user's shapes: float for 1×1, 1-D for a column, 2-D otherwise."""
    if node_shape == E.SCALAR:
        return float(v) if not isinstance(v, np.ndarray) else float(v.reshape(-1)[0])
    a = np.asarray(v, dtype=float)
    if node_shape[1] == 1:
        return a.reshape(-1)
    return a


def evaluate_tree(tree, env, sizes):
    with np.errstate(all="ignore"):
        return Evaluator(env, sizes).ev(tree)
