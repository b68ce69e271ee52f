"""The fuzzer: random well-typed expressions, each derivative checked against finite
differences.

    python -m matcalc.fuzz N [--seed S] [--depth D] [--jobs J] [-v] [--save FILE]
                             [--no-shrink] [--show I]

For each of N random examples the generator draws a shape-typed expression over the
whole input language (CONTRACT.md §1), random kinds for its symbols, a variable (a
scalar, a vector or a matrix; plain, symmetric, spd or diagonal) and an operation
(``diff`` or, for a scalar f, ``hessian``).  The example is *correct* when

* the engine's derivative has the right shape, is finite, and agrees with central
  finite differences of f (evaluated by ``matcalc.evaluate``) along a random direction
  in the variable's own space (symmetric for symmetric/spd, diagonal for diagonal);
* its printed form, read back by ``matcalc.evaluate(str(d), values, symbols=d.symbols)``,
  gives the same numbers, and ``d.latex()`` does not fail;
* f itself evaluates to what the generator meant (this module has its own NumPy
  semantics for the trees it builds) and ``parse(str(parse(text)))`` evaluates equal.

Then a *new user* checks it again: sizes are drawn afresh for every symbol, subject only
to what the expression itself requires (read from this module's own tree, never from
``matcalc.shapes``: ``vec(A)ᵀ vec(B)`` needs as many entries in A as in B, not one
shape; declared sizes stay), with values suited to them, and ``matcalc.evaluate`` and
``d.evaluate`` must accept them and give right answers that read back.

Besides the whole language, the generator draws the classes of issue 10: vec pairings
through ``K(m,n)`` and ``P ⊗ Q`` with declared non-square sizes and either shape of the
variable; elementwise functions of diagonal, symmetric and plain square symbols read on
the diagonal (``tr(log(D))``) or whole (``sum(abs(D))``), with zero entries where the
function allows them; the engine's own size names (n, m, p, ...) written by the user in
``I(n)``, ``K(m,n)`` and some declarations (mode D); huge and tiny constants (``1e300``,
``1e-300``, ``exp(700)``) that cancel inside f or scale it.

It is *unsupported* when the engine raises ``UnsupportedError``; otherwise a failure is
*wrong* (a wrong value, shape or printed form of f), *crashed* (an exception outside the
``MatcalcError`` family, a ``ParseError``/``ShapeError`` on a well-typed input, a hang),
*rejected* (valid values refused with a ``MatcalcError``) or a *read-back failure*
(``str(d)`` does not evaluate to ``d.evaluate``'s numbers).  Every failure is shrunk to
a small expression that still fails the same way.

The last line printed is ``fuzz N: correct C, unsupported U, wrong W, crashed K,
rejected R, read-back failures B``.
"""
import argparse
import collections
import json
import math
import os
import re
import signal
import sys
import time
import traceback

import numpy as np

import matcalc
from matcalc.errors import UnsupportedError
from matcalc.operators import ARRAY_FUNCTIONS, ELEMENTWISE, ELEMENTWISE_RECORDS

# ============================================================================ shapes
#
# A dimension is a sorted tuple of base sizes (ints): () is 1, (3,) is 3, (2, 3) is the
# product 6 (from vec or ⊗).  A shape is (rows, cols); a scalar is ((), ()), a column
# vector (d, ()), a row vector ((), d).

SCALAR = ((), ())
BASE_SIZES = (2, 3, 4, 5)


def dsize(d):
    p = 1
    for x in d:
        p *= x
    return p


def shape_size(shape):
    return dsize(shape[0]), dsize(shape[1])


def is_scalar(shape):
    return shape[0] == () and shape[1] == ()


def dim_mul(a, b):
    return tuple(sorted(a + b))


# ============================================================================ trees

from matcalc.printing import ATOM, NEG, POST, PROD, SUM  # noqa: E402 (the printers' precedence levels)


class Node:
    """A node of a generated expression: op, children, shape, op attributes, and the
    requirement its parent puts on its value (None, 'pos', 'inv', 'posdet')."""

    __slots__ = ("op", "kids", "shape", "a", "req")

    def __init__(self, op, kids=(), shape=SCALAR, req=None, **a):
        self.op = op
        self.kids = list(kids)
        self.shape = shape
        self.a = a
        self.req = req

    def copy(self, kids=None):
        n = Node(self.op, self.kids if kids is None else kids, self.shape, self.req, **self.a)
        return n

    def copy_without_paren(self):
        n = self.copy()
        n.a = {k: v for k, v in self.a.items() if k != "paren"}
        return n

    def walk(self, seen=None):
        seen = set() if seen is None else seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield self
        for k in self.kids:
            yield from k.walk(seen)

    def __repr__(self):
        return f"<{self.op} {render(self)}>"


def sym_names(tree):
    return {n.a["name"] for n in tree.walk() if n.op == "sym"}


def props_of(tree):
    """name -> set of value requirements from its occurrences: 'pos', 'inv', 'posdet';
    'pdiag' (a positive diagonal; entries off it may be zero), 'zeros' (entries may be
    zero); 'nz' (an entry that is zero would meet a function singular at zero)."""
    out = collections.defaultdict(set)

    def go(n, inherited, sink):
        req = n.req or inherited
        if n.op == "sym":
            if req:
                out[n.a["name"]].add(req)
            if sink:
                out[n.a["name"]].add("nz")
            return
        # a transpose passes its requirement down to a bare symbol
        nxt = req if n.op == "T" else None
        for i, k in enumerate(n.kids):
            go(k, nxt, _zero_flow(n, i, sink))
    go(tree, None, False)
    return out


# functions singular (not differentiable, or not defined) where an entry is zero
_SINGULAR_AT_ZERO = {r.name for r in ELEMENTWISE_RECORDS if r.singular_at_zero} | {"ln"}


def _risky_power(n):
    p = n.a.get("p")
    return p is None or float(p) < 0 or not float(p).is_integer()


def _zero_flow(n, i, sink):
    """Whether a zero entry of child i of n reaches, entry by entry, a function singular
    at zero (sink: whether a zero entry of n itself does)."""
    op, a = n.op, n.a
    if a.get("zok"):
        return False        # a node built to read only where zeros are allowed
    if op == "func":
        return a["name"] in _SINGULAR_AT_ZERO or sink
    if op == "epow":
        return i == 1 or _risky_power(n) or sink
    if op in ("ediv", "div"):
        return i == 1 or sink
    if op in ("absbar", "spow"):
        return True
    if op == "mul":
        other = n.kids[1 - i]
        return sink and is_scalar(other.shape)
    if op in ("add", "neg", "T", "had", "kron", "vec", "diagm", "diagv"):
        return sink
    return False


# ---------------------------------------------------------------------------- printing


def _bar_content(t):
    return f"({t})" if t.startswith("|") or t.endswith("|") else t


def render(n):
    _CTX.clear()
    return _render(n)[0]


# What encloses the text being rendered: "|" or "||" (inside bars of that kind) or "("
# (inside parentheses or a call).  The parser decides that a bar closes when an operand
# precedes it and a bar of its kind is open, so a bar form right inside bars of its own
# kind is put in parentheses; inside parentheses it is not (the parentheses scope it).
_CTX = []


def _prec(n):
    """The precedence _render will give n, without rendering it."""
    op, a = n.op, n.a
    if a.get("paren"):
        return ATOM
    if op == "add":
        return SUM
    if op == "neg":
        return NEG
    if op in ("mul", "div"):
        return PROD
    if op in ("had", "ediv", "kron"):
        return ATOM if a.get("sp") == "kron(" else PROD
    if op in ("T", "inv", "invT"):
        return ATOM if a.get("sp") == "inv(" else POST
    if op in ("mpow", "spow", "epow"):
        return POST
    if op in ("norm", "specnorm"):
        return POST if a.get("sq") else ATOM
    return ATOM


def _sub(n, ctx="("):
    _CTX.append(ctx)
    try:
        return _render(n)[0]
    finally:
        _CTX.pop()


def _wrap(n, minprec):
    if _prec(n) < minprec:
        return f"({_sub(n)})"
    return _render(n)[0]


def _wrap_post(n, spelling=""):
    """The base of a postfix operator: an atom, or a postfix chain when allowed."""
    p = _prec(n)
    if p == ATOM or (p == POST and n.a.get("chain")):
        t = _render(n)[0]
        if spelling.startswith(".") and _ends_with_number(t):
            return f"({t})"
        return t
    return f"({_sub(n)})"


def _bars(kind, content_node, fmt):
    """A bar form: fmt has {} for the content; parenthesized when right inside bars of
    its own kind."""
    t = _bar_content(_sub(content_node, kind))
    out = fmt.format(t)
    if _CTX and _CTX[-1] == kind:
        return f"({out})"
    return out


_TAIL = re.compile(r"[A-Za-z0-9_.\u0370-\u03FF]+$")


def _ends_with_number(t):
    m = _TAIL.search(t)
    return bool(m) and (m.group(0)[0].isdigit() or m.group(0)[0] == ".")


def _exponent(n, p_text):
    """Exponent text after ^ or .^: a number spelled p_text, or a scalar node."""
    if p_text is not None:
        return p_text
    if n.op == "sym":
        return _render(n)[0]
    t = _sub(n)
    return "(" + t + ")" if not n.a.get("brace") else "{" + t + "}"


def _render(n):
    if n.a.get("paren") and _prec_raw(n) < ATOM:
        return f"({_sub(n.copy_without_paren())})", ATOM
    return _render_raw(n)


def _prec_raw(n):
    if not n.a.get("paren"):
        return _prec(n)
    return _prec(n.copy_without_paren())


def _render_raw(n):
    op, k, a = n.op, n.kids, n.a
    if op in ("sym", "num", "I", "In", "K"):
        return a["text"] if "text" in a else a["name"], ATOM
    if op == "add":
        return f"{_wrap(k[0], SUM)} {a['sp']} {_wrap(k[1], NEG)}", SUM
    if op == "neg":
        t = _wrap(k[0], NEG)
        return ("- " + t if t.startswith("-") else "-" + t), NEG
    if op == "mul":
        L, R = _wrap(k[0], PROD), _wrap(k[1], POST)
        sp = a["sp"]
        if sp == " " and (R[:1].isdigit() or R[:1] in ".-"):
            sp = " * "
        return f"{L}{sp}{R}", PROD
    if op == "div":
        return f"{_wrap(k[0], PROD)} / {_wrap(k[1], POST)}", PROD
    if op in ("had", "ediv", "kron"):
        sp = a["sp"]
        if sp == "kron(":
            return f"kron({_sub(k[0])}, {_sub(k[1])})", ATOM
        L, R = _wrap(k[0], PROD), _wrap(k[1], POST)
        if sp.strip() == sp and (_ends_with_number(L) or R[:1].isdigit() or R[:1] in ".-"):
            sp = " " + sp + " "
        return f"{L}{sp}{R}", PROD
    if op in ("T", "inv", "invT"):
        sp = a["sp"]
        if sp == "inv(":
            return f"inv({_sub(k[0])})", ATOM
        return _wrap_post(k[0], sp) + sp, POST
    if op == "det":
        if a["sp"] == "|":
            return _bars("|", k[0], "|{}|"), ATOM
        return f"det({_sub(k[0])})", ATOM
    if op == "logdet":
        sp = a["sp"]
        if sp == "log|":
            return _bars("|", k[0], "log|{}|"), ATOM
        if sp == "log(|":
            return "log(" + _sub(Node("det", [k[0]], SCALAR, sp="|")) + ")", ATOM
        t = _sub(k[0])
        return {"logdet": f"logdet({t})", "log(det": f"log(det({t}))",
                "ln(det": f"ln(det({t}))"}[sp], ATOM
    if op == "tr":
        return f"{a['sp']}({_sub(k[0])})", ATOM
    if op in ("func", "afunc", "sum", "vec", "diagm", "diagv"):
        name = a.get("name", {"sum": "sum", "vec": "vec", "diagm": "diag", "diagv": "diag"}.get(op))
        return f"{name}{a.get('space', '')}({_sub(k[0])})", ATOM
    if op == "absbar":
        return _bars("|", k[0], "|{}|"), ATOM
    if op == "mpow":
        sp = a["sp"]
        if sp in ("²", "³"):
            return _wrap_post(k[0]) + sp, POST
        return _wrap_post(k[0]) + sp.replace("k", str(a["k"])), POST
    if op in ("spow", "epow"):
        base = _wrap_post(k[0], ".^" if op == "epow" else "")
        if a.get("ptext") in ("²", "³"):
            return base + a["ptext"], POST
        e = _exponent(k[1] if len(k) > 1 else None, a.get("ptext"))
        caret = "^" if op == "spow" else a.get("sp", " .^ ")
        if op == "epow" and caret.strip() == caret and _ends_with_number(base):
            caret = " .^ "
        return f"{base}{caret}{e}", POST
    if op in ("norm", "specnorm"):
        form = a["form"]
        if form == "call":
            s = f"norm({_sub(k[0])})"
        else:
            s = _bars("||", k[0], "||{}||" + {"bars": "", "bars2": "_2", "barsF": "_F"}[form])
        if a.get("sq"):
            return s + a["sq"], POST
        return s, ATOM
    raise AssertionError(op)


# ---------------------------------------------------------------------------- values


def _commutation(m, n):
    K = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            K[j + i * n, i + j * m] = 1.0
    return K


# the elementwise functions' NumPy evaluators, from their records (ln is log)
MY_FUNCS = {**{r.name: r.evaluator() for r in ELEMENTWISE_RECORDS}, "ln": np.log}


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
        return _commutation(*(sizes.K(n) if sizes else (a["m"], a["n"])))
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
        return MY_FUNCS[a["name"]](ev[0])
    if op == "afunc":                       # softmax of a column, logsumexp of all entries
        z = _2d(ev[0])
        m = float(np.max(z))
        if a["name"] == "logsumexp":
            return m + float(np.log(np.sum(np.exp(z - m))))
        e = np.exp(z - m)
        return e / np.sum(e)
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


# ============================================================================ the generator

MAT_NAMES = ["A", "B", "C", "D", "F", "G", "H", "L", "M", "N", "P", "Q", "R", "S", "U", "V",
             "W", "X", "Y", "Z", "K", "Sigma", "Σ", "A1", "W_1", "B2", "Omega", "Xt"]
VEC_NAMES = ["x", "y", "z", "u", "v", "w", "a", "b", "mu", "w_2", "x1", "g", "h", "μ", "b0",
             "y_1", "f", "s1"]
SCA_NAMES = ["c", "s", "t", "alpha", "beta", "gamma", "λ", "σ", "eta", "rho", "tau", "c2", "kappa"]
SIZE_NAMES = ["m", "n", "p", "q", "r"]
# the names matcalc.shapes gives inferred sizes, first ones first
ENGINE_NAMES = ["n", "m", "p", "q", "r", "s"]
NUMBERS = ["2", "0.5", "3", "1e-3", "1.5", "0.25", "10", "2.5e-1", "1", "0.1", "4.0", ".5"]

T_SP = ["^T", "'", "ᵀ", ".T", "^{T}"]
INV_SP = ["^-1", "^(-1)", "^{-1}", "⁻¹", "inv("]
INVT_SP = ["^-T", "^{-T}", "^(-T)", "⁻ᵀ"]
TR_SP = ["tr", "Tr", "trace", "tr "]
# the elementwise functions defined everywhere (each as often as its record's fuzz_weight),
# those defined for positive arguments (and ln, log's other spelling), those that grow fast
SMOOTH = [r.name for r in ELEMENTWISE_RECORDS if r.domain == "any" for _ in range(r.fuzz_weight)]
POSITIVE = [r.name for r in ELEMENTWISE_RECORDS if r.domain == "positive"
            for _ in range(r.fuzz_weight)] + ["ln"]
FAST_GROWING = {r.name for r in ELEMENTWISE_RECORDS if r.fast_growing}
# defined and differentiable everywhere; and of those, the ones that stay bounded
SMOOTH_EVERYWHERE = [n for n in SMOOTH if not ELEMENTWISE[n].singular_at_zero]
BOUNDED = [n for n in SMOOTH_EVERYWHERE if n not in FAST_GROWING]


class Sym:
    __slots__ = ("name", "kind", "shape")

    def __init__(self, name, kind, shape):
        self.name, self.kind, self.shape = name, kind, shape

    def __repr__(self):
        return f"Sym({self.name}, {self.kind}, {self.shape})"


def _weighted(rng, table):
    """table: list of (weight, value); returns a value."""
    w = np.array([t[0] for t in table], dtype=float)
    i = rng.choice(len(table), p=w / w.sum())
    return table[i][1]


class Gen:
    """Draws typed trees for one example (one symbol table, one variable, one mode).

    mode 'A': every symbol declared with concrete sizes; 'B': sizes declared by name
    (I(n), K(m,n) name them too); 'C': sizes left to inference (only scalars and the
    structured kinds are declared); 'D': the names the engine gives inferred sizes (n, m,
    p, ...) written by the user, in I(n) and K(m,n) and in the declarations of some
    symbols, the others left to inference."""

    def __init__(self, rng, mode="A", pool=(3, 4), depth=4):
        self.rng = rng
        self.mode = mode
        self.pool = tuple(pool)
        self.depth = depth
        self.syms = {}
        self.var = None
        self.size_names = {}
        self.declared = {}      # mode D: name -> whether its sizes are declared
        if mode in ("B", "D"):
            # sizes by name, some (not all) by number: matrix(m,2)
            names = list(rng.permutation(SIZE_NAMES if mode == "B" else ENGINE_NAMES))
            if mode == "D" and rng.random() < 0.6:
                names = list(ENGINE_NAMES)      # n, m, p: the very names the engine gives
            named = [s for s in self.pool if rng.random() < 0.75] or [self.pool[0]]
            self.size_names = {s: names[i] for i, s in enumerate(named)}
        # vec and ⊗ whose sizes are products; without declarations (mode C) the engine
        # must keep them exactly as general as the expression (vec(A)ᵀ vec(B) with A
        # 2×3 and B 3×2), which the new-user pass checks
        self.composite = mode not in ("C", "D") or rng.random() < 0.5
        self._subs = []
        self.var_bias = 0.5     # how often a leaf that can be the variable is

    # ------------------------------------------------------------------ helpers
    def r(self):
        return self.rng.random()

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def dim(self):
        return (self.pick(self.pool),)

    def size_text(self, d):
        """How I(…)/K(…) name a dimension in this mode (None: cannot be named)."""
        if self.mode in ("B", "D"):
            if len(d) == 1:
                return self.size_names.get(d[0], str(d[0]))
            return None
        if self.mode == "C" and len(d) != 1:
            return None
        return str(dsize(d))

    def fresh_name(self, kind):
        lst = SCA_NAMES if kind == "scalar" else VEC_NAMES if kind == "vector" else MAT_NAMES
        free = [n for n in lst if n not in self.syms]
        if free and self.r() < 0.85:
            return free[0] if self.r() < 0.5 else self.pick(free)
        base = lst[0] if kind != "matrix" else "A"
        i = 2
        while f"{base}{i}" in self.syms or f"{base}{i}" in lst:
            i += 1
        return f"{base}{i}"

    def new_sym(self, shape, req=None, kind=None):
        R, C = shape
        if kind is None:
            if is_scalar(shape):
                kind = "scalar"
            elif C == ():
                kind = "vector"
            elif R == C:
                table = [(45, "matrix"), (20, "symmetric"), (15, "spd"), (20, "diagonal")]
                if req == "pos":
                    table = table[:3]
                if req == "posdet":
                    table = [(25, "matrix"), (15, "symmetric"), (40, "spd"), (20, "diagonal")]
                kind = _weighted(self.rng, table)
            else:
                kind = "matrix"
        name = self.fresh_name("scalar" if kind == "scalar" else "vector" if kind == "vector" else "matrix")
        self.syms[name] = Sym(name, kind, shape)
        return name

    @staticmethod
    def compatible(sym, req):
        return not (req == "pos" and sym.kind == "diagonal")

    def symnode(self, name, req=None):
        return Node("sym", (), self.syms[name].shape, req, name=name)

    def pick_sym(self, shape, req=None):
        var = self.syms.get(self.var)
        if var is not None and var.shape == shape and self.compatible(var, req) and self.r() < self.var_bias:
            return self.var
        cands = [s.name for s in self.syms.values()
                 if s.shape == shape and s.name != self.var and self.compatible(s, req)]
        if cands and self.r() < 0.6:
            return self.pick(cands)
        return self.new_sym(shape, req)

    def num(self, text=None):
        return Node("num", (), SCALAR, text=text or self.pick(NUMBERS))

    def identity(self, d, bare=False):
        t = self.size_text(d)
        if bare or t is None:
            return Node("I", (), (d, d), text="I")
        return Node("In", (), (d, d), text=f"I({t})", names=[t] if self.mode in ("B", "D") else [],
                    ntext=f"I({dsize(d)})")

    def T(self, x, req=None):
        R, C = x.shape
        return Node("T", [x], (C, R), req, sp=self.pick(T_SP), chain=self.r() < 0.3)

    def N(self, op, kids, shape, req=None, **a):
        if self.r() < 0.03:
            a["paren"] = True
        return Node(op, kids, shape, req, **a)

    def add(self, x, y, sp=None):
        shape = x.shape if not is_scalar(x.shape) else y.shape
        return self.N("add", [x, y], shape, sp=sp or ("+" if self.r() < 0.65 else "-"))

    def mul(self, x, y, sp=None):
        R = x.shape[0]
        C = y.shape[1]
        if is_scalar(x.shape):
            R, C = y.shape
        elif is_scalar(y.shape):
            R, C = x.shape
        sp = sp or _weighted(self.rng, [(6, " "), (2, " * "), (1, " @ ")])
        return self.N("mul", [x, y], (R, C), sp=sp)

    # ------------------------------------------------------------------ leaves
    def leaf(self, shape, req=None):
        R, C = shape
        if is_scalar(shape):
            var = self.syms.get(self.var)
            if var is not None and var.kind == "scalar" and self.r() < self.var_bias:
                return self.symnode(self.var, req)
            if req is None and var is not None and self.r() < self.var_bias * 0.3:
                return self.connect(shape)
            if self.r() < 0.3:
                return self.num()
            return self.symnode(self.pick_sym(shape, req), req)
        if R == ():
            return self.T(self.leaf((C, ()), req), req)
        var = self.syms.get(self.var)
        if var is not None and var.shape == (C, R) and R != C and self.r() < 0.3 and C != ():
            return self.T(self.symnode(self.var, req), req)
        if req is None and var is not None and var.shape != shape and self.r() < self.var_bias * 0.3:
            return self.connect(shape)
        if R == C and req in (None, "inv", "posdet") and self.r() < 0.06:
            return self.identity(R)
        return self.symnode(self.pick_sym(shape, req), req)

    def plain_leaf(self, shape):
        """A leaf that is not the variable."""
        if is_scalar(shape):
            return self.num() if self.r() < 0.3 else self.symnode(self._other(shape))
        if shape[0] == ():
            return self.T(self.plain_leaf((shape[1], ())))
        return self.symnode(self._other(shape))

    def _other(self, shape):
        cands = [s.name for s in self.syms.values() if s.shape == shape and s.name != self.var]
        if cands and self.r() < 0.6:
            return self.pick(cands)
        return self.new_sym(shape)

    def connect(self, shape):
        """A small expression of this shape in which the variable occurs."""
        var = self.syms[self.var]
        R, C = shape
        x = self.symnode(self.var)
        if var.shape == shape:
            return x
        if is_scalar(var.shape):
            return self.mul(x, self.plain_leaf(shape)) if self.r() < 0.7 else \
                self.mul(self.plain_leaf(shape), x)
        vr, vc = var.shape
        if (vc, vr) == shape:
            return self.T(x)
        if is_scalar(shape) and self.r() < 0.4:
            if vr == vc and self.r() < 0.5:
                return self.N("tr", [x], SCALAR, sp=self.pick(TR_SP[:3]))
            if self.r() < 0.5:
                return self.N("sum", [x], SCALAR)
            return self.N("norm", [x], SCALAR, form="call" if vc == () else "barsF", sq="^2")
        if R == vc and C == vr and vr != vc:
            return self.T(x)
        core = x
        if R != vr:
            core = self.mul(self.plain_leaf((R, vr)), core)
        if C != vc:
            core = self.mul(core, self.plain_leaf((vc, C)))
        return core

    # ------------------------------------------------------------------ dispatch
    def gen(self, shape, d, req=None):
        top = self._subs[-1] if self._subs else None
        if top is not None:
            i = len(top)
            top.append(None)
        n = self._gen(shape, d, req)
        if top is not None:
            top[i] = n
        return n

    def _gen(self, shape, d, req):
        if req in ("pos", "inv", "posdet"):
            # a domain-keeping composite (1 + M .* M, I + c MᵀM, ...): its own nodes are
            # fixed (the shrinker keeps them), the sub-expressions it was built from not
            self._subs.append([])
            if req == "pos":
                n = self.gen_pos_s(d) if is_scalar(shape) else self.gen_pos_a(shape, d)
            else:
                n = self.gen_wc(shape, d, req)
            subs = {id(x) for x in self._subs.pop()}

            def fix(m):
                for k in m.kids:
                    if id(k) not in subs:
                        k.a["fixed"] = True
                        fix(k)
            fix(n)
        elif is_scalar(shape):
            n = self.gen_s(d)
        else:
            n = self.gen_a(shape, d)
        assert n.shape == shape, (n.op, n.shape, shape)
        if req and n.req is None:
            n.req = req
        return n

    # ------------------------------------------------------------------ scalars
    def gen_s(self, d):
        if d <= 0 or self.r() < 0.12:
            return self.leaf(SCALAR)
        g, S, r = self.gen, SCALAR, self.r
        d1 = d - 1
        opts = [
            (8, "add"), (2, "neg"), (5, "smul"), (4, "sdiv"), (11, "inner"), (10, "tr"),
            (1, "tr1"), (3, "det"), (5, "logdet"), (6, "sum"), (7, "norm"), (0.3, "specnorm"),
            (7, "func"), (5, "logsqrt"), (1, "absbar"), (4, "ipow"), (3, "fpow"), (1, "sympow"),
            (1.0, "kron"),
        ]
        if self.composite:
            opts += [(1.5, "vecdot"), (0.5, "Kform"), (4, "vecpair")]
        opts += [(2.5, "elemdiag"), (0.6, "huge"),
                 (ARRAY_FUNCTIONS["logsumexp"].fuzz_weight, "logsumexp")]
        if self.mode == "D":
            opts.append((5, "trI"))
        op = _weighted(self.rng, opts)
        if op == "trI":
            # tr(I(n) + M): the user's n where the engine would name a size n too
            k = self.dim()
            M = g((k, k), d1)
            I = self.identity(k)
            return self.N("tr", [self.add(I, M) if r() < 0.5 else self.add(M, I)], S,
                          sp=self.pick(TR_SP[:3]))
        if op == "vecpair":
            return self.vecpair(d)
        if op == "elemdiag":
            return self.elemdiag()
        if op == "huge":
            return self.huge(S, d)
        if op == "add":
            return self.add(g(S, d1), g(S, d1))
        if op == "neg":
            return self.N("neg", [g(S, d1)], S)
        if op == "smul":
            return self.mul(g(S, d1), g(S, d1))
        if op == "sdiv":
            return self.N("div", [g(S, d1), g(S, d1, "pos")], S)
        if op == "inner":
            k = self.dim()
            return self.mul(g(((), k), d1), g((k, ()), d1))
        if op == "tr":
            k = self.dim()
            return self.N("tr", [g((k, k), d1)], S, sp=self.pick(TR_SP[:3]) if r() < 0.9 else "tr ")
        if op == "tr1":
            k = self.dim()
            return self.N("tr", [self.mul(g(((), k), d1), g((k, ()), d1))], S, sp="tr")
        if op == "det":
            k = self.dim()
            return self.N("det", [g((k, k), d1, "inv")], S, sp=self.pick(["det", "|"]))
        if op == "logdet":
            k = self.dim()
            return self.N("logdet", [g((k, k), d1, "posdet")], S,
                          sp=_weighted(self.rng, [(4, "logdet"), (2, "log(det"), (2, "log|"),
                                                  (1, "log(|"), (1, "ln(det")]))
        if op == "sum":
            return self.N("sum", [g(self.any_shape(), d1)], S)
        if op == "logsumexp":
            return self.N("afunc", [g(self.any_shape(), d1)], S, name="logsumexp")
        if op in ("norm", "specnorm"):
            vec = r() < 0.5 or op == "specnorm" and r() < 0.3
            shape = (self.dim(), ()) if vec else (self.dim(), self.dim())
            if op == "specnorm":
                shape = (self.dim(), self.dim())
                form = self.pick(["bars2"])
            elif vec:
                form = self.pick(["bars", "bars2", "call"])
            else:
                form = self.pick(["bars", "barsF", "call"])
            sq = self.pick([None, None, "^2", "²"]) if op == "norm" or r() < 0.5 else None
            return self.N(op, [g(shape, d1)], S, form=form, sq=sq)
        if op == "func":
            name = self.pick(SMOOTH)
            arg = g(S, min(d1, 2) if name in FAST_GROWING else d1)
            return self.N("func", [arg], S, name=name, space=" " if r() < 0.1 else "")
        if op == "logsqrt":
            name = self.pick(POSITIVE)
            return self.N("func", [g(S, d1, "pos")], S, name=name)
        if op == "absbar":
            return self.N("absbar", [g(S, d1)], S)
        if op == "ipow":
            k = self.pick([2, 2, 3, 4, 1, 0])
            sp = self.pick(["^k", "^k", "^{k}", "^(k)"]) if k not in (2, 3) or r() < 0.7 else \
                {2: "²", 3: "³"}[k]
            return self.N("spow", [g(S, d1)], S, p=k,
                          ptext=sp.replace("^", "").replace("k", str(k)) if sp[0] == "^" else sp)
        if op == "fpow":
            p, txt = self.pick([(0.5, "0.5"), (0.5, "(1/2)"), (-1.0, "-1"), (-2.0, "-2"), (1.5, "1.5"),
                                (-0.5, "(-0.5)"), (-0.5, "{-0.5}"), (2.5, "2.5"), (-1.0, "(-1)")])
            return self.N("spow", [g(S, d1, "pos")], S, p=p, ptext=txt)
        if op == "sympow":
            return self.N("spow", [g(S, min(d1, 1), "pos"), self.exponent_node()], S)
        if op == "kron":
            if r() < 0.5 and self.composite:
                k1, k2 = self.dim(), self.dim()
                return self.N("tr", [self.kron(g((k1, k1), d1 - 1 if d1 > 1 else 0),
                                               g((k2, k2), d1 - 1 if d1 > 1 else 0))], S,
                              sp=self.pick(TR_SP[:3]))
            s1, s2 = self.any_shape(), self.any_shape()
            return self.N("sum", [self.kron(g(s1, max(d1 - 1, 0)), g(s2, max(d1 - 1, 0)))], S)
        if op == "vecdot":
            sh = (self.dim(), self.dim())
            v1 = self.N("vec", [g(sh, max(d1 - 1, 0))], (dim_mul(*sh), ()))
            if r() < 0.5:
                sh2 = sh if r() < 0.6 else sh[::-1]     # (as many entries, another shape)
                v2 = self.N("vec", [g(sh2, max(d1 - 1, 0))], (dim_mul(*sh), ()))
            else:
                v2 = g((dim_mul(*sh), ()), max(d1 - 1, 0)) if self.composite else \
                    self.N("vec", [g(sh, 0)], (dim_mul(*sh), ()))
            return self.mul(self.T(v1), v2)
        if op == "Kform":
            m, n = self.dim(), self.dim()
            K = self.Kmat(m, n)
            left = self.T(self.N("vec", [g((n, m), max(d1 - 1, 0))], (dim_mul(m, n), ())))
            right = self.N("vec", [g((m, n), max(d1 - 1, 0))], (dim_mul(m, n), ()))
            return self.mul(self.mul(left, K), right)
        raise AssertionError(op)

    # ------------------------------------------------------------------ the issue's classes
    def vecpair(self, d):
        """vec(X)ᵀ (L vec(N)) with L = K(m,n) or P ⊗ Q, declared non-square, X and N of
        either shape with the right number of entries (so the inverse of vec must build
        the variable's own shape)."""
        d0 = 0 if d <= 1 else self.pick([0, 0, 1])
        var = self.syms.get(self.var)
        vs = var.shape if var is not None and var.kind == "matrix" and len(var.shape[0]) == 1 \
            and len(var.shape[1]) == 1 else None

        def g(shape, depth):
            # the variable itself, often: the gradient then goes through the inverse of vec
            if vs == shape and self.r() < 0.6:
                return self.symnode(self.var)
            return self.gen(shape, depth)
        if self.r() < 0.5:
            # K(m,n) vec(G) for an m×n G is vec(Gᵀ), n×m entries
            m, n = (vs if self.r() < 0.5 else vs[::-1]) if vs and self.r() < 0.7 else (self.dim(), self.dim())
            G = g((m, n), d0)
            right = self.mul(self.Kmat(m, n), self.N("vec", [G], (dim_mul(m, n), ())))
            tot = (n, m)
        else:
            # (P ⊗ Q) vec(N) for a q2×p2 N is vec(Q N Pᵀ), q1×p1
            p1, p2, q1, q2 = (self.dim() for _ in range(4))
            if vs and self.r() < 0.7:
                q1, p1 = vs if self.r() < 0.5 else vs[::-1]
            P, Q = g((p1, p2), d0), g((q1, q2), d0)
            N = g((q2, p2) if self.r() < 0.6 else (p2, q2), d0)
            right = self.mul(self.kron(P, Q), self.N("vec", [N], (dim_mul(q2, p2), ())))
            tot = (q1, p1)
        X = g(tot if self.r() < 0.5 else tot[::-1], d0)
        left = self.T(self.N("vec", [X], (dim_mul(*tot), ())))
        return self.mul(left, right)

    def elemdiag(self):
        """An elementwise function of a square symbol (often the variable; diagonal,
        symmetric or plain), read on its diagonal (tr, diag) or whole (sum), the values
        having zero entries where the function allows: tr(log(D)), sum(abs(D)),
        tr(X .^ -1) with zeros off the diagonal."""
        var = self.syms.get(self.var)
        if var is not None and var.kind != "scalar" and var.shape[0] == var.shape[1] \
                and self.r() < 0.7:
            name = self.var
        else:
            k = self.dim()
            kind = _weighted(self.rng, [(4, "diagonal"), (3, "symmetric"), (3, "matrix"), (1, "spd")])
            cands = [x.name for x in self.syms.values() if x.shape == (k, k) and x.kind == kind
                     and x.name != self.var]
            name = self.pick(cands) if cands and self.r() < 0.5 else self.new_sym((k, k), kind=kind)
        shape = self.syms[name].shape
        diagonal = self.syms[name].kind == "diagonal"
        reader = _weighted(self.rng, [(5, "tr"), (2, "diag"), (3, "sum")])
        singular = ["log", "ln", "sqrt", "abs", "-1", "0.5", "-2", "(1/2)"]
        smooth = SMOOTH_EVERYWHERE + ["2", "3"]
        if reader != "sum":
            fn = self.pick(singular) if self.r() < 0.8 else self.pick(smooth)
        elif diagonal:
            fn = self.pick(["abs", "sqrt", "0.5", "(1/2)"] + smooth)
        else:
            fn = self.pick(smooth)
        req = "pdiag" if fn in singular else "zeros"
        x = self.symnode(name, req)
        if self.r() < 0.2:
            x = self.T(x, req)
        if fn[0].isalpha():
            f = Node("func", [x], shape, name=fn, zok=True)
        else:
            f = Node("epow", [x], shape, p=float(eval(fn.strip("()")) if "/" in fn else float(fn)),
                     ptext=fn, sp=self.pick([" .^ ", ".^"]), zok=True)
        if reader == "tr":
            return self.N("tr", [f], SCALAR, sp=self.pick(TR_SP[:3]))
        if reader == "diag":
            return self.N("sum", [self.N("diagv", [f], (shape[0], ()))], SCALAR)
        return self.N("sum", [f], SCALAR)

    def constant(self, text):
        """(node, value) of a huge or tiny constant: 1e300, 1e-300, exp(700), exp(-700)."""
        if text.startswith("exp("):
            arg = self.num("700")
            if "-" in text:
                arg = Node("neg", [arg], SCALAR)
            return Node("func", [arg], SCALAR, name="exp"), float(np.exp(float(text[4:-1])))
        return self.num(text), float(text)

    def huge(self, shape, d):
        """x with huge and tiny constants that cancel: 1e300 (1e-300 x), x / 1e300 * 1e300,
        x + 1e-300, exp(700) (exp(-700) x), log(exp(700) p) - 700."""
        out = self._huge(shape, d)

        def fix(n):
            # the shrinker keeps the form whole (without its other half, 1e300 x
            # overflows), not the x inside it
            if n.a.pop("inner", False):
                return
            if n is not out:
                n.a["fixed"] = True
            for k in n.kids:
                fix(k)
        fix(out)
        return out

    def _huge(self, shape, d):
        x = self.gen(shape, max(d - 1, 0))
        x.a["inner"] = True
        form = self.pick(["scale", "div", "tiny", "exp"] + (["log"] if is_scalar(shape) else []))
        if form == "scale":
            a, b = ("1e300", "1e-300") if self.r() < 0.5 else ("1e-300", "1e300")
            return self.mul(self.num(a), self.mul(self.num(b), x))
        if form == "div":
            big = self.pick(["1e300", "1e-300"])
            return self.mul(self.N("div", [x, self.num(big)], shape), self.num(big))
        if form == "tiny":
            return self.add(x, self.num("1e-300"), "+")
        if form == "exp":
            return self.mul(self.constant("exp(700)")[0], self.mul(self.constant("exp(-700)")[0], x))
        p = self.gen(SCALAR, max(d - 1, 0), "pos")
        p.a["inner"] = True
        return self.add(self.N("func", [self.mul(self.constant("exp(700)")[0], p)], SCALAR, name="log"),
                        self.num("700"), "-")

    def Kmat(self, m, n):
        tm, tn = self.size_text(m), self.size_text(n)
        N = dim_mul(m, n)
        return Node("K", (), (N, N), text=f"K({tm},{tn})", m=dsize(m), n=dsize(n),
                    names=[tm, tn] if self.mode in ("B", "D") else [], ntext=f"K({dsize(m)},{dsize(n)})")

    def any_shape(self):
        return _weighted(self.rng, [(3, (self.dim(), ())), (4, (self.dim(), self.dim())),
                                    (1, ((), self.dim()))])

    def exponent_node(self):
        r = self.r()
        if r < 0.5:
            return self.leaf(SCALAR) if self.r() < 0.5 else self.symnode(self.pick_sym(SCALAR))
        e = self.add(self.symnode(self.pick_sym(SCALAR)), self.num("1"))
        e.a["brace"] = self.r() < 0.3
        return e

    def kron(self, x, y):
        shape = (dim_mul(x.shape[0], y.shape[0]), dim_mul(x.shape[1], y.shape[1]))
        return self.N("kron", [x, y], shape, sp=self.pick([" ⊗ ", " ⊗ ", "kron(", "⊗"]))

    # ------------------------------------------------------------------ positive scalars
    def gen_pos_s(self, d):
        if d <= 0 or self.r() < 0.25:
            n = self.leaf(SCALAR, "pos")
            return n
        g, S = self.gen, SCALAR
        d1 = d - 1
        op = _weighted(self.rng, [(3, "1+s2"), (2, "2+trig"), (1, "1+sigmoid"), (1, "softplus"),
                                  (2, "exp"), (3, "1+norm2"), (1, "prod"), (1, "sum"), (1, "sqrt"),
                                  (1, "det"), (1, "1+abs"), (1, "pow")])
        one = self.num("1")
        if op == "1+s2":
            return self.add(one, self.N("spow", [g(S, d1)], S, p=2, ptext=self.pick(["2", "²"])), "+")
        if op == "2+trig":
            return self.add(self.num("2"), self.N("func", [g(S, d1)], S,
                                                  name=self.pick(["sin", "cos", "tanh"])), "+")
        if op == "1+sigmoid":
            return self.add(one, self.N("func", [g(S, d1)], S, name="sigmoid"), "+")
        if op == "softplus":
            return self.add(self.num("0.5"), self.N("func", [g(S, d1)], S, name="softplus"), "+")
        if op == "exp":
            return self.N("func", [g(S, min(d1, 1))], S, name="exp")
        if op == "1+norm2":
            shape = self.any_shape()
            return self.add(one, self.N("norm", [g(shape, d1)], S, form=self.pick(["bars", "call"]) if
                                        shape[0] == () or shape[1] == () else self.pick(["barsF", "call"]),
                                        sq=self.pick(["^2", "²"])), "+")
        if op == "prod":
            return self.mul(g(S, d1, "pos"), g(S, d1, "pos"))
        if op == "sum":
            return self.add(g(S, d1, "pos"), g(S, d1, "pos"), "+")
        if op == "sqrt":
            return self.N("func", [g(S, d1, "pos")], S, name="sqrt")
        if op == "det":
            k = self.dim()
            return self.N("det", [g((k, k), d1, "posdet")], S, sp=self.pick(["det", "|"]))
        if op == "1+abs":
            return self.add(one, self.N("func", [g(S, d1)], S, name="abs"), "+")
        if op == "pow":
            return self.N("spow", [g(S, d1, "pos")], S, p=0.5, ptext="0.5")
        raise AssertionError(op)

    # ------------------------------------------------------------------ positive arrays
    def gen_pos_a(self, shape, d):
        if d <= 0 or self.r() < 0.25:
            return self.leaf(shape, "pos")
        g = self.gen
        d1 = d - 1
        R, C = shape
        op = _weighted(self.rng, [(3, "1+MM"), (2, "1+M2"), (2, "2+trig"), (1, "1+sigmoid"),
                                  (1, "softplus"), (2, "exp"), (1, "had"), (1, "add"), (1, "scale"),
                                  (1, "T"), (1, "ediv"), (1, "1+abs")])
        one = self.num("1")
        if op == "1+MM":
            M = g(shape, d1)
            return self.add(one, self.N("had", [M, M], shape, sp=self.pick([" .* ", " ∘ "])), "+")
        if op == "1+M2":
            return self.add(one, self.N("epow", [g(shape, d1)], shape, p=2, ptext="2",
                                        sp=self.pick([" .^ ", ".^"])), "+")
        if op == "2+trig":
            return self.add(self.num("2"), self.N("func", [g(shape, d1)], shape,
                                                  name=self.pick(["sin", "cos", "tanh"])), "+")
        if op == "1+sigmoid":
            return self.add(one, self.N("func", [g(shape, d1)], shape, name="sigmoid"), "+")
        if op == "softplus":
            return self.add(self.num("0.5"), self.N("func", [g(shape, d1)], shape, name="softplus"), "+")
        if op == "exp":
            return self.N("func", [g(shape, min(d1, 1))], shape, name="exp")
        if op == "had":
            return self.N("had", [g(shape, d1, "pos"), g(shape, d1, "pos")], shape,
                          sp=self.pick([" .* ", " ∘ "]))
        if op == "add":
            return self.add(g(shape, d1, "pos"), g(shape, d1, "pos"), "+")
        if op == "scale":
            return self.mul(g(SCALAR, d1, "pos"), g(shape, d1, "pos"))
        if op == "T":
            return self.T(g((C, R), d1, "pos"))
        if op == "ediv":
            return self.N("ediv", [g(shape, d1, "pos"), g(shape, d1, "pos")], shape, sp=" ./ ")
        if op == "1+abs":
            return self.add(one, self.N("func", [g(shape, d1)], shape, name="abs"), "+")
        raise AssertionError(op)

    # ------------------------------------------------------------------ well-conditioned
    def gen_wc(self, shape, d, req):
        R, C = shape
        assert R == C
        if d <= 0 or self.r() < 0.35:
            return self.leaf(shape, req)
        g = self.gen
        d1 = d - 1
        opts = [(4, "I+MtM"), (2, "S+MMt"), (1, "prod"), (1, "T"), (1, "inv"), (1, "scale"),
                (1, "diag")]
        if req == "inv":
            opts += [(1, "neg"), (1, "sq")]
        op = _weighted(self.rng, opts)
        if op == "I+MtM":
            k = self.dim() if self.r() < 0.7 else R
            M = g((k, R), min(d1, 2))
            MtM = self.mul(self.T(M), M)
            c = self.num(self.pick(["0.1", "0.5", "1e-3", "0.2"]))
            term = self.mul(c, MtM) if self.r() < 0.5 else self.mul(self.mul(c, self.T(M)), M)
            I = self.identity(R, bare=self.r() < 0.5)
            return self.add(I, term, "+") if self.r() < 0.7 else self.add(term, I, "+")
        if op == "S+MMt":
            k = self.dim()
            M = g((R, k), min(d1, 2))
            S = self.leaf(shape, "posdet")
            return self.add(S, self.mul(M, self.T(M)), "+")
        if op == "prod":
            return self.mul(g(shape, d1, req), g(shape, d1, req))
        if op == "T":
            return self.T(g(shape, d1, req))
        if op == "inv":
            return self.N("inv", [g(shape, d1, req)], shape, sp=self.pick(INV_SP))
        if op == "scale":
            return self.mul(self.num(self.pick(["2", "0.5", "3"])), g(shape, d1, req))
        if op == "diag":
            return self.N("diagm", [g((R, ()), d1, "pos")], shape)
        if op == "neg":
            return self.N("neg", [g(shape, d1, "inv")], shape)
        if op == "sq":
            return self.N("mpow", [g(shape, d1, "inv")], shape, k=2, sp=self.pick(["^k", "²"]))
        raise AssertionError(op)

    # ------------------------------------------------------------------ arrays
    def kron_splits(self, shape):
        R, C = shape
        out = set()
        for R1 in set(_subsets(R)):
            for C1 in set(_subsets(C)):
                R2, C2 = _minus(R, R1), _minus(C, C1)
                if (R1, C1) != ((), ()) and (R2, C2) != ((), ()):
                    out.add(((R1, C1), (R2, C2)))
        return sorted(out)

    def gen_a(self, shape, d):
        if d <= 0 or self.r() < 0.12:
            return self.leaf(shape)
        g, r = self.gen, self.r
        d1 = d - 1
        R, C = shape
        sq, col = R == C, C == ()
        opts = [(8, "add"), (2, "neg"), (11, "mul"), (5, "scale"), (2, "div"), (4, "had"),
                (2, "ediv"), (4, "T"), (6, "func"), (3, "logsqrt"), (3, "epow"), (1, "bcast"),
                (0.4, "huge")]
        splits = self.kron_splits(shape)
        if splits:
            opts.append((0.8, "kron"))
        if sq:
            opts += [(5, "inv"), (2, "invT"), (3, "mpow"), (2, "diagm"),
                     (6 if self.mode == "D" else 2, "addI")]
        if col:
            opts += [(2, "diagv"), (1.5, "vec"), (ARRAY_FUNCTIONS["softmax"].fuzz_weight, "softmax")]
            if self.composite and len(R) == 2:
                opts.append((1.5, "Kvec"))
        op = _weighted(self.rng, opts)
        if op == "huge":
            return self.huge(shape, d)
        if op == "add":
            return self.add(g(shape, d1), g(shape, d1))
        if op == "neg":
            return self.N("neg", [g(shape, d1)], shape)
        if op == "mul":
            k = self.dim() if r() < 0.85 else ()
            if k == () and (R == () or C == ()):
                k = self.dim()
            return self.mul(g((R, k), d1), g((k, C), d1))
        if op == "scale":
            s, M = g(SCALAR, d1), g(shape, d1)
            return self.mul(s, M) if r() < 0.7 else self.mul(M, s)
        if op == "div":
            return self.N("div", [g(shape, d1), g(SCALAR, d1, "pos")], shape)
        if op == "had":
            return self.N("had", [g(shape, d1), g(shape, d1)], shape,
                          sp=self.pick([" .* ", " ∘ ", ".*"]))
        if op == "ediv":
            return self.N("ediv", [g(shape, d1), g(shape, d1, "pos")], shape, sp=self.pick([" ./ ", "./"]))
        if op == "kron":
            (s1, s2) = splits[int(self.rng.integers(len(splits)))]
            return self.kron(g(s1, d1), g(s2, d1))
        if op == "T":
            return self.T(g((C, R), d1))
        if op == "func":
            name = self.pick(SMOOTH)
            return self.N("func", [g(shape, min(d1, 2) if name in FAST_GROWING else d1)], shape, name=name,
                          space=" " if r() < 0.1 else "")
        if op == "logsqrt":
            return self.N("func", [g(shape, d1, "pos")], shape, name=self.pick(POSITIVE))
        if op == "epow":
            if r() < 0.5:
                p = self.pick([2, 3, 2, 1, 0])
                return self.N("epow", [g(shape, d1)], shape, p=p,
                              ptext=str(p) if r() < 0.8 else "{" + str(p) + "}",
                              sp=self.pick([" .^ ", ".^"]))
            if r() < 0.85:
                p, txt = self.pick([(0.5, "0.5"), (-1.0, "-1"), (1.5, "1.5"), (-0.5, "(-0.5)"),
                                    (-2.0, "-2"), (0.5, "(1/2)")])
                return self.N("epow", [g(shape, d1, "pos")], shape, p=p, ptext=txt,
                              sp=self.pick([" .^ ", ".^"]))
            return self.N("epow", [g(shape, d1, "pos"), self.exponent_node()], shape,
                          sp=self.pick([" .^ ", ".^"]))
        if op == "bcast":
            s, M = g(SCALAR, d1), g(shape, d1)
            return self.add(s, M) if r() < 0.6 else self.add(M, s)
        if op == "inv":
            return self.N("inv", [g(shape, d1, "inv")], shape, sp=self.pick(INV_SP),
                          chain=r() < 0.3)
        if op == "invT":
            return self.N("invT", [g(shape, d1, "inv")], shape, sp=self.pick(INVT_SP))
        if op == "mpow":
            k = int(self.pick([2, 2, 3, 4, 0, 1]))
            sp = self.pick(["^k", "^k", "^{k}", "^(k)"])
            if k in (2, 3) and r() < 0.3:
                sp = {2: "²", 3: "³"}[k]
            return self.N("mpow", [g(shape, d1)], shape, k=k, sp=sp)
        if op == "diagm":
            return self.N("diagm", [g((R, ()), d1)], shape)
        if op == "addI":
            I = self.identity(R, bare=r() < (0.2 if self.mode == "D" else 0.6))
            M = g(shape, d1)
            return self.add(I, M) if r() < 0.5 else self.add(M, I)
        if op == "diagv":
            return self.N("diagv", [g((R, R), d1)], shape)
        if op == "softmax":
            return self.N("afunc", [g(shape, d1)], shape, name="softmax")
        if op == "vec":
            opts2 = [((R, ()), 1), (((), R), 1)]
            if len(R) == 2:
                opts2.append((((R[0],), (R[1],)), 3))
            sh = _weighted(self.rng, [(w, s) for s, w in opts2])
            return self.N("vec", [g(sh, d1)], shape)
        if op == "Kvec":
            m, n = (R[0],), (R[1],)
            if r() < 0.5:
                m, n = n, m
            return self.mul(self.Kmat(m, n), self.N("vec", [g((m, n), d1)], (R, ())))
        raise AssertionError(op)


def _subsets(t):
    out = [()]
    for x in t:
        out = out + [tuple(sorted(s + (x,))) for s in out]
    return out


def _minus(t, s):
    t = list(t)
    for x in s:
        t.remove(x)
    return tuple(t)


# ============================================================================ examples


class Example:
    """One fuzz case: the text, its variable, declarations and the operation."""

    def __init__(self, text, wrt, symbols, op="diff", shapes=None, props=None, tree=None,
                 gen=None, mode="A"):
        self.text = text
        self.wrt = wrt
        self.symbols = symbols          # declarations passed to matcalc
        self.op = op                    # 'diff' or 'hessian'
        self.shapes = shapes            # name -> (kind, (rows, cols)) concrete
        self.props = props or {}        # name -> set of value requirements
        self.tree = tree                # this module's tree (None for hand-written cases)
        self.gen = gen
        self.mode = mode
        self.unit = 1.0                 # the scale of f's values (a huge constant scales f)

    @classmethod
    def from_text(cls, text, wrt, symbols, op="diff", needs=None, sizes=None):
        """A hand-written case; every symbol declared with its sizes: numbers, or names
        that `sizes` gives numbers (default: 3, 4, 5, 2 in order of appearance)."""
        shapes = {}
        sizes_of = dict(sizes or {})

        def size(t):
            t = t.strip()
            if t.isdigit():
                return int(t)
            if t not in sizes_of:
                sizes_of[t] = next(v for v in (3, 4, 5, 2, 6, 7) if v not in sizes_of.values())
            return sizes_of[t]
        for name, decl in symbols.items():
            m = re.fullmatch(r"\s*(\w+)\s*(?:\((.*)\))?\s*", decl)
            kind = m.group(1)
            sizes = [size(s) for s in m.group(2).split(",")] if m.group(2) else []
            if kind == "scalar":
                shape = (1, 1)
            elif kind == "vector":
                shape = (sizes[0], 1)
            elif kind == "matrix":
                shape = (sizes[0], sizes[1])
            else:
                shape = (sizes[0], sizes[0])
            shapes[name] = (kind, shape)
        props = {k: set([v] if isinstance(v, str) else v) for k, v in (needs or {}).items()}
        return cls(text, wrt, dict(symbols), op, shapes, props)

    def describe(self):
        return {"expr": self.text, "wrt": self.wrt, "symbols": self.symbols, "op": self.op,
                "needs": {k: sorted(v) for k, v in self.props.items() if v}}

    def __repr__(self):
        return f"Example({self.text!r}, wrt={self.wrt!r}, symbols={self.symbols!r}, op={self.op!r})"


def _declaration(gen, sym):
    kind, (R, C) = sym.kind, sym.shape
    if kind == "scalar":
        return "scalar"
    mode = gen.mode
    if mode == "C":
        if kind in ("vector", "matrix"):
            return None if gen.rng.random() < 0.7 else kind
        return kind
    if mode == "D" and kind in ("vector", "matrix") and not gen.declared.setdefault(
            sym.name, gen.rng.random() < 0.25):
        return None
    if mode in ("B", "D"):
        def nm(d):
            return gen.size_names.get(d[0], str(d[0])) if len(d) == 1 else None
        if kind == "vector":
            return f"vector({nm(R)})" if nm(R) else "vector"
        if kind == "matrix":
            return f"matrix({nm(R)},{nm(C)})" if nm(R) and nm(C) else "matrix"
        return f"{kind}({nm(R)})" if nm(R) else kind
    if kind == "vector":
        return f"vector({dsize(R)})"
    if kind == "matrix":
        return f"matrix({dsize(R)},{dsize(C)})"
    return f"{kind}({dsize(R)})"


def example_from_tree(gen, tree, op):
    names = sym_names(tree) | {gen.var}
    shapes, symbols = {}, {}
    for name in sorted(names):
        s = gen.syms[name]
        shapes[name] = (s.kind, shape_size(s.shape))
        dcl = _declaration(gen, s)
        if name == gen.var and dcl is None:
            dcl = s.kind
        if dcl is not None:
            symbols[name] = dcl
    # a size name that no declared symbol binds cannot be evaluated: use the number
    bound = set()
    for dcl in symbols.values():
        bound.update(re.findall(r"[A-Za-z_]\w*", dcl.partition("(")[2]))
    for n in tree.walk():
        if n.op == "In" and gen.mode == "D":
            continue        # I(n) with n unbound: sized by what it meets, n a name the user wrote
        if n.a.get("names") and not {t for t in n.a["names"] if not t.isdigit()} <= bound:
            n.a["text"] = n.a["ntext"]
    props = props_of(tree)
    ex = Example(render(tree), gen.var, symbols, op, shapes, dict(props), tree, gen, gen.mode)
    if tree.op == "mul" and "unit" in tree.kids[0].a:
        ex.unit = tree.kids[0].a["unit"]
    if gen.mode == "D":
        # an I(n) whose n no symbol's size decides cannot be evaluated (n is not known):
        # the number instead
        loose = _loose_names(ex)
        if loose:
            for n in tree.walk():
                if n.op == "In" and set(n.a.get("names", ())) & loose:
                    n.a["text"] = n.a["ntext"]
            ex.text = render(tree)
    return ex


def _loose_names(ex):
    """The size names of I(n) that no equation ties to a symbol's sizes."""
    dims, _, syms = requirements(ex)
    parent = {}

    def find(u):
        while parent.get(u, u) != u:
            u = parent[u]
        return u
    for a, b in dims.eqs:
        us = a[1] + b[1]
        for u in us[1:]:
            parent[find(u)] = find(us[0])
    anchored = {find(u) for r, c in syms.values() for u in r[1] + c[1]}
    return {name for name, m in dims.named.items()
            if m[1] and find(m[1][0]) not in anchored}


def generate(seed, depth=4):
    """The example for this seed (a sequence of ints or an int)."""
    rng = np.random.default_rng(seed)
    mode = _weighted(rng, [(55, "A"), (20, "B"), (13, "C"), (12, "D")])
    npool = _weighted(rng, [(2, 1), (5, 2), (3, 3)])
    pool = sorted(int(x) for x in rng.choice(BASE_SIZES, size=npool, replace=False))
    gen = Gen(rng, mode, pool, depth)
    # the variable
    vk = _weighted(rng, [(20, "scalar"), (33, "vector"), (47, "matrix")])
    if vk == "scalar":
        vshape, kind = SCALAR, "scalar"
    elif vk == "vector":
        vshape, kind = (gen.dim(), ()), "vector"
    else:
        kind = _weighted(rng, [(45, "matrix"), (20, "symmetric"), (17, "spd"), (18, "diagonal")])
        n = gen.dim()
        vshape = (n, n) if kind != "matrix" or rng.random() < 0.35 else (n, gen.dim())
    gen.var = gen.new_sym(vshape, kind=kind)
    # the function
    fk = _weighted(rng, [(60, "scalar"), (15, "col"), (19, "matrix"), (6, "row")])
    fshape = {"scalar": SCALAR, "col": (gen.dim(), ()), "matrix": (gen.dim(), gen.dim()),
              "row": ((), gen.dim())}[fk]
    op = "hessian" if fk == "scalar" and rng.random() < 0.25 else "diff"
    if op == "hessian":
        gen.var_bias = 0.8      # (so that f is more often nonlinear in the variable)
    tree = gen.gen(fshape, depth)
    if rng.random() < 0.98:
        tree = _ensure_var(gen, tree, rng)
    if rng.random() < 0.04:
        # a huge or tiny constant scaling f (its values, and the derivative's, with it)
        c, unit = gen.constant(_weighted(rng, [(2, "1e300"), (3, "1e-300"), (1, "exp(700)"),
                                               (1, "exp(-700)")]))
        c.a["unit"] = unit
        tree = gen.mul(c, tree)
    if op == "hessian" and rng.random() < 0.5:
        # f nonlinear in the variable more often: f g, f², sin(f), ...
        how = _weighted(rng, [(3, "mul"), (2, "sq"), (2, "func")])
        if how == "mul":
            tree = gen.mul(tree, _ensure_var(gen, gen.gen(SCALAR, max(depth - 2, 1)), rng))
        elif how == "sq":
            tree = gen.N("spow", [tree], SCALAR, p=2, ptext=gen.pick(["2", "²", "{2}"]))
        else:
            tree = gen.N("func", [tree], SCALAR, name=gen.pick(BOUNDED))
    return example_from_tree(gen, tree, op)


def _ensure_var(gen, tree, rng):
    """The tree with the variable in it: n -> n ± (something with the variable) at a
    free node when it does not occur."""
    if gen.var in sym_names(tree):
        return tree
    free = [n for n in tree.walk() if n.req is None and n.op != "num" and not n.a.get("fixed")]
    n = free[int(rng.integers(len(free)))] if free else tree
    return _replace(tree, n, gen.add(n, gen.connect(n.shape)))


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
    if props & {"pdiag", "zeros"} and kind != "scalar" and not props & {"pos", "inv", "posdet"}:
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
    m, n = shape
    if kind == "scalar":
        if "pos" in props:
            return float(rng.uniform(0.5, 1.5))
        return float(rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 1.5))
    if kind == "vector":
        if "pos" in props:
            return rng.uniform(0.5, 1.5, m)
        return rng.standard_normal(m)
    wc = props & {"inv", "posdet"}
    if kind == "diagonal":
        d = rng.uniform(0.5, 2.0, n)
        if "posdet" not in props and "pos" not in props:
            d = d * rng.choice([-1.0, 1.0], n) if "inv" in props else rng.standard_normal(n)
        return np.diag(d)
    if kind == "spd":
        if "pos" in props:
            return _pos_posdef(rng, n)
        q = _orth(rng, n)
        return q @ np.diag(rng.uniform(0.5, 2.0, n)) @ q.T
    if kind == "symmetric":
        if "pos" in props:
            return _pos_posdef(rng, n) if wc else (lambda b: (b + b.T) / 2)(rng.uniform(0.5, 1.5, (n, n)))
        if wc:
            q = _orth(rng, n)
            lam = rng.uniform(0.5, 2.0, n)
            if "posdet" not in props:
                lam = lam * rng.choice([-1.0, 1.0], n)
            return q @ np.diag(lam) @ q.T
        g = rng.standard_normal((n, n))
        return (g + g.T) / 2
    # a general matrix
    if wc:
        if "pos" in props:
            return _pos_posdef(rng, n)
        q1, q2 = _orth(rng, n), _orth(rng, n)
        if "posdet" in props and np.linalg.det(q1) * np.linalg.det(q2) < 0:
            q1[:, 0] = -q1[:, 0]
        return q1 @ np.diag(rng.uniform(1.0, 2.0, n)) @ q2.T
    if "pos" in props:
        return rng.uniform(0.5, 1.5, (m, n))
    return rng.standard_normal((m, n))


def draw_values(ex, rng):
    return {name: draw_value(rng, kind, shape, ex.props.get(name, ()))
            for name, (kind, shape) in ex.shapes.items()}


def direction(rng, kind, value):
    if kind == "scalar":
        return 1.0
    v = rng.standard_normal(np.shape(value))
    if kind in ("symmetric", "spd"):
        v = (v + v.T) / 2
    elif kind == "diagonal":
        v = np.diag(np.diag(v))
    return v


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


def vecF(a):
    a = np.asarray(a, dtype=float)
    return a.reshape(-1, order="F") if a.ndim == 2 else a.reshape(-1)


# ============================================================================ the new user
#
# A user picks sizes for the symbols knowing only what the expression requires: vec(A)ᵀ
# vec(B) needs A and B to have as many entries, not one shape.  This module reads those
# requirements from its own tree (never from matcalc.shapes): every dimension is a
# monomial over size unknowns, each operation adds equations between monomials, and a
# random solution gives each symbol its sizes.  The engine must accept values of those
# sizes (else "valid values rejected"), its answers there must be right, and their
# printed forms must read back.

class Dims:
    """Size unknowns and the equations between monomials (coef, (unknown, ...))."""

    def __init__(self):
        self.count = 0
        self.named = {}          # a size name the user wrote -> its unknown
        self.eqs = []

    def fresh(self):
        self.count += 1
        return (1, (self.count,))

    def name(self, text):
        text = text.strip()
        if text.isdigit():
            return (int(text), ())
        if text not in self.named:
            self.named[text] = self.fresh()
        return self.named[text]

    def eq(self, a, b):
        if a != b:
            self.eqs.append((a, b))


ONE = (1, ())


def mono_mul(a, b):
    return (a[0] * b[0], tuple(sorted(a[1] + b[1])))


def _decl_dims(dims, decl, kind):
    """(rows, cols) monomials of a symbol from its declaration (None: undeclared)."""
    sizes = []
    if decl:
        m = re.fullmatch(r"\s*(\w+)\s*(?:\((.*)\))?\s*", decl)
        if m.group(2):
            sizes = [dims.name(s) for s in m.group(2).split(",")]
    if kind == "scalar":
        return ONE, ONE
    if kind == "vector":
        return (sizes[0] if sizes else dims.fresh()), ONE
    if kind == "matrix":
        return tuple(sizes) if len(sizes) == 2 else (dims.fresh(), dims.fresh())
    n = sizes[0] if sizes else dims.fresh()
    return n, n


def _size_args(text):
    """'I(3)' -> ['3'], 'K(m,n)' -> ['m', 'n'], 'I' -> []."""
    inner = text.partition("(")[2].rstrip(")")
    return [s for s in inner.split(",") if s.strip()]


def requirements(ex):
    """(Dims, node shapes, symbol shapes) for the example's tree: what the expression
    itself requires of the sizes, as read from this module's tree."""
    dims = Dims()
    syms = {}
    for name, (kind, _) in ex.shapes.items():
        syms[name] = _decl_dims(dims, ex.symbols.get(name), kind)
    shapes = {}

    def sc(n):
        return is_scalar(n.shape)

    def go(n):
        if id(n) in shapes:
            return shapes[id(n)]
        ks = [go(k) for k in n.kids]
        op, a = n.op, n.a
        if op == "sym":
            out = syms[a["name"]]
        elif op == "num":
            out = (ONE, ONE)
        elif op in ("I", "In"):
            args = _size_args(a.get("text", "I"))
            s = dims.name(args[0]) if args else dims.fresh()
            out = (s, s)
        elif op == "K":
            m, k = (dims.name(t) for t in _size_args(a["text"]))
            s = mono_mul(m, k)
            out = (s, s)
            shapes[("K", id(n))] = (m, k)
        elif op in ("add", "had", "ediv"):
            x, y = n.kids
            if sc(x) and not sc(y):
                out = ks[1]
            elif sc(y) and not sc(x):
                out = ks[0]
            else:
                dims.eq(ks[0][0], ks[1][0])
                dims.eq(ks[0][1], ks[1][1])
                out = ks[0]
        elif op in ("neg", "func", "div"):
            out = ks[0]
        elif op == "mul":
            x, y = n.kids
            if sc(x):
                out = ks[1] if not sc(y) else (ONE, ONE)
            elif sc(y):
                out = ks[0]
            else:
                dims.eq(ks[0][1], ks[1][0])
                out = (ks[0][0], ks[1][1])
        elif op == "kron":
            out = (mono_mul(ks[0][0], ks[1][0]), mono_mul(ks[0][1], ks[1][1]))
        elif op == "T":
            out = (ks[0][1], ks[0][0])
        elif op in ("inv", "invT", "mpow"):
            dims.eq(ks[0][0], ks[0][1])
            out = ks[0]
        elif op in ("det", "logdet", "tr"):
            if not sc(n.kids[0]):
                dims.eq(ks[0][0], ks[0][1])
            out = (ONE, ONE)
        elif op in ("sum", "norm", "specnorm", "absbar", "spow"):
            out = (ONE, ONE)
        elif op == "afunc":                 # softmax(column) is a column; logsumexp a scalar
            if n.a["name"] == "softmax":
                dims.eq(ks[0][1], ONE)
                out = ks[0]
            else:
                out = (ONE, ONE)
        elif op == "epow":
            out = ks[0]
        elif op == "vec":
            out = (mono_mul(ks[0][0], ks[0][1]), ONE)
        elif op == "diagm":
            out = (ks[0][0], ks[0][0])
        elif op == "diagv":
            dims.eq(ks[0][0], ks[0][1])
            out = (ks[0][0], ONE)
        else:
            raise AssertionError(op)
        if n.req in ("inv", "posdet") and not sc(n):
            # the domain: what must be invertible is square (and so is each factor of a
            # product that the generator made invertible factor by factor)
            dims.eq(out[0], out[1])
        shapes[id(n)] = out
        return out
    go(ex.tree)
    return dims, shapes, syms


def solve_sizes(dims, rng, choices=(2, 3, 4, 5), tries=60):
    """A random assignment {unknown: size >= 2} satisfying every equation (None if the
    random search finds none)."""
    unknowns = list(range(1, dims.count + 1))
    for _ in range(tries):
        val = {}
        ok = True
        while ok:
            progress = False
            for a, b in dims.eqs:
                free = [u for u in a[1] + b[1] if u not in val]
                if len(set(free)) != 1:
                    continue
                u = free[0]
                # coefA * prod(A) = coefB * prod(B), u appearing ka times in A, kb in B
                ka, kb = a[1].count(u), b[1].count(u)
                pa = a[0] * math.prod(val[x] for x in a[1] if x != u)
                pb = b[0] * math.prod(val[x] for x in b[1] if x != u)
                k = ka - kb
                if k == 0:
                    if pa != pb:
                        ok = False
                        break
                    continue
                num, den = (pb, pa) if k > 0 else (pa, pb)
                if num % den:
                    ok = False
                    break
                q = num // den
                r = int(round(q ** (1.0 / abs(k))))
                if r < 2 or r ** abs(k) != q:
                    ok = False
                    break
                val[u] = r
                progress = True
            if not ok:
                break
            if progress:
                continue
            free = [u for u in unknowns if u not in val]
            if not free:
                break
            val[free[int(rng.integers(len(free)))]] = int(rng.choice(choices))
        if not ok:
            continue
        if all(_mono(a, val) == _mono(b, val) for a, b in dims.eqs):
            return val
    return None


def _mono(m, val):
    out = m[0]
    for u in m[1]:
        out *= val[u]
    return out


class Sizes:
    """The concrete sizes of a solution, for this module's evaluator: I's side and K's
    (m, n) by node."""

    def __init__(self, shapes, val):
        self.shapes, self.val = shapes, val

    def rows(self, n):
        return _mono(self.shapes[id(n)][0], self.val)

    def K(self, n):
        m, k = self.shapes[("K", id(n))]
        return _mono(m, self.val), _mono(k, self.val)


def new_user_shapes(ex, rng):
    """(symbol shapes {name: (kind, (rows, cols))}, Sizes) that a user may choose, drawn
    from the expression's own requirements; None when it has no freedom (every size
    fixed by declarations) or no solution was found."""
    if ex.tree is None:
        return None
    dims, shapes, syms = requirements(ex)
    if dims.count == 0:
        return None
    val = solve_sizes(dims, rng)
    if val is None:
        return None
    out = {}
    for name, (kind, _) in ex.shapes.items():
        r, c = syms[name]
        out[name] = (kind, (_mono(r, val), _mono(c, val)))
    return out, Sizes(shapes, val)


# ============================================================================ the property


class Timeout(BaseException):
    pass


class deadline:
    """Raise Timeout after `seconds` (main thread only; a no-op elsewhere)."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.armed = False

    def __enter__(self):
        try:
            self.old = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self.armed = True
        except (ValueError, AttributeError):
            pass
        return self

    @staticmethod
    def _fire(signum, frame):
        raise Timeout()

    def __exit__(self, *exc):
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.old)
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
    """The derivative at 0 of t -> F(t), fourth-order central differences."""
    return (-F(2 * h) + 8 * F(h) - 8 * F(-h) + F(-2 * h)) / (12 * h)


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
        return Outcome("crashed", "timeout", f"no answer within {time_limit} s")


def tree_symbols(tree):
    """Every symbol of a typed matcalc tree with its kind and size names."""
    from .expr import symbols_of
    from .shapes import kind_string
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
        from .printing import to_latex
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
            failures.append(_refused("evaluate", e))
            tried += 1
            continue
        if not _finite(f0):
            continue
        tried += 1
        out = _check_point(ex, values, f0, ctx, rng)
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
    from .printing import to_latex
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
        return (np.eye(n * n) + _commutation(n, n)) / 2
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
        if n.op == "func" and n.a["name"] in ("sin", "cos") and id(n.kids[0]) in memo:
            v = np.asarray(memo[id(n.kids[0])], dtype=float)
            if v.size and float(np.max(np.abs(v))) > limit:
                return True
    return False


def _vseed(seed):
    return (seed if isinstance(seed, tuple) else (seed,)) + (7919,)


# ============================================================================ shrinking


def _replace(tree, target, new):
    memo = {}

    def go(n):
        if n is target:
            return new
        if id(n) in memo:
            return memo[id(n)]
        if not n.kids:
            return n
        kids = [go(k) for k in n.kids]
        out = n.copy(kids) if any(a is not b for a, b in zip(kids, n.kids)) else n
        memo[id(n)] = out
        return out
    return go(tree)


def _same_failure(ex, out, seeds):
    for s in seeds:
        o = check_example(ex, seed=s)
        if o.status == out.status and o.sig == out.sig:
            return o
    return None


def _size(tree):
    return len(render(tree))


def shrink(ex, out, budget=400, seconds=120.0):
    """A smaller example that fails the same way (same status and failure class)."""
    if ex.tree is None or ex.gen is None:
        return ex, out
    gen = ex.gen
    seeds = [_vseed(0), (1, 2, 3), (4, 5, 6)]
    t0 = time.time()
    tries = 0
    best, best_out = ex, out
    improved = True
    while improved and tries < budget and time.time() - t0 < seconds:
        improved = False
        for cand in _candidates(best, gen):
            if tries >= budget or time.time() - t0 >= seconds:
                break
            if _size(cand.tree) > _size(best.tree) or (
                    _size(cand.tree) == _size(best.tree) and cand.text == best.text
                    and cand.symbols == best.symbols):
                continue
            tries += 1
            o = _same_failure(cand, out, seeds[:2])
            if o is not None:
                best, best_out = cand, o
                improved = True
                break
    return best, best_out


def _candidates(ex, gen):
    tree = ex.tree
    nodes = list(tree.walk())
    var = gen.syms[gen.var]

    def mk(t):
        gen.var = ex.wrt
        return example_from_tree(gen, t, ex.op)

    # whole subtrees by one of their children, or by a leaf of the same shape
    for n in nodes:
        if n.a.get("fixed"):
            continue
        for k in n.kids:
            if k.shape == n.shape and (n.req is None or k.req == n.req):
                yield mk(_replace(tree, n, k))
        if n.op in ("sym", "num"):
            continue
        leaves = []
        if n.shape == var.shape and gen.compatible(var, n.req):
            leaves.append(gen.symnode(gen.var, n.req))
        if is_scalar(n.shape):
            leaves.append(Node("num", (), SCALAR, text="2"))
        others = [s.name for s in gen.syms.values() if s.shape == n.shape and s.name != gen.var
                  and gen.compatible(s, n.req)]
        for name in others[:2]:
            leaves.append(gen.symnode(name, n.req))
        if n.shape[0] == () and n.shape[1] != ():
            leaves.append(Node("T", [gen.symnode(gen.pick_sym((n.shape[1], ()), n.req), n.req)],
                               n.shape, n.req, sp="^T"))
        elif not others:
            try:
                leaves.append(gen.symnode(gen.new_sym(n.shape, n.req, kind=None if n.shape[0] != n.shape[1]
                                                       or is_scalar(n.shape) or n.shape[1] == ()
                                                       else "spd" if n.req == "posdet" else "matrix"),
                                          n.req))
            except Exception:
                pass
        for leaf in leaves:
            yield mk(_replace(tree, n, leaf))
    # spellings to the plainest one
    plain = {"T": "^T", "inv": "^-1", "invT": "^-T", "det": "det", "logdet": "logdet", "tr": "tr",
             "had": " .* ", "kron": " ⊗ ", "mul": " "}
    for n in nodes:
        if n.op in plain and n.a.get("sp") not in (None, plain[n.op]):
            m = n.copy()
            m.a = dict(n.a, sp=plain[n.op])
            yield mk(_replace(tree, n, m))
        if n.a.get("paren") or n.a.get("chain") or n.a.get("space"):
            m = n.copy()
            m.a = {k: v for k, v in n.a.items() if k not in ("paren", "chain", "space")}
            yield mk(_replace(tree, n, m))
    # structured kinds to plain matrices
    for name in sorted(sym_names(tree)):
        s = gen.syms[name]
        if name != gen.var and s.kind in ("symmetric", "spd", "diagonal"):
            new = gen.new_sym(s.shape, kind="matrix")
            def swap(n, name=name, new=new):
                return n.op == "sym" and n.a["name"] == name
            t = tree
            for n in [n for n in t.walk() if swap(n)]:
                t = _replace(t, n, gen.symnode(new, n.req))
            yield mk(t)


# ============================================================================ the run


def _work(args):
    i, seed, depth = args
    s = (seed, i)
    try:
        ex, out, skipped = run_seed(s, depth)
    except Exception as e:  # the harness itself must never die
        return i, "crashed", "harness:" + type(e).__name__, traceback.format_exc(), None, 0
    return i, out.status, out.sig, out.detail, ex.describe(), skipped


def _shrink_work(args):
    i, seed, depth = args
    try:
        ex, out, _ = run_seed((seed, i), depth)
        sx, so = shrink(ex, out)
        return i, dict(sx.describe(), detail=so.detail)
    except Exception:
        return i, {"error": traceback.format_exc()}


SHRINK_PER_CLASS = 2    # failures shrunk per (status, failure class): the rest are alike


def run(n, seed=0, depth=4, jobs=None, shrink_failures=True, progress=None):
    """Check n examples; returns (counts, failures, unsupported causes).  The first
    SHRINK_PER_CLASS failures of each class are shrunk."""
    jobs = jobs or min(os.cpu_count() or 1, 8)
    counts = collections.Counter()
    failures = []
    unsupported = collections.Counter()
    skipped = 0
    tasks = [(i, seed, depth) for i in range(n)]
    pool = None
    if jobs > 1 and n > 20:
        import multiprocessing as mp
        pool = mp.get_context("fork").Pool(jobs)
    try:
        if pool is not None:
            results = list(_consume(pool.imap_unordered(_work, tasks, chunksize=8), n, progress))
        else:
            results = list(_consume(map(_work, tasks), n, progress))
        for i, status, sig, detail, info, sk in sorted(results, key=lambda r: r[0]):
            skipped += sk
            counts[status] += 1
            if status == "unsupported":
                unsupported[sig] += 1
            elif status in FAILURES:
                failures.append({"index": i, "status": status, "sig": sig, "detail": detail,
                                 "example": info, "shrunk": None})
        if shrink_failures and failures:
            per = collections.Counter()
            pick = []
            for f in failures:
                per[f["status"], f["sig"]] += 1
                if per[f["status"], f["sig"]] <= SHRINK_PER_CLASS:
                    pick.append((f["index"], seed, depth))
            shrunk = dict((pool.imap_unordered if pool is not None and len(pick) > 1 else map)(
                _shrink_work, pick))
            for f in failures:
                f["shrunk"] = shrunk.get(f["index"])
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    counts["skipped"] = skipped
    return counts, failures, unsupported


def _consume(it, n, progress):
    t0 = time.time()
    for k, r in enumerate(it, 1):
        if progress and (k % 500 == 0 or k == n):
            progress.write(f"  {k}/{n} in {time.time() - t0:.0f} s\n")
            progress.flush()
        yield r


def _group_key(f):
    detail = (f.get("shrunk") or {}).get("detail") or f["detail"]
    detail = re.sub(r"array\(.*", "", detail, flags=re.S)
    detail = re.sub(r"'[^']*'|[-+]?\d[\d.e+-]*", "#", detail)
    return f["status"], f["sig"], detail[:60]


def _print_failure(f):
    ex = f["example"]
    print(f"{f['status'].upper()} #{f['index']} [{f['sig']}] {ex['op']} wrt {ex['wrt']}: {ex['expr']}")
    print(f"    symbols {ex['symbols']}  needs {ex['needs']}")
    print(f"    {f['detail']}")
    sh = f.get("shrunk")
    if sh and "expr" in sh:
        print(f"    shrunk: {sh['op']} wrt {sh['wrt']}: {sh['expr']}   symbols {sh['symbols']}"
              f"  needs {sh['needs']}")
        print(f"            {sh['detail']}")


def figure(n, counts):
    return (f"fuzz {n}: correct {counts['correct']}, unsupported {counts['unsupported']}, "
            f"wrong {counts['wrong']}, crashed {counts['crashed']}, rejected {counts['rejected']}, "
            f"read-back failures {counts['readback']}")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m matcalc.fuzz",
                                 description="Fuzz matcalc's derivatives against finite differences.")
    ap.add_argument("n", type=int, nargs="?", default=1000, help="number of examples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    ap.add_argument("--no-shrink", action="store_true", help="do not shrink failures")
    ap.add_argument("--save", help="write the failures (and their shrunk forms) as JSON")
    ap.add_argument("--show", type=int, default=None, metavar="I",
                    help="print example I of this seed and its outcome, and exit")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    if a.show is not None:
        ex, out, _ = run_seed((a.seed, a.show), a.depth)
        print(json.dumps(ex.describe(), ensure_ascii=False))
        print(out)
        return 0
    t0 = time.time()
    counts, failures, unsupported = run(a.n, a.seed, a.depth, a.jobs, not a.no_shrink,
                                        progress=sys.stderr if a.verbose else None)
    if a.save:
        with open(a.save, "w", encoding="utf-8") as fh:
            json.dump({"n": a.n, "seed": a.seed, "depth": a.depth, "counts": dict(counts),
                       "failures": failures, "unsupported": dict(unsupported)}, fh,
                      ensure_ascii=False, indent=1)
    if a.verbose:
        for f in failures:
            _print_failure(f)
    else:
        # one line group per kind of failure, with its smallest shrunk example
        groups = collections.OrderedDict()
        for f in failures:
            groups.setdefault(_group_key(f), []).append(f)
        for key, fs in groups.items():
            best = min(fs, key=lambda f: len((f.get("shrunk") or {}).get("expr") or f["example"]["expr"]))
            print(f"{len(fs)} x", end=" ")
            _print_failure(best)
    if unsupported:
        print("unsupported causes:")
        for msg, c in unsupported.most_common():
            print(f"  {c:5d}  {msg}")
    if a.verbose:
        print(f"regenerated (f not finite at any point): {counts['skipped']}; "
              f"{time.time() - t0:.1f} s")
    print(figure(a.n, counts))
    return 0 if not any(counts[s] for s in FAILURES) else 1


if __name__ == "__main__":
    sys.exit(main())
