"""Values for the fuzzer's examples: the generator's own NumPy meaning of its trees
(what f should evaluate to) and random values suited to each symbol's requirements."""

import numpy as np
from matcalc.check import direction as check_direction, draw_value as check_value, vec
from matcalc.numeric import commutation_matrix

from .tree import is_scalar, shape_size
from .generator import engine_functions


# ---------------------------------------------------------------------------- values


def _s(v):
    if isinstance(v, np.ndarray):
        assert v.size == 1, v.shape
        return float(v.reshape(-1)[0])
    return float(v)


def _2d(v):
    return v if isinstance(v, np.ndarray) else np.array([[float(v)]])


def my_eval(n, env, memo=None, sizes=None):
    """This module's own NumPy meaning of a generated tree (floats and 2-D arrays); sizes
    (a Sizes) gives I and K their sizes when the values are not of the generator's."""
    memo = {} if memo is None else memo
    if id(n) in memo:
        return memo[id(n)]
    v = _my_eval(n, env, memo, sizes)
    if is_scalar(n.shape):
        v = _s(v)
    memo[id(n)] = v
    return v


def _my_eval(n, env, memo, sizes):
    op, a = n.op, n.a
    ev = [my_eval(k, env, memo, sizes) for k in n.kids] if op not in ("spow", "epow") else None
    if op == "sym":
        return env[a["name"]]
    if op == "num":
        return float(a["text"])
    if op in ("I", "In"):
        return np.eye(sizes.rows(n) if sizes else shape_size(n.shape)[0])
    if op == "K":
        return commutation_matrix(*(sizes.K(n) if sizes else (a["m"], a["n"])))
    if op == "add":
        return ev[0] + ev[1] if a["sp"] == "+" else ev[0] - ev[1]
    if op == "neg":
        return -ev[0]
    if op == "mul":
        x, y = ev
        if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
            return x * y
        if x.shape == (1, 1):
            return float(x[0, 0]) * y
        if y.shape == (1, 1):
            return x * float(y[0, 0])
        return x @ y
    if op == "div":
        return ev[0] / ev[1]
    if op == "had":
        return ev[0] * ev[1]
    if op == "ediv":
        return ev[0] / ev[1]
    if op == "kron":
        return np.kron(_2d(ev[0]), _2d(ev[1]))
    if op == "T":
        return ev[0].T if isinstance(ev[0], np.ndarray) else ev[0]
    if op == "inv":
        return np.linalg.inv(_2d(ev[0]))
    if op == "invT":
        return np.linalg.inv(_2d(ev[0]).T)
    if op == "det":
        return float(np.linalg.det(_2d(ev[0])))
    if op == "logdet":
        return float(np.log(np.linalg.det(_2d(ev[0]))))
    if op == "tr":
        return float(np.trace(_2d(ev[0])))
    if op == "func":
        return engine_functions()[a["name"]].evaluate(ev[0])
    if op == "afunc":                       # softmax of a column, logsumexp of all entries
        z = _2d(ev[0])
        m = float(np.max(z))
        if a["name"] == "logsumexp":
            return m + float(np.log(np.sum(np.exp(z - m))))
        e = np.exp(z - m)
        return e / np.sum(e)
    if op == "nuclear":
        return float(np.sum(np.linalg.svd(_2d(ev[0]), compute_uv=False)))
    if op == "norm1":
        return float(np.sum(np.abs(ev[0])))
    if op == "lambda":
        x = _2d(ev[0])
        lam = np.linalg.eigvalsh((x + x.T) / 2)
        return float(lam[-1] if a["name"] == "lambda_max" else lam[0])
    if op == "absbar":
        return abs(ev[0])
    if op == "sum":
        return float(np.sum(ev[0]))
    if op in ("norm", "specnorm"):
        x = _2d(ev[0])
        v = float(np.linalg.norm(x, 2)) if op == "specnorm" else float(np.sqrt(np.sum(x * x)))
        return v * v if a.get("sq") else v
    if op == "vec":
        return _2d(ev[0]).reshape((-1, 1), order="F")
    if op == "diagm":
        return np.diag(ev[0][:, 0])
    if op == "diagv":
        return np.diag(ev[0]).reshape(-1, 1).copy()
    if op == "mpow":
        return np.linalg.matrix_power(ev[0], a["k"])
    if op == "mfunc":                       # SciPy's, not the engine's (an independent meaning)
        return _matrix_function(a["name"], a.get("p"))(_2d(ev[0]))
    if op == "frechet":
        import scipy.linalg as sl
        X, D = _2d(ev[0]), _2d(ev[1])
        if a["name"] == "expm":
            return sl.expm_frechet(X, D, compute_expm=False)
        # the block identity f([[X, D], [0, X]]) = [[f(X), L_f(X, D)], [0, f(X)]]
        n = X.shape[0]
        B = np.block([[X, D], [np.zeros((n, n)), X]])
        return _matrix_function(a["name"], a.get("p"))(B)[:n, n:]
    if op in ("spow", "epow"):
        base = my_eval(n.kids[0], env, memo, sizes)
        p = a["p"] if "p" in a else my_eval(n.kids[1], env, memo, sizes)
        if op == "spow":
            base = _s(base)
            if float(p).is_integer():       # NumPy's float: ±inf past the range, no OverflowError
                return float(np.float64(base) ** int(p))
            return base ** float(p)
        return np.power(base, float(p)) if not float(p).is_integer() else base ** int(p) \
            if int(p) >= 0 else 1.0 / base ** (-int(p))
    raise AssertionError(op)


def _matrix_function(name, p):
    import scipy.linalg as sl
    f = {"expm": sl.expm, "logm": sl.logm, "sqrtm": sl.sqrtm,
         "powm": lambda X: sl.fractional_matrix_power(X, float(p))}[name]
    if name == "sqrtm" or (name == "powm" and p == 0.5):
        f = sl.sqrtm

    def value(X):
        # SciPy warns where its own residual passes 1000 eps; the oracle's value is
        # compared with the engine's numerically, so the warning says nothing here
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.real(f(X))
    return value


# ============================================================================ values


def _orth(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _pos_posdef(rng, n):
    B = rng.uniform(0.1, 1.0, (n, n))
    return B @ B.T / n + rng.uniform(0.5, 1.0) * np.eye(n)


def draw_value(rng, kind, shape, props):
    props = set(props or ())
    v = _draw_value(rng, kind, shape, props)
    if props & {"pdiag", "zeros"} and kind != "scalar" and not props & {"pos", "inv", "posdet", "nearid"}:
        v = _with_zeros(rng, kind, v, props)
    return v


def _with_zeros(rng, kind, v, props):
    """v with a positive diagonal for 'pdiag' and zero entries where allowed ('zeros', or
    off the diagonal for 'pdiag'), keeping the kind (symmetric, spd, diagonal)."""
    zeros = "nz" not in props
    if kind == "vector":
        if zeros and "zeros" in props:
            v = np.where(rng.random(v.shape) < 0.4, 0.0, v)
        return v
    n = v.shape[0]
    mask = rng.random(v.shape) < 0.5 if zeros else np.zeros(v.shape, bool)
    if kind in ("symmetric", "spd", "diagonal"):
        mask = np.triu(mask)
        mask = mask | mask.T
    if "zeros" not in props:
        np.fill_diagonal(mask, False)
    v = np.where(mask, 0.0, v)
    if kind == "spd":
        # diagonally dominant, so still positive definite
        off = v - np.diag(np.diag(v))
        return off + np.diag(np.abs(off).sum(axis=1) + rng.uniform(0.5, 1.5, n))
    if "pdiag" in props:
        np.fill_diagonal(v, rng.uniform(0.5, 1.5, n))
    return v


def _draw_value(rng, kind, shape, props):
    """The check's value (matcalc.check.draw_value) where the fuzzer wants the same
    distribution; its own where it wants another (see _own_value)."""
    own = _own_value(rng, kind, shape, props)
    if own is not None:
        return own
    return check_value(rng, kind, shape, props)


def _own_value(rng, kind, shape, props):
    """The fuzzer's values that differ from the check's: scalars of either sign away
    from 0, a diagonal of normal entries, positive-entried SPD and symmetric matrices
    (B Bᵀ/n + cI), a symmetric matrix under an inverse, a positive matrix under an
    inverse or a determinant; None elsewhere."""
    m, n = shape
    if kind != "scalar" and props & {"nearid", "small"}:
        return None                     # near I, or small: the check's values (matcalc.check)
    wc = props & {"inv", "posdet"}
    pos = "pos" in props
    if kind == "scalar":
        return None if pos else float(rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 1.5))
    if kind == "diagonal" and not pos and not wc:
        rng.uniform(0.5, 2.0, n)        # (drawn and not used: the seeds' examples stay)
        return np.diag(rng.standard_normal(n))
    if kind == "spd" and pos:
        return _pos_posdef(rng, n)
    if kind == "symmetric" and pos:
        return _pos_posdef(rng, n) if wc else (lambda b: (b + b.T) / 2)(rng.uniform(0.5, 1.5, (n, n)))
    if kind == "symmetric" and wc and "posdet" not in props:
        q = _orth(rng, n)
        return q @ np.diag(rng.uniform(0.5, 2.0, n) * rng.choice([-1.0, 1.0], n)) @ q.T
    if kind == "matrix" and wc and pos:
        return _pos_posdef(rng, n)
    return None


def draw_values(ex, rng):
    return {name: draw_value(rng, kind, shape, ex.props.get(name, ()))
            for name, (kind, shape) in ex.shapes.items()}


def direction(rng, kind, value):
    """The check's random direction in the variable's space; 1 for a scalar variable."""
    return 1.0 if kind == "scalar" else check_direction(rng, kind, value)


def to_internal(v):
    a = np.asarray(v, dtype=float)
    if a.ndim == 0:
        return float(a)
    if a.ndim == 1:
        return a.reshape(-1, 1)
    return a


def to_user(shape, v):
    if is_scalar(shape):
        return _s(v)
    a = np.asarray(v, dtype=float)
    if shape[1] == ():
        return a.reshape(-1)
    return a


vecF = vec
