"""The numeric check (autograd's check_grads): a derivative against finite differences
of its function along random directions, at points where the function is defined.

Two parts, each meant to be reused (by ``--check``, ``Derivative.check``, the tests and
the fuzzers):

* the sampler, ``Sampler(symbols, f).points(rng)``: concrete sizes for the size names
  and values suited to the kinds and the domains (SPD for spd, symmetric for
  symmetric, positive where log and sqrt need it, well-conditioned where an inverse
  or a determinant is taken), and only *valid* points: f evaluates without error, is
  finite, and every matrix under an inverse, det or logdet of f is well-conditioned.
  When a point is not valid it tries other values and other size assignments (wide
  and tall, even and odd), a bounded number of times, and says why it gave up.
  Before drawing anything it estimates the memory and time one evaluation takes at
  the declared sizes and refuses sizes that would not fit (``TooLarge``).
  ``draw_values`` and ``direction`` are its one-shot building blocks.

* the check, ``check(d)``: at each valid point, the derivative applied to a random
  direction V against Ridders' extrapolated central differences of f (which also
  estimate their own error; a Hessian also against second differences of f).  The
  tolerance follows the derivative's scale (Σ|G||V|, not f's size) plus the estimated
  error of the differences and a running bound on the rounding error of the answer's
  value (``Rounding``), capped at MAX_TOL so that a transposed or 1% wrong answer
  still fails; a point where the numbers are too uncertain for that is not used.  NaN
  or inf in the answer where f and its differences are finite is a failure, never
  "ok"; a shape of the answer that does not fit the variable is a failure.

The other finite-difference harnesses and samplers (tests/helpers.py, matcalc/fuzz.py,
tests/_fd_everyday.py, ...) are meant to become users of these two (issue 11).
"""
import itertools
import math
import time
from collections import Counter
from fractions import Fraction

import numpy as np

from . import expr as E
from .conventions import project_value, sym_of_value
from .errors import EvaluationError
from .layout import canonical_value
from .numeric import Evaluator, check_guards, guarded_nodes, internal, size_value

# The sizes given to free size names, in order of first appearance: distinct, so that a
# transposed answer cannot pass by accident.  Where they do not suit f (a wide X under
# logdet(XᵀX), an odd size under (X − Xᵀ)⁻¹), the Sampler tries other assignments.
DEFAULT_SIZES = (3, 4, 5, 2, 6, 7, 8, 9)
SIZE_RANGE = (2, 3, 4, 5, 6, 7, 8)

# A point is not used where a matrix under an inverse, det or logdet has a larger
# condition number than this.
COND_MAX = 1e8

# Budget of one check: bytes held by one evaluation, and arithmetic of the whole check.
MAX_BYTES = 4e8
MAX_FLOPS = 2e10
FLOPS_PER_SECOND = 2e9

# Ridders' extrapolation of central differences: the first step (relative to the
# variable's size), the ratio between steps, the number of steps; a second tableau
# starts at the first step / SECOND_START.
STEP0 = 0.1
STEP_RATIO = 2.0
STEPS = 12
SECOND_START = 7.0
# The tolerance: tol · scale + SAFETY · (estimated error of the differences + rounding
# bound of the answer); a point where that exceeds MAX_TOL · scale is not used.
SAFETY = 10.0
MAX_TOL = 1e-3
ROUNDING = 8 * np.finfo(float).eps
# where the differences are too uncertain: first steps / SHORT_STEP (f changes faster
# than the first step sees), then × LONG_STEP (rounding of a large f)
LONG_STEP = 30.0
SHORT_STEP = 300.0

MAX_TRIES = 60
TIME_LIMIT = 3.0
# After PLAIN_TRIES invalid points, half the draws scale each value by one of SCALES.
PLAIN_TRIES = 6
SCALES = (1.0, 1.0, 0.3, 0.05)


class TooLarge(Exception):
    """The declared sizes make one evaluation too large to check numerically."""


class CheckResult:
    """The outcome of a check.

    ok         True only when every point agreed within the tolerance
    error      the worst relative error (None when nothing was compared)
    tol        the tolerance at that point
    trials     the number of points compared
    status     "ok", "failed", "no valid point" or "not run"
    note       why, when it is not a plain comparison"""

    def __init__(self, error, trials, tol, note="", status=None):
        self.error = error
        self.trials = trials
        self.tol = tol
        self.note = note
        if status is None:
            status = "ok" if (error is not None and math.isfinite(error) and error <= tol) else (
                "failed" if error is not None else "no valid point")
        self.status = status

    @property
    def ok(self):
        return self.status == "ok"

    @property
    def points(self):
        return self.trials

    @property
    def tolerance(self):
        return self.tol

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return (f"CheckResult(error={self.error!r}, ok={self.ok}, trials={self.trials}"
                + (f", status={self.status!r}, note={self.note!r}" if self.note else "") + ")")

    def message(self):
        """One line for people (what ``--check`` prints after "check: ")."""
        pts = f"{self.trials} random point{'s' if self.trials != 1 else ''}"
        if self.status == "ok":
            return f"relative error {self.error:.2e} over {pts}: ok"
        if self.status == "failed":
            if self.error is not None and math.isfinite(self.error):
                line = f"relative error {self.error:.2e} (tolerance {self.tol:.1e}) over {pts}: FAILED"
                return line + (f" ({self.note})" if self.note else "")
            return f"FAILED: {self.note}"
        if self.status == "not run":
            return f"not run: {self.note}"
        return f"no valid point found, the derivative is not checked: {self.note}"

    def as_dict(self):
        """The JSON form: ok, status, error, tolerance, points, note, message."""
        def num(x):
            return float(x) if x is not None and math.isfinite(x) else None
        return {"ok": self.ok, "status": self.status, "error": num(self.error),
                "tolerance": num(self.tol), "points": self.trials,
                "note": self.note or None, "message": self.message()}


# ---------------------------------------------------------------------------- sizes


def _names(s):
    """The size names in a size (a name, an int or a SizeProd)."""
    if isinstance(s, E.SizeProd):
        return [x for x in s[1:] if isinstance(x, str)]
    return [s] if isinstance(s, str) else []


def size_names(symbols, trees=()):
    """Every size name of the symbols and of the trees' nodes, in order of appearance."""
    out = {}
    for sym in symbols.values():
        for s in (sym.rows, sym.cols):
            for n in _names(s):
                out.setdefault(n, None)
    trees = [t for t in trees if t is not None]
    if trees:
        for node in E.walk(trees):
            for s in node.shape:
                for n in _names(s):
                    out.setdefault(n, None)
    return list(out)


def size_constraints(trees):
    """The pairs of sizes the trees' shapes make equal that are not equal as written (the
    products, sums, square operations and unvec's that typing left to the values:
    vec(A)ᵀ vec(B) needs only rows(A)·cols(A) = rows(B)·cols(B))."""
    out = set()

    def need(a, b):
        if a != b:
            out.add((a, b))
    for node in E.walk([t for t in trees if t is not None]):
        t = type(node)
        if t is E.Mul:
            shapes = [f.shape for f in node.items if not f.is_scalar]
            for a, b in zip(shapes, shapes[1:]):
                need(a[1], b[0])
        elif t in (E.Add, E.Hadamard):
            for f in node.items[1:]:
                need(node.items[0].shape[0], f.shape[0])
                need(node.items[0].shape[1], f.shape[1])
        elif t is E.Unvec:
            need(node.arg.shape[0], E.size_mul(node.m, node.n))
        elif t in (E.Trace, E.Det, E.LogDet, E.Inverse, E.MatPow, E.MatFunc, E.FrechetJac) \
                and not node.arg.is_scalar:
            need(*node.arg.shape)
        elif t is E.Frechet and not node.arg.is_scalar:
            need(*node.arg.shape)
            need(node.arg.shape[0], node.dir.shape[0])
            need(node.arg.shape[1], node.dir.shape[1])
    return sorted(out, key=repr)


def sizes_fit(constraints, sizes):
    try:
        return all(size_value(a, sizes) == size_value(b, sizes) for a, b in constraints)
    except (KeyError, TypeError):
        return True


def shapes_agree(trees, sizes):
    """Whether the sizes make the trees' shapes fit (see ``size_constraints``)."""
    return sizes_fit(size_constraints(trees), sizes)


SIZE_SEARCH = 3000      # draws spent, in all, looking for sizes that fit


def size_assignments(names, rng, fixed=None, fits=None):
    """Size assignments to try, endlessly: the default first, then random ones (distinct
    while the range allows; tall and wide, even and odd).  fits(sizes): whether an
    assignment makes the shapes fit; those that do not are passed over while a search
    of a few thousand draws finds others."""
    fixed = dict(fixed or {})
    free = [n for n in names if n not in fixed]
    default = dict(fixed)
    pool = [p for p in DEFAULT_SIZES if p not in fixed.values()] or list(DEFAULT_SIZES)
    for n, p in zip(free, itertools.cycle(pool)):
        default[n] = p
    if fits is None or fits(default):
        yield default
    budget = [SIZE_SEARCH]
    while True:
        for attempt in range(1 if fits is None else max(1, budget[0])):
            budget[0] -= 1
            out = dict(fixed)
            if len(free) <= len(SIZE_RANGE) and attempt % 2 == 0:
                picks = rng.choice(SIZE_RANGE, size=len(free), replace=False)
            else:
                picks = rng.choice(SIZE_RANGE, size=len(free))
            out.update({n: int(p) for n, p in zip(free, picks)})
            if fits is None or fits(out):
                break
        yield out


def estimate_cost(trees, sizes):
    """(bytes, flops, largest node) of one evaluation of the trees at these sizes."""
    def dims(node):
        return size_value(node.shape[0], sizes), size_value(node.shape[1], sizes)

    entries = flops = 0
    largest = (0, None)
    for node in E.walk([t for t in trees if t is not None]):
        r, c = dims(node)
        k = r * c
        entries += k
        if k > largest[0]:
            largest = (k, node)
        if isinstance(node, E.Mul):
            acc = None
            for f in node.items:
                if f.is_scalar:
                    continue
                fr, fc = dims(f)
                if acc is not None:
                    flops += acc[0] * acc[1] * fc
                    acc = (acc[0], fc)
                else:
                    acc = (fr, fc)
            flops += k
        elif isinstance(node, (E.Inverse, E.Det, E.LogDet, E.SpecNorm, E.Spectral, E.SpectralVec)):
            ar, ac = dims(node.arg)
            flops += 10 * max(ar, ac) ** 3
        elif isinstance(node, E.MatPow):
            flops += 2 * r ** 3 * max(1, int(node.k).bit_length())
        elif isinstance(node, (E.MatFunc, E.Frechet)):
            flops += (30 if isinstance(node, E.MatFunc) else 250) * r ** 3     # (a 2n×2n block)
        elif isinstance(node, E.FrechetJac):
            n = size_value(node.arg.shape[0], sizes)
            flops += 250 * n ** 5                     # n² Fréchet derivatives
        elif isinstance(node, E.Commutation):
            flops += 50 * size_value(node.m, sizes) * size_value(node.n, sizes) + k
        else:
            flops += k
    return 8 * entries, flops, largest[1]


def _human_bytes(b):
    for unit, f in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if b >= f:
            return f"{b / f:.3g} {unit}"
    return f"{b / 1e3:.3g} kB"


def _describe(node, sizes):
    from .printing import to_text
    text = to_text(node)
    if len(text) > 40:
        text = text[:37] + "..."
    r, c = (size_value(s, sizes) for s in node.shape)
    return f"{text} ({r}×{c})"


def check_budget(trees, sizes, evaluations):
    """Raise TooLarge when `evaluations` evaluations of the trees at these sizes would
    hold more than MAX_BYTES at once or take more than MAX_FLOPS."""
    nbytes, flops, largest = estimate_cost(trees, sizes)
    if nbytes > MAX_BYTES or flops * evaluations > MAX_FLOPS:
        what = f"about {_human_bytes(nbytes)} of memory per evaluation"
        if flops * evaluations > MAX_FLOPS:
            what += f" and about {flops * evaluations / FLOPS_PER_SECOND:.3g} s"
        raise TooLarge(f"at the declared sizes the check would need {what} (the largest array is "
                       f"{_describe(largest, sizes)}); declare smaller sizes, or leave the sizes "
                       f"free, to check numerically")


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
        elif isinstance(n, (E.MatFunc, E.Frechet, E.FrechetJac)):
            # logm, sqrtm, X^p: near I (no eigenvalue near the closed negative real axis);
            # expm: a small argument (well-conditioned, no overflow)
            from .operators import matrix_function
            rec = matrix_function(n.name)
            if rec.principal or rec.fast_growing:
                mark(n.arg, "nearid" if rec.principal else "small")
    return needs


def _orthogonal(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def draw_value(rng, sym, shape, props):
    """A value for a symbol of this kind and shape that suits the domain's needs (sym: a
    typed Sym, or its kind as a string)."""
    kind = getattr(sym, "kind", sym)
    if kind == "scalar":
        if "nonzero" in props and "pos" not in props:      # (a scalar divided by)
            return float(rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 1.5))
        return float(rng.uniform(0.5, 1.5)) if "pos" in props else float(rng.uniform(-1.5, 1.5) or 0.7)
    if kind == "vector":
        if "pos" in props:
            return rng.uniform(0.5, 1.5, shape[0])
        return rng.standard_normal(shape[0])
    m, n = shape
    if "nearid" in props and m == n:
        # under logm, sqrtm, X^p: I + a perturbation (eigenvalues near 1), symmetric
        # for a symmetric kind, positive entries where the domain asks for them
        g = 0.3 * rng.standard_normal((n, n)) / np.sqrt(n)
        if "pos" in props:
            g = np.abs(g)
        if kind in ("spd", "symmetric", "diagonal"):
            g = np.diag(np.diag(g)) if kind == "diagonal" else (g + g.T) / 2
        return np.eye(n) + g
    if ("small" in props or "nearid" in props) and kind in ("matrix", "symmetric"):
        # under expm (or a non-square factor under logm): entries of order 1/sqrt(n)
        g = 0.5 * rng.standard_normal((m, n)) / np.sqrt(max(m, n))
        if "pos" in props:
            g = np.abs(g)
        return (g + g.T) / 2 if kind == "symmetric" else g
    if kind in ("spd", "symmetric") and "pos" in props:
        # positive entries (for an elementwise log or sqrt), diagonally dominant: SPD
        g = rng.uniform(0.2, 1.0, (n, n))
        return (g + g.T) / 2 + n * np.eye(n)
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
        a = rng.uniform(0.5, 1.5, (m, n))
        # positive entries under an inverse too: diagonally dominant (not symmetric)
        return a + n * np.eye(n) if m == n and props & {"inv", "posdet"} else a
    if m == n and props & {"inv", "posdet"}:
        # well-conditioned and not symmetric (a transposed answer must not pass); a
        # positive determinant where logdet needs one
        q1, q2 = _orthogonal(rng, n), _orthogonal(rng, n)
        if "posdet" in props and np.linalg.det(q1) * np.linalg.det(q2) < 0:
            q1[:, 0] = -q1[:, 0]
        return q1 @ np.diag(rng.uniform(1.0, 2.0, n)) @ q2.T
    return rng.standard_normal((m, n))


def draw_values(symbols, f, rng, sizes=None):
    """(values, size bindings) for every symbol, suited to f's domain: one draw, not
    checked for validity (``Sampler`` retries until f is defined)."""
    sizes = dict(sizes or {})
    names = size_names(symbols)
    if any(n not in sizes for n in names):
        sizes = next(size_assignments(names, rng, sizes))
    needs = _needs(f)
    values = {}
    for name, sym in symbols.items():
        shape = (size_value(sym.rows, sizes), size_value(sym.cols, sizes))
        values[name] = draw_value(rng, sym, shape, needs.get(name, set()))
    return values, sizes


def direction(rng, var, value):
    """A random direction in the variable's own space (symmetric, diagonal, ...); var: a
    typed Sym, or its kind as a string."""
    kind = getattr(var, "kind", var)
    v = np.asarray(value, dtype=float)
    d = rng.standard_normal(v.shape) if v.ndim else float(rng.standard_normal())
    return project_value(d, kind) if v.ndim == 2 else d


def sizes_of_values(symbols, values):
    """The size names that the given values' shapes fix."""
    sizes = {}
    for name, sym in symbols.items():
        if name not in values:
            continue
        v = internal(values[name])
        shape = (1, 1) if not isinstance(v, np.ndarray) else v.shape
        for want, got in zip((sym.rows, sym.cols), shape):
            if isinstance(want, str) and not isinstance(want, E.SizeProd):
                sizes.setdefault(want, got)
    return sizes


def _singular_nodes(f):
    return [n for n in E.walk(f)
            if isinstance(n, (E.Inverse, E.Det, E.LogDet)) and not n.arg.is_scalar]


class Sampler:
    """Valid points of f: ``for values, sizes in Sampler(symbols, f).points(rng)``.

    symbols   name -> typed Sym (a Derivative's ``_symbols``)
    f         the typed tree whose domain the points must lie in
    also      other trees whose size names need sizes (the answer, a gradient)
    fixed     size names already bound (e.g. by given values)

    A point is valid when f evaluates without error, is finite, and every matrix under
    an inverse, det or logdet in f has a condition number below COND_MAX.  Each try
    draws new values, from the second try on at new sizes, and after PLAIN_TRIES also
    at new scales (each value times a factor); ``rejected`` counts the
    reasons of the points it threw away, ``tries`` the points it drew."""

    def __init__(self, symbols, f, also=(), fixed=None, max_tries=MAX_TRIES):
        self.symbols = symbols
        self.f = f
        self.also = [t for t in also if t is not None]
        self.fixed = dict(fixed or {})
        self.max_tries = max_tries
        self.needs = _needs(f)
        self.names = size_names(symbols, [f] + self.also)
        self.guarded = _singular_nodes(f)
        self.rejected = Counter()
        self.tries = 0

    def budget(self, evaluations=1):
        """Raise TooLarge when even the smallest sizes for the free names are too large."""
        smallest = dict(self.fixed)
        smallest.update({n: min(SIZE_RANGE) for n in self.names if n not in self.fixed})
        check_budget([self.f] + self.also, smallest, evaluations)

    def draw(self, rng, sizes, scaled=False):
        """Values at these sizes; scaled: each symbol's value times a random factor of
        SCALES, so that a domain such as b − A x > 0 is met by some draws."""
        values = {}
        for name, sym in self.symbols.items():
            shape = (size_value(sym.rows, sizes), size_value(sym.cols, sizes))
            v = draw_value(rng, sym, shape, self.needs.get(name, set()))
            if scaled:
                v = v * float(rng.choice(SCALES))
            values[name] = v
        return values

    def why_not(self, values, sizes):
        """None when (values, sizes) is a valid point of f, else the reason."""
        env = {n: internal(v) for n, v in values.items()}
        ev = Evaluator(env, dict(sizes))
        with np.errstate(all="ignore"):
            try:
                v = np.asarray(ev.ev(self.f), dtype=float)
            except Exception as e:  # noqa: BLE001 - any failure makes the point invalid
                return f"f cannot be evaluated ({type(e).__name__})"
            if not np.all(np.isfinite(v)):
                return "f is not finite"
            for node in self.guarded:
                try:
                    a = np.asarray(ev.ev(node.arg), dtype=float)
                    c = np.linalg.cond(a)
                except Exception:  # noqa: BLE001
                    c = np.inf
                if not (c < COND_MAX):
                    return "a matrix under an inverse, det or logdet is singular"
        return None

    def points(self, rng, values=None, evaluations=1, deadline=None):
        """Valid (values, sizes), until max_tries points have been drawn (or, once a valid
        point was found, the clock, time.monotonic(), passes deadline); first the given
        values (if any).  Size
        assignments over the budget are skipped."""
        if values is not None:
            self.tries += 1
            vals = {k: np.asarray(v, dtype=float) if np.ndim(v) else float(v) for k, v in values.items()}
            sizes = dict(self.fixed)
            sizes.update(sizes_of_values(self.symbols, vals))
            why = self.why_not(vals, sizes)
            if why is None:
                yield vals, sizes
            else:
                self.rejected[why + " at the given values"] += 1
        constraints = size_constraints([self.f] + self.also)
        assignments = size_assignments(self.names, rng, self.fixed,
                                       fits=(lambda sizes: sizes_fit(constraints, sizes)) if constraints else None)
        valid = 0
        while self.tries < self.max_tries:
            # the clock only stops the search for more points: a loaded machine slows the
            # check, never changes its verdict on an expression that has valid points
            if deadline is not None and valid and time.monotonic() > deadline:
                self.rejected["stopped: out of time"] += 1
                return
            sizes = next(assignments)
            self.tries += 1
            try:
                check_budget([self.f] + self.also, sizes, evaluations)
            except TooLarge:
                self.rejected["the sizes are too large"] += 1
                continue
            vals = self.draw(rng, sizes, scaled=self.tries > PLAIN_TRIES and rng.random() < 0.5)
            why = self.why_not(vals, sizes)
            if why is None:
                valid += 1
                yield vals, sizes
            else:
                self.rejected[why] += 1

    def summary(self):
        reasons = ", ".join(f"{why} ({k}×)" for why, k in self.rejected.most_common())
        return f"{self.tries} points tried: {reasons}" if reasons else f"{self.tries} points tried"


# ---------------------------------------------------------------------------- rounding


EPS = np.finfo(float).eps


class Rounding:
    """A bound on the rounding error of evaluating a tree at a point (running error
    analysis, first order): ``Rounding(evaluator).error(node)`` is an array of absolute
    errors shaped like the node's value.  It sees cancellation (1 − sigmoid(z) at a
    large z, log(x ./ x), a sum of large terms of either sign), which ε × |value| does
    not; a derivative or a finite difference that is that uncertain cannot be judged
    at that point."""

    def __init__(self, ev):
        self.ev = ev
        self.memo = {}

    def val(self, e):
        return np.asarray(self.ev.ev(e), dtype=float)

    def error(self, e):
        k = id(e)
        if k not in self.memo:
            with np.errstate(all="ignore"):
                try:
                    out = np.abs(np.asarray(self._error(e), dtype=float))
                except Exception:  # noqa: BLE001 - an unknown case: the value's own rounding
                    out = EPS * np.abs(self.val(e))
            self.memo[k] = (e, np.where(np.isnan(out), np.inf, out))
        return self.memo[k][1]

    def _error(self, e):
        v = np.abs(self.val(e))
        own = EPS * v
        t = type(e)
        if t is E.Add:
            return sum(self.error(x) for x in e.items) + own
        if t in (E.Mul, E.Hadamard, E.Kron):
            return self._product(e) + own
        if t is E.Fill:
            return np.full(v.shape, float(np.max(self.error(e.value)))) + own
        if t is E.MatFunc:
            # f(X + ΔX) − f(X) ≈ L_f(X, ΔX): the argument's error carried through f
            from .operators import matrix_function
            rec = matrix_function(e.name)
            X, eX = np.atleast_2d(self.val(e.arg)), np.atleast_2d(self.error(e.arg))
            return np.abs(rec.frechet_value(X, eX, e.p)) + own
        if t is E.Frechet:
            from .operators import matrix_function
            rec = matrix_function(e.name)
            X, eD = np.atleast_2d(self.val(e.arg)), np.atleast_2d(self.error(e.dir))
            return np.abs(rec.frechet_value(X, eD, e.p)) + 8 * EPS * np.max(v) + own
        if t is E.ArrayFunc:
            # logsumexp moves by at most max|dx|, each softmax entry by at most 2 max|dx|
            a = float(np.max(self.error(e.arg)))
            return np.full(np.shape(v), (2.0 if e.name == "softmax" else 1.0) * a) + own
        if t is E.Transpose:
            a = self.error(e.arg)
            return a.T if a.ndim == 2 else a
        if t is E.Vec:
            return np.atleast_2d(self.error(e.arg)).reshape((-1, 1), order="F")
        if t is E.Unvec:
            return np.atleast_2d(self.error(e.arg)).reshape(v.shape, order="F")
        if t is E.DiagMat:
            return np.diag(np.atleast_2d(self.error(e.arg))[:, 0])
        if t is E.DiagVec:
            return np.diag(np.atleast_2d(self.error(e.arg))).reshape(-1, 1)
        if t is E.Trace:
            a = np.atleast_2d(self.val(e.arg))
            return float(np.trace(np.atleast_2d(self.error(e.arg)))) + EPS * float(np.sum(np.abs(np.diag(a))))
        if t is E.Sum:
            return float(np.sum(self.error(e.arg))) + EPS * float(np.sum(np.abs(self.val(e.arg))))
        if t is E.Norm:
            a, ea = np.abs(self.val(e.arg)), self.error(e.arg)
            n = float(np.sqrt(np.sum(a * a)))
            return (float(np.sum(a * ea)) / n if n > 0 else float(np.sqrt(np.sum(ea * ea)))) + own
        if t is E.SpecNorm:
            return float(np.sqrt(np.sum(self.error(e.arg) ** 2))) + own
        if t is E.Spectral:
            # Weyl: an eigenvalue and ‖·‖₂ move by at most ‖dA‖₂ ≤ ‖dA‖_F; ‖·‖_* by at most
            # √rank ‖dA‖_F; ‖·‖₁ by at most the sum of the entries' errors
            ea = np.atleast_2d(self.error(e.arg))
            if e.name == "norm1":
                return float(np.sum(ea)) + own
            fro = float(np.sqrt(np.sum(ea ** 2)))
            return (math.sqrt(min(ea.shape)) if e.name == "nuclear" else 1.0) * fro + own
        if t is E.SpectralVec:
            # a vector of a decomposition moves by ‖dA‖ over the gap that separates it (the
            # eigen- or singular value gap; for the polar factor the smallest singular value)
            A = np.atleast_2d(self.val(e.arg))
            fro = float(np.sqrt(np.sum(np.atleast_2d(self.error(e.arg)) ** 2)))
            if e.name.startswith("eigvec"):
                lam = np.linalg.eigvalsh((A + A.T) / 2)
                gap = (lam[-1] - lam[-2] if e.name == "eigvec_max" else lam[1] - lam[0]) \
                    if lam.size > 1 else np.inf
            else:
                sv = np.linalg.svd(A, compute_uv=False)
                if e.name == "polar":
                    gap = sv[-1] / 2
                else:
                    gap = (sv[0] - sv[1] if sv.size > 1 else sv[0])
                    if e.name == "svec_right":
                        gap = min(gap, sv[0])
            bound = fro / gap if gap > 0 else np.inf
            return np.full(np.shape(v), bound) + own
        if t in (E.Inverse, E.Det, E.LogDet):
            A = np.atleast_2d(self.val(e.arg))
            B = np.abs(np.linalg.inv(A))
            eA = np.atleast_2d(self.error(e.arg))
            n = A.shape[0]
            if t is E.Inverse:
                return B @ eA @ B + EPS * n * (B @ np.abs(A) @ B)
            rel = float(np.sum(B.T * eA)) + EPS * n * float(np.sum(B.T * np.abs(A)))
            return rel * (v if t is E.Det else 1.0)
        if t is E.MatPow:
            if e.k == 0:
                return own
            A = np.abs(np.atleast_2d(self.val(e.arg)))
            P = np.linalg.matrix_power(A, e.k - 1)
            return e.k * (P @ np.atleast_2d(self.error(e.arg))) + EPS * e.k * (P @ A)
        if t in (E.Pow, E.ElemPow):
            b, eb = np.abs(self.val(e.base)), self.error(e.base)
            p = float(self.val(e.exp))
            if p >= 1:      # (|b| + eb)^(p-1): the second order too, where b is 0
                return p * np.power(b + eb, p - 1) * eb + own
            return np.where(eb == 0, 0.0, np.abs(p) * np.power(b, p - 1) * eb) + own
        if t is E.Func:
            from .numeric import FUNCS
            g = FUNCS[e.name]
            x = self.val(e.arg)
            dx = 1e-7 * np.maximum(1.0, np.abs(x))
            slope = (g(x + dx) - g(x - dx)) / (2 * dx)
            for one_sided in ((g(x + dx) - g(x)) / dx, (g(x) - g(x - dx)) / dx):
                slope = np.where(np.isfinite(slope), slope, one_sided)
            ex = self.error(e.arg)
            return np.where(ex == 0, 0.0, np.abs(slope) * ex) + own
        return own

    def _product(self, e):
        """The propagated error of a product (scalars times a matrix chain, Hadamard,
        Kronecker), the rounding of each step included."""
        t = type(e)
        acc_v = acc_e = None
        sv, se = 1.0, 0.0
        for x in e.items:
            xv, xe = self.val(x), self.error(x)
            if t is E.Mul and x.is_scalar:
                xv, xe = float(np.reshape(xv, -1)[0]), float(np.max(xe))
                se = abs(sv) * xe + se * abs(xv) + se * xe + EPS * abs(sv * xv)
                sv = sv * xv
                continue
            xv, xe = np.atleast_2d(xv), np.atleast_2d(xe)
            if acc_v is None:
                acc_v, acc_e = xv, xe
            elif t is E.Mul:
                k = acc_v.shape[1]
                acc_e = (np.abs(acc_v) @ xe + acc_e @ np.abs(xv) + acc_e @ xe
                         + EPS * k * (np.abs(acc_v) @ np.abs(xv)))
                acc_v = acc_v @ xv
            elif t is E.Hadamard:
                acc_e = np.abs(acc_v) * xe + acc_e * np.abs(xv) + acc_e * xe
                acc_v = acc_v * xv
            else:
                acc_e = np.kron(np.abs(acc_v), xe) + np.kron(acc_e, np.abs(xv)) + np.kron(acc_e, xe)
                acc_v = np.kron(acc_v, xv)
        if t is E.Mul and not (math.isfinite(sv) and math.isfinite(se)):
            sv, se = self._scalars_past_the_float_range(e)
        if acc_v is None:
            return se
        return abs(sv) * acc_e + se * np.abs(acc_v) + se * acc_e

    def _scalars_past_the_float_range(self, e):
        """(value, error) of the scalar factors of a product whose float product overflows
        or underflows (1e1000 1e-1000 x): multiplied with the evaluator's exponent
        (constants exactly), the error relative, each constant rounded once."""
        from .numeric import _ext, _ext_fraction, _ext_mul, _ext_value
        ext, rel, exact = (1.0, 0), 0.0, Fraction(1)
        for x in e.items:
            if not x.is_scalar:
                continue
            if isinstance(x, E.Num):
                exact *= x.value
                continue
            xv = float(np.reshape(self.val(x), -1)[0])
            if isinstance(x, E.Func) and x.name == "exp" and not (0 < abs(xv) < math.inf):
                rel += float(np.max(self.error(x.arg))) + EPS      # exp(a): relative error da
            else:
                xe = float(np.max(self.error(x)))
                rel += (xe / abs(xv) if xv != 0 else (0.0 if xe == 0 else math.inf)) + EPS
            ext = _ext_mul(ext, _ext(self.ev, x))
        ext = _ext_mul(ext, _ext_fraction(exact))
        sv = _ext_value(ext)
        return sv, abs(sv) * (rel + EPS)


def rounding_error(tree, values, sizes):
    """The bound of Rounding on the value of tree at these values (max over entries)."""
    env = {n: internal(v) for n, v in values.items()}
    ev = Evaluator(env, dict(sizes))
    with np.errstate(all="ignore"):
        ev.ev(tree)
    return Rounding(ev).error(tree)


# ---------------------------------------------------------------------------- differences


def _max_abs(a):
    return float(np.max(np.abs(a))) if np.size(a) else 0.0


def ridders(fun, h0, ratio=STEP_RATIO, steps=STEPS, noise=0.0, order=1):
    """(estimate, error estimate) of the derivative at 0 of fun (a function of a step,
    returning an array), by Richardson's extrapolation of central differences
    (fun(h) − fun(−h)) / 2h over steps h0, h0/ratio, ... (Ridders' method), all of them
    (stopping where the estimates first grow apart, as Numerical Recipes does, stops too
    early where h0 is long for an oscillating f).  Steps where fun is not finite are
    skipped; (None, inf) when fewer than two are finite.

    The error estimate is at least the rounding error of the differences, (ROUNDING ×
    |fun| + 3 × noise) / h at the step used, noise being the rounding error of fun's
    values (where the estimates agree exactly, as they do for a quadratic or a
    saturated function, the tableau alone would say 0).

    order=2: the second derivative, from (fun(h) − 2 fun(0) + fun(−h)) / h²."""
    best, err, floor = None, math.inf, 0.0
    mid = np.asarray(fun(0.0), dtype=float) if order == 2 else None
    prev = None
    h = h0
    r2 = ratio * ratio
    for _ in range(steps):
        with np.errstate(all="ignore"):
            try:
                up, down = np.asarray(fun(h), dtype=float), np.asarray(fun(-h), dtype=float)
                if order == 2:
                    d0 = (up - 2 * mid + down) / (h * h)
                else:
                    d0 = (up - down) / (2 * h)
                mag = max(_max_abs(up), _max_abs(down))
            except Exception:  # noqa: BLE001 - a step outside the domain is skipped
                d0 = None
        if d0 is None or not np.all(np.isfinite(d0)):
            h /= ratio
            prev = None
            continue
        row = [d0]
        if prev is not None:
            fac = r2
            for j in range(1, len(prev) + 1):
                row.append((row[j - 1] * fac - prev[j - 1]) / (fac - 1))
                fac *= r2
                e = max(np.abs(row[j] - row[j - 1]).max(), np.abs(row[j] - prev[j - 1]).max())
                if e <= err:
                    err, best, floor = e, row[j], (ROUNDING * mag + 3 * noise) * (
                        4 / (h * h) if order == 2 else 1 / h)
        prev = row
        h /= ratio
    return best, max(err, floor)


def differences(fun, h0, noise=0.0, order=1):
    """(estimate, error estimate) of the derivative at 0 of fun: two of Ridders' tableaux,
    from h0 and from h0 / SECOND_START, and their disagreement counted in the error (one
    tableau alone can agree with itself on a wrong value where h0 is long next to
    the scale on which f changes)."""
    a, ea = ridders(fun, h0, noise=noise, order=order)
    b, eb = ridders(fun, h0 / SECOND_START, noise=noise, order=order)
    if a is None or b is None:
        return (a, ea) if b is None else (b, eb)
    best = a if ea <= eb else b
    return best, max(min(ea, eb), _max_abs(a - b))


# ---------------------------------------------------------------------------- for other harnesses
#
# The tests, the fuzzer's oracle and the benchmarks compare derivatives with differences
# of a function of their own (a hand-written NumPy one, matcalc.evaluate of the input
# text): they take the differences from here, never from a formula of their own.


def vec(a):
    """Column-major vec of a matrix as a flat array; a vector or a number as it is."""
    a = np.asarray(a, dtype=float)
    return a.reshape(-1, order="F") if a.ndim == 2 else a.reshape(-1)


def directional(f, values, name, V, h=1e-3, steps=2, order=1):
    """(estimate, error estimate) of the derivative at t = 0 of t -> f(values with
    values[name] + t V), f a function of a values dict: Ridders' extrapolation (``ridders``)
    of central differences from step h over `steps` steps (steps=2: Richardson's O(h⁴)
    formula from h and h/2, four evaluations of f).  (None, inf) where f is not finite
    at the steps.  order=2: the second derivative along V."""
    X = values[name]

    def along(t):
        shifted = dict(values)
        shifted[name] = X + t * V
        return np.asarray(f(shifted), dtype=float)
    return ridders(along, h, steps=steps, order=order)


# ---------------------------------------------------------------------------- the check


_vecF = vec


def _shape_text(shape):
    return "×".join(str(x) for x in shape) if shape else "scalar"


def _at(tree, values, sizes):
    """The value of tree as the API computes it (past the float range where floats overflow)."""
    from .evaluation import evaluate_tree
    env = {n: internal(v) for n, v in values.items()}
    return np.asarray(evaluate_tree(tree, env, dict(sizes)), dtype=float)


class _Wrong(Exception):
    """The answer's value does not fit (shape) the derivative's kind."""


def _linear(d, D, V, F_shape):
    """The answer D (raw, 2-D) applied to the direction V, as a flat array; raises _Wrong
    when D's shape does not fit."""
    var = d.var
    Vi = np.asarray(internal(V), dtype=float)
    if d.kind == "gradient":
        G = canonical_value(D, d)
        if G.shape != Vi.shape:
            raise _Wrong(f"the gradient has shape {_shape_text(D.shape)}; the variable "
                         f"{var.name} is {_shape_text(Vi.shape)}")
        G = sym_of_value(G, var, d.symmetric)       # back from 2S − I∘S to S
        return np.array([np.sum(G * Vi)])
    if var.is_scalar:       # derivative wrt a scalar, or the Hessian wrt a scalar
        D = canonical_value(D, d)
        if D.shape != F_shape and not (d.kind == "hessian" and D.size == 1):
            raise _Wrong(f"the derivative has shape {_shape_text(D.shape)}; f is "
                         f"{_shape_text(F_shape)}")
        return _vecF(D) * float(V)
    J = canonical_value(D, d)
    want = (int(np.prod(F_shape)), Vi.size)
    if J.shape != want:
        raise _Wrong(f"the {'Hessian' if d.kind == 'hessian' else 'Jacobian'} has shape "
                     f"{_shape_text(D.shape)}, not {_shape_text(want)}")
    return J @ _vecF(Vi)


def _confirmed(fun, h0, noise, fd, fd_err, slack, order=1):
    """Whether differences from steps SHORT_STEP times shorter agree with fd."""
    fd2, err2 = differences(fun, h0 / SHORT_STEP, noise, order=order)
    return fd2 is not None and _max_abs(fd2 - fd) <= SAFETY * (fd_err + err2) + slack


def _second(d, vals, sizes, V, H, h0, tol):
    """(ratio, error, tolerance) of vec(V)ᵀ H vec(V) against the second derivative of f
    along V, or None where the differences are too uncertain to judge."""
    var = d.var
    X = vals[var.name]
    v = _vecF(internal(V))
    if H.shape != (v.size, v.size):
        return None

    def along(h):
        v2 = dict(vals)
        v2[var.name] = X + h * V
        return _at(d.f, v2, sizes)

    noise = _max_abs(rounding_error(d.f, vals, sizes))
    fd, fd_err = differences(along, h0, noise, order=2)
    if fd is None:
        return None
    got = float(v @ H @ v)
    scale = max(float(np.abs(v) @ np.abs(H) @ np.abs(v)), abs(float(fd)))
    got_err = float(np.abs(v) @ np.reshape(rounding_error(d.expr, vals, sizes), H.shape) @ np.abs(v))
    if scale == 0:
        return (0.0 if abs(float(fd)) <= SAFETY * fd_err else math.inf, abs(float(fd)), SAFETY * fd_err)
    if SAFETY * (fd_err + got_err) > MAX_TOL * scale:
        return None
    err = abs(got - float(fd)) / scale
    allowed = tol + SAFETY * (fd_err + got_err) / scale
    if err > allowed and not _confirmed(along, h0, noise, fd, fd_err, tol * scale, order=2):
        return None
    return err / allowed, err, allowed


def check(d, trials=3, seed=0, eps=None, tol=1e-5, values=None, max_tries=MAX_TRIES,
          time_limit=TIME_LIMIT):
    """Check d against finite differences (see _check); a failure of the checker itself
    (not of the derivative) is reported as "not run", never raised."""
    try:
        return _check(d, trials, seed, eps, tol, values, max_tries, time_limit)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # noqa: BLE001 - the CLI must never exit 3 under --check
        return CheckResult(None, 0, tol, f"the check could not run ({type(e).__name__}: {e})",
                           status="not run")


def _check(d, trials, seed, eps, tol, values, max_tries, time_limit):
    """Check d against finite differences at `trials` valid points and directions V.

    gradient G:      ⟨G, V⟩ against the derivative of f(X + hV) at h = 0
    wrt a scalar:    F'(t) v against the derivative of F(t + hv)
    Jacobian J:      J vec(V) against the derivative of vec F(X + hV)
    Hessian H:       H vec(V) against the derivative of the gradient along V, and
                     vec(V)ᵀ H vec(V) against the second derivative of f along V

    the derivative at h = 0 by Ridders' extrapolation (first step eps, or STEP0 × the
    variable's size).  The point with the largest error/tolerance ratio is reported.
    At most max_tries points are drawn, for at most time_limit seconds."""
    rng = np.random.default_rng(seed)
    var = d.var
    target = d.gradient if d.kind == "hessian" else d.f
    sampler = Sampler(d.typed_symbols, d.f, also=[d.expr, target], max_tries=max_tries)
    evaluations = trials * (4 * STEPS + 3)
    try:
        sampler.budget(evaluations)
    except TooLarge as e:
        return CheckResult(None, 0, tol, str(e), status="not run")
    worst = None            # (ratio, error, tolerance)
    done = 0
    fd_rejected = Counter()
    deadline = time.monotonic() + time_limit
    guards = guarded_nodes(d.f, var.name)       # f not differentiable there: another point
    for vals, sizes in sampler.points(rng, values=values, evaluations=evaluations, deadline=deadline):
        if guards:
            try:
                check_guards(guards, {n: internal(v) for n, v in vals.items()}, dict(sizes))
            except EvaluationError:
                fd_rejected["f is not differentiable at the point (a guard of its record)"] += 1
                continue
        X = vals[var.name]
        V = direction(rng, var, X)
        vmax = _max_abs(V)
        if vmax == 0:
            continue
        V = V / vmax if np.ndim(V) else float(V / vmax)
        h0 = eps if eps is not None else STEP0 * max(1.0, _max_abs(X))

        def along(h):
            v2 = dict(vals)
            v2[var.name] = X + h * V
            out = _at(target, v2, sizes)
            if d.kind == "hessian" and np.ndim(out) == 2 and not var.is_scalar:
                out = project_value(out, var)
            return _vecF(out)

        try:
            T0 = _at(target, vals, sizes)
            noise = _max_abs(rounding_error(target, vals, sizes))
        except Exception:  # noqa: BLE001 - the gradient under a Hessian is not defined here
            fd_rejected["the gradient cannot be evaluated"] += 1
            continue
        fd, fd_err = differences(along, h0, noise)
        if fd is None:
            fd_rejected["the finite differences are not finite"] += 1
            continue
        F_shape = np.shape(T0) if d.kind != "gradient" else ()
        if d.kind != "gradient" and len(F_shape) < 2:
            F_shape = (1, 1)
        if d.kind == "hessian" and var.is_scalar:
            F_shape = (1, 1)
        try:
            D = _at(d.expr, vals, sizes)
        except Exception as e:  # noqa: BLE001 - a failure of the answer is a failure
            return CheckResult(None, done, tol, f"the derivative cannot be evaluated at a point where "
                               f"f is defined ({type(e).__name__}: {e})", status="failed")
        if not np.all(np.isfinite(D)):
            bad = "NaN" if np.any(np.isnan(D)) else "infinite"
            return CheckResult(None, done, tol, f"the derivative is {bad} at a point where f and its "
                               f"finite differences are finite", status="failed")
        D2 = D if D.ndim == 2 else D.reshape(1, 1)
        try:
            got = _linear(d, D2, V, F_shape)
            ascale = _max_abs(_linear(d, np.abs(D2), np.abs(V), F_shape))
            got_err = _max_abs(_linear(d, np.reshape(rounding_error(d.expr, vals, sizes), D2.shape),
                                       np.abs(V), F_shape))
        except _Wrong as e:
            return CheckResult(None, done, tol, str(e), status="failed")
        # an infinite bound: something overflowed inside the answer's value; its value
        # is then compared as it is (1/(1 + exp(1000)) is a right 0, a product of an
        # overflowed and an underflowed factor a wrong number)
        overflow = not math.isfinite(got_err)
        if overflow:
            got_err = 0.0
        if got.shape != fd.shape:
            return CheckResult(None, done, tol, f"the derivative has {got.size} entries along a "
                               f"direction, f's differences {fd.size}", status="failed")
        # the tolerance: relative to the derivative's scale, plus the error of the
        # differences and the rounding error of the answer's value; where rounding
        # makes them too uncertain (f large next to its change, a saturated sigmoid),
        # longer steps, then another point.  A derivative that is 0 along V is compared
        # with the differences absolutely (they must be 0 within their error).
        scale = max(ascale, _max_abs(fd))

        def uncertain(e):
            e = e + got_err
            return ascale > 0 and SAFETY * e > MAX_TOL * scale and SAFETY * e > 1e-12
        if uncertain(fd_err) and eps is None and not uncertain(0.0):
            # shorter steps where f changes faster than the first step sees; longer steps
            # where rounding blurs the differences of a large f, and only to refine: the
            # first estimate must be good to 10% and contain theirs in its error
            fd2, err2 = differences(along, h0 / SHORT_STEP, noise)
            if fd2 is not None and err2 < fd_err:
                fd, fd_err = fd2, err2
            if uncertain(fd_err) and fd_err < 0.1 * _max_abs(fd):
                fd2, err2 = differences(along, h0 * LONG_STEP, noise)
                if fd2 is not None and err2 < fd_err and _max_abs(fd2 - fd) <= SAFETY * fd_err:
                    fd, fd_err = fd2, err2
        if uncertain(fd_err):
            fd_rejected["the derivative's value is too uncertain (rounding)" if uncertain(0.0)
                        else "the finite differences are too inaccurate"] += 1
            continue
        denom = scale if ascale > 0 else 1.0
        err = _max_abs(got - fd) / denom
        allowed = (tol * scale + SAFETY * (fd_err + got_err)) / denom
        ratio = err / allowed if allowed > 0 else (0.0 if err == 0 else math.inf)
        if ratio > 1 and eps is None and not _confirmed(along, h0, noise, fd, fd_err, tol * scale):
            # before a point fails the answer, shorter steps must agree with the
            # differences (an f that oscillates faster than the steps see fools them)
            fd_rejected["the finite differences disagree between step sizes"] += 1
            continue
        if d.kind == "hessian":
            # and independently of the engine's gradient: vec(V)ᵀ H vec(V) against the
            # second derivative of f along V
            second = _second(d, vals, sizes, V, D2, h0, tol)
            if second is not None and (second[0] > ratio):
                ratio, err, allowed = second
        if overflow and ratio > 1:
            return CheckResult(err, done + 1, allowed, "the derivative's value overflows inside at a "
                               "point where f is finite", status="failed")
        if worst is None or ratio > worst[0]:
            worst = (ratio, err, allowed)
        done += 1
        if done >= trials:
            break
    if done == 0:
        sampler.rejected.update(fd_rejected)
        return CheckResult(None, 0, tol, f"no point drawn where f is defined and its finite "
                           f"differences are accurate ({sampler.summary()})", status="no valid point")
    ratio, err, allowed = worst
    return CheckResult(err, done, allowed, status="ok" if ratio <= 1 else "failed")
