"""The numeric check (autograd's check_grads): a derivative against central finite
differences of its function along random directions, at values drawn to suit the
kinds and the domains (SPD for spd, symmetric for symmetric, well-conditioned where
an inverse or a determinant is taken, positive where log and sqrt need it).

The same function serves the tests and ``matcalc diff --check``.
"""
import numpy as np

from . import expr as E
from .numeric import evaluate_tree, internal

DEFAULT_SIZES = (3, 4, 5, 2, 6, 7, 3, 4)


class CheckResult:
    def __init__(self, error, trials, tol, note=""):
        self.error = error          # worst relative error over the trials
        self.trials = trials
        self.tol = tol
        self.note = note

    @property
    def ok(self):
        return self.error is not None and self.error <= self.tol

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return f"CheckResult(error={self.error!r}, ok={self.ok}, trials={self.trials})"


# ---------------------------------------------------------------------------- values


def _needs(f):
    """name -> set of value properties the function's domain asks of that symbol."""
    needs = {}

    def mark(e, prop):
        for n in E.walk(e):
            if isinstance(n, E.Sym):
                needs.setdefault(n.name, set()).add(prop)

    for n in E.walk(f):
        if isinstance(n, (E.Inverse, E.Det)) and not n.arg.is_scalar:
            mark(n.arg, "inv")
        elif isinstance(n, E.LogDet):
            mark(n.arg, "posdet")
        elif isinstance(n, E.Func) and n.name in ("log", "sqrt"):
            mark(n.arg, "pos")
        elif isinstance(n, (E.Pow, E.ElemPow)):
            if not (isinstance(n.exp, E.Num) and n.exp.value.denominator == 1 and n.exp.value > 0):
                mark(n.base, "pos")
    return needs


def _orthogonal(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def draw_value(rng, sym, shape, props):
    """A value for a symbol of this kind and shape that suits the domain's needs."""
    kind = sym.kind
    if kind == "scalar":
        return float(rng.uniform(0.5, 1.5)) if "pos" in props else float(rng.uniform(-1.5, 1.5) or 0.7)
    if kind == "vector":
        if "pos" in props:
            return rng.uniform(0.5, 1.5, shape[0])
        return rng.standard_normal(shape[0])
    m, n = shape
    if kind == "spd" or (m == n and "posdet" in props and kind == "symmetric"):
        q = _orthogonal(rng, n)
        return q @ np.diag(rng.uniform(0.5, 2.0, n)) @ q.T
    if kind == "symmetric":
        if "inv" in props:
            q = _orthogonal(rng, n)
            return q @ np.diag(rng.choice([-1, 1], n) * rng.uniform(0.5, 2.0, n)) @ q.T
        g = rng.standard_normal((n, n))
        return (g + g.T) / 2
    if kind == "diagonal":
        d = rng.uniform(0.5, 2.0, n)
        if not props & {"pos", "posdet"}:
            d = d * rng.choice([-1.0, 1.0], n)
        return np.diag(d)
    if "pos" in props:
        return rng.uniform(0.5, 1.5, (m, n))
    if m == n and props & {"inv", "posdet"}:
        a = _orthogonal(rng, n) @ np.diag(rng.uniform(1.0, 2.0, n)) @ _orthogonal(rng, n).T
        if "posdet" in props:
            a = 0.5 * (a @ a.T) + 0.5 * np.eye(n)
        return a
    return rng.standard_normal((m, n))


def draw_values(symbols, f, rng, sizes=None):
    """(values, size bindings) for every symbol, suited to f's domain."""
    sizes = dict(sizes or {})
    pool = [s for s in DEFAULT_SIZES]
    needs = _needs(f)

    def size(s):
        if isinstance(s, int):
            return s
        if isinstance(s, E.SizeProd):
            out = s[0]
            for x in s[1:]:
                out *= size(x)
            return out
        if s not in sizes:
            used = set(sizes.values())
            sizes[s] = next((p for p in pool if p not in used), 3)
        return sizes[s]

    values = {}
    for name, sym in symbols.items():
        shape = (size(sym.rows), size(sym.cols))
        values[name] = draw_value(rng, sym, shape, needs.get(name, set()))
    return values, sizes


def direction(rng, var, value):
    """A random direction in the variable's own space (symmetric, diagonal, ...)."""
    v = np.asarray(value, dtype=float)
    d = rng.standard_normal(v.shape) if v.ndim else float(rng.standard_normal())
    if var.kind in ("symmetric", "spd"):
        d = (d + d.T) / 2
    elif var.kind == "diagonal":
        d = np.diag(np.diag(d))
    return d


# ---------------------------------------------------------------------------- the check


def _f_at(f, values, sizes):
    env = {n: internal(v) for n, v in values.items()}
    with np.errstate(all="ignore"):
        return np.asarray(evaluate_tree(f, env, sizes), dtype=float)


def _vecF(a):
    a = np.asarray(a, dtype=float)
    return a.reshape(-1, order="F") if a.ndim == 2 else a.reshape(-1)


def _project(a, var):
    if var.kind in ("symmetric", "spd"):
        return (a + a.T) / 2
    if var.kind == "diagonal":
        return np.diag(np.diag(a))
    return a


def check(d, trials=3, seed=0, eps=1e-6, tol=1e-5, values=None):
    """Worst relative error of d over `trials` random points and directions V.

    gradient G:      ⟨G, V⟩ against (f(X + hV) − f(X − hV)) / 2h
    wrt a scalar:    F'(t) v against the central difference of F
    Jacobian J:      J vec(V) against vec of the central difference of F
    Hessian H:       H vec(V) against vec of the central difference of the gradient"""
    rng = np.random.default_rng(seed)
    var = d.var
    worst = 0.0
    done = 0
    attempts = 0
    target = d.gradient if d.kind == "hessian" else d.f
    while done < trials and attempts < 10 * trials:
        attempts += 1
        if values is not None and attempts == 1:
            vals = {k: np.asarray(v, dtype=float) if np.ndim(v) else float(v) for k, v in values.items()}
            sizes = {}
        else:
            vals, sizes = draw_values(d._symbols, d.f, rng)
        f0 = _f_at(target, vals, sizes)
        if not np.all(np.isfinite(f0)):
            continue
        V = direction(rng, var, vals[var.name])
        h = eps * max(1.0, float(np.max(np.abs(vals[var.name]))))

        def shifted(s):
            v2 = dict(vals)
            v2[var.name] = vals[var.name] + s * h * V
            return _f_at(target, v2, sizes)

        fd = (shifted(1) - shifted(-1)) / (2 * h)
        if not np.all(np.isfinite(fd)):
            continue
        D = np.asarray(d.evaluate(vals), dtype=float)
        if d.kind == "gradient":
            G = D
            if d.layout == "numerator" and G.ndim == 2 and np.ndim(vals[var.name]) == 2:
                G = G.T
            if getattr(d, "_symmetric", None) == "cookbook" and G.ndim == 2:
                G = (G + np.diag(np.diag(G))) / 2      # back from 2S − I∘S to S
            got = float(np.sum(G.reshape(np.shape(V)) * V))
        elif d.kind == "derivative" or (d.kind == "hessian" and var.is_scalar):
            got = D.reshape(np.shape(fd)) * float(V) if np.ndim(fd) else float(np.sum(D)) * float(V)
        else:
            J = D.reshape(-1, _vecF(V).size) if d.layout != "denominator" else D.reshape(_vecF(V).size, -1).T
            got = J @ _vecF(V)
            if d.kind == "hessian":
                fd = _project(np.asarray(fd).reshape(np.shape(V)), var) if np.ndim(V) == 2 else fd
            fd = _vecF(fd)
        fd = np.asarray(fd, dtype=float)
        got = np.asarray(got, dtype=float)
        scale = max(1.0, float(np.max(np.abs(fd))), float(np.max(np.abs(got))))
        err = float(np.max(np.abs(got - fd))) / scale
        worst = max(worst, err)
        done += 1
    if done == 0:
        return CheckResult(None, 0, tol, "the function is not finite at any sampled point")
    return CheckResult(worst, done, tol)
