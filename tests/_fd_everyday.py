"""Finite-difference checking for test_everyday.py and test_cookbook.py (private helper).

A *problem* is a scalar function written twice: once in matcalc's input language and
once in plain NumPy.  For each variable we differentiate with respect to, the test

  * asks matcalc for the derivative,
  * draws random values suited to the kinds the engine inferred (SPD for spd,
    symmetric for symmetric, well-conditioned square matrices, positive entries where
    the problem asks for them, different sizes for different size names),
  * checks the value of the expression against the hand-written NumPy function,
  * checks the derivative against central differences (Richardson-extrapolated:
    matcalc.check's ``directional``) of the NumPy function along random directions in the variable's own space (symmetric
    directions for symmetric/spd, diagonal ones for diagonal variables), and that the
    gradient itself lies in that space,
  * checks that the printed answer reads back (matcalc.evaluate(str(d), ...)) to the
    same numbers, and that the hand-written reference form in the problem's table is
    right too (so the table of "shortest forms" is itself verified).

The values, directions and differences are matcalc.check's (one sampler, one checker);
the function they are taken of is the problem's own NumPy one.  Nothing here depends on
the other helpers in tests/.
"""
import os
import re
import sys
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import matcalc  # noqa: E402
from matcalc import check as C  # noqa: E402

# ----------------------------------------------------------------------------- numpy helpers

inv = np.linalg.inv
det = np.linalg.det
tr = np.trace


def logdet(M):
    sign, val = np.linalg.slogdet(M)
    assert sign > 0, "logdet of a matrix with non-positive determinant (bad test values)"
    return val


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def softplus(z):
    return np.log1p(np.exp(z))


def mpow(M, k):
    return np.linalg.matrix_power(M, k)


# ----------------------------------------------------------------------------- problems


class Problem:
    """A scalar function in the input language and in NumPy, with the variables to
    differentiate and, for each, the shortest hand-written form of the answer.

    grads: {wrt: hand_form}   (hand_form in the input language, or None)
    symbols: declarations passed to matcalc.diff
    positive: names whose values must have positive entries (for log, sqrt, ./)
    values_as: {name: kind} draw that symbol's value as this kind (e.g. an spd value for a
               general matrix symbol) without telling the engine
    fix: callable(values, rng) adjusting values in place (feasibility, e.g. b - A x > 0)
    sizes: {size_name: int} overrides
    symmetric: passed to matcalc.diff (None or "cookbook")
    """

    def __init__(self, name, expr, f, grads, symbols=None, positive=(), values_as=None, fix=None,
                 sizes=None, symmetric=None, eq=None, unsupported=None):
        self.name = name
        self.expr = expr
        self.f = f
        self.grads = grads
        self.symbols = symbols
        self.positive = set(positive)
        self.values_as = values_as or {}
        self.fix = fix
        self.sizes = sizes or {}
        self.symmetric = symmetric
        self.eq = eq
        self.unsupported = unsupported  # known engine limitation: xfail(raises=UnsupportedError)

    def cases(self):
        return [(self, w) for w in self.grads]


def case_id(case):
    p, w = case
    return f"{p.name}-d{w}"


def params(problems):
    """pytest parameters, one per (problem, variable); known UnsupportedError limitations
    are expected failures that must fail by raising UnsupportedError, nothing else."""
    import pytest
    out = []
    for p in problems:
        for c in p.cases():
            marks = [pytest.mark.xfail(raises=matcalc.UnsupportedError, reason=p.unsupported)] \
                if p.unsupported else []
            out.append(pytest.param(c, id=case_id(c), marks=marks))
    return out


# ----------------------------------------------------------------------------- values

_KIND_RE = re.compile(r"^\s*(\w+)\s*(?:\((.*)\))?\s*$")
SIZE_POOL = (4, 3, 5, 6)


def parse_kind(s):
    m = _KIND_RE.match(s)
    kind = m.group(1)
    sizes = [t.strip() for t in m.group(2).split(",")] if m.group(2) else []
    return kind, [int(t) if t.isdigit() else t for t in sizes]


def assign_sizes(symbols, overrides):
    sizes = {}
    k = 0
    for _, s in symbols.items():
        _, names = parse_kind(s)
        for nn in names:
            for n in ([nn] if isinstance(nn, int) else [t.strip() for t in nn.split("*")]):
                if isinstance(n, int) or n.isdigit() or n in sizes:
                    continue
                if n in overrides:
                    sizes[n] = overrides[n]
                else:
                    sizes[n] = SIZE_POOL[k % len(SIZE_POOL)]
                    k += 1
    return sizes


def _size(n, sizes):
    if isinstance(n, int):
        return n
    out = 1
    for part in n.split("*"):
        part = part.strip()
        out *= int(part) if part.isdigit() else sizes[part]
    return out


def draw(kind, shape, rng, positive=False):
    """matcalc.check's value for this kind: positive entries where the problem asks for
    them, else of either sign, square matrices well-conditioned; scalars are positive
    (the problems' scales and weights: lambda, s2, eps)."""
    props = {"pos"} if positive or kind == "scalar" else {"inv"}
    return C.draw_value(rng, kind, (shape[0], 1) if kind == "vector" else shape, props)


def shape_of(kindstr, sizes):
    kind, names = parse_kind(kindstr)
    if kind == "scalar":
        return kind, ()
    if kind == "vector":
        return kind, (_size(names[0], sizes),)
    if kind == "matrix":
        return kind, (_size(names[0], sizes), _size(names[1], sizes))
    n = _size(names[0], sizes)
    return kind, (n, n)


def _fitting(problem, symbols, sizes, rng):
    """sizes, or (when the expression leaves shapes equal only in their numbers of
    entries, vec(X)ᵀ vec(A)) an assignment the numeric check's search finds to fit."""
    import matcalc
    from matcalc import check as C
    try:
        tree = matcalc.parse(problem.expr, symbols=symbols)
    except matcalc.MatcalcError:
        return sizes
    if C.shapes_agree([tree], sizes):
        return sizes
    names = C.size_names({}, [tree])
    fixed = {k: v for k, v in sizes.items() if k in (problem.sizes or {})}
    for _, got in zip(range(3), C.size_assignments(names, rng, fixed,
                                                      fits=lambda z: C.shapes_agree([tree], z))):
        if C.shapes_agree([tree], got):
            return {**sizes, **got}
    return sizes


def make_values(problem, symbols, rng):
    sizes = _fitting(problem, symbols, assign_sizes(symbols, problem.sizes), rng)
    vals = {}
    for name, s in symbols.items():
        kind, shape = shape_of(s, sizes)
        kind = problem.values_as.get(name, kind)
        vals[name] = draw(kind, shape, rng, positive=name in problem.positive)
    if problem.fix is not None:
        problem.fix(vals, rng)
    return vals


def direction(kindstr, value, rng):
    kind, _ = parse_kind(kindstr)
    return 1.0 if kind == "scalar" else C.direction(rng, kind, value)


# ----------------------------------------------------------------------------- finite differences


def directional_fd(f, vals, name, V, h=1e-3):
    """The derivative of f along V: matcalc.check's differences (central differences at
    h and h/2, Richardson-extrapolated, O(h^4))."""
    fd, _ = C.directional(f, vals, name, V, h=h)
    assert fd is not None, "the finite differences of the NumPy function are not finite"
    return fd


def close(a, b, rtol=1e-6, atol=1e-7):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    scale = max(1.0, float(np.max(np.abs(b))) if b.size else 1.0)
    return bool(np.all(np.isfinite(a))) and float(np.max(np.abs(a - b))) <= rtol * scale + atol


def _as(shape, v):
    return np.broadcast_to(np.asarray(v, dtype=float), shape).astype(float)


# ----------------------------------------------------------------------------- the check

RECORD = []  # (problem name, expr, wrt, str(d), hand form) for the length report


def latex_named(named):
    """named (values or declarations) keyed by the names the LaTeX reader gives the
    printed names: W1 prints W_{1}, which reads back as the symbol W_1 (CONTRACT §5.4)."""
    from matcalc.latex_input import read_back_name
    return {read_back_name(k): v for k, v in named.items()}


def check(problem, wrt, n_dirs=4, seed_extra=""):
    d = matcalc.diff(problem.expr, wrt=wrt, symbols=problem.symbols, symmetric=problem.symmetric)
    text = str(d)
    RECORD.append((problem.name, problem.expr, wrt, text, problem.grads.get(wrt)))
    syms = d.symbols
    rng = np.random.default_rng(zlib.crc32(f"{problem.name}/{wrt}{seed_extra}".encode()))
    vals = make_values(problem, syms, rng)

    # 1. the function itself: matcalc's value against the hand-written NumPy one
    fv = problem.f(vals)
    mv = matcalc.evaluate(problem.expr, vals, symbols=syms)
    assert close(mv, fv), f"value of {problem.expr!r}: matcalc {mv} vs numpy {fv}"

    var_kind, _ = parse_kind(syms[wrt])
    x = vals[wrt]
    shape = np.shape(x)
    G = np.asarray(d.evaluate(vals), dtype=float)
    f_is_scalar = np.ndim(fv) == 0

    # 2. the derivative against finite differences of the NumPy function
    if var_kind == "scalar":
        fd = directional_fd(problem.f, vals, wrt, 1.0)
        assert close(G, fd, rtol=1e-5), (
            f"d/d{wrt} {problem.expr!r} = {text!r}\n  engine {G}\n  finite differences {fd}")
    else:
        assert f_is_scalar
        assert G.shape == shape, f"gradient shape {G.shape}, variable shape {shape} ({text!r})"
        if problem.symmetric == "cookbook":
            # the Cookbook's 2G - diag(G): entry (i,j) is df along E_ij + E_ji (i != j), E_ii
            n = shape[0]
            for i in range(n):
                for j in range(i, n):
                    V = np.zeros(shape)
                    V[i, j] = V[j, i] = 1.0
                    fd = directional_fd(problem.f, vals, wrt, V)
                    assert close(G[i, j], fd, rtol=1e-5) and close(G[j, i], fd, rtol=1e-5), (
                        f"d/d{wrt} {problem.expr!r} (cookbook) = {text!r}: entry ({i},{j}) "
                        f"engine {G[i, j]}, {G[j, i]} vs finite differences {fd}")
        else:
            for _ in range(n_dirs):
                V = direction(syms[wrt], x, rng)
                fd = directional_fd(problem.f, vals, wrt, V)
                an = float(np.sum(G * V))
                scale = max(1.0, float(np.linalg.norm(G)) * float(np.linalg.norm(V)))
                assert abs(an - fd) <= 1e-6 * scale, (
                    f"d/d{wrt} {problem.expr!r} = {text!r}\n  <G,V> engine {an}\n"
                    f"  finite differences {fd}")
            if var_kind in ("symmetric", "spd"):
                assert close(G, G.T), f"gradient w.r.t. symmetric {wrt} is not symmetric: {text!r}"
            if var_kind == "diagonal":
                assert close(G, np.diag(np.diag(G))), f"gradient w.r.t. diagonal {wrt} is not diagonal: {text!r}"

    # 3. the printed answer reads back to the same numbers
    back = matcalc.evaluate(text, vals, symbols=syms)
    assert close(_as(G.shape, back), G), (
        f"printed answer {text!r} reads back to {back}, the derivative is {G}")

    # 3b. so does its LaTeX (CONTRACT §5.4: what the engine prints, it reads)
    latex = d.latex()
    lback = matcalc.evaluate(latex, latex_named(vals), symbols=latex_named(syms))
    assert close(_as(G.shape, lback), G), (
        f"LaTeX answer {latex!r} reads back to {lback}, the derivative is {G}")

    # 4. the hand-written reference form (checks the table of shortest forms)
    hand = problem.grads.get(wrt)
    if hand is not None:
        hv = matcalc.evaluate(hand, vals, symbols=syms)
        assert close(_as(G.shape, hv), G), (
            f"[test table] hand form {hand!r} = {hv}, engine {text!r} = {G}")
    return d


# ----------------------------------------------------------------------------- length report


def _norm_len(s):
    return len(re.sub(r"\s+", "", s))


def length_report(problems, factor=1.25, slack=4):
    """(name, wrt, str(d), hand) where the engine's answer is clearly longer than the hand form."""
    rows = []
    for p in problems:
        for wrt, hand in p.grads.items():
            if hand is None:
                continue
            try:
                text = str(matcalc.diff(p.expr, wrt=wrt, symbols=p.symbols, symmetric=p.symmetric))
            except matcalc.MatcalcError as e:
                rows.append((p.name, p.expr, wrt, f"<{type(e).__name__}: {e}>", hand))
                continue
            if _norm_len(text) > factor * _norm_len(hand) + slack:
                rows.append((p.name, p.expr, wrt, text, hand))
    return rows


def print_report(problems):
    rows = length_report(problems)
    for name, expr, wrt, text, hand in rows:
        print(f"{name}: d/d{wrt} {expr}\n    engine: {text}\n    hand:   {hand}")
    print(f"{len(rows)} of {sum(len(p.grads) for p in problems)} answers clearly longer than by hand")
