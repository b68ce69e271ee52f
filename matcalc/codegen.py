"""Code generation: a derivative as a readable Python module for NumPy, JAX or PyTorch.

    d = matcalc.diff("tr(X^T A X)", wrt="X")
    print(d.to_code())                      # source of f_and_grad(X, A)
    fn = matcalc.compile("tr(X^T A X)", wrt="X")
    value, grad = fn(X, A)                  # or fn(X=X, A=A), or fn({"X": X, "A": A})

The module defines ``f_and_grad(<symbols>)`` returning (value of f, derivative), and for
a Hessian also ``hessian(<symbols>)`` and ``f_grad_hessian(<symbols>)``.  The variable
comes first among the parameters, the other symbols follow in order of appearance.
Values are what ``Derivative.evaluate`` takes and returns: floats for scalars, 1-D
arrays for vectors, 2-D arrays for matrices; a gradient has the variable's shape.

How the code is made (one lowering per node type, like ``numeric.EVAL``):

* the trees of f and of its derivatives are hash-consed, and every distinct node is
  computed once into a temporary: f shares its subexpressions with the derivative;
* a product chain is associated by dynamic programming on estimated sizes (vectors
  first), and a sub-product already computed, or its transpose, costs nothing;
* an inverse that only multiplies becomes ``solve``; one that is needed on its own (or
  multiplies more than two right-hand sides) is computed once with ``inv``;
* ``diag(v) M`` is the broadcast ``v[:, None] * M``, a commutation matrix is a
  reshape, a Kronecker product that multiplies a vector or matrix is applied as
  (A ⊗ B) vec(X) = vec(B X Aᵀ), never formed;
* ``tr(P Q)`` is a sum of elementwise products (the cyclic rotation and the split are
  chosen by cost), ``sum(P Q)`` goes through row and column sums, ``||e||²`` is one dot
  product, ``log(1 + u)`` is ``log1p(u)`` and ``sigmoid(u)`` reuses ``exp(u)``;
* ``A ⊗ I`` and ``I ⊗ A`` are written into a zero matrix through a strided view, never
  multiplied out;
* where an intermediate matrix is made and used row by row (U Vᵀ - X in the factorisation
  gradient: its norm, and 2 (U Vᵀ - X) V), the NumPy code also has
  ``_f_and_grad_in_blocks``, which makes and uses it a block of rows at a time, each
  block staying in the cache (the fusion XLA does under jit; see ``rowblocks``), and
  ``f_and_grad`` calls it when that intermediate is over about 512 KiB.

Symbol names are made safe Python identifiers: keywords, builtins and library names
(``lambda``, ``sum``, ``np``) get a trailing underscore, other characters are NFKC-
normalised (as Python does) or replaced.  The source is generated from the parsed tree,
never from user text, so ``compile_function`` may exec it.
"""
import builtins
import keyword
import math
import unicodedata
from fractions import Fraction

from . import expr as E
from . import rowblocks
from .errors import MatcalcError
from .simplify import is_symmetric, split_coef, tidy, transpose

TARGETS = ("numpy", "jax", "torch")

# estimated size of a named dimension, for choosing the order of products
_EST = 1000.0
_LONG_CHAIN = 24          # longer chains are folded from the thin end, without the O(k³) search
_COMMENT_WIDTH = 64


# ----------------------------------------------------------------------------- names

_LIB_NAMES = {"np", "numpy", "jnp", "jax", "torch", "math", "f_and_grad", "hessian",
              "f_grad_hessian"}
RESERVED = (set(keyword.kwlist) | set(getattr(keyword, "softkwlist", ())) | set(dir(builtins))
            | _LIB_NAMES)


def python_name(name):
    """A safe Python identifier for a symbol name (not yet made unique)."""
    n = unicodedata.normalize("NFKC", str(name))
    if not n.isidentifier():
        n = "".join(ch if (ch == "_" or ch.isalnum()) else "_" for ch in n)
        if not n.isidentifier():
            n = "".join(ch if (ch.isascii() and (ch.isalnum() or ch == "_")) else "_" for ch in n)
        if not n or not (n[0].isalpha() or n[0] == "_"):
            n = "s_" + n
    if n.startswith("_"):
        n = n.lstrip("_") or "s"
    if n in RESERVED or keyword.iskeyword(n):
        n = n + "_"
    return n


class Names:
    """Unique identifiers within one generated module or function."""

    def __init__(self, used=()):
        self.used = set(used)

    def take(self, want):
        name, i = want, 2
        while name in self.used or name in RESERVED or keyword.iskeyword(name):
            name = f"{want}_{i}"
            i += 1
        self.used.add(name)
        return name

    def copy(self):
        return Names(self.used)


# ----------------------------------------------------------------------------- helpers


def _rep(shape):
    """How a value of this (rows, cols) is held: "S" a scalar, "V" a 1-D array (a column
    or a row), "M" a 2-D array."""
    r, c = shape
    if r == 1 and c == 1:
        return "S"
    if r == 1 or c == 1:
        return "V"
    return "M"


def _est(s):
    if isinstance(s, int):
        return float(s)
    if isinstance(s, E.SizeProd):
        out = float(s[0])
        for _ in s[1:]:
            out *= _EST
        return out
    return _EST


def _lit(v):
    """A Python literal for a number (a Fraction or float)."""
    f = float(v)
    if math.isinf(f) or math.isnan(f):
        return "float('%s')" % ("nan" if math.isnan(f) else ("inf" if f > 0 else "-inf"))
    if f == int(f) and abs(f) < 1e15:
        s = f"{int(f)}.0"
    else:
        s = repr(f)
    return f"({s})" if f < 0 else s


def _short(e):
    try:
        s = str(e)
    except Exception:  # noqa: BLE001 - a comment is a courtesy
        return ""
    s = " ".join(s.split())
    if len(s) > _COMMENT_WIDTH:
        s = s[:_COMMENT_WIDTH - 1] + "…"
    return s


def _is_one(e):
    return isinstance(e, E.Num) and e.value == 1


def _atomic(code):
    """Whether code needs no parentheses where an operand goes: a name, an attribute, a
    call or an already parenthesised expression (balanced to the end)."""
    import re
    m = re.match(r"^[\w.]+", code)
    rest = code[m.end():] if m else code
    if not rest:
        return True
    if not rest.startswith("("):
        return False
    depth = 0
    for i, ch in enumerate(rest):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return i == len(rest) - 1 or _atomic_tail(rest[i + 1:])
    return False


def _atomic_tail(tail):
    """.T, .reshape(...) and the like after a balanced call."""
    return tail.startswith(".") and _atomic("x" + tail)


def _inline(code, context, m):
    """code put where the match m stands in context, parenthesised when needed."""
    before = context[:m.start()].rstrip()
    after = context[m.end():].lstrip()
    if _atomic(code) or (before.endswith(("(", ",")) and after.startswith((")", ","))
                         and not after.startswith(").")):
        return code
    return f"({code})"


class V:
    """A lowered value: Python code (a name, a literal or an attribute of a name), how
    it is held (S, V, M) and its shape in the tree (rows, cols)."""
    __slots__ = ("code", "rep", "shape")

    def __init__(self, code, rep, shape):
        self.code, self.rep, self.shape = code, rep, shape

    def __repr__(self):
        return f"V({self.code!r}, {self.rep}, {self.shape})"


# ----------------------------------------------------------------------------- backends


class Backend:
    """The spelling of each operation for one target library."""
    name = "numpy"
    lib = "np"
    imports = ("import numpy as np",)
    float_out = True

    def __init__(self):
        self.helpers = {}

    # -- creation
    def eye(self, n):
        return f"{self.lib}.eye({n})"

    def zeros(self, shape):
        return f"{self.lib}.zeros({shape})"

    def ones(self, shape):
        return f"{self.lib}.ones({shape})"

    def full(self, shape, v):
        return f"{self.lib}.full({shape}, {v})"

    def convert_in(self, name):
        return None

    def to_float(self, code):
        return f"float({code})" if self.float_out else code

    # -- linear algebra
    def L(self, fn):
        return f"{self.lib}.linalg.{fn}"

    def solve(self, a, b):
        return f"{self.L('solve')}({a}, {b})"

    def inv(self, a):
        return f"{self.L('inv')}({a})"

    def det(self, a):
        return f"{self.L('det')}({a})"

    def cholesky(self, a):
        return f"{self.L('cholesky')}({a})"

    def spec_norm(self, a):
        return f"{self.L('norm')}({a}, 2)"

    def matrix_power(self, a, k):
        return f"{self.L('matrix_power')}({a}, {k})"

    def outer(self, a, b):
        return f"{self.lib}.outer({a}, {b})"

    def kron(self, a, b):
        # np.kron is several times slower on a transposed (Fortran-ordered) operand
        if self.name == "numpy":
            a = f"np.ascontiguousarray({a})" if a.endswith(".T") else a
            b = f"np.ascontiguousarray({b})" if b.endswith(".T") else b
        return f"{self.lib}.kron({a}, {b})"

    def scalar(self, code):
        """The code of a scalar temporary (the torch target makes numbers tensors)."""
        return code

    def kron_identity(self, a, n, identity_first):
        """a ⊗ I(n), or I(n) ⊗ a when identity_first, for a matrix a."""
        if self.name != "numpy":
            eye = self.eye(n)
            return self.kron(eye, a) if identity_first else self.kron(a, eye)
        self.helpers["_kron_identity"] = self.KRON_IDENTITY
        return f"_kron_identity({a}, {n}, {identity_first})"

    def trace(self, a):
        return f"{self.lib}.trace({a})"

    def diagonal(self, a):
        return f"{self.lib}.diagonal({a}).copy()"

    def diag(self, v):
        return f"{self.lib}.diag({v})"

    def sum(self, a):
        return f"{self.lib}.sum({a})"

    def sum_axis(self, a, axis):
        return f"{a}.sum({axis})"

    def einsum(self, spec, *args):
        return f"{self.lib}.einsum('{spec}', {', '.join(args)})"

    def vdot(self, a, b, rep):
        if rep == "V":
            return f"{a} @ {b}"
        return f"{self.lib}.vdot({a}, {b})"

    def swapaxes(self, a, i, j):
        return f"{self.lib}.swapaxes({a}, {i}, {j})"

    def power(self, a, p):
        return f"{self.lib}.power({a}, {p})"

    def func(self, name, a):
        if name == "sigmoid":
            self.helpers["_sigmoid"] = self.SIGMOID
            return f"_sigmoid({a})"
        if name == "softplus":
            return f"{self.lib}.logaddexp(0.0, {a})"
        return f"{self.lib}.{name}({a})"

    def log1p(self, a):
        return f"{self.lib}.log1p({a})"

    def sqrt(self, a):
        return f"{self.lib}.sqrt({a})"

    def logdet(self, a):
        self.helpers["_logdet"] = self.LOGDET
        return f"_logdet({a})"

    def commutation(self, m, n):
        self.helpers["_commutation"] = self.COMMUTATION
        return f"_commutation({m}, {n})"

    def spd_inv_logdet(self, a):
        """Code for (inverse, log det) of an spd matrix from one Cholesky factorisation,
        or None where the target has nothing better than inv."""
        self.helpers["_spd_inv_logdet"] = self.SPD_INV
        return f"_spd_inv_logdet({a})"

    def spd_solve(self, a, b):
        self.helpers["_spd_solve"] = self.SPD_SOLVE
        return f"_spd_solve({a}, {b})"

    PRELUDE = """try:  # LAPACK's Cholesky routines, where SciPy is installed (NumPy alone: LU)
    from scipy.linalg import lapack as _lapack
except ImportError:  # pragma: no cover
    _lapack = None"""
    SPD_INV = '''def _spd_inv_logdet(a):
    """(inverse, log det) of a symmetric positive definite a from one Cholesky
    factorisation (half the work of inv); LU where that is not at hand or a is not PD."""
    if _lapack is not None:
        c, info = _lapack.dpotrf(a, lower=False, clean=True)
        if info == 0:
            inv, info = _lapack.dpotri(c, lower=False)
            if info == 0:
                inv = inv + np.triu(inv, 1).T       # LAPACK's layout: .T is C-ordered
                return inv.T, 2.0 * np.sum(np.log(np.diagonal(c)))
    sign, value = np.linalg.slogdet(a)
    return np.linalg.inv(a), (value if sign > 0 else float("nan"))
'''
    SPD_SOLVE = '''def _spd_solve(a, b):
    """a^-1 b for a symmetric positive definite a, by Cholesky (LU where that fails)."""
    if _lapack is not None:
        _, x, info = _lapack.dposv(a, b, lower=False)
        if info == 0:
            return x
    return np.linalg.solve(a, b)
'''

    SIGMOID = '''def _sigmoid(z):
    """The logistic function 1 / (1 + exp(-z)), without overflow."""
    return 0.5 + 0.5 * np.tanh(0.5 * z)
'''
    LOGDET = '''def _logdet(a):
    """log det(a): nan where the determinant is not positive (as log would give)."""
    sign, value = np.linalg.slogdet(a)
    return value if sign > 0 else float("nan")
'''
    KRON_IDENTITY = '''def _kron_identity(a, n, identity_first):
    """a ⊗ I(n), or I(n) ⊗ a, without multiplying out its zeros: a zero matrix (calloc'd
    pages) whose nonzero diagonals are written through a strided view."""
    p, q = a.shape
    if identity_first:               # I(n) ⊗ a: a on the n diagonal blocks
        out = np.zeros((n, p, n, q))
        np.einsum("jajb->jab", out)[...] = a
    else:                            # a ⊗ I(n): a[i, k] times I(n) in block (i, k)
        out = np.zeros((p, n, q, n))
        np.einsum("ajbj->jab", out)[...] = a
    return out.reshape(n * p, n * q)
'''
    COMMUTATION = '''def _commutation(m, n):
    """K(m,n), with K @ vec(X) == vec(X.T) for an m-by-n X (vec stacks columns)."""
    return np.eye(m * n)[np.arange(m * n).reshape(n, m).T.reshape(-1)]
'''


class JaxBackend(Backend):
    name = "jax"
    PRELUDE = None

    def spd_inv_logdet(self, a):
        return None

    def spd_solve(self, a, b):
        return self.solve(a, b)

    lib = "jnp"
    imports = ("import numpy as np", "import jax", "import jax.numpy as jnp", "",
               "# float64 throughout, as NumPy (set before any array is made)",
               'jax.config.update("jax_enable_x64", True)')
    float_out = False

    def convert_in(self, name):
        return f"{name} = jnp.asarray({name})"

    def diagonal(self, a):
        return f"jnp.diagonal({a})"

    def func(self, name, a):
        if name in ("sigmoid", "softplus"):
            return f"jax.nn.{name}({a})"
        return f"jnp.{name}({a})"

    SIGMOID = None
    LOGDET = '''def _logdet(a):
    """log det(a): nan where the determinant is not positive (as log would give)."""
    sign, value = jnp.linalg.slogdet(a)
    return jnp.where(sign > 0, value, jnp.nan)
'''
    COMMUTATION = '''def _commutation(m, n):
    """K(m,n), with K @ vec(X) == vec(X.T) for an m-by-n X (vec stacks columns)."""
    return jnp.eye(m * n)[np.arange(m * n).reshape(n, m).T.reshape(-1)]
'''


class TorchBackend(Backend):
    name = "torch"
    PRELUDE = None

    def spd_solve(self, a, b):
        return self.solve(a, b)

    SPD_INV = '''def _spd_inv_logdet(a):
    """(inverse, log det) of a symmetric positive definite a from one Cholesky factorisation."""
    L, info = torch.linalg.cholesky_ex(a)
    if int(info) == 0:
        return torch.cholesky_inverse(L), 2.0 * torch.sum(torch.log(torch.diagonal(L)))
    sign, value = torch.linalg.slogdet(a)
    return torch.linalg.inv(a), torch.where(sign > 0, value, torch.nan)
'''

    lib = "torch"
    imports = ("import torch",)
    float_out = False
    DT = "dtype=torch.float64"

    def convert_in(self, name):
        return f"{name} = torch.as_tensor({name}, {self.DT})"

    def eye(self, n):
        return f"torch.eye({n}, {self.DT})"

    def zeros(self, shape):
        return f"torch.zeros({shape}, {self.DT})"

    def ones(self, shape):
        return f"torch.ones({shape}, {self.DT})"

    def full(self, shape, v):
        return f"{v} * torch.ones({shape}, {self.DT})"

    def spec_norm(self, a):
        return f"torch.linalg.matrix_norm({a}, 2)"

    def kron(self, a, b):
        # torch.kron fails on some strided views (transposes, inv's results)
        return f"torch.kron({a}.contiguous(), {b}.contiguous())"

    def diagonal(self, a):
        return f"torch.diagonal({a}).clone()"

    def vdot(self, a, b, rep):
        if rep == "V":
            return f"torch.dot({a}, {b})"
        return f"torch.sum({a} * {b})"

    def _tensor(self, a):
        """A number as a tensor: torch's functions take no Python floats (sqrt(1.5))."""
        import re
        if re.fullmatch(r"\(?-?[\d.]+(e[-+]?\d+)?\)?", a):
            return f"torch.tensor({a}, {self.DT})"
        return a

    def scalar(self, code):
        # a scalar made of numbers only (2.0 + 0.964..., tanh(2) folded) is a tensor too,
        # so that torch.sqrt and the like take it
        import re
        if not re.search(r"[A-Za-z_]", re.sub(r"\d[eE][-+]?\d", "", code)):
            return f"torch.tensor({code}, {self.DT})"
        return code

    def power(self, a, p):
        return f"torch.pow({self._tensor(a)}, {p})"

    def sqrt(self, a):
        return f"torch.sqrt({self._tensor(a)})"

    def log1p(self, a):
        return f"torch.log1p({self._tensor(a)})"

    def func(self, name, a):
        a = self._tensor(a)
        if name == "sigmoid":
            return f"torch.sigmoid({a})"
        if name == "softplus":
            return f"torch.nn.functional.softplus({a})"
        return f"torch.{name}({a})"

    LOGDET = '''def _logdet(a):
    """log det(a): nan where the determinant is not positive (as log would give)."""
    sign, value = torch.linalg.slogdet(a)
    return torch.where(sign > 0, value, torch.nan)
'''
    COMMUTATION = '''def _commutation(m, n):
    """K(m,n), with K @ vec(X) == vec(X.T) for an m-by-n X (vec stacks columns)."""
    return torch.eye(m * n, dtype=torch.float64)[torch.arange(m * n).reshape(n, m).T.reshape(-1)]
'''


BACKENDS = {"numpy": Backend, "jax": JaxBackend, "torch": TorchBackend}


# ----------------------------------------------------------------------------- interning


class Interner:
    """Hash-consing: structurally equal nodes become one object."""

    def __init__(self):
        self.table = {}
        self.by_id = {}

    def __call__(self, e):
        k = id(e)
        hit = self.by_id.get(k)
        if hit is not None and hit[0] is e:
            return hit[1]
        args = e.args
        if args:
            new = tuple(self(a) for a in args)
            if any(a is not b for a, b in zip(new, args)):
                e2 = e.rebuild(new)
            else:
                e2 = e
        else:
            e2 = e
        out = self.table.setdefault(e2, e2)
        self.by_id[k] = (e, out)
        return out


# ----------------------------------------------------------------------------- chains


class Chain:
    """A product of non-scalar factors, associated by cost (dynamic programming on the
    estimated sizes; a sub-product already computed, or its transpose, is free)."""

    def __init__(self, low, factors):
        self.low = low
        self.f = list(factors)
        self.k = len(self.f)
        self.kind = [low.factor_kind(x) for x in self.f]
        self.dp = {}
        self.keys = {}

    def rows(self, i):
        return self.f[i].shape[0]

    def cols(self, i):
        return self.f[i].shape[1]

    def key(self, i, j):
        k = self.keys.get((i, j))
        if k is None:
            k = E.Mul(tuple(self.f[i:j + 1]))
            self.keys[(i, j)] = k
        return k

    def known(self, i, j):
        return self.low.lookup(self.key(i, j), compute=False) is not None or \
            self.low.lookup_negated(self.f[i:j + 1], compute=False) is not None

    def side_kind(self, i, j):
        return self.kind[i] if i == j else "dense"

    def comb_cost(self, i, s, j):
        lk, rk = self.side_kind(i, s), self.side_kind(s + 1, j)
        r, m, c = _est(self.rows(i)), _est(self.cols(s)), _est(self.cols(j))
        low = self.low
        if lk == "dense" and rk == "dense":
            return r * m * c + r * c
        if rk == "dense":
            return low.op_cost(self.f[i], c, self.key(s + 1, j) if s + 1 < j else self.f[j], "left")
        if lk == "dense":
            return low.op_cost(self.f[j], r, self.key(i, s) if i < s else self.f[i], "right")
        return min(low.materialize_cost(self.f[j]) + low.op_cost(self.f[i], c),
                   low.materialize_cost(self.f[i]) + low.op_cost(self.f[j], r))

    def cost(self, i, j):
        """(cost, split) of the product of factors i..j."""
        hit = self.dp.get((i, j))
        if hit is not None:
            return hit
        if i == j or self.known(i, j):
            out = (0.0, None)
        elif self.k > _LONG_CHAIN:
            # fold from the thin end: right to left when the chain ends in a column
            if self.cols(self.k - 1) == 1 and self.rows(0) != 1:
                s = i
            else:
                s = j - 1
            out = (self.cost(i, s)[0] + self.cost(s + 1, j)[0] + self.comb_cost(i, s, j), s)
        else:
            best = None
            for s in range(i, j):
                left = 0.0 if self.mirrored(i, s, j) else self.cost(i, s)[0]
                c = left + self.cost(s + 1, j)[0] + self.comb_cost(i, s, j)
                if best is None or c < best[0] - 1e-9:
                    best = (c, s)
            out = best
        self.dp[(i, j)] = out
        return out

    def mirrored(self, i, s, j):
        """Whether factors i..s are the transpose of factors s+1..j (xᵀAᵀ and A x):
        the left side is then free once the right one is computed."""
        if s - i != j - s - 1 or self.kind[i] != "dense" or self.kind[j] != "dense":
            return False
        if i == s:
            return transpose(self.f[i]) == self.f[j]
        return transpose(self.key(s + 1, j)) == self.key(i, s)

    def item(self, i):
        if self.kind[i] == "dense":
            return ("dense", self.low.ev(self.f[i]), self.f[i])
        return ("op", self.f[i], self.f[i])

    def lower(self, i, j):
        """('dense', V) or ('op', factor) for the product of factors i..j."""
        if i == j:
            return self.item(i)
        key = self.key(i, j)
        hit = self.low.lookup(key)
        if hit is not None:
            return ("dense", hit, key)
        neg = self.low.lookup_negated(self.f[i:j + 1])
        if neg is not None:
            v = self.low.emit(f"-{neg.code}", neg.rep, (self.rows(i), self.cols(j)), key)
            self.low.memo[key] = v
            return ("dense", v, key)
        s = self.cost(i, j)[1]
        if self.mirrored(i, s, j):
            right = self.lower(s + 1, j)
            lkey = self.key(i, s) if i < s else self.f[i]
            hit = self.low.lookup(lkey)
            if hit is None:
                hit = self.low.T(right[1])
                self.low.memo[lkey] = hit
            left = ("dense", hit, lkey)
        else:
            left, right = self.lower(i, s), self.lower(s + 1, j)
        v = self.low.combine(left, right, key)
        self.low.memo[key] = v
        return ("dense", v, key)

    def value(self):
        kind, v, _ = self.lower(0, self.k - 1)
        return v if kind == "dense" else self.low.ev(v)


# ----------------------------------------------------------------------------- lowering


class Lowerer:
    """Lowers typed trees to Python statements, one temporary per distinct node."""

    def __init__(self, backend, syms, params, names):
        self.B = backend
        self.syms = syms            # name -> typed Sym
        self.params = params        # name -> Python identifier
        self.names = names          # identifiers in use in this function
        self.lines = []             # (target, code, comment)
        self.memo = {}              # node -> V
        self.sizes = {}             # size name -> code
        self.extra_sizes = []       # size names no argument fixes (keyword parameters)
        self.nodes = set()
        self.inv_mat = set()        # bases of inverses computed with inv()
        self.intern = Interner()
        self.neg_cache = {}
        self.reps = {}              # temporary -> S, V, M
        self.ntemp = 0

    # -- analysis -------------------------------------------------------------

    def prepare(self, trees):
        trees = [self.intern(t) for t in trees]
        standalone, chain_uses = set(), {}
        seen = set()
        stack = list(trees)
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            self.nodes.add(n)
            if isinstance(n, E.Mul):
                chain = [f for f in n.items if not f.is_scalar]
                for f in chain:
                    g = f.arg if isinstance(f, E.Transpose) else f
                    if isinstance(g, E.Inverse) and not g.is_scalar:
                        if len(chain) == 1:
                            standalone.add(self.inv_base(g))
                        else:
                            chain_uses.setdefault(self.inv_base(g), set()).add(n)
                        stack.append(g.arg)
                        continue
                    stack.append(f)
                stack.extend(f for f in n.items if f.is_scalar)
                continue
            for a in n.args:
                if isinstance(a, E.Inverse) and not a.is_scalar and not (
                        isinstance(n, E.Transpose)):
                    standalone.add(self.inv_base(a))
                stack.append(a)
        for base, uses in chain_uses.items():
            if len(uses) > 2:
                standalone.add(base)
        self.inv_mat = standalone
        return trees

    def nodes_elsewhere(self, x):
        """The nodes that use x other than through a norm (x itself is needed there)."""
        out = set()
        for n in self.nodes:
            if isinstance(n, (E.Norm, E.Pow)):
                continue
            if any(a is x for a in n.args):
                out.add(x)
                break
        return out

    @staticmethod
    def inv_base(inv):
        a = inv.arg
        return a.arg if isinstance(a, E.Transpose) else a

    # -- emission -------------------------------------------------------------

    def temp(self):
        while True:
            self.ntemp += 1
            name = f"t{self.ntemp}"
            if name not in self.names.used and name not in RESERVED:
                self.names.used.add(name)
                return name

    def emit(self, code, rep, shape, node=None, name=None, comment=None):
        if rep == "S":
            code = self.B.scalar(code)
        target = name or self.temp()
        if comment is None and node is not None:
            comment = _short(node)
        self.lines.append((target, code, comment))
        self.reps[target] = rep
        return V(target, rep, shape)

    def size(self, s):
        """Code for a size (an int, a name bound from an argument's shape, a product)."""
        if isinstance(s, int):
            return str(s)
        if isinstance(s, E.SizeProd):
            parts = ([str(s[0])] if s[0] != 1 else []) + [self.size(x) for x in s[1:]]
            return " * ".join(parts)
        hit = self.sizes.get(s)
        if hit is not None:
            return hit
        src = None
        for name, sym in self.syms.items():
            if sym.is_scalar:
                continue
            p = self.params[name]
            if sym.rows == s:
                src = f"{p}.shape[0]"
                break
            if sym.cols == s:
                src = f"{p}.shape[0]" if sym.rows == 1 else f"{p}.shape[1]"
                break
        if src is None:
            name = self.names.take(python_name(s))
            self.extra_sizes.append((s, name))
            self.sizes[s] = name
            return name
        name = self.names.take(python_name(s))
        self.lines.append((name, src, f"size {s}"))
        self.sizes[s] = name
        return name

    def shape_code(self, shape):
        r, c = shape
        rep = _rep(shape)
        if rep == "V":
            return "(%s,)" % self.size(c if r == 1 else r)
        return f"({self.size(r)}, {self.size(c)})"

    def T(self, v):
        """The transpose of a lowered value (free: a view)."""
        shape = (v.shape[1], v.shape[0])
        if v.rep != "M":
            return V(v.code, v.rep, shape)
        if v.code.endswith(".T") and v.code[:-2].isidentifier():
            return V(v.code[:-2], v.rep, shape)
        return V(f"{v.code}.T", v.rep, shape)

    # -- lookup ---------------------------------------------------------------

    def lookup(self, e, compute=True):
        hit = self.memo.get(e)
        if hit is not None:
            return hit
        if not e.is_scalar:
            try:
                t = transpose(e)
            except Exception:  # noqa: BLE001 - a node the engine's transpose does not know
                t = None
            if t is not None and t is not e:
                hit = self.memo.get(t)
                if hit is not None:
                    v = self.T(hit)
                    self.memo[e] = v
                    return v
        return None

    def ev(self, e):
        hit = self.lookup(e)
        if hit is not None:
            return hit
        if isinstance(e, E.Add) and not e.is_scalar:
            neg = self.lookup_negated((e,))
            if neg is not None:
                v = self.emit(f"-{neg.code}", neg.rep, e.shape, e)
                self.memo[e] = v
                return v
        v = getattr(self, "ev_" + type(e).__name__)(e)
        self.memo[e] = v
        return v

    # -- leaves ---------------------------------------------------------------

    def ev_Num(self, e):
        return V(_lit(e.value), "S", E.SCALAR)

    def ev_Sym(self, e):
        return V(self.params[e.name], _rep(e.shape), e.shape)

    def ev_Identity(self, e):
        if e.n == 1:
            return V("1.0", "S", E.SCALAR)
        return self.emit(self.B.eye(self.size(e.n)), "M", e.shape, e)

    def ev_Zero(self, e):
        rep = _rep(e.shape)
        if rep == "S":
            return V("0.0", "S", E.SCALAR)
        return self.emit(self.B.zeros(self.shape_code(e.shape)), rep, e.shape, e)

    def ev_Commutation(self, e):
        return self.emit(self.B.commutation(self.size(e.m), self.size(e.n)), "M", e.shape, e)

    def ev_Fill(self, e):
        v = self.ev(e.value)
        rep = _rep(e.shape)
        if rep == "S":
            return v
        return self.emit(self.B.full(self.shape_code(e.shape), v.code), rep, e.shape, e)

    # -- sums and products ----------------------------------------------------

    def ev_Add(self, e):
        shape = e.shape
        rep = _rep(shape)
        terms, fills = [], []
        for t in e.items:
            if E.is_zero(t):
                continue
            if isinstance(t, E.Fill) and rep != "S":
                fills.append(self.ev(t.value).code)
                continue
            c, rest = split_coef(t)
            if rest is None:
                if rep != "S":
                    fills.append(_lit(c))
                else:
                    terms.append((Fraction(1), V(_lit(c), "S", E.SCALAR)))
                continue
            if c != 1 and c != -1 and isinstance(rest, E.Mul) and any(
                    f.is_scalar and not isinstance(f, E.Num) for f in rest.items):
                # 2 (s x): one pass, (2 s) x, with the coefficient among the scalars
                terms.append((Fraction(1 if c > 0 else -1),
                              self.ev(self.intern(E.Mul((E.Num(abs(c)),) + rest.items)))))
                continue
            terms.append((c, self.ev(rest)))
        if not terms:
            if not fills:
                return self.ev(E.Zero(*shape)) if rep != "S" else V("0.0", "S", E.SCALAR)
            return self.emit(self.B.full(self.shape_code(shape), " + ".join(fills)), rep, shape, e)
        parts = []
        if fills and terms[0][0] < 0:         # 1 - x rather than -x + 1
            parts.append(" + ".join(fills))
            fills = []
        for c, v in terms:
            mag = abs(c)
            body = v.code if mag == 1 else f"{_lit(mag)} * {v.code}"
            if not parts:
                parts.append(body if c > 0 else f"-{body}")
            else:
                parts.append(f" + {body}" if c > 0 else f" - {body}")
        for f in fills:
            parts.append(f" + {f}")
        if len(terms) == 1 and not fills and terms[0][0] == 1:
            return terms[0][1]
        return self.emit("".join(parts), rep, shape, e)

    def scale_code(self, coef, scal):
        """Code for the product of a numeric coefficient and scalar factors (None for 1);
        it can stand before ``* x``."""
        num, den = [], []
        for s in scal:
            if isinstance(s, E.Pow) and isinstance(s.exp, E.Num) and s.exp.value < 0:
                p = -s.exp.value
                base = s.base if p == 1 else E.Pow(s.base, E.Num(p))
                den.append(self.ev(self.intern(base)).code)
            else:
                num.append(self.ev(s).code)
        factors = list(num)
        if abs(coef) != 1 or not num:
            factors.insert(0, _lit(abs(coef)))
        code = " * ".join(factors)
        if den:
            code = f"{code} / " + (den[0] if len(den) == 1 else "(" + " * ".join(den) + ")")
        if coef < 0:
            code = f"-{code}" if (len(factors) == 1 and not den) else f"-({code})"
        return None if code == "1.0" else code

    def scaled(self, scale, v, node):
        """scale * v as a new temporary (scale from scale_code)."""
        if scale == "-1.0":
            code = f"-{v.code}"
        elif scale.startswith("1.0 / "):
            code = f"{v.code} / {scale[6:]}"
        else:
            code = f"{scale} * {v.code}"
        return self.emit(code, v.rep, v.shape, node)

    def flatten_chain(self, items, scal):
        """Chain factors of a product: nested products flattened (their scalars moved to
        scal), identities dropped, small matrix powers unrolled, inverse transposes
        normalised, and Kronecker / commutation / diag(vec) products with vec(X)
        rewritten to the vec of a smaller product."""
        out = []
        for f in items:
            if f.is_scalar:
                scal.append(f)
            elif isinstance(f, E.Mul):
                out.extend(self.flatten_chain(f.items, scal))
            elif isinstance(f, E.Identity):
                continue
            elif isinstance(f, E.MatPow) and f.k <= 4:
                out.extend([self.intern(f.arg)] * f.k)
            elif isinstance(f, E.Transpose) and isinstance(f.arg, E.Inverse):
                out.append(self.intern(E.Inverse(transpose(f.arg.arg))))
            elif isinstance(f, E.Transpose) and isinstance(f.arg, E.Mul):
                out.extend(self.flatten_chain((transpose(f.arg),), scal))
            else:
                out.append(f)
        return self._vec_rewrites(out)

    def _vec_rewrites(self, fs):
        changed = True
        while changed and len(fs) > 1:
            changed = False
            for i in range(len(fs) - 1):
                a, b = fs[i], fs[i + 1]
                new = None
                if isinstance(b, E.Vec) and not b.arg.is_scalar:
                    X = b.arg
                    if isinstance(a, E.Kron) and len(a.items) == 2:
                        A, B = a.items
                        if (A.shape[1], B.shape[1]) == (X.shape[1], X.shape[0]):
                            new = E.Vec(E.Mul((B, X, transpose(A))))
                    elif isinstance(a, E.Commutation) and (a.m, a.n) == X.shape:
                        new = E.Vec(transpose(X))
                    elif isinstance(a, E.DiagMat) and isinstance(a.arg, E.Vec) and a.arg.arg.shape == X.shape:
                        new = E.Vec(E.Hadamard((a.arg.arg, X)))
                elif isinstance(a, E.Transpose) and isinstance(a.arg, E.Vec) and not a.arg.arg.is_scalar:
                    X = a.arg.arg
                    if isinstance(b, E.Kron) and len(b.items) == 2:
                        A, B = b.items
                        if (A.shape[0], B.shape[0]) == (X.shape[1], X.shape[0]):
                            new = E.Transpose(E.Vec(E.Mul((transpose(B), X, A))))
                    elif isinstance(b, E.Commutation) and (b.n, b.m) == X.shape:
                        new = E.Transpose(E.Vec(transpose(X)))
                if new is not None:
                    fs = fs[:i] + [self.intern(new)] + fs[i + 2:]
                    changed = True
                    break
        return fs

    def ev_Mul(self, e):
        scal = []
        chain = self.flatten_chain(e.items, scal)
        coef = Fraction(1)
        rest = []
        for s in scal:
            if isinstance(s, E.Num):
                coef *= s.value
            else:
                rest.append(s)
        if coef == 0:
            return self.ev(E.Zero(*e.shape)) if not e.is_scalar else V("0.0", "S", E.SCALAR)
        if not chain:
            if e.shape != E.SCALAR:           # a product of identities: I
                chain = [self.intern(E.Identity(e.shape[0]))]
            else:
                code = self.scale_code(coef, rest)
                if code is None:
                    return V("1.0", "S", E.SCALAR)
                if len(rest) == 1 and coef == 1 and code == self.ev(rest[0]).code:
                    return self.ev(rest[0])
                return self.emit(code, "S", E.SCALAR, e)
        scale = self.scale_code(coef, rest)
        if scale is not None and len(chain) > 1:
            # scale a thin factor rather than a wide result (2 x yᵀ: scale x)
            out_size = _est(e.shape[0]) * _est(e.shape[1])
            sizes = [(_est(f.shape[0]) * _est(f.shape[1]), i) for i, f in enumerate(chain)
                     if self.factor_kind(f) == "dense"]
            if sizes:
                small, i = min(sizes)
                if small < out_size:
                    scaled = self.intern(E.Mul(tuple(scal) + (chain[i],)))
                    chain = chain[:i] + [scaled] + chain[i + 1:]
                    scale = None
        if scale is not None and len(chain) == 1 and isinstance(chain[0], E.Kron) \
                and _rep(e.shape) == "M":
            # c (A ⊗ B): scale the smaller item, not the product
            items = list(chain[0].items)
            sizes = [(_est(t.shape[0]) * _est(t.shape[1]), i) for i, t in enumerate(items)]
            i = min(sizes)[1]
            items[i] = self.intern(E.Mul(tuple(scal) + (items[i],)))
            return self.ev(self.intern(E.Kron(tuple(items))))
        if len(chain) == 1:
            v = self.ev(chain[0])
        else:
            v = Chain(self, chain).value()
        if scale is None:
            return v
        return self.scaled(scale, v, e)

    # -- chain operators ------------------------------------------------------

    def factor_kind(self, f):
        if isinstance(f, E.Inverse) and not f.is_scalar and self.inv_base(f) not in self.inv_mat:
            return "inv"
        if isinstance(f, E.DiagMat) and not f.arg.is_scalar:
            return "diag"
        if isinstance(f, E.Kron) and self._kron_ok(f):
            return "kron"
        if isinstance(f, E.Commutation):
            return "perm"
        if isinstance(f, E.Fill) and (f.rows == 1 or f.cols == 1) and not f.is_scalar:
            return "fill"
        if isinstance(f, E.Add) and self._opsum_ok(f):
            return "opsum"
        if isinstance(f, E.Add) and _rep(f.shape) == "M" and all(
                split_coef(t)[1] is not None and not isinstance(t, (E.Fill, E.Zero)) for t in f.items):
            return "dsum"
        return "dense"

    @staticmethod
    def _kron_ok(f):
        return len(f.items) == 2 and all(isinstance(a, E.Identity) or _rep(a.shape) == "M"
                                         for a in f.items)

    def _opsum_ok(self, f):
        ok = False
        for t in f.items:
            c, rest = split_coef(t)
            if rest is None:
                return False
            if isinstance(rest, E.Identity):
                continue
            k = self.factor_kind(rest)
            if k not in ("diag", "kron", "perm"):
                return False
            ok = True
        return ok

    def dsum_costs(self, f, other, node=None, side="left"):
        """(distributed, formed) costs of a sum of matrices times an array with `other`
        columns: sum of the products (a product already at hand is free), or the sum
        formed first (free if at hand) and multiplied once."""
        n, m = _est(f.shape[0]), _est(f.shape[1])
        dist = 0.0
        for t in f.items:
            rest = split_coef(t)[1]
            if node is not None:
                sub = E.Mul((rest, node)) if side == "left" else E.Mul((node, rest))
                if self.lookup(sub, compute=False) is not None:
                    dist += n * other
                    continue
            dist += n * m * other + n * other
        formed = n * m * other + (0.0 if self.lookup(f, compute=False) is not None else n * m * len(f.items) * 1.5)
        return dist, formed

    def op_cost(self, f, other, node=None, side="left"):
        """Cost of applying operator factor f to an array with `other` columns (or rows)."""
        n = _est(f.shape[0])
        m = _est(f.shape[1])
        kind = self.factor_kind(f)
        if kind == "dsum":
            return min(self.dsum_costs(f, other, node, side))
        if kind == "inv":
            return (2.0 / 3.0) * n ** 3 + 2 * n * n * other
        if kind in ("diag", "perm", "fill"):
            return n * other + m * other
        if kind == "kron":
            A, B = f.items
            pa, qa = _est(A.shape[0]), _est(A.shape[1])
            pb, qb = _est(B.shape[0]), _est(B.shape[1])
            c = 0.0 if isinstance(A, E.Identity) else pa * qa * qb * other
            c += 0.0 if isinstance(B, E.Identity) else pa * pb * qb * other
            return c + pa * pb * other
        if kind == "opsum":
            total = 0.0
            for t in f.items:
                rest = split_coef(t)[1]
                total += n * other if isinstance(rest, E.Identity) else self.op_cost(rest, other)
                total += n * other
            return total
        return n * m * other

    def materialize_cost(self, f):
        n, m = _est(f.shape[0]), _est(f.shape[1])
        if self.factor_kind(f) == "inv":
            return 2 * n ** 3
        if self.factor_kind(f) == "dsum":
            return 0.0 if self.lookup(f, compute=False) is not None else n * m * len(f.items)
        return n * m

    def matmul(self, a, b, key):
        shape = (a.shape[0], b.shape[1])
        rep = _rep(shape)
        if a.rep == "S" or b.rep == "S":
            return self.emit(f"{a.code} * {b.code}", rep, shape, key)
        if a.shape[1] == 1:
            return self.emit(self.B.outer(a.code, b.code), rep, shape, key)
        # Aᵀ x as x @ A (and yᵀ Bᵀ as B @ y): XLA copies a transposed operand first
        if b.rep == "V" and a.rep == "M" and a.code.endswith(".T") and a.code[:-2].isidentifier():
            return self.emit(f"{b.code} @ {a.code[:-2]}", rep, shape, key)
        if a.rep == "V" and b.rep == "M" and b.code.endswith(".T") and b.code[:-2].isidentifier():
            return self.emit(f"{b.code[:-2]} @ {a.code}", rep, shape, key)
        return self.emit(f"{a.code} @ {b.code}", rep, shape, key)

    def combine(self, left, right, key):
        lk, lv, lnode = left
        rk, rv, rnode = right
        if lk == "dense" and rk == "dense":
            return self.matmul(lv, rv, key)
        if lk == "op" and rk == "dense":
            out = self.apply_left(lv, rv, key, rnode)
            return out if out is not None else self.matmul(self.ev(lv), rv, key)
        if lk == "dense":
            out = self.apply_right(rv, lv, key, lnode)
            return out if out is not None else self.matmul(lv, self.ev(rv), key)
        # two operators: form the one whose forming and applying the other costs less
        r, c = _est(lv.shape[0]), _est(rv.shape[1])
        if self.materialize_cost(lv) + self.op_cost(rv, r) < self.materialize_cost(rv) + self.op_cost(lv, c):
            lmat = self.ev(lv)
            out = self.apply_right(rv, lmat, key, lv)
            return out if out is not None else self.matmul(lmat, self.ev(rv), key)
        rmat = self.ev(rv)
        out = self.apply_left(lv, rmat, key, rv)
        return out if out is not None else self.matmul(self.ev(lv), rmat, key)

    def apply_left(self, f, r, key, rnode=None):
        """f @ r for an operator factor f and a lowered array r (None: not handled)."""
        shape = (f.shape[0], r.shape[1])
        rep = _rep(shape)
        kind = self.factor_kind(f)
        if r.rep == "S":
            return None
        if kind == "inv":
            a = self.ev(f.arg)
            if self._spd(f.arg):
                return self.emit(self.B.spd_solve(a.code, r.code), rep, shape, key)
            return self.emit(self.B.solve(a.code, r.code), rep, shape, key)
        if kind == "diag":
            v = self.ev(f.arg)
            if r.rep == "V":
                return self.emit(f"{v.code} * {r.code}", rep, shape, key)
            return self.emit(f"{v.code}[:, None] * {r.code}", rep, shape, key)
        if kind == "perm":
            m, n = self.size(f.m), self.size(f.n)
            if r.rep == "V":
                return self.emit(f"{r.code}.reshape({n}, {m}).T.reshape(-1)", rep, shape, key)
            c = self.size(r.shape[1])
            return self.emit(f"{self.B.swapaxes(f'{r.code}.reshape({n}, {m}, {c})', 0, 1)}"
                             f".reshape({m} * {n}, {c})", rep, shape, key)
        if kind == "kron":
            return self.kron_apply(f.items[0], f.items[1], r, shape, key)
        if kind == "dsum":
            return self.dsum_apply(f, r, key, rnode, "left")
        if kind == "fill":
            v = self.ev(f.value)
            pre = "" if _is_one(f.value) else f"{v.code} * "
            if f.rows == 1:
                if r.rep == "V":
                    return self.emit(f"{pre}{self.B.sum(r.code)}", rep, shape, key)
                return self.emit(f"{pre}{self.B.sum_axis(r.code, 0)}", rep, shape, key)
            return None
        if kind == "opsum":
            return self.opsum_apply(f, r, rnode, "left", rep, shape, key)
        return None

    def apply_right(self, f, l, key, lnode=None):
        """l @ f for an operator factor f and a lowered array l (None: not handled)."""
        shape = (l.shape[0], f.shape[1])
        rep = _rep(shape)
        kind = self.factor_kind(f)
        if l.rep == "S":
            return None
        if kind == "inv":
            a = self.ev(transpose(f.arg))
            if self._spd(f.arg):
                if l.rep == "V":
                    return self.emit(self.B.spd_solve(a.code, l.code), rep, shape, key)
                return self.emit(f"{self.B.spd_solve(a.code, l.code + '.T')}.T", rep, shape, key)
            if l.rep == "V":
                return self.emit(self.B.solve(a.code, l.code), rep, shape, key)
            return self.emit(f"{self.B.solve(a.code, l.code + '.T')}.T", rep, shape, key)
        if kind == "diag":
            v = self.ev(f.arg)
            return self.emit(f"{l.code} * {v.code}", rep, shape, key)
        if kind == "dsum":
            return self.dsum_apply(f, l, key, lnode, "right")
        if kind == "perm":
            m, n = self.size(f.m), self.size(f.n)
            if l.rep == "V":
                return self.emit(f"{l.code}.reshape({m}, {n}).T.reshape(-1)", rep, shape, key)
            r = self.size(l.shape[0])
            return self.emit(f"{self.B.swapaxes(f'{l.code}.reshape({r}, {m}, {n})', 1, 2)}"
                             f".reshape({r}, {m} * {n})", rep, shape, key)
        if kind == "kron":
            A, B = f.items
            At, Bt = self.intern(transpose(A)), self.intern(transpose(B))
            if l.rep == "V":
                return self.kron_apply(At, Bt, l, shape, key)
            out = self.kron_apply(At, Bt, self.T(l), (shape[1], shape[0]), None)
            return self.emit(f"{out.code}.T", rep, shape, key)
        if kind == "fill":
            v = self.ev(f.value)
            pre = "" if _is_one(f.value) else f"{v.code} * "
            if f.cols == 1:
                if l.rep == "V":
                    return self.emit(f"{pre}{self.B.sum(l.code)}", rep, shape, key)
                return self.emit(f"{pre}{self.B.sum_axis(l.code, 1)}", rep, shape, key)
            return None
        if kind == "opsum":
            return self.opsum_apply(f, l, lnode, "right", rep, shape, key)
        return None

    def opsum_apply(self, f, x, xnode, side, rep, shape, key):
        """(Σ c_k T_k) x or x (Σ c_k T_k) for a sum of operators: each term applied on its
        own (reusing a product already computed), then summed."""
        apply = self.apply_left if side == "left" else self.apply_right
        parts = []
        for t in f.items:
            c, rest = split_coef(t)
            if isinstance(rest, E.Identity):
                code = x.code
            else:
                sub = None
                if xnode is not None:
                    sub = self.intern(E.Mul((rest, xnode) if side == "left" else (xnode, rest)))
                hit = self.lookup(sub) if sub is not None else None
                if hit is None:
                    hit = apply(rest, x, sub, None)
                    if sub is not None:
                        self.memo[sub] = hit
                code = hit.code
            parts.append((c, code))
        return self.emit(self._sum_code(parts), rep, shape, key)

    def dsum_apply(self, f, x, key, node, side):
        """(A + B) x as A x + B x where that is cheaper (None: form the sum)."""
        other = _est(x.shape[1] if side == "left" else x.shape[0])
        dist, formed = self.dsum_costs(f, other, node, side)
        if formed <= dist or node is None:
            return None
        parts = []
        for t in f.items:
            c, rest = split_coef(t)
            sub = self.intern(E.Mul((rest, node)) if side == "left" else E.Mul((node, rest)))
            hit = self.lookup(sub)
            if hit is None:
                m = self.ev(rest)
                hit = self.matmul(m, x, sub) if side == "left" else self.matmul(x, m, sub)
                self.memo[sub] = hit
            parts.append((c, hit.code))
        shape = (f.shape[0], x.shape[1]) if side == "left" else (x.shape[0], f.shape[1])
        return self.emit(self._sum_code(parts), _rep(shape), shape, key)

    @staticmethod
    def _sum_code(parts):
        out = []
        for c, code in parts:
            mag = abs(c)
            body = code if mag == 1 else f"{_lit(mag)} * {code}"
            if not out:
                out.append(body if c > 0 else f"-{body}")
            else:
                out.append(f" + {body}" if c > 0 else f" - {body}")
        return "".join(out)

    def kron_apply(self, A, B, r, shape, key):
        """(A ⊗ B) r without forming A ⊗ B: (A ⊗ B) vec(X) = vec(B X Aᵀ)."""
        pa, qa = self.size(A.shape[0]), self.size(A.shape[1])
        pb, qb = self.size(B.shape[0]), self.size(B.shape[1])
        ia, ib = isinstance(A, E.Identity), isinstance(B, E.Identity)
        a = None if ia else self.ev(A)
        b = None if ib else self.ev(B)
        rep = _rep(shape)
        if r.rep == "V":
            x = f"{r.code}.reshape({qa}, {qb})"
            if a is not None:
                x = f"{a.code} @ {x}"
            if b is not None:
                x = f"{x} @ {self.T(b).code}"
            return self.emit(f"({x}).reshape(-1)", rep, shape, key)
        c = self.size(r.shape[1])
        if a is not None:
            t = self.emit(f"({a.code} @ {r.code}.reshape({qa}, {qb} * {c})).reshape({pa}, {qb}, {c})",
                          "M", shape, None, comment="(A ⊗ B) R: A applied")
            x = t.code
        else:
            x = f"{r.code}.reshape({qa}, {qb}, {c})"
        if b is not None:
            x = f"{b.code} @ {x}"
        return self.emit(f"({x}).reshape({pa} * {pb}, {c})", rep, shape, key)

    # -- elementwise ----------------------------------------------------------

    def ev_Hadamard(self, e):
        shape = e.shape
        rep = _rep(shape)
        scal, arrs = [], []
        ident = False
        for t in e.items:
            if isinstance(t, E.Fill):
                scal.append(self.ev(t.value).code)
            elif t.is_scalar:
                scal.append(self.ev(t).code)
            elif isinstance(t, E.Identity):
                ident = True
            else:
                arrs.append(t)
        if ident and rep == "M":
            if not arrs:                        # I .* I .* s: s I
                code = self.B.eye(self.size(shape[0]))
            else:
                rest = arrs[0] if len(arrs) == 1 else self.intern(E.Hadamard(tuple(arrs)))
                d = self.ev(self.intern(E.DiagVec(rest)))
                code = self.B.diag(d.code)
            if scal:
                code = " * ".join(scal) + " * " + code
            return self.emit(code, rep, shape, e)
        if not arrs:
            if rep == "S":
                return self.emit(" * ".join(scal), rep, shape, e)
            return self.emit(self.B.full(self.shape_code(shape), " * ".join(scal)), rep, shape, e)
        codes = scal + [self.ev(t).code for t in arrs]
        return self.emit(" * ".join(codes), rep, shape, e)

    def ev_Kron(self, e):
        items = [t for t in e.items if not (isinstance(t, E.Num) and t.value == 1)]
        if len(items) == 1:
            return self.ev(items[0])
        if (len(items) == 2 and sum(isinstance(t, E.Identity) for t in items) == 1
                and all(t.shape[0] != 1 and t.shape[1] != 1 for t in items)):
            first = isinstance(items[0], E.Identity)
            eye, a = items if first else items[::-1]
            code = self.B.kron_identity(self.ev(a).code, self.size(eye.n), first)
            return self.emit(code, "M", e.shape, e)
        codes = []
        for t in items:
            if isinstance(t, E.Identity):
                codes.append(self.B.eye(self.size(t.n)))
                continue
            v = self.ev(t)
            if v.rep == "V":
                codes.append(f"{v.code}.reshape(-1, 1)" if t.shape[1] == 1 else f"{v.code}.reshape(1, -1)")
            elif v.rep == "S":
                codes.append(f"{self.B.full('(1, 1)', v.code)}")
            else:
                codes.append(v.code)
        code = codes[0]
        for c in codes[1:]:
            code = self.B.kron(code, c)
        rep = _rep(e.shape)
        if rep == "V":
            code = f"{code}.reshape(-1)"
        elif rep == "S":
            code = f"{code}[0, 0]"
        return self.emit(code, rep, e.shape, e)

    def ev_Transpose(self, e):
        return self.T(self.ev(e.arg))

    def ev_Inverse(self, e):
        if e.is_scalar:
            v = self.ev(e.arg)
            return self.emit(f"1.0 / {v.code}", "S", E.SCALAR, e)
        if isinstance(e.arg, E.Transpose):
            return self.T(self.ev(self.intern(E.Inverse(e.arg.arg))))
        v = self.ev(e.arg)
        if self._spd(e.arg):
            code = self.B.spd_inv_logdet(v.code)
            if code is not None:
                ld = self.intern(E.LogDet(e.arg))
                if ld in self.nodes and ld not in self.memo:
                    inv_name, ld_name = self.temp(), self.temp()
                    self.lines.append((f"{inv_name}, {ld_name}", code,
                                       f"{_short(e)}, {_short(ld)}  (Cholesky: {e.arg.name} is spd)"))
                    self.memo[ld] = V(ld_name, "S", E.SCALAR)
                    self.reps[inv_name] = "M"
                    return V(inv_name, "M", e.shape)
                return self.emit(f"{code}[0]", "M", e.shape, e,
                                 comment=f"{_short(e)}  (Cholesky: {e.arg.name} is spd)")
        return self.emit(self.B.inv(v.code), "M", e.shape, e)

    @staticmethod
    def _spd(a):
        return isinstance(a, E.Sym) and a.kind == "spd"

    def ev_Det(self, e):
        v = self.ev(e.arg)
        if v.rep == "S":
            return v
        return self.emit(self.B.det(v.code), "S", E.SCALAR, e)

    def ev_LogDet(self, e):
        v = self.ev(e.arg)
        if v.rep == "S":
            return self.emit(self.B.func("log", v.code), "S", E.SCALAR, e)
        if self._spd(e.arg):
            inv = self.intern(E.Inverse(e.arg))
            if inv in self.nodes and e.arg in self.inv_mat and self.B.spd_inv_logdet("a") is not None:
                self.ev(inv)                    # one factorisation gives both
                hit = self.memo.get(e)
                if hit is not None:
                    return hit
            lib = self.B.lib
            chol = self.B.cholesky(v.code)
            return self.emit(f"2.0 * {lib}.sum({lib}.log({lib}.diagonal({chol})))", "S", E.SCALAR, e,
                             comment=f"{_short(e)}  (Cholesky: {e.arg.name} is spd)")
        return self.emit(self.B.logdet(v.code), "S", E.SCALAR, e)

    def ev_Trace(self, e):
        a = e.arg
        if a.is_scalar:
            return self.ev(a)
        if isinstance(a, E.Add):
            parts = []
            for t in a.items:
                c, rest = split_coef(t)
                if rest is None:
                    continue
                parts.append((c, self.ev(self.intern(E.Trace(rest))).code))
            if not parts:
                return V("0.0", "S", E.SCALAR)
            return self.emit(self._sum_code(parts), "S", E.SCALAR, e)
        if isinstance(a, E.Mul):
            scal = []
            chain = self.flatten_chain(a.items, scal)
            if chain:
                tr = self.trace_chain(chain)
            else:                               # only identities: tr(s I(n)) = n s
                tr = self.ev(self.intern(E.Trace(E.Identity(a.shape[0]))))
            if not scal:
                return tr
            coef = Fraction(1)
            rest = []
            for s in scal:
                if isinstance(s, E.Num):
                    coef *= s.value
                else:
                    rest.append(s)
            scale = self.scale_code(coef, rest)
            if scale is None:
                return tr
            return self.scaled(scale, tr, e)
        if isinstance(a, E.Identity):
            return V(f"float({self.size(a.n)})" if self.B.float_out else self.size(a.n), "S", E.SCALAR)
        if isinstance(a, E.Transpose):
            return self.ev(self.intern(E.Trace(a.arg)))
        if isinstance(a, E.DiagMat):
            return self.emit(self.B.sum(self.ev(a.arg).code), "S", E.SCALAR, e)
        if isinstance(a, E.Kron) and all(t.shape[0] == t.shape[1] for t in a.items):
            # tr(A ⊗ B) = tr(A) tr(B) for square A and B only (x ⊗ xᵀ = x xᵀ is square)
            codes = [self.ev(self.intern(E.Trace(t))).code for t in a.items]
            return self.emit(" * ".join(codes), "S", E.SCALAR, e)
        if isinstance(a, E.Fill):
            return self.emit(f"{self.ev(a.value).code} * {self.size(a.rows)}", "S", E.SCALAR, e)
        return self.emit(self.B.trace(self.ev(a).code), "S", E.SCALAR, e)

    def trace_chain(self, factors):
        k = len(factors)
        if k == 0:
            return V("1.0", "S", E.SCALAR)
        if k == 1:
            return self.ev(self.intern(E.Trace(factors[0])))
        rots = range(k) if k <= 8 else [0] + [i for i in range(1, k) if factors[i].shape[0] == 1][:3]
        best = None
        for rot in rots:
            fs = factors[rot:] + factors[:rot]
            ch = Chain(self, fs)
            if fs[0].shape[0] == 1:          # a row first: the product is 1×1
                c = ch.cost(0, k - 1)[0]
                cand = (c, rot, None, ch)
                if best is None or c < best[0] - 1e-9:
                    best = cand
                continue
            r = _est(fs[0].shape[0])
            for s in range(k - 1):
                lk, rk = ch.side_kind(0, s), ch.side_kind(s + 1, k - 1)
                m = _est(fs[s].shape[1])
                if lk == "dense" and rk == "dense":
                    tc = r * m * (0.5 if self._cheap_t(fs, 0, s, ch) or self._cheap_t(fs, s + 1, k - 1, ch) else 1.0)
                elif rk == "dense":
                    tc = self.op_cost(fs[0], r) + r
                elif lk == "dense":
                    tc = self.op_cost(fs[k - 1], r) + r
                else:
                    tc = self.materialize_cost(fs[k - 1]) + self.op_cost(fs[0], r) + r
                c = ch.cost(0, s)[0] + ch.cost(s + 1, k - 1)[0] + tc
                if best is None or c < best[0] - 1e-9:
                    best = (c, rot, s, ch)
        _, rot, s, ch = best
        if s is None:
            v = ch.value()
            return v
        left, right = ch.lower(0, s), ch.lower(s + 1, k - 1)
        node = self.intern(E.Trace(E.Mul(tuple(ch.f))))
        if left[0] == "dense" and right[0] == "dense":
            sym = False
            if left[1].rep == "M" and right[1].rep == "M":
                try:
                    sym = is_symmetric(ch.key(0, s) if s > 0 else ch.f[0]) or \
                        is_symmetric(ch.key(s + 1, k - 1) if s + 1 < k - 1 else ch.f[k - 1])
                except Exception:  # noqa: BLE001
                    sym = False
            return self.trace_prod(left[1], right[1], node, sym)
        prod = self.combine(left, right, E.Mul(tuple(ch.f)))
        return self.emit(self.B.trace(prod.code), "S", E.SCALAR, node)

    @staticmethod
    def _cheap_t(fs, i, j, ch):
        return i == j and isinstance(fs[i], E.Transpose)

    def trace_prod(self, p, q, node, symmetric=False):
        """tr(P Q) without forming P Q: a sum of elementwise products (one dot product
        when P or Q is symmetric or at hand transposed)."""
        if symmetric and p.rep == "M" and q.rep == "M":
            return self.emit(self.B.vdot(p.code, q.code, "M"), "S", E.SCALAR, node)
        if p.rep == "V" and q.rep == "V":
            return self.emit(f"{p.code} @ {q.code}", "S", E.SCALAR, node)
        if p.rep == "S" or q.rep == "S":
            return self.emit(f"{p.code} * {q.code}", "S", E.SCALAR, node)
        if q.code.endswith(".T") and q.code[:-2].isidentifier():
            return self.emit(self.B.vdot(p.code, q.code[:-2], "M"), "S", E.SCALAR, node)
        if p.code.endswith(".T") and p.code[:-2].isidentifier():
            return self.emit(self.B.vdot(p.code[:-2], q.code, "M"), "S", E.SCALAR, node)
        return self.emit(self.B.einsum("ij,ji->", p.code, q.code), "S", E.SCALAR, node)

    def ev_Sum(self, e):
        a = e.arg
        if a.is_scalar:
            return self.ev(a)
        if isinstance(a, E.Fill):
            r, c = a.shape
            return self.emit(f"{self.ev(a.value).code} * {self.size(r)} * {self.size(c)}", "S", E.SCALAR, e)
        if isinstance(a, E.Hadamard) and len(a.items) == 2 and not any(
                isinstance(t, (E.Fill, E.Identity)) or t.is_scalar for t in a.items):
            x, y = (self.ev(t) for t in a.items)
            return self.emit(self.B.vdot(x.code, y.code, x.rep), "S", E.SCALAR, e)
        if isinstance(a, (E.Transpose, E.Vec)):
            return self.ev(self.intern(E.Sum(a.arg)))
        if isinstance(a, E.DiagMat):
            return self.ev(self.intern(E.Sum(a.arg)))
        if isinstance(a, E.Add) and any(isinstance(t, (E.Mul, E.Fill)) for t in a.items):
            parts = []
            for t in a.items:
                c, rest = split_coef(t)
                if rest is None:
                    r, cc = a.shape
                    parts.append((c, f"({self.size(r)} * {self.size(cc)})"))
                    continue
                parts.append((c, self.ev(self.intern(E.Sum(rest))).code))
            return self.emit(self._sum_code(parts), "S", E.SCALAR, e)
        if isinstance(a, E.Mul):
            scal = []
            chain = self.flatten_chain(a.items, scal)
            if len(chain) >= 2:
                r, c = chain[0].shape[0], chain[-1].shape[1]
                fs = list(chain)
                if r != 1:
                    fs = [self.intern(E.Fill(E.ONE, 1, r))] + fs
                if c != 1:
                    fs = fs + [self.intern(E.Fill(E.ONE, c, 1))]
                v = Chain(self, fs).value()
                coef = Fraction(1)
                rest = []
                for s in scal:
                    if isinstance(s, E.Num):
                        coef *= s.value
                    else:
                        rest.append(s)
                scale = self.scale_code(coef, rest)
                if scale is None:
                    return v
                return self.scaled(scale, v, e)
        v = self.ev(a)
        return self.emit(self.B.sum(v.code), "S", E.SCALAR, e)

    def negation(self, x):
        """-x in the canonical (tidied) form the derivatives use, or None."""
        hit = self.neg_cache.get(x, False)
        if hit is not False:
            return hit
        try:
            from .simplify import simplify
            out = self.intern(tidy(simplify(E.Mul((E.MINUS_ONE, x)))))
        except Exception:  # noqa: BLE001
            out = None
        self.neg_cache[x] = out
        return out

    def lookup_negated(self, factors, compute=True):
        """The product of factors from a computed product with one sum negated
        (S⁻¹ (mu - x) from S⁻¹ (x - mu)): a negation instead of a second product."""
        for p, f in enumerate(factors):
            if not isinstance(f, E.Add):
                continue
            neg = self.negation(f)
            if neg is None or neg == f:
                continue
            alt = list(factors)
            alt[p] = neg
            key = alt[0] if len(alt) == 1 else E.Mul(tuple(alt))
            hit = self.lookup(key, compute)
            if hit is not None:
                return hit
        return None

    def sqnorm(self, x, redirect=True):
        key = ("sqnorm", x)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        if redirect and isinstance(x, E.Add) and x not in self.memo:
            # ||x||² = ||-x||²: use -x if the derivative computes that and not x
            neg = self.negation(x)
            if neg is not None and neg != x and (neg in self.memo or neg in self.nodes) \
                    and x not in self.nodes_elsewhere(x):
                out = self.sqnorm(neg, redirect=False)
                self.memo[key] = out
                return out
        v = self.ev(x)
        if v.rep == "S":
            out = self.emit(f"{v.code} * {v.code}", "S", E.SCALAR, None, comment=f"||{_short(x)}||^2")
        else:
            out = self.emit(self.B.vdot(v.code, v.code, v.rep), "S", E.SCALAR, None,
                            comment=f"||{_short(x)}||^2")
        self.memo[key] = out
        return out

    def ev_Norm(self, e):
        sq = self.sqnorm(e.arg)
        if _rep(e.arg.shape) == "S":
            return self.emit(self.B.func("abs", self.ev(e.arg).code), "S", E.SCALAR, e)
        return self.emit(self.B.sqrt(sq.code), "S", E.SCALAR, e)

    def ev_SpecNorm(self, e):
        v = self.ev(e.arg)
        if v.rep == "S":
            return self.emit(self.B.func("abs", v.code), "S", E.SCALAR, e)
        if v.rep == "V":
            return self.emit(self.B.sqrt(self.sqnorm(e.arg).code), "S", E.SCALAR, e)
        return self.emit(self.B.spec_norm(v.code), "S", E.SCALAR, e)

    def ev_Vec(self, e):
        v = self.ev(e.arg)
        if v.rep != "M":
            return V(v.code, v.rep, e.shape)
        return self.emit(f"{self.T(v).code}.reshape(-1)", "V", e.shape, e)

    def ev_DiagMat(self, e):
        v = self.ev(e.arg)
        if v.rep == "S":
            return v
        return self.emit(self.B.diag(v.code), "M", e.shape, e)

    def ev_DiagVec(self, e):
        a = e.arg
        if a.is_scalar:
            return self.ev(a)
        if isinstance(a, E.Mul):
            scal = []
            chain = self.flatten_chain(a.items, scal)
            if len(chain) >= 2 and not scal:
                ch = Chain(self, chain)
                k = len(chain)
                best = None
                for s in range(k - 1):
                    c = ch.cost(0, s)[0] + ch.cost(s + 1, k - 1)[0]
                    if best is None or c < best[0]:
                        best = (c, s)
                s = best[1]
                left, right = ch.lower(0, s), ch.lower(s + 1, k - 1)
                if left[0] == "dense" and right[0] == "dense":
                    p, q = left[1], right[1]
                    if p.rep == "V" and q.rep == "V":
                        return self.emit(f"{p.code} * {q.code}", "V", e.shape, e)
                    if p.rep == "M" and q.rep == "M":
                        return self.emit(self.B.einsum("ij,ji->i", p.code, q.code), "V", e.shape, e)
        v = self.ev(a)
        return self.emit(self.B.diagonal(v.code), "V", e.shape, e)

    def ev_Func(self, e):
        a = e.arg
        if isinstance(a, E.Num):
            x = float(a.value)
            val = {"exp": math.exp, "log": lambda t: math.log(t) if t > 0 else float("nan"),
                   "sin": math.sin, "cos": math.cos, "tanh": math.tanh,
                   "sqrt": lambda t: math.sqrt(t) if t >= 0 else float("nan"),
                   "sigmoid": lambda t: 1.0 / (1.0 + math.exp(-t)),
                   "softplus": lambda t: math.log1p(math.exp(t)), "abs": abs}[e.name](x)
            return V(_lit(val), "S", E.SCALAR)
        rep = _rep(e.shape)
        if e.name == "log" and isinstance(a, E.Add) and len(a.items) == 2:
            one = [t for t in a.items if (isinstance(t, E.Fill) and _is_one(t.value)) or _is_one(t)]
            if len(one) == 1:
                other = a.items[1] if a.items[0] is one[0] else a.items[0]
                return self.emit(self.B.log1p(self.ev(other).code), rep, e.shape, e)
        if e.name == "sigmoid":
            ex = self.intern(E.Func("exp", a))
            if ex in self.nodes or ex in self.memo:
                x = self.ev(ex)
                return self.emit(f"{x.code} / (1.0 + {x.code})", rep, e.shape, e,
                                 comment=f"{_short(e)}  (from exp)")
        if e.name == "sqrt":
            return self.emit(self.B.sqrt(self.ev(a).code), rep, e.shape, e)
        return self.emit(self.B.func(e.name, self.ev(a).code), rep, e.shape, e)

    def ev_MatPow(self, e):
        if e.k == 0:
            return self.ev(self.intern(E.Identity(e.shape[0])))
        if e.k == 1:
            return self.ev(e.arg)
        if e.k <= 4:
            return Chain(self, [e.arg] * e.k).value()
        v = self.ev(e.arg)
        return self.emit(self.B.matrix_power(v.code, e.k), "M", e.shape, e)

    def ev_Pow(self, e):
        b, p = e.base, e.exp
        if isinstance(p, E.Num):
            pv = p.value
            if isinstance(b, E.Norm) and pv.denominator == 1 and pv.numerator % 2 == 0 and _rep(b.arg.shape) != "S":
                sq = self.sqnorm(b.arg)
                half = pv.numerator // 2
                if half == 1:
                    return sq
                return self.emit(f"{sq.code} ** {half}" if half > 0 else f"1.0 / {sq.code} ** {-half}",
                                 "S", E.SCALAR, e)
            v = self.ev(b)
            if pv == 1:
                return v
            if pv == -1:
                return self.emit(f"1.0 / {v.code}", "S", E.SCALAR, e)
            if pv == 2:
                return self.emit(f"{v.code} * {v.code}", "S", E.SCALAR, e)
            if pv == Fraction(1, 2):
                return self.emit(self.B.sqrt(v.code), "S", E.SCALAR, e)
            if pv.denominator == 1:
                k = pv.numerator
                return self.emit(f"{v.code} ** {k}" if k > 0 else f"1.0 / {v.code} ** {-k}", "S", E.SCALAR, e)
            return self.emit(self.B.power(v.code, _lit(pv)), "S", E.SCALAR, e)
        v, q = self.ev(b), self.ev(p)
        return self.emit(self.B.power(v.code, q.code), "S", E.SCALAR, e)

    def ev_ElemPow(self, e):
        rep = _rep(e.shape)
        v = self.ev(e.base)
        p = e.exp
        if isinstance(p, E.Num):
            pv = p.value
            if pv == 1:
                return v
            if pv == 2:
                return self.emit(f"{v.code} * {v.code}", rep, e.shape, e)
            if pv == -1:
                return self.emit(f"1.0 / {v.code}", rep, e.shape, e)
            if pv == Fraction(1, 2):
                return self.emit(self.B.sqrt(v.code), rep, e.shape, e)
            if pv.denominator == 1:
                k = pv.numerator
                return self.emit(f"{v.code} ** {k}" if k > 0 else f"1.0 / {v.code} ** {-k}", rep, e.shape, e)
            return self.emit(self.B.power(v.code, _lit(pv)), rep, e.shape, e)
        q = self.ev(p)
        return self.emit(self.B.power(v.code, q.code), rep, e.shape, e)

    def ev_Diff(self, e):  # pragma: no cover - derivatives carry no differentials
        raise MatcalcError(f"cannot generate code for the differential d{e.var.name}")

    # -- statements -----------------------------------------------------------

    def inline_single_use(self, keep, width=88):
        """Fold an array temporary used once, by the next statement, into it
        (t2 = (U @ V.T) - X): NumPy then reuses the unnamed intermediate's memory for
        the result instead of allocating fresh memory next to a named one."""
        import re
        changed = True
        while changed:
            changed = False
            for i in range(len(self.lines) - 1):
                target, code, _ = self.lines[i]
                if target is None or "," in target or target in keep or self.reps.get(target) not in ("V", "M"):
                    continue
                pat = re.compile(r"(?<![\w.])" + re.escape(target) + r"(?!\w)")
                uses = [j for j, (_, c, _) in enumerate(self.lines) if j != i for _ in pat.finditer(c)]
                if len(uses) != 1 or uses[0] != i + 1:
                    continue
                t2, c2, m2 = self.lines[i + 1]
                if t2 is None or len(c2) + len(code) > width:
                    continue
                self.lines[i + 1] = (t2, pat.sub(lambda m: _inline(code, c2, m), c2), m2)
                del self.lines[i]
                changed = True
                break

    def renumber(self):
        """Temporaries numbered t1, t2, ... in the order they are defined (folding and
        reuse leave gaps)."""
        import re
        temps = []
        for target, _, _ in self.lines:
            for t in (target.split(",") if target else ()):
                t = t.strip()
                if re.fullmatch(r"t\d+", t) and t not in temps:
                    temps.append(t)
        taken = set(self.names.used) - set(temps)      # parameters, sizes, outputs
        mapping, k = {}, 0
        for t in temps:
            k += 1
            while f"t{k}" in taken:
                k += 1
            mapping[t] = f"t{k}"
        if all(a == b for a, b in mapping.items()):
            return
        pat = re.compile(r"(?<![\w.])(t\d+)(?!\w)")

        def sub(text):
            return pat.sub(lambda m: mapping.get(m.group(1), m.group(1)), text) if text else text
        self.lines = [(sub(t), sub(c), m) for t, c, m in self.lines]

    def free_dead(self, keep):
        """`del` each matrix temporary after its last use: a function that keeps every
        large intermediate alive until it returns makes the allocator hand out fresh
        (page-faulting) memory for each new one."""
        import re
        big = [t for t, r in self.reps.items() if r == "M" and t not in keep]
        if not big:
            return
        pats = {t: re.compile(r"(?<![\w.])" + re.escape(t) + r"(?!\w)") for t in big}
        last = {}
        for i, (target, code, _) in enumerate(self.lines):
            for t in big:
                if pats[t].search(code) or (target and t in [x.strip() for x in target.split(",")]):
                    last[t] = i
        after = {}
        for t, i in last.items():
            while i + 1 < len(self.lines) and _in_loop(self.lines[i + 1]):
                i += 1                  # a temporary the row loop reads dies after the loop
            after.setdefault(i, []).append(t)
        out = []
        for i, line in enumerate(self.lines):
            out.append(line)
            if i in after and i < len(self.lines) - 1:
                out.append((None, "del " + ", ".join(sorted(after[i], key=lambda x: (len(x), x))), None))
        self.lines = out

    def body(self, indent="    "):
        out = []
        for target, code, comment in self.lines:
            if target is None:
                line = f"{indent}{code}"
            elif target.endswith("+="):
                line = f"{indent}{target} {code}"
            else:
                line = f"{indent}{target} = {code}"
            if comment:
                pad = max(1, 48 - len(line))
                line = f"{line}{' ' * pad}  # {comment}"
            out.append(line)
        return out


def _in_loop(line):
    """Whether a statement is in the body of a row loop (its text is indented)."""
    target, code, _ = line
    return (target or code).startswith(" ")


def _fold_into_sums(lines):
    """`t3 = np.vdot(t2, t2)` then `acc += t3` as `acc += np.vdot(t2, t2)` (when t3 is
    read nowhere else), without parentheses around a whole right-hand side."""
    import re
    out = []
    for target, code, comment in lines:
        if target and target.endswith(("+=", "]")):
            if out and out[-1][0] == code:
                pat = re.compile(r"(?<![\w.])" + re.escape(code) + r"(?!\w)")
                if sum(len(pat.findall(c)) for _, c, _ in lines) == 1:
                    _, code, comment = out.pop()
            if _enclosed(code):
                code = code[1:-1]
        out.append((target, code, comment))
    return out


def _enclosed(code):
    """Whether code is one parenthesised expression: (2.0 * (t2 @ V))."""
    if not code.startswith("("):
        return False
    depth = 0
    for k, ch in enumerate(code):
        depth += (ch == "(") - (ch == ")")
        if depth == 0:
            return k == len(code) - 1
    return False


# rows per block of a row loop: about 512 KiB of the widest intermediate, which stays in
# a core's L2 cache from the statement that makes it to the ones that read it.  The loop
# runs when that intermediate is larger than one block and every whole matrix that
# multiplies a block (V^T in U[i:j] V^T, read again by each block) is at most that size.
ROW_BLOCK_ENTRIES = 1 << 16


# ----------------------------------------------------------------------------- programs


class _Output:
    """One returned value: its tree, the name it gets, and how it reaches the user."""

    def __init__(self, tree, name, mode):
        self.tree, self.name, self.mode = tree, name, mode   # mode: "value" | "grad" | "user"


def _user_code(backend, v, mode):
    """Code turning a lowered value into the user's shapes (Derivative.evaluate's)."""
    r, c = v.shape
    if v.rep == "S":
        return backend.to_float(v.code)
    if mode == "grad":
        return v.code
    if v.rep == "V" and r == 1:       # a row: 2-D (1, n), as evaluate returns it
        return f"{v.code}.reshape(1, -1)"
    return v.code


class Program:
    """The pieces of a generated module for one or several derivatives."""

    def __init__(self, derivs, target):
        if target not in BACKENDS:
            raise MatcalcError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
        self.target = target
        self.B = BACKENDS[target]()
        self.derivs = derivs
        d0 = derivs[0]
        self.d0 = d0
        syms = dict(d0._symbols)
        order = [d.wrt for d in derivs] + [n for n in syms if n not in {d.wrt for d in derivs}]
        self.syms = {n: syms[n] for n in order}
        self.module_names = Names({"_sigmoid", "_logdet", "_commutation"})
        self.params = {n: self.module_names.take(python_name(n)) for n in self.syms}
        self.hessian = any(d.kind == "hessian" for d in derivs)

    # -- the trees
    def gradient_tree(self, d):
        """The derivative that f_and_grad returns for d (the projected gradient for a
        Hessian, as matcalc.diff gives it)."""
        if d.kind != "hessian":
            return d.expr, ("grad" if d.kind == "gradient" and d.layout == "gradient" else "user")
        g = d.gradient
        if d.var.is_scalar:
            return tidy(g), "user"
        from .api import _project
        return tidy(_project(g, d.var, d._symmetric)), "grad"

    def value_tree(self):
        """f in the engine's canonical form, so that it shares its subexpressions with
        the derivatives (which are built from canonical pieces)."""
        f = self.d0.f
        try:
            from .simplify import simplify
            return tidy(simplify(f))
        except Exception:  # noqa: BLE001 - the typed tree evaluates as well
            return f

    def function(self, fname, outputs, doc):
        """The source of one function (and its extra size parameters).  Where a row loop
        pays (rowblocks.plan), the NumPy target also writes _<fname>_in_blocks, which
        the function calls when the intermediate the loop keeps out of memory is large."""
        if self.target == "numpy":
            probe = Lowerer(self.B, self.syms, self.params, self.module_names.copy())
            plan = rowblocks.plan(probe.prepare([o.tree for o in outputs]))
            if plan is not None:
                blocks = f"_{fname}_in_blocks"
                src_rows, extra = self._function(blocks, outputs, doc[:-1] + ", a block of rows at a time.",
                                                 row_loop=plan)
                if not extra:
                    src, extra = self._function(fname, outputs, doc, dispatch=(plan, blocks))
                    return src_rows + "\n\n" + src, extra
        return self._function(fname, outputs, doc)

    def _function(self, fname, outputs, doc, row_loop=None, dispatch=None):
        names = self.module_names.copy()
        low = Lowerer(self.B, self.syms, self.params, names)
        trees = low.prepare([o.tree for o in outputs])
        pre = []
        for n, p in self.params.items():
            conv = self.B.convert_in(p)
            if conv:
                pre.append("    " + conv)
        if row_loop is not None:
            self._row_loop(low, row_loop)
        if dispatch is not None:
            plan, blocks = dispatch
            big = plan.big
            cond = [f"{low.size(big.shape[0])} * {low.size(big.shape[1])} > {ROW_BLOCK_ENTRIES}"]
            cond += sorted({" * ".join(sorted((low.size(r), low.size(c)))) + f" <= {ROW_BLOCK_ENTRIES}"
                            for r, c in plan.factors})
            low.lines.append((None, f"if {' and '.join(cond)}:",
                              f"{_short(big)} over about 512 KiB: {blocks}"))
            low.lines.append((None, f"    return {blocks}({', '.join(self.params.values())})", None))
        results = []
        for o, t in zip(outputs, trees):
            v = low.ev(t)
            results.append((o, v))
        ret = []
        renamed = {}
        for o, v in results:
            code = _user_code(self.B, v, o.mode)
            if v.code in renamed:                # the same value returned twice
                import re
                code = re.sub(r"(?<![\w.])" + re.escape(v.code) + r"(?!\w)", renamed[v.code], code)
                name = names.take(o.name)
                low.lines.append((name, code, None))
                ret.append(name)
            elif code != v.code or not v.code.isidentifier() or v.code in self.params.values():
                name = names.take(o.name)
                low.lines.append((name, code, None))
                ret.append(name)
            else:
                # rename the temporary that holds this result
                renamed[v.code] = self._rename(low, v.code, names.take(o.name))
                ret.append(renamed[v.code])
        args = list(self.params.values())
        if low.extra_sizes:
            args.append("*")
            args.extend(name for _, name in low.extra_sizes)
        keep = set(ret) | set(self.params.values())
        if self.target == "numpy":
            low.inline_single_use(keep)
        low.free_dead(keep)
        low.renumber()
        lines = [f"def {fname}({', '.join(args)}):", f'    """{doc}"""']
        lines += pre
        lines += low.body()
        lines.append(f"    return {', '.join(ret) if len(ret) > 1 else ret[0]}")
        return "\n".join(lines) + "\n", low.extra_sizes

    def _row_loop(self, low, plan):
        """Lower a rowblocks.Plan: the constants it reads, then one loop over blocks of
        rows that computes its items; the items' nodes are then memoised in `low` as the
        accumulated sums and the filled outputs, for the rest of the function to read."""
        names = low.names
        consts = {sym.name: low.ev(node) for node, sym in plan.consts}
        i, j, step = names.take("i"), names.take("j"), names.take("step")
        syms, params = dict(low.syms), dict(low.params)
        for name, b in plan.blocks.items():
            syms[b.name], params[b.name] = b, f"{low.params[name]}[{i}:{j}]"
        for node, sym in plan.consts:
            syms[sym.name], params[sym.name] = sym, consts[sym.name].code
        body = Lowerer(low.B, syms, params, names)
        body.intern, body.ntemp, body.sizes = low.intern, low.ntemp, dict(low.sizes)
        blocks = body.prepare([it.block for it in plan.items])
        m, width = low.size(plan.size), low.size(plan.big.shape[1])
        init, keep = [], set(params.values())
        for it, tree in zip(plan.items, blocks):
            v = body.ev(tree)
            shape, rep = it.node.shape, _rep(it.node.shape)
            if it.kind == "sum":
                name = names.take("acc")
                init.append((name, "0.0" if rep == "S" else low.B.zeros(low.shape_code(shape)),
                             f"{_short(it.node)}, summed over the blocks"))
                body.lines.append((f"{name} +=", v.code, None))
            else:
                name = low.temp()
                low.reps[name] = rep
                init.append((name, f"np.empty({low.shape_code(shape)})", _short(it.node)))
                body.lines.append((f"{name}[{i}:{j}]", v.code, None))
            keep.add(name)
            low.memo[it.node] = V(name, rep, shape)
        body.inline_single_use(keep)
        body.lines = _fold_into_sums(body.lines)
        body.free_dead(keep)
        low.ntemp = body.ntemp
        low.extra_sizes += [x for x in body.extra_sizes if x not in low.extra_sizes]
        big = _short(plan.big)
        low.lines.append((step, f"max(1, {ROW_BLOCK_ENTRIES} // max(1, {width}))",
                          f"rows per block: about 512 KiB of {big}"))
        low.lines += init
        low.lines.append((None, f"for {i} in range(0, {m}, {step}):", f"{big}: a block of rows at a time"))
        low.lines.append((f"    {j}", f"{i} + {step}", None))
        rows = f"[{i}:{j}]"
        for target, code, comment in body.lines:
            if comment:
                comment = comment.replace(rowblocks.BLOCK, rows)
                for name, v in consts.items():
                    comment = comment.replace(name, v.code)
            low.lines.append((f"    {target}" if target else None, code if target else f"    {code}", comment))

    @staticmethod
    def _rename(low, old, new):
        import re
        pat = re.compile(r"(?<![\w.])" + re.escape(old) + r"(?!\w)")
        out = []
        for target, code, comment in low.lines:
            out.append((target and pat.sub(new, target), pat.sub(new, code), comment))
        low.lines = out
        low.names.used.discard(old)
        return new

    def source(self):
        d0 = self.d0
        p = self.params
        shapes = []
        from .shapes import kind_string
        for n, s in self.syms.items():
            shapes.append(f"    {p[n]}: {kind_string(s)}" + (f"   (the symbol {n})" if p[n] != n else ""))
        deriv_lines = []
        for d in self.derivs:
            g, _ = self.gradient_tree(d)
            label = {"gradient": "gradient", "derivative": "derivative", "jacobian": "Jacobian",
                     "hessian": "gradient"}[d.kind]
            deriv_lines.append(f"    d/d{d.wrt}: {label} = {_short_full(g)}")
            if d.kind == "hessian":
                deriv_lines.append(f"    Hessian in {d.wrt} = {_short_full(d.expr)}")
        many = len(self.derivs) > 1
        head = [
            '"""Generated by matcalc (matcalc.codegen) for the %s target.' % self.target,
            "",
            f"    f = {d0.text}",
            *deriv_lines,
            "",
            "Arguments (vectors as 1-D arrays, scalars as numbers):",
            *shapes,
            "",
            f"f_and_grad({', '.join(p.values())}) returns (f, " +
            ("(" + ", ".join(f"d/d{d.wrt}" for d in self.derivs) + ")" if many else f"d/d{d0.wrt}") + ")"
            + (f";\nhessian(...) returns the Hessian{'s' if many else ''} and f_grad_hessian(...) "
               "all three." if self.hessian else "."),
        ]
        if self.target == "jax":
            head.append("The functions are jit-friendly: jax.jit(f_and_grad).")
        head.append('"""')
        fns = []
        extra = []
        grads = [self.gradient_tree(d) for d in self.derivs]
        fval = _Output(self.value_tree(), "f", "value")
        gouts = [_Output(g, _deriv_name(d, p), mode) for d, (g, mode) in zip(self.derivs, grads)]
        src, ex = self.function("f_and_grad", [fval] + gouts,
                                f"f = {_short(d0.text) or 'f'} and its derivative{'s' if many else ''}.")
        src = src if not many else src.replace(
            f"    return f, {', '.join(o.name for o in gouts)}\n",
            f"    return f, ({', '.join(o.name for o in gouts)})\n")
        fns.append(src)
        extra += ex
        if self.hessian:
            houts = [_Output(d.expr, "hess_" + p[d.wrt], "user") for d in self.derivs]
            src, ex = self.function("hessian", houts, f"The Hessian of f = {_short(d0.text)}.")
            fns.append(src)
            src, ex2 = self.function("f_grad_hessian", [fval] + gouts + houts,
                                     f"f = {_short(d0.text)}, its gradient and its Hessian.")
            if many:
                src = src.replace(
                    f"    return f, {', '.join(o.name for o in gouts + houts)}\n",
                    f"    return f, ({', '.join(o.name for o in gouts)}), ({', '.join(o.name for o in houts)})\n")
            fns.append(src)
            extra += ex + ex2
        defs = [self.B.helpers[name] for name in sorted(self.B.helpers) if self.B.helpers[name]]
        imports = "\n".join(self.B.imports)
        if self.B.PRELUDE and any("_lapack" in (h or "") for h in self.B.helpers.values()):
            imports += "\n\n" + self.B.PRELUDE
        defs.extend(fns)
        self.extra_sizes = extra
        return ("\n".join(head) + "\n\n" + imports + "\n\n\n"
                + "\n\n".join(x.rstrip("\n") + "\n" for x in defs))


def _short_full(e):
    try:
        return str(e)
    except Exception:  # noqa: BLE001
        return repr(e)


def _deriv_name(d, params):
    v = params[d.wrt]
    return {"gradient": "grad_", "derivative": "deriv_", "jacobian": "jac_", "hessian": "grad_"}[d.kind] + v


# ----------------------------------------------------------------------------- API


def generate(d, target="numpy"):
    """Python source of a module defining f_and_grad(...) (and hessian(...),
    f_grad_hessian(...) for a Hessian) for the Derivative d, or a list of them (several
    variables of one f: f_and_grad returns (f, (d1, d2, ...)))."""
    derivs = list(d) if isinstance(d, (list, tuple)) else [d]
    if not derivs:
        raise MatcalcError("nothing to generate: no derivative given")
    texts = {x.text for x in derivs}
    if len(texts) > 1:
        raise MatcalcError("the derivatives given to generate() are of different functions")
    return Program(derivs, target).source()


def _derive(expr, wrt, symbols, hessian):
    from . import api
    if not isinstance(expr, str):
        raise MatcalcError("codegen takes the expression as text in the input language")
    fn = api.hessian if hessian else api.diff
    return fn(expr, wrt=wrt, symbols=symbols)


def generate_source(expr, wrt, symbols=None, target="numpy", hessian=False):
    """Source of the generated module for the text expr differentiated by wrt."""
    return generate(_derive(expr, wrt, symbols, hessian), target=target)


def load(source, name="matcalc_generated"):
    """The namespace of a generated module (exec of source we generated ourselves)."""
    ns = {"__name__": name}
    exec(compile(source, f"<{name}>", "exec"), ns)  # noqa: S102 - our own generated code
    return ns


class CompiledFunction:
    """A generated function, callable with the values positionally (in the order of
    ``params``), by keyword under the symbols' own names, or as one dict of values."""

    def __init__(self, fn, names, source, target, derivative, extra_sizes=()):
        self.fn = fn
        self.params = list(names)          # the symbols' names, in argument order
        self.source = source
        self.target = target
        self.derivative = derivative
        self.extra_sizes = [s for s, _ in extra_sizes]
        self._extra = list(extra_sizes)
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", "f_and_grad")

    def _convert(self, v):
        if self.target == "numpy":
            import numpy as np
            a = np.asarray(v, dtype=float)
            return float(a) if a.ndim == 0 else a
        return v

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and isinstance(args[0], dict) and not kwargs:
            kwargs = dict(args[0])
            args = ()
        if len(args) > len(self.params):
            raise TypeError(f"{self.__name__}() takes {len(self.params)} values ({', '.join(self.params)}), "
                            f"got {len(args)}")
        values = dict(zip(self.params, args))
        sizes = {}
        for k, v in kwargs.items():
            if k in self.extra_sizes:
                sizes[dict(self._extra)[k]] = int(v)
                continue
            if k not in self.params:
                raise TypeError(f"{self.__name__}() got a value for {k!r}, which is not a symbol of "
                                f"the expression ({', '.join(self.params)})")
            if k in values:
                raise TypeError(f"{self.__name__}() got two values for {k!r}")
            values[k] = v
        missing = [n for n in self.params if n not in values]
        if missing:
            raise TypeError(f"{self.__name__}() needs a value for {', '.join(missing)}")
        missing = [s for s, _ in self._extra if dict(self._extra)[s] not in sizes]
        if missing:
            raise TypeError(f"{self.__name__}() needs the size {', '.join(missing)} (as a keyword)")
        self._check_shapes(values)
        return self.fn(*(self._convert(values[n]) for n in self.params), **sizes)

    def _check_shapes(self, values):
        """The values must have the shapes the derivation took (as Derivative.evaluate
        requires): the code itself would compute something else from others, e.g.
        tr(A) tr(B) for tr(A ⊗ B) taken with A and B square."""
        from .api import _check_values
        from .numeric import internal
        d = self.derivative[0] if isinstance(self.derivative, list) else self.derivative
        syms = {n: d._symbols[n] for n in self.params if n in d._symbols}
        env = {n: internal(values[n]) for n in syms}
        sizes = {}
        for s, name in self._extra:
            if name in values:
                sizes[s] = values[name]
        _check_values(None, syms, env, sizes)

    def __repr__(self):
        return f"<matcalc compiled {self.__name__}({', '.join(self.params)}) [{self.target}]>"


def compile_function(expr, wrt, symbols=None, target="numpy", hessian=False):
    """The generated f_and_grad as a callable (with hessian=True, f_grad_hessian:
    returning value, gradient and Hessian).  For JAX the function is jitted."""
    d = _derive(expr, wrt, symbols, hessian)
    derivs = d if isinstance(d, list) else [d]
    prog = Program(derivs, target)
    source = prog.source()
    ns = load(source)
    fname = "f_grad_hessian" if hessian else "f_and_grad"
    fn = ns[fname]
    if target == "jax" and not prog.extra_sizes:
        import jax
        jitted = jax.jit(fn)
        jitted.__doc__ = fn.__doc__
        fn = jitted
    return CompiledFunction(fn, list(prog.syms), source, target, d, prog.extra_sizes)
