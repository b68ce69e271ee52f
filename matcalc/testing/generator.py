"""The generator: random well-typed expressions over the whole input language."""
import collections
import re
from fractions import Fraction

import numpy as np

from matcalc.operators import ARRAY_FUNCTIONS, ELEMENTWISE_RECORDS, MATRIX_FUNCTIONS, MATRIX_RECORDS, SPECTRAL
from matcalc.parse import FUNC_ALIASES
from .tree import BASE_SIZES, Node, SCALAR, _replace, dim_mul, dsize, is_scalar, render, shape_size, sym_names
from .sizes import requirements


# ============================================================================ the functions


class Function:
    """An elementwise function of the engine as the generator sees it: its name, its
    spellings (the name first, then its aliases), its NumPy evaluator, and what the
    generator needs of its domain, read off the evaluator:

    positive_domain   not defined at negative numbers (log, sqrt)
    singular_at_zero  not defined or not differentiable at 0 (log, sqrt, abs)
    grows_fast        f(30) > 1e6: deep arguments overflow (exp)
    bounded, signed   |f| <= 1 on the line, and takes negative values (sin, cos, tanh)
    periodic          f(x + 2π) = f(x): its value at a huge argument is noise (sin, cos)

    What the record declares (domain "positive", singular at zero, fast growing) holds
    too, where the probe would not see it (log1p below −1, tan near its poles)."""

    def __init__(self, name, spellings, evaluate, record=None):
        self.name, self.spellings, self.evaluate = name, tuple(spellings), evaluate
        with np.errstate(all="ignore"):
            f = evaluate
            line = np.linspace(-50.0, 50.0, 2001)
            y = f(line)
            at0 = float(f(np.array(0.0)))
            self.positive_domain = not np.isfinite(f(np.array(-0.5)))
            slopes = []
            for h in (1e-5, 1e-7):
                slopes += [(float(f(np.array(h))) - at0) / h, (at0 - float(f(np.array(-h)))) / h]
            self.singular_at_zero = not (np.isfinite(at0) and np.all(np.isfinite(slopes))
                                         and np.ptp(slopes) <= 1e-3 * (1.0 + abs(slopes[0])))
            self.grows_fast = bool(f(np.array(30.0)) > 1e6)
            finite = y[np.isfinite(y)]
            self.bounded = bool(np.all(np.isfinite(y)) and np.max(np.abs(y)) <= 1.0)
            self.signed = bool(finite.size and np.min(finite) < 0)
            self.periodic = bool(np.all(np.isfinite(y)) and np.allclose(f(line + 2 * np.pi), y, atol=1e-9))
            self.finite_at_zero = bool(np.isfinite(at0))
        if record is not None:
            self.positive_domain = self.positive_domain or record.domain == "positive"
            self.singular_at_zero = self.singular_at_zero or record.singular_at_zero
            self.grows_fast = self.grows_fast or record.fast_growing

    def __repr__(self):
        return f"<Function {self.name}>"


_FUNCTIONS = {}


def engine_functions():
    """Every elementwise function of the engine, by each of its spellings (an alias maps
    to its function's record), in the engine's order.  The one place where the fuzzer
    reads the engine's function list: the operator records (matcalc.operators), with the
    aliases of matcalc.parse.FUNC_ALIASES; each record as often as its fuzz_weight says."""
    if not _FUNCTIONS:
        for record in ELEMENTWISE_RECORDS:
            if record.fuzz_weight == 0:
                continue
            name = record.name
            aliases = [a for a, target in FUNC_ALIASES.items() if target == name]
            rec = Function(name, [name] + aliases, record.evaluator(), record)
            for s in rec.spellings:
                _FUNCTIONS[s] = rec
    return _FUNCTIONS


def spellings(*, names=True, aliases=True, **props):
    """The spellings of the engine's functions that have these properties (in the
    engine's order, each alias right after its function's name): their names, their
    aliases, or both."""
    out = []
    for s, rec in engine_functions().items():
        if (names if s == rec.name else aliases) and all(getattr(rec, k) == v for k, v in props.items()):
            out.append(s)
    return out


def the_function(**props):
    """The name of the first of the engine's functions with these properties (a template
    that needs, say, a bounded positive function)."""
    names = spellings(aliases=False, **props)
    if not names:
        raise LookupError(f"the engine has no elementwise function with {props}")
    return names[0]


# ---------------------------------------------------------------------------- value requirements


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
        return engine_functions()[a["name"]].singular_at_zero or sink
    if op == "epow":
        return i == 1 or _risky_power(n) or sink
    if op in ("ediv", "div"):
        return i == 1 or sink
    if op in ("absbar", "spow", "norm1"):
        return True
    if op == "mul":
        other = n.kids[1 - i]
        return sink and is_scalar(other.shape)
    if op in ("add", "neg", "T", "had", "kron", "vec", "diagm", "diagv"):
        return sink
    return False



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
        self.hessian = False    # the example is a Hessian (no spectral functions then)

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
        if req in ("pos", "inv", "posdet", "nearid", "small"):
            # a domain-keeping composite (1 + M .* M, I + c MᵀM, ...): its own nodes are
            # fixed (the shrinker keeps them), the sub-expressions it was built from not
            self._subs.append([])
            if req == "pos":
                n = self.gen_pos_s(d) if is_scalar(shape) else self.gen_pos_a(shape, d)
            elif req == "nearid":
                n = self.gen_near_identity(shape, d)
            elif req == "small":
                n = self.gen_small(shape, d)
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
            (1, "tr1"), (3, "det"), (5, "logdet"), (6, "sum"), (7, "norm"),
            (7, "func"), (5, "logsqrt"), (1, "absbar"), (4, "ipow"), (3, "fpow"), (1, "sympow"),
            (1.0, "kron"), (SPECTRAL["norm1"].fuzz_weight * 0.3, "norm1"),
        ]
        if not self.hessian:
            # the spectral functions (CONTRACT §5.1) but in Hessians, whose second derivative
            # (of an eigen- or singular vector) the engine refuses by design; ‖x‖₁'s exists
            opts += [(0.3, "specnorm"), (SPECTRAL["nuclear"].fuzz_weight * 0.3, "nuclear"),
                     (SPECTRAL["lambda_max"].fuzz_weight * 0.3, "lambda_max"),
                     (SPECTRAL["lambda_min"].fuzz_weight * 0.3, "lambda_min")]
        if self.composite:
            opts += [(1.5, "vecdot"), (0.5, "Kform"), (4, "vecpair"), (2, "kronin")]
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
        if op == "kronin":
            return self.kron_in_scalar(d)
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
        if op == "nuclear":
            return self.N("nuclear", [g((self.dim(), self.dim()), d1)], S)
        if op == "norm1":
            return self.N("norm1", [g(self.any_shape(), d1)], S)
        if op in ("lambda_max", "lambda_min"):
            return self.N("lambda", [self.symmetric_form(d1, op == "lambda_max")], S, name=op)
        if op == "func":
            name = self.pick(spellings(aliases=False, positive_domain=False))
            arg = g(S, min(d1, 2) if engine_functions()[name].grows_fast else d1)
            return self.N("func", [arg], S, name=name, space=" " if r() < 0.1 else "")
        if op == "logsqrt":
            # (each name twice as often as an alias)
            name = self.pick(spellings(aliases=False, positive_domain=True) * 2
                             + spellings(names=False, positive_domain=True))
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

    def symmetric_leaf(self, k, kinds=("symmetric", "spd", "diagonal")):
        """A symbol of size k×k of a symmetric kind: the variable (often), one drawn
        before, or a new one."""
        var = self.syms.get(self.var)
        if var is not None and var.shape == (k, k) and var.kind in kinds and self.r() < self.var_bias:
            name = self.var
        else:
            cands = [s.name for s in self.syms.values() if s.shape == (k, k) and s.kind in kinds]
            name = self.pick(cands) if cands and self.r() < 0.6 else \
                self.new_sym((k, k), kind=self.pick(list(kinds)))
        out = self.symnode(name)
        out.a["fixed"] = True
        return out

    def symmetric_form(self, d, top):
        """A matrix symmetric by its form (CONTRACT §5.1: lambda_max's argument): a
        symmetric symbol, A + t B, and for λ_max (top) XᵀX and Xᵀ P X with P spd, whose
        largest eigenvalue is simple at generic points (their smallest may be a repeated
        0: XᵀX of a wide X)."""
        k = self.dim()
        forms = [(3, "leaf"), (3, "pencil")] + ([(3, "gram"), (2, "congruence")] if top else [])
        form = _weighted(self.rng, forms)
        if form == "leaf" or d <= 0:
            out = self.symmetric_leaf(k)
        elif form == "pencil":
            t = self.gen(SCALAR, max(d - 1, 0))
            out = self.add(self.symmetric_leaf(k), self.mul(t, self.symmetric_leaf(k)))
            out.kids[1].a["fixed"] = True
        else:
            m = self.dim()
            x = self.gen((m, k), d - 1)
            xt = self.T(x)
            xt.a["fixed"] = True
            if form == "gram":
                out = self.mul(xt, x)
            else:
                out = self.mul(self.mul(xt, self.symmetric_leaf(m, ("spd",))), x)
                out.kids[0].a["fixed"] = True
        # the form's own nodes stay as they are (_ensure_var adds to free nodes only): a
        # term added to one of them would make it not symmetric
        out.a["fixed"] = True
        return out

    # ------------------------------------------------------------------ the classes
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

    def kron_in_scalar(self, d):
        """A Kronecker product inside a scalar function (issue 13): uᵀ (P ⊗ Q) v,
        tr(A (P ⊗ Q)), and tr(P ⊗ Q) of non-square factors whose product is square; the
        variable often one of the factors (or both), of non-square sizes."""
        d0 = 0 if d <= 1 else self.pick([0, 0, 1])
        var = self.syms.get(self.var)
        vs = var.shape if var is not None and var.kind == "matrix" and len(var.shape[0]) == 1 \
            and len(var.shape[1]) == 1 else None

        def g(shape, depth):
            if vs == shape and self.r() < 0.7:
                return self.symnode(self.var)
            return self.gen(shape, depth)
        form = self.pick(["inner", "inner", "trA", "trPQ"])
        if form == "trPQ":
            k1, k2 = vs if vs and self.r() < 0.7 else (self.dim(), self.dim())
            P, Q = g((k1, k2), d0), g((k2, k1), d0)
            if self.r() < 0.5:
                P, Q = Q, P
            return self.N("tr", [self.kron(P, Q)], SCALAR, sp=self.pick(TR_SP[:3]))
        p1, p2, q1, q2 = (self.dim() for _ in range(4))
        if vs and self.r() < 0.8:
            if self.r() < 0.5:
                p1, p2 = vs
            if self.r() < 0.5:
                q1, q2 = vs
        K = self.kron(g((p1, p2), d0), g((q1, q2), d0))
        R, C = K.shape
        if form == "inner":
            return self.mul(self.mul(self.T(g((R, ()), d0)), K), g((C, ()), d0))
        return self.N("tr", [self.mul(g((C, R), d0), K)], SCALAR, sp=self.pick(TR_SP[:3]))

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
        singular = spellings(singular_at_zero=True) + ["-1", "0.5", "-2", "(1/2)"]
        smooth = spellings(singular_at_zero=False, positive_domain=False) + ["2", "3"]
        if reader != "sum":
            fn = self.pick(singular) if self.r() < 0.8 else self.pick(smooth)
        elif diagonal:
            # (zero entries off the diagonal: a function defined at 0)
            fn = self.pick(spellings(singular_at_zero=True, finite_at_zero=True) + ["0.5", "(1/2)"] + smooth)
        else:
            fn = self.pick(smooth)
        req = "pdiag" if fn in singular else "zeros"
        x = self.symnode(name, req)
        if self.r() < 0.2:
            x = self.T(x, req)
        if fn[0].isalpha():
            f = Node("func", [x], shape, name=fn, zok=True)
        else:
            f = Node("epow", [x], shape, p=float(Fraction(fn.strip("()"))),
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
                                                  name=self.pick(spellings(aliases=False, bounded=True, signed=True))), "+")
        if op == "1+sigmoid":
            return self.add(one, self.N("func", [g(S, d1)], S, name=the_function(bounded=True, signed=False)), "+")
        if op == "softplus":
            return self.add(self.num("0.5"), self.N("func", [g(S, d1)], S, name=the_function(positive_domain=False, signed=False, bounded=False,
                                                                     grows_fast=False, singular_at_zero=False)), "+")
        if op == "exp":
            return self.N("func", [g(S, min(d1, 1))], S, name=the_function(grows_fast=True))
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
            return self.N("func", [g(S, d1, "pos")], S,
                          name=the_function(positive_domain=True, finite_at_zero=True))
        if op == "det":
            k = self.dim()
            return self.N("det", [g((k, k), d1, "posdet")], S, sp=self.pick(["det", "|"]))
        if op == "1+abs":
            return self.add(one, self.N("func", [g(S, d1)], S, name=the_function(singular_at_zero=True, positive_domain=False)), "+")
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
                                                  name=self.pick(spellings(aliases=False, bounded=True, signed=True))), "+")
        if op == "1+sigmoid":
            return self.add(one, self.N("func", [g(shape, d1)], shape, name=the_function(bounded=True, signed=False)), "+")
        if op == "softplus":
            return self.add(self.num("0.5"), self.N("func", [g(shape, d1)], shape, name=the_function(positive_domain=False, signed=False, bounded=False,
                                                                     grows_fast=False, singular_at_zero=False)), "+")
        if op == "exp":
            return self.N("func", [g(shape, min(d1, 1))], shape, name=the_function(grows_fast=True))
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
            return self.add(one, self.N("func", [g(shape, d1)], shape, name=the_function(singular_at_zero=True, positive_domain=False)), "+")
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

    # ------------------------------------------------------------------ matrix functions
    # (CONTRACT §5.1) expm of a small matrix; logm, sqrtm, X^p of a matrix near I (its
    # eigenvalues far from the closed negative real axis): the arguments are composites
    # that keep that domain, and their symbols are drawn for it ('small', 'nearid')
    POWERS = [(Fraction(1, 3), "(1/3)"), (Fraction(-1, 2), "(-1/2)"), (Fraction(3, 2), "1.5"),
              (Fraction(3, 10), "0.3"), (Fraction(2, 3), "{2/3}"), (Fraction(-1, 3), "(-1/3)")]

    def matrix_function(self, name, shape, d):
        rec = MATRIX_FUNCTIONS[name]
        arg = self.gen(shape, min(d, 2), _domain(rec))
        if name == "powm":
            p, ptext = self.pick(self.POWERS)
            return self.N("mfunc", [arg], shape, name=name, p=p, ptext=ptext)
        if name == "sqrtm" and self.r() < 0.3:
            return self.N("mfunc", [arg], shape, name=name, p=Fraction(1, 2),
                          ptext=self.pick(["(1/2)", "0.5"]))
        return self.N("mfunc", [arg], shape, name=name)

    def frechet(self, shape, d):
        """dexpm(X, E) …: X of the function's domain, E any matrix of X's shape."""
        rec = MATRIX_RECORDS[int(self.rng.integers(len(MATRIX_RECORDS)))]
        # X free of the variable: d of L_f(X(θ), E) would need the second Fréchet
        # derivative, refused by design (CONTRACT §5.1); E carries the variable
        for _ in range(4):
            X = self.gen(shape, min(d, 1), _domain(rec))
            if not any(n.op == "sym" and n.a.get("name") == self.var for n in X.walk()):
                break
        else:
            X = self.identity(shape[0], bare=True)
        for n in X.walk():              # (and _ensure_var puts no variable into it later)
            n.a["fixed"] = True
        E = self.gen(shape, d)
        if rec.name == "powm":
            p, ptext = self.pick(self.POWERS)
            return self.N("frechet", [X, E], shape, name=rec.name, p=p,
                          ptext=ptext.strip("(){}"))
        return self.N("frechet", [X, E], shape, name=rec.name)

    def gen_near_identity(self, shape, d):
        R, C = shape
        assert R == C
        if d <= 0 or self.r() < 0.3:
            return self.leaf(shape, "nearid")
        g, d1 = self.gen, d - 1
        op = _weighted(self.rng, [(4, "I+cMtM"), (2, "I+cM"), (1, "T"), (1, "scale"), (1, "expm")])
        I = self.identity(R, bare=self.r() < 0.5)
        if op == "I+cMtM":
            k = self.dim() if self.r() < 0.7 else R
            M = g((k, R), min(d1, 1))
            c = self.num(self.pick(["0.1", "0.2", "0.5"]))
            term = self.mul(c, self.mul(self.T(M), M))
            return self.add(I, term, "+") if self.r() < 0.7 else self.add(term, I, "+")
        if op == "I+cM":
            c = self.num(self.pick(["0.2", "0.5"]))
            return self.add(I, self.mul(c, self.leaf(shape, "small")), self.pick(["+", "-"]))
        if op == "T":
            return self.T(g(shape, d1, "nearid"))
        if op == "scale":
            return self.mul(self.num(self.pick(["2", "0.5", "3"])), g(shape, d1, "nearid"))
        return self.N("mfunc", [g(shape, min(d1, 1), "small")], shape, name="expm")

    def gen_small(self, shape, d):
        if d <= 0 or self.r() < 0.35:
            return self.leaf(shape, "small")
        g, d1 = self.gen, d - 1
        op = _weighted(self.rng, [(3, "scale"), (1, "skew"), (1, "add"), (1, "T")])
        c = self.num(self.pick(["0.1", "0.2", "0.05"]))
        if op == "scale":
            return self.mul(c, g(shape, min(d1, 1)))
        if op == "skew":
            M = g(shape, 0)
            return self.mul(c, self.N("add", [M, self.T(M)], shape, sp="-", paren=True))
        if op == "add":
            return self.add(g(shape, d1, "small"), g(shape, d1, "small"))
        return self.T(g(shape, d1, "small"))

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
            if not self.hessian:
                # the matrix functions but in Hessians: the second derivative of f(X(θ))
                # needs the second Fréchet derivative, refused by design (CONTRACT §5.1)
                opts.append((0.6, "frechet"))
                opts += [(r.fuzz_weight, "mf:" + r.name) for r in MATRIX_RECORDS]
        if col:
            opts += [(2, "diagv"), (1.5, "vec"), (ARRAY_FUNCTIONS["softmax"].fuzz_weight, "softmax")]
            if self.composite and len(R) == 2:
                opts.append((1.5, "Kvec"))
        op = _weighted(self.rng, opts)
        if op == "huge":
            return self.huge(shape, d)
        if op.startswith("mf:"):
            return self.matrix_function(op[3:], shape, d1)
        if op == "frechet":
            return self.frechet(shape, d1)
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
            name = self.pick(spellings(aliases=False, positive_domain=False))
            return self.N("func", [g(shape, min(d1, 2) if engine_functions()[name].grows_fast else d1)], shape, name=name,
                          space=" " if r() < 0.1 else "")
        if op == "logsqrt":
            return self.N("func", [g(shape, d1, "pos")], shape, name=self.pick(spellings(positive_domain=True)))
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


def _domain(rec):
    """What the argument of a matrix function must be: near I (a principal branch), small
    (a fast-growing function), or anything."""
    return "nearid" if rec.principal else "small" if rec.fast_growing else None


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
        gen.hessian = True
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
            tree = gen.N("func", [tree], SCALAR, name=gen.pick(
                spellings(aliases=False, positive_domain=False, singular_at_zero=False, grows_fast=False)))
    return example_from_tree(gen, tree, op)


def _ensure_var(gen, tree, rng):
    """The tree with the variable in it: n -> n ± (something with the variable) at a
    free node when it does not occur."""
    if gen.var in sym_names(tree):
        return tree
    free = [n for n in tree.walk() if n.req is None and n.op != "num" and not n.a.get("fixed")]
    n = free[int(rng.integers(len(free)))] if free else tree
    return _replace(tree, n, gen.add(n, gen.connect(n.shape)))
