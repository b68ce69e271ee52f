"""The oracle: one example checked (its derivative against finite differences, its
printed forms read back, f against the generator's meaning), as an Outcome."""
import signal

import numpy as np

import matcalc
from matcalc.check import ridders
from matcalc.numeric import commutation_matrix
from matcalc.errors import UnsupportedError
from .values import direction, draw_value, draw_values, my_eval, to_internal, to_user, vecF
from .sizes import new_user_shapes
from .generator import engine_functions, generate


# ============================================================================ the property


class Timeout(BaseException):
    pass


class deadline:
    """Raise Timeout after `seconds` of the process's CPU time (main thread only; a no-op
    elsewhere).  CPU time, not the clock: on a loaded machine the clock runs while the
    example waits for a core, and an example that is answered in 1 s of CPU would be
    counted as a hang."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.armed = False

    def __enter__(self):
        try:
            self.old = signal.signal(signal.SIGPROF, self._fire)
            signal.setitimer(signal.ITIMER_PROF, self.seconds)
            self.armed = True
        except (ValueError, AttributeError):
            pass
        return self

    @staticmethod
    def _fire(signum, frame):
        raise Timeout()

    def __exit__(self, *exc):
        if self.armed:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.signal(signal.SIGPROF, self.old)
        return False


# the statuses that are failures: a wrong value, shape or printed form; an exception
# that is not a MatcalcError (or any on a well-typed input); valid values refused with
# a MatcalcError; a printed derivative that does not read back to the same numbers
FAILURES = ("wrong", "crashed", "rejected", "readback")


class Outcome:
    """status: correct | unsupported | skip | one of FAILURES; sig: a short failure
    class (for shrinking and grouping); detail: what was seen and what was expected."""

    def __init__(self, status, sig="", detail=""):
        self.status, self.sig, self.detail = status, sig, detail

    def __repr__(self):
        return f"Outcome({self.status!r}, {self.sig!r}, {self.detail!r})"


def _err(got, want, floor=0.0):
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    diff = float(np.max(np.abs(got - want))) if got.size else 0.0
    scale = max(float(np.max(np.abs(got))) if got.size else 0.0,
                float(np.max(np.abs(want))) if want.size else 0.0, floor, 1e-300)
    return diff / scale


def _finite(x):
    return bool(np.all(np.isfinite(np.asarray(x, dtype=float))))


def _fmt(x):
    a = np.asarray(x, dtype=float)
    with np.printoptions(precision=6, suppress=False, threshold=12, edgeitems=3, linewidth=200):
        return repr(a) if a.ndim else repr(float(a))


def _exc(e):
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}"[:300]


H_REL = 1e-4           # finite-difference step, relative to the variable's size
TOL = 1e-5             # relative tolerance for the finite-difference comparisons
READBACK_TOL = 1e-7    # printed form read back / independent evaluation
ABS_FLOOR = 1e-5       # ... relative to at least this (values are O(1)): 1e-12 absolute
TIME_LIMIT = 5.0


def _stencil(F, h):
    """The derivative at 0 of t -> F(t), fourth-order: the check's Ridders differences
    over two steps, 2h and h (Richardson's extrapolation, the five-point stencil); None
    where F is not finite (or not defined) at them."""
    return ridders(F, 2 * h, steps=2)[0]


def _fd_compare(got, F, F0, xscale, vscale, unit=1.0):
    """Relative error of got against dF/dt(0) for steps h/10, h, 10h: the best."""
    best = None
    for mult in (1.0, 0.1, 10.0, 0.01, 0.001):
        h = H_REL * mult * max(1.0, xscale) / max(vscale, 1e-300)
        fd = _stencil(F, h)
        if not _finite(fd):
            continue
        floor = max(1e-4 * float(np.max(np.abs(F0))) if np.size(F0) else 0.0, ABS_FLOOR * unit)
        e = _err(got, fd, floor)
        if best is None or e < best[0]:
            best = (e, fd)
        if e <= TOL:
            break
    return best


def check_example(ex, seed=0, points=3, time_limit=TIME_LIMIT):
    """The property for one example: an Outcome."""
    try:
        with deadline(time_limit):
            return _check(ex, seed, points)
    except Timeout:
        return Outcome("crashed", "timeout", f"no answer within {time_limit} s of CPU time")


def tree_symbols(tree):
    """Every symbol of a typed matcalc tree with its kind and size names."""
    from matcalc.expr import symbols_of
    from matcalc.shapes import kind_string
    return {n: kind_string(s) for n, s in symbols_of(tree).items()}


def _check(ex, seed, points):
    rng = np.random.default_rng(seed)
    text, wrt, decl = ex.text, ex.wrt, ex.symbols
    kind = ex.shapes[wrt][0]
    # ---------------------------------------------------------------- the language
    try:
        ftree = matcalc.parse(text, symbols=decl)
    except Exception as e:
        return Outcome("crashed", "parse:" + type(e).__name__, _exc(e))
    printed = None
    try:
        printed = str(ftree)
        # read back with the kinds and size names the engine gave the symbols (as for
        # str(d) and d.symbols): the printed text may name inferred sizes, as in I(n)
        reread = matcalc.parse(printed, symbols=tree_symbols(ftree))
        from matcalc.printing import to_latex
        to_latex(ftree)
    except Exception as e:
        return Outcome("crashed", "roundtrip:" + type(e).__name__,
                       f"parse(str(parse(text))) with str = {printed!r}: {_exc(e)}")
    # ---------------------------------------------------------------- the derivative
    unsupported = None
    d = g = None
    try:
        if ex.op == "hessian":
            d = matcalc.hessian(text, wrt=wrt, symbols=decl)
            g = matcalc.diff(text, wrt=wrt, symbols=decl)
        else:
            d = matcalc.diff(text, wrt=wrt, symbols=decl)
    except UnsupportedError as e:
        unsupported = str(e)
        d = g = None
    except Timeout:
        raise
    except Exception as e:
        return Outcome("crashed", ex.op + ":" + type(e).__name__, _exc(e))
    dtext = gtext = dsyms = gsyms = None
    if d is not None:
        try:
            dtext = str(d)
            d.latex()
            dsyms = d.symbols
            if g is not None:
                gtext, gsyms = str(g), g.symbols
        except Exception as e:
            return Outcome("crashed", "print:" + type(e).__name__, _exc(e))
    # ---------------------------------------------------------------- the points
    failures = []
    tried = 0
    ctx = (ftree, reread, d, dtext, dsyms, g, gtext, gsyms, kind)
    for attempt in range(4 * points):
        if tried >= points:
            break
        values = draw_values(ex, rng)
        try:
            f0 = matcalc.evaluate(text, values, symbols=decl)
        except Exception as e:
            if _past_float64(e):        # as an f that is not finite: another point
                continue
            failures.append(_refused("evaluate", e))
            tried += 1
            continue
        if not _finite(f0):
            continue
        tried += 1
        out = _check_point(ex, values, f0, ctx, rng)
        if out is not None and out.sig == "nondiff":
            tried -= 1                  # f is not differentiable here: another point
            continue
        if out is None:
            out = _new_user(ex, ctx, rng)
            if out is not None:
                return out
            if unsupported is not None:
                return Outcome("unsupported", unsupported.splitlines()[0][:120], unsupported)
            return Outcome("correct")
        failures.append(out)
    if not failures:
        return Outcome("skip", "nonfinite", "f is not finite at any drawn point")
    return failures[0]


def _not_differentiable(e):
    """The EvaluationError of a point where f is not differentiable (a repeated λ_max, a
    rank-deficient X under ‖X‖_*, a zero entry under ‖x‖₁): another point is drawn."""
    return isinstance(e, matcalc.EvaluationError) and "not differentiable" in str(e)


def _past_float64(e):
    """The EvaluationError of a value past the float range (the true value is not a float)."""
    return isinstance(e, matcalc.EvaluationError) and "overflows float64" in str(e)


def _refused(what, e, where=""):
    """The Outcome of an exception raised on valid values: a MatcalcError rejects them,
    anything else is a crash."""
    status = "rejected" if isinstance(e, matcalc.MatcalcError) else "crashed"
    return Outcome(status, what + ":" + type(e).__name__, where + _exc(e))


def _new_user(ex, ctx, rng, points=2):
    """None, or the Outcome of a failure at values of sizes drawn from what the
    expression itself requires (see requirements)."""
    tried = 0
    for attempt in range(3 * points):
        if tried >= points:
            break
        drawn = new_user_shapes(ex, rng)
        if drawn is None:
            return None
        shapes, sizes = drawn
        values = {name: draw_value(rng, k, shape, ex.props.get(name, ()))
                  for name, (k, shape) in shapes.items()}
        where = "at sizes " + ", ".join(f"{n} {'×'.join(map(str, sh)) if k != 'scalar' else 'scalar'}"
                                        for n, (k, sh) in sorted(shapes.items())) + ": "
        try:
            f0 = matcalc.evaluate(ex.text, values, symbols=ex.symbols)
        except Exception as e:
            if _past_float64(e):
                continue
            return _refused("new-user evaluate", e, where)
        if not _finite(f0):
            continue
        tried += 1
        out = _check_point(ex, values, f0, ctx, rng, sizes=sizes)
        if out is not None:
            out.sig = "new-user " + out.sig
            out.detail = where + out.detail
            return out
    return None


def _check_point(ex, values, f0, ctx, rng, sizes=None):
    """None when every property holds at these values, else the Outcome of the failure.
    sizes: the Sizes of values drawn at a new user's sizes (None: the generator's)."""
    ftree, reread, d, dtext, dsyms, g, gtext, gsyms, kind = ctx
    wrt = ex.wrt
    floor = ABS_FLOOR * ex.unit
    # f as the generator meant it
    if ex.tree is not None:
        env = {n: to_internal(v) for n, v in values.items()}
        with np.errstate(all="ignore"):
            mine = to_user(ex.tree.shape, my_eval(ex.tree, env, sizes=sizes))
        if np.shape(mine) != np.shape(f0):
            return Outcome("wrong", "evaluate:shape",
                           f"matcalc.evaluate(text) has shape {np.shape(f0)}, expected {np.shape(mine)}")
        if _finite(mine) and _err(f0, mine, floor) > READBACK_TOL:
            return Outcome("wrong", "evaluate:value",
                           f"matcalc.evaluate(text) = {_fmt(f0)}, expected {_fmt(mine)}")
    # the printed f read back
    try:
        f1 = matcalc.evaluate(reread, values)
    except Exception as e:
        return _refused("roundtrip-eval", e)
    if np.shape(f1) != np.shape(f0) or _err(f1, f0, floor) > READBACK_TOL:
        return Outcome("wrong", "roundtrip", f"parse(str(parse(text))) = {str(reread)!r} evaluates to "
                       f"{_fmt(f1)}, the text to {_fmt(f0)}")
    if d is None:
        return None
    X = values[wrt]
    V = direction(rng, kind, X)
    xscale = float(np.max(np.abs(X)))
    vscale = float(np.max(np.abs(V)))

    def at(t, fn):
        v2 = dict(values)
        v2[wrt] = X + t * V
        return np.asarray(fn(v2), dtype=float)

    if sizes is None:
        def F(t):
            return at(t, lambda v: matcalc.evaluate(ftree, v))
    else:
        def F(t):       # (the tree typed at the generator's sizes may not fit these)
            return at(t, lambda v: matcalc.evaluate(ex.text, v, symbols=ex.symbols))

    fshape = np.shape(f0)
    nvar = int(np.size(X))
    # the derivative's value, shape, finiteness and printed form
    try:
        D = np.asarray(d.evaluate(values), dtype=float)
    except Exception as e:
        if _not_differentiable(e):          # (a rank-deficient X under ||X||_*, ...)
            return Outcome("skip", "nondiff", str(e))
        return _refused("d.evaluate", e)
    if ex.op == "hessian":
        want = () if kind == "scalar" else (nvar, nvar)
        what = "Hessian"
    elif kind == "scalar":
        want, what = fshape, "derivative wrt a scalar"
    elif fshape == ():
        want, what = np.shape(X), "gradient"
    else:
        want, what = (int(np.size(f0)), nvar), "Jacobian"
    if D.shape != want:
        return Outcome("wrong", "shape", f"{what} of shape {D.shape}, expected {want}")
    if not _finite(D):
        if float(np.max(np.abs(f0))) > 1e250:
            return Outcome("skip", "overflow", "f near the largest float: its derivative may overflow")
        return Outcome("wrong", "nonfinite", f"{what} not finite: {_fmt(D)} (f = {_fmt(f0)})")
    bad = _structure(ex, kind, X, D, what)
    if bad:
        return Outcome("wrong", "structure", bad)
    # the printed form read back (a failure is reported after the values are checked:
    # a wrong value is the worse one)
    readback = None
    try:
        Dp = np.asarray(matcalc.evaluate(dtext, values, symbols=dsyms), dtype=float)
    except Exception as e:
        readback = Outcome("readback", "readback:" + type(e).__name__, f"str(d) = {dtext!r}: {_exc(e)}")
    else:
        if Dp.shape != D.shape and Dp.size == D.size and D.ndim <= 1 and Dp.ndim <= 1:
            Dp = Dp.reshape(D.shape)
        # (a zero vector or matrix printed as 0 reads back as a scalar: a failure)
        if Dp.shape != D.shape or _err(Dp, D, floor) > READBACK_TOL:
            readback = Outcome("readback", "readback", f"str(d) = {dtext!r} reads back as {_fmt(Dp)}, "
                               f"d.evaluate gives {_fmt(D)}")
    # the gradient (for a Hessian) against f
    if g is not None:
        try:
            G = np.asarray(g.evaluate(values), dtype=float)
        except Exception as e:
            return _refused("g.evaluate", e)
        gwant = () if kind == "scalar" else np.shape(X)
        if G.shape != gwant or not _finite(G):
            return Outcome("wrong", "gradient-shape", f"gradient {G.shape}, expected {gwant}")
        got = float(np.sum(G * V))
        best = _fd_compare(got, F, f0, xscale, vscale, ex.unit)
        if best is None or best[0] > TOL:
            return Outcome("wrong", "gradient", f"gradient {gtext!r}: <G,V> = {got!r}, "
                           f"finite differences {best[1] if best else 'nan'!r}")
    # the derivative against finite differences
    if ex.op == "hessian":
        def Fg(t):
            return at(t, g.evaluate)
        G0 = np.asarray(g.evaluate(values), dtype=float)
        got = float(D) * V if kind == "scalar" else D @ vecF(V)
        best = _fd_compare(got, lambda t: vecF(Fg(t)) if kind != "scalar" else Fg(t),
                           vecF(G0), xscale, vscale, ex.unit)
    elif kind == "scalar":
        got = D * V
        best = _fd_compare(got, F, f0, xscale, vscale, ex.unit)
    elif fshape == ():
        got = float(np.sum(D * V))
        best = _fd_compare(got, F, f0, xscale, vscale, ex.unit)
    else:
        got = D @ vecF(V)
        best = _fd_compare(got, lambda t: vecF(F(t)), vecF(f0), xscale, vscale, ex.unit)
    if best is None:
        return readback or Outcome("skip", "nonfinite-fd", "finite differences not finite")
    if best[0] > TOL:
        return Outcome("wrong", "value", f"{what} {dtext!r}: along V gives {_fmt(got)}, finite "
                       f"differences {_fmt(best[1])} (rel. error {best[0]:.2e})")
    return readback


def check_roundtrip(ex, seed=0):
    """The printer's property: parse(str(e)) is e again (or evaluates equal), and the
    LaTeX printer does not fail."""
    from matcalc.printing import to_latex
    try:
        e = matcalc.parse(ex.text, symbols=ex.symbols)
    except Exception as err:
        return Outcome("crashed", "parse:" + type(err).__name__, _exc(err))
    printed = None
    try:
        printed = str(e)
        to_latex(e)
        e2 = matcalc.parse(printed, symbols=tree_symbols(e))
    except Exception as err:
        return Outcome("crashed", "roundtrip:" + type(err).__name__, f"str(e) = {printed!r}: {_exc(err)}")
    if e2 == e:
        return Outcome("correct")
    rng = np.random.default_rng(seed)
    for _ in range(5):
        values = draw_values(ex, rng)
        try:
            v1, v2 = matcalc.evaluate(e, values), matcalc.evaluate(e2, values)
        except Exception as err:
            return Outcome("crashed", "roundtrip-eval:" + type(err).__name__, _exc(err))
        if not _finite(v1):
            continue
        if np.shape(v1) != np.shape(v2) or _err(v1, v2, ABS_FLOOR) > READBACK_TOL:
            return Outcome("wrong", "roundtrip", f"str(e) = {printed!r} evaluates to {_fmt(v2)}, "
                           f"e to {_fmt(v1)}")
        return Outcome("correct")
    return Outcome("skip", "nonfinite", "f is not finite at any drawn point")


def _projector(kind, n):
    """P with vec(V) = P vec(V) for V in the variable's space (n×n), vec column-major."""
    if kind in ("symmetric", "spd"):
        return (np.eye(n * n) + commutation_matrix(n, n)) / 2
    if kind == "diagonal":
        return np.diag(np.eye(n).reshape(-1, order="F"))
    return None


def _structure(ex, kind, X, D, what):
    """What CONTRACT §2 says of the answer's structure beyond its values along the
    variable's space: sym(G) / diag(G) gradients, J P Jacobians, P H P Hessians, and
    symmetric Hessians."""
    scale = max(float(np.max(np.abs(D))) if D.size else 0.0, ABS_FLOOR * ex.unit)
    P = _projector(kind, np.shape(X)[0]) if np.ndim(X) == 2 else None
    if ex.op == "hessian" and D.ndim == 2:
        if float(np.max(np.abs(D - D.T))) > READBACK_TOL * scale:
            return f"the Hessian is not symmetric: {_fmt(D)}"
        if P is not None and float(np.max(np.abs(P @ D @ P - D))) > READBACK_TOL * scale:
            return f"the Hessian wrt a {kind} variable is not P H P: {_fmt(D)}"
    elif what == "gradient" and P is not None:
        if float(np.max(np.abs(P @ vecF(D) - vecF(D)))) > READBACK_TOL * scale:
            return f"the gradient wrt a {kind} variable is not in its space: {_fmt(D)}"
    elif what == "Jacobian" and P is not None:
        if float(np.max(np.abs(D @ P - D))) > READBACK_TOL * scale:
            return f"the Jacobian wrt a {kind} variable is not J P: {_fmt(D)}"
    return None


def run_seed(seed, depth=4, retries=20):
    """Generate and check the example of this seed; regenerate when f is never finite.
    Returns (example, outcome, skipped)."""
    for k in range(retries):
        ex = generate((seed, k) if k else seed, depth)
        if _ill_conditioned(ex, np.random.default_rng(_vseed(seed))):
            out = Outcome("skip", "ill-conditioned")
            continue
        out = check_example(ex, seed=_vseed(seed))
        if out.status != "skip":
            return ex, out, k
    return ex, out, retries


def _ill_conditioned(ex, rng, limit=1e3):
    """Whether f takes sin or cos of a huge argument (cos(exp(2^7.5)), cos(u⁴) with
    u⁴ ~ 10⁶): its value then depends on the last bits of the argument, so equal
    expressions evaluated two ways (the text and the derivative's simplified
    constants) disagree, and finite differences cannot resolve it."""
    if ex.tree is None:
        return False
    values = draw_values(ex, rng)
    env = {n: to_internal(v) for n, v in values.items()}
    memo = {}
    with np.errstate(all="ignore"):
        try:
            my_eval(ex.tree, env, memo)
        except Exception:
            return False
    for n in ex.tree.walk():
        if n.op == "func" and engine_functions()[n.a["name"]].periodic and id(n.kids[0]) in memo:
            v = np.asarray(memo[id(n.kids[0])], dtype=float)
            if v.size and float(np.max(np.abs(v))) > limit:
                return True
    return False


def _vseed(seed):
    return (seed if isinstance(seed, tuple) else (seed,)) + (7919,)
