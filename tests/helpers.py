"""Test helpers: random values suited to kinds, and a finite-difference check of a
derivative against a function of the test's own.

The values, the directions and the differences are matcalc.check's (its value sampler
``draw_value``, its ``direction`` and its Ridders differences ``directional``: one
sampler and one checker for ``--check``, the tests and the fuzzer), but the function
they are taken of is the test's: ``matcalc.evaluate`` of the *input* text, or a
hand-written NumPy function; the derivative is compared with its differences along
random directions in the variable's own space.
"""
import re

import numpy as np

import matcalc
from matcalc import check as C

# Concrete sizes for the size names the engine hands out; all different, so that a
# transposed answer cannot pass by accident.
SIZE_VALUES = {"n": 3, "m": 4, "p": 2, "q": 5, "r": 6, "s": 7, "k": 3, "l": 4}
_POOL = (3, 4, 2, 5, 6, 7, 8, 9)

_KIND_RE = re.compile(r"^\s*([A-Za-z]+)\s*(?:\(\s*([^()]*)\s*\))?\s*$")


def parse_kind(text):
    """'matrix(m,n)' -> ('matrix', ['m', 'n']); sizes as ints where numeric."""
    m = _KIND_RE.match(text)
    assert m, f"cannot read the kind {text!r}"
    sizes = []
    if m.group(2):
        for part in m.group(2).split(","):
            part = part.strip()
            if "*" in part:
                sizes.append(tuple(int(x) if x.strip().isdigit() else x.strip()
                                   for x in part.split("*")))
            else:
                sizes.append(int(part) if part.isdigit() else part)
    return m.group(1), sizes


def bind_sizes(symbols, fixed=None):
    """A concrete number for every size name in symbols (a d.symbols-like dict)."""
    sizes = dict(fixed or {})
    for kind in symbols.values():
        _, names = parse_kind(kind)
        flat = []
        for s in names:
            flat.extend(s if isinstance(s, tuple) else (s,))
        for s in flat:
            if isinstance(s, str) and s not in sizes:
                if s in SIZE_VALUES:
                    sizes[s] = SIZE_VALUES[s]
                else:
                    used = set(sizes.values())
                    sizes[s] = next((p for p in _POOL if p not in used), 3)
    return sizes


def _size(s, sizes):
    if isinstance(s, tuple):
        out = 1
        for x in s:
            out *= _size(x, sizes)
        return out
    return s if isinstance(s, int) else sizes[s]


def spd(rng, n):
    """A well-conditioned SPD n×n matrix (the sampler's)."""
    return C.draw_value(rng, "spd", (n, n), set())


# what a test's domain asks of every value, in the sampler's terms: "any" is entries of
# either sign, scalars away from 0, square matrices well-conditioned with a positive
# determinant (inverses, det and logdet defined); "pos" is positive entries too (log,
# sqrt, non-integer powers)
DOMAINS = {"any": {"nonzero", "posdet"}, "pos": {"pos", "posdet"}}


def draw_value(rng, kind, shape, dom="any"):
    """A value of this kind and shape for the domain dom ("pos"; anything else is
    "any"), drawn by matcalc.check's sampler."""
    return C.draw_value(rng, kind, tuple(shape) if kind != "vector" else (shape[0], 1),
                        DOMAINS["pos" if dom == "pos" else "any"])


def fitting_sizes(d, rng, sizes=None):
    """Sizes for d's symbols that make its trees' shapes fit: bind_sizes' when they do,
    else an assignment found by the numeric check's search (vec(A)ᵀ vec(X) leaves A and
    X of their own shapes, equal only in their numbers of entries)."""
    from matcalc import check as C
    bound = bind_sizes(d.symbols, sizes)
    trees = [d.f, d.expr]
    if C.shapes_agree(trees, bound):
        return bound
    names = C.size_names(d.typed_symbols, trees)
    for _, got in zip(range(3), C.size_assignments(names, rng, sizes,
                                                      fits=lambda z: C.shapes_agree(trees, z))):
        if C.shapes_agree(trees, got):
            return got
    return bound


def draw(symbols, rng, dom="any", sizes=None, override=None):
    """Values for every symbol of a d.symbols-like dict {name: 'matrix(m,n)', ...}."""
    sizes = bind_sizes(symbols, sizes)
    values = {}
    for name, kind_text in symbols.items():
        kind, names = parse_kind(kind_text)
        if kind == "scalar":
            shape = ()
        elif kind == "vector":
            shape = (_size(names[0], sizes),)
        elif kind == "matrix":
            shape = (_size(names[0], sizes), _size(names[1], sizes))
        else:
            n = _size(names[0], sizes)
            shape = (n, n)
        values[name] = draw_value(rng, kind, shape, dom)
    if override:
        values.update(override(values, rng) or {})
    return values


direction = C.direction      # (rng, kind, value): a random direction in the variable's space
vecF = C.vec                 # column-major vec; a 1-D array or a number as it is


def rel_err(got, want):
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    scale = max(1.0, float(np.max(np.abs(want))), float(np.max(np.abs(got))))
    return float(np.max(np.abs(got - want))) / scale


def evaluator(expr, declared=None):
    """f(values) by matcalc.evaluate of the input text, as a float array."""
    def f(values):
        return np.asarray(matcalc.evaluate(expr, values, symbols=declared), dtype=float)
    return f


def declarations_for_f(d, symbols):
    """Declarations for evaluating the input: the user's, plus the size names the engine
    gave (so that I(n) and K(m,n) in the input are bound by the values' shapes)."""
    out = {k: v for k, v in d.symbols.items() if "*" not in v}
    out.update(symbols or {})
    return out


def central(f, values, name, V, h=1e-3):
    """The derivative of f along V at values: matcalc.check's differences (central
    differences at h and h/2, Richardson-extrapolated)."""
    fd, _ = C.directional(f, values, name, V, h=h)
    assert fd is not None, f"the finite differences of f along V are not finite at {values}"
    return fd


class Unsupported(Exception):
    """Raised by check_derivative when the engine declines with UnsupportedError and
    the caller allowed it."""


def check_derivative(expr, wrt, symbols=None, layout="gradient", symmetric=None, dom="any",
                     f=None, trials=2, tol=1e-6, seed=0, sizes=None, override=None,
                     allow_unsupported=False, round_trip=True):
    """Differentiate with matcalc and compare with central differences of f.

    Returns the Derivative.  f defaults to matcalc.evaluate of expr; pass a NumPy
    function of the values dict for a fully independent reference."""
    try:
        d = matcalc.diff(expr, wrt=wrt, symbols=symbols, layout=layout, symmetric=symmetric)
    except matcalc.UnsupportedError:
        if allow_unsupported:
            raise Unsupported(expr)
        raise
    assert wrt in d.symbols, f"{wrt} missing from d.symbols {d.symbols}"
    var_kind, _ = parse_kind(d.symbols[wrt])
    f = f or evaluator(expr, declarations_for_f(d, symbols))
    rng = np.random.default_rng(seed)
    done = 0
    attempts = 0
    while done < trials:
        attempts += 1
        assert attempts < 10 * trials, f"could not draw values where {expr} is finite"
        vals = draw(d.symbols, rng, dom, fitting_sizes(d, rng, sizes), override)
        f0 = np.asarray(f(vals), dtype=float)
        if not np.all(np.isfinite(f0)):
            continue
        done += 1
        X = vals[wrt]
        D = np.asarray(d.evaluate(vals), dtype=float)
        assert np.all(np.isfinite(D)), f"d/d{wrt} {expr} = {d} is not finite: {D}"
        if round_trip:
            back = matcalc.evaluate(str(d), vals, symbols=d.symbols)
            assert np.shape(back) == np.shape(D), \
                f"str(d)={str(d)!r} evaluates to shape {np.shape(back)}, d.evaluate to {np.shape(D)}"
            assert rel_err(back, D) < 1e-9, f"round trip of {str(d)!r} differs"
        V = direction(rng, var_kind, X)
        fd = central(f, vals, wrt, V)
        scalar_f = f0.ndim == 0
        if np.ndim(X) == 0:
            # derivative with respect to a scalar: the shape of f
            if layout == "gradient":
                assert D.shape == f0.shape, f"d/d{wrt} {expr}: shape {D.shape}, f has {f0.shape}"
            assert D.size == f0.size, f"d/d{wrt} {expr}: shape {D.shape}, f has {f0.shape}"
            got = D.reshape(fd.shape) * V
        elif scalar_f:
            Xs = np.shape(X)
            if layout == "numerator":
                want_shape = (1, Xs[0]) if len(Xs) == 1 else (Xs[1], Xs[0])
                assert D.shape == want_shape, f"numerator layout of d/d{wrt} {expr}: {D.shape}"
                G = D.T.reshape(Xs) if len(Xs) == 2 else D.reshape(Xs)
            else:
                assert D.shape == Xs, f"gradient of {expr} w.r.t. {wrt}: shape {D.shape}, want {Xs}"
                G = D
            if var_kind in ("symmetric", "spd"):
                assert np.allclose(G, G.T, atol=1e-9 * max(1, np.abs(G).max())), \
                    f"gradient of {expr} w.r.t. symmetric {wrt} is not symmetric"
            if var_kind == "diagonal":
                assert np.allclose(G, np.diag(np.diag(G))), \
                    f"gradient of {expr} w.r.t. diagonal {wrt} is not diagonal"
            if symmetric == "cookbook" and var_kind in ("symmetric", "spd"):
                # ∂f/∂X_ij over the independent entries i <= j
                got = float(np.sum(np.triu(G) * V))
            else:
                got = float(np.sum(G * V))
        else:
            # a Jacobian against vec of the variable
            assert D.ndim == 2, f"Jacobian of {expr} is not 2-D: {D.shape}"
            J = D.T if layout == "denominator" else D
            assert J.shape == (f0.size, np.size(X)), \
                f"Jacobian of {expr} w.r.t. {wrt}: shape {J.shape}, want {(f0.size, np.size(X))}"
            got = J @ vecF(V)
            fd = vecF(fd)
        err = rel_err(got, fd)
        assert err < tol, (f"d/d{wrt} of {expr!r} = {str(d)!r} disagrees with finite differences: "
                           f"relative error {err:.3g}\n got {np.round(got, 6)}\n fd  {np.round(fd, 6)}")
    return d


def check_hessian(expr, wrt, symbols=None, dom="any", f=None, trials=2, tol=1e-4, seed=0,
                  allow_unsupported=True):
    """The Hessian against the second central difference of f: vᵀ H w (vec form)."""
    try:
        d = matcalc.hessian(expr, wrt=wrt, symbols=symbols)
    except matcalc.UnsupportedError:
        if allow_unsupported:
            raise Unsupported(expr)
        raise
    var_kind, _ = parse_kind(d.symbols[wrt])
    f = f or evaluator(expr, declarations_for_f(d, symbols))
    rng = np.random.default_rng(seed)
    for _ in range(trials):
        vals = draw(d.symbols, rng, dom, fitting_sizes(d, rng))
        X = vals[wrt]
        H = np.asarray(d.evaluate(vals), dtype=float)
        back = matcalc.evaluate(str(d), vals, symbols=d.symbols)
        assert rel_err(back, H) < 1e-9
        v = direction(rng, var_kind, X)
        w = direction(rng, var_kind, X)
        # vᵀ H w from second differences along v + w and v − w (polarization)
        plus, _ = C.directional(f, vals, wrt, v + w, h=1e-2, order=2)
        minus, _ = C.directional(f, vals, wrt, v - w, h=1e-2, order=2)
        assert plus is not None and minus is not None, f"second differences of {expr} not finite"
        fd = float(plus - minus) / 4
        if np.ndim(X) == 0:
            got = float(H) * v * w
        else:
            n = np.size(X)
            assert H.shape == (n, n), f"Hessian of {expr}: shape {H.shape}, want {(n, n)}"
            got = vecF(v) @ H @ vecF(w)
        err = rel_err(got, fd)
        assert err < tol, f"Hessian of {expr!r} = {str(d)!r}: relative error {err:.3g}"
    return d


def katex_or_skip():
    """The KaTeX runner of tests/katex (its Katex(texs).problems(texs) renders LaTeX): the
    test is skipped where node or KaTeX is missing, and fails under MATCALC_REQUIRE_KATEX."""
    import importlib.util
    import os
    import pytest
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "katex", "katex_runner.py")
    spec = importlib.util.spec_from_file_location("katex_runner", path)
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    reason = runner.unavailable()
    if reason:
        if runner.required():
            pytest.fail(reason + "; MATCALC_REQUIRE_KATEX is set")
        pytest.skip(reason)
    return runner
