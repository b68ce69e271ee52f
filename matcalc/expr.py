"""The core expression tree.

Nodes are immutable, compare and hash structurally (the hash is cached), and never
simplify in their constructors: canonical forms come from the named passes in
``simplify``.  A source span, used for caret errors, rides along in ``span`` and takes
no part in equality.

Sizes.  A size is an ``int``, a size name (``str``), or a product of those
(:class:`SizeProd`, for Kronecker products and vec).  A shape is ``(rows, cols)``;
vectors are columns ``(n, 1)`` and scalars are ``(1, 1)``: a 1x1 result *is* a scalar
wherever a scalar fits.

Sugar is removed at parse time, so the core is small: ``a - b`` is ``a + (-1) b``,
``a / s`` is ``a s^-1``, ``A ./ B`` is ``A ∘ B.^-1``, ``X^-T`` is ``(Xᵀ)⁻¹``,
``log|X|`` is ``LogDet(X)``; the printers put the sugar back.
"""
from fractions import Fraction
from operator import is_

KINDS = ("scalar", "vector", "matrix", "symmetric", "diagonal", "spd")
SQUARE_KINDS = ("symmetric", "diagonal", "spd")
SYMMETRIC_KINDS = ("symmetric", "diagonal", "spd")

# ---------------------------------------------------------------------------- sizes


class SizeProd(tuple):
    """A product of sizes: (coefficient, name, name, ...) with the names sorted."""

    __slots__ = ()

    def __repr__(self):
        return "*".join(([str(self[0])] if self[0] != 1 else []) + list(self[1:]))


def size_factors(s):
    if isinstance(s, int):
        return s, ()
    if isinstance(s, SizeProd):
        return s[0], tuple(s[1:])
    return 1, (s,)


def size_mul(a, b):
    ca, na = size_factors(a)
    cb, nb = size_factors(b)
    coef, names = ca * cb, tuple(sorted(na + nb))
    if not names:
        return coef
    if coef == 1 and len(names) == 1:
        return names[0]
    if coef == 0:
        return 0
    return SizeProd((coef,) + names)


def size_str(s):
    return repr(s) if isinstance(s, SizeProd) else str(s)


def is_scalar_shape(shape):
    return shape[0] == 1 and shape[1] == 1


SCALAR = (1, 1)

_put = object.__setattr__       # the constructors set their fields past the frozen __setattr__



def finish_node(node, args):
    """What every constructor sets after the node's fields: its children (args), its shape
    and is_scalar.  The shape is None (and is_scalar False) for a node whose operands'
    shapes are not known yet: the parser's raw nodes and the nodes over them, before
    shape inference."""
    _put(node, "args", args)
    try:
        shape = node._compute_shape()
    except TypeError:       # an operand's shape not known yet (a raw node's: None in it)
        shape = None
    _put(node, "shape", shape)
    _put(node, "is_scalar", shape is not None and shape[0] == 1 and shape[1] == 1)


# ---------------------------------------------------------------------------- base


class Expr:
    """Base of every node.  Subclasses list their fields in ``fields``; children
    (sub-expressions) are the fields named in ``children`` (a tuple field counts as
    a list of children)."""

    # args, shape and is_scalar are slots set as the node is built (finish_node, called
    # by every constructor).  The annotations read None until they are set, from these
    # class attributes (a value set goes to the node's __dict__): _h the cached hash,
    # span the source span, depth the nesting depth (the parser's), _order, _transposed
    # and _same_value the simplifier's order key, transpose and same_value_key of the
    # node, and _text_size the size budget's measure of its text, each kept on the
    # immutable node where it is computed, as the hash is (no global cache).  So Expr needs no __getattr__: a class with one turns
    # off CPython's specialisation of every attribute read on its instances (about 23 ns
    # a read instead of 4), and a node is built without setting what it may never need.
    __slots__ = ("shape", "is_scalar", "args", "__dict__")
    _h = span = depth = _order = _transposed = _same_value = _text_size = None
    fields = ()

    def __setattr__(self, name, value):
        """Frozen: a field is set once, by the constructor; assigning it again raises (a
        node may be shared by many trees and its hash is cached).  The caches above and
        the source span are annotations, not fields."""
        if name in self.fields:
            try:
                object.__getattribute__(self, name)
            except AttributeError:
                object.__setattr__(self, name, value)
                return
            raise AttributeError(f"{type(self).__name__}.{name} cannot be assigned: expression "
                                 f"nodes are immutable (build a new node)")
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__}.{name} cannot be deleted: expression nodes "
                             f"are immutable")

    def key(self):
        """The fields' values, in order (the hot node classes spell theirs out)."""
        return tuple([getattr(self, f) for f in self.fields])

    def __eq__(self, other):
        if self is other:
            return True
        if type(other) is not type(self):
            return False
        if hash(self) != hash(other):
            return False
        return self.key() == other.key()

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        h = self._h
        if h is None:
            h = hash((type(self).__name__,) + self.key())
            _put(self, "_h", h)
        return h

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(repr(getattr(self, f)) for f in self.fields)})"

    # The printers (matcalc.printing) sit above the tree: they are handed down to it by
    # install_printers, which the package calls as it is imported (matcalc/__init__), so a
    # node prints itself however the package was entered (import matcalc.expr included).
    _printers = None

    def __str__(self):
        return _printer(0)(self)

    def latex(self):
        return _printer(1)(self)

    def _repr_latex_(self):
        return "$" + self.latex() + "$"

    def _repr_pretty_(self, p, cycle):      # IPython's plain-text display
        p.text(str(self))

    def _compute_args(self):
        """The child expressions, in order."""
        out = []
        for f in self.fields:
            v = getattr(self, f)
            if isinstance(v, Expr):
                out.append(v)
            elif isinstance(v, tuple) and v and isinstance(v[0], Expr):
                out.extend(v)
        return tuple(out)

    def rebuild(self, args):
        """The same node over new children (inverse of ``args``)."""
        it = iter(args)
        vals = []
        for f in self.fields:
            v = getattr(self, f)
            if isinstance(v, Expr):
                vals.append(next(it))
            elif isinstance(v, tuple) and v and isinstance(v[0], Expr):
                vals.append(tuple(next(it) for _ in v))
            else:
                vals.append(v)
        return type(self)(*vals)

    def _compute_shape(self):
        """The shape from the operands' (None for the raw nodes: not known before shape
        inference)."""
        return None


def install_printers(to_text, to_latex):
    """How every node prints itself (str(e), e.latex(), a notebook's display): given by
    the package as it is imported, once."""
    Expr._printers = (to_text, to_latex)


def _printer(i):
    if Expr._printers is None:       # only before matcalc/__init__ has run to its wiring
        raise RuntimeError("the printers are not installed yet: matcalc/__init__ installs "
                           "them before importing anything that prints")
    return Expr._printers[i]


# ---------------------------------------------------------------------------- leaves


class Num(Expr):
    """A numeric constant (exact: a Fraction)."""
    __slots__ = ("value",)
    fields = ("value",)
    args, shape, is_scalar = (), SCALAR, True      # for every number (the slots unused)

    def __init__(self, value):
        _put(self, "value", value if isinstance(value, Fraction) else Fraction(value))

    def key(self):
        return (self.value,)

    def _compute_shape(self):
        return SCALAR


class Sym(Expr):
    """A symbol with its kind and shape; rows/cols are None before shape inference."""
    __slots__ = ("name", "kind", "rows", "cols")
    fields = ("name", "kind", "rows", "cols")
    args = ()                                       # for every symbol (the slot unused)

    def __init__(self, name, kind=None, rows=None, cols=None):
        _put(self, "name", name)
        _put(self, "kind", kind)
        _put(self, "rows", rows)
        _put(self, "cols", cols)
        _put(self, "shape", (rows, cols))
        _put(self, "is_scalar", rows == 1 and cols == 1)

    def key(self):
        return (self.name, self.kind, self.rows, self.cols)

    def _compute_shape(self):
        return (self.rows, self.cols)


class Diff(Expr):
    """The differential dX of a variable X."""
    __slots__ = ("var",)
    fields = ("var",)

    def __init__(self, var):
        _put(self, "var", var)
        finish_node(self, ())

    def rebuild(self, args):
        return self

    def _compute_shape(self):
        return self.var.shape


class Identity(Expr):
    """I(n); n is None for an unsized I before shape inference."""
    __slots__ = ("n",)
    fields = ("n",)

    def __init__(self, n=None):
        _put(self, "n", n)
        finish_node(self, ())

    def _compute_shape(self):
        return (self.n, self.n)


class Zero(Expr):
    __slots__ = ("rows", "cols")
    fields = ("rows", "cols")

    def __init__(self, rows, cols):
        _put(self, "rows", rows)
        _put(self, "cols", cols)
        finish_node(self, ())

    def _compute_shape(self):
        return (self.rows, self.cols)


class Commutation(Expr):
    """K(m,n): K vec(X) = vec(Xᵀ) for an m×n X."""
    __slots__ = ("m", "n")
    fields = ("m", "n")

    def __init__(self, m, n):
        _put(self, "m", m)
        _put(self, "n", n)
        finish_node(self, ())

    def _compute_shape(self):
        s = size_mul(self.m, self.n)
        return (s, s)


class Fill(Expr):
    """A scalar broadcast over a rows×cols array (s added to every entry: s 1 1ᵀ)."""
    __slots__ = ("value", "rows", "cols")
    fields = ("value", "rows", "cols")

    def __init__(self, value, rows, cols):
        _put(self, "value", value)
        _put(self, "rows", rows)
        _put(self, "cols", cols)
        finish_node(self, self._compute_args())

    def _compute_shape(self):
        return (self.rows, self.cols)


# ---------------------------------------------------------------------------- n-ary


class _Nary(Expr):
    __slots__ = ("items",)
    fields = ("items",)

    def __init__(self, items):
        items = tuple(items)
        _put(self, "items", items)
        finish_node(self, items if items and isinstance(items[0], Expr) else ())

    def key(self):
        return (self.items,)


class Add(_Nary):
    """A sum; every term has the sum's shape (broadcast scalars are Fill nodes)."""
    __slots__ = ()

    def _compute_shape(self):
        for t in self.items:
            if not t.is_scalar:
                return t.shape
        return SCALAR


class Mul(_Nary):
    """A product.  Scalar factors (1×1) scale; the others form a conformable chain."""
    __slots__ = ()

    def _compute_shape(self):
        first = last = None             # of the chain (a loop: no list, no comprehension frame)
        for f in self.items:
            if not f.is_scalar:
                if first is None:
                    first = f
                last = f
        if first is None:
            return SCALAR
        return (first.shape[0], last.shape[1])


class Hadamard(_Nary):
    """Elementwise product of arrays of one shape."""
    __slots__ = ()

    def _compute_shape(self):
        return self.items[0].shape


class Kron(_Nary):
    """Kronecker product."""
    __slots__ = ()

    def _compute_shape(self):
        r, c = 1, 1
        for t in self.items:
            r, c = size_mul(r, t.shape[0]), size_mul(c, t.shape[1])
        return (r, c)


# ---------------------------------------------------------------------------- unary


class _Unary(Expr):
    __slots__ = ("arg",)
    fields = ("arg",)

    def __init__(self, arg):
        _put(self, "arg", arg)
        finish_node(self, (arg,) if isinstance(arg, Expr) else ())

    def key(self):
        return (self.arg,)


class Transpose(_Unary):
    __slots__ = ()

    def _compute_shape(self):
        r, c = self.arg.shape
        return (c, r)


class Inverse(_Unary):
    __slots__ = ()

    def _compute_shape(self):
        return self.arg.shape


class Det(_Unary):
    __slots__ = ()

    def _compute_shape(self):
        return SCALAR


class LogDet(_Unary):
    """log |X| (the log of the determinant)."""
    __slots__ = ()

    def _compute_shape(self):
        return SCALAR


class Trace(_Unary):
    __slots__ = ()

    def _compute_shape(self):
        return SCALAR


class Sum(_Unary):
    """Sum of all entries."""
    __slots__ = ()

    def _compute_shape(self):
        return SCALAR


class Norm(_Unary):
    """Euclidean norm of a vector, Frobenius norm of a matrix."""
    __slots__ = ()

    def _compute_shape(self):
        return SCALAR


class SpecNorm(_Unary):
    """Spectral norm ||E||_2 of a matrix (largest singular value)."""
    __slots__ = ()

    def _compute_shape(self):
        return SCALAR


class Vec(_Unary):
    """Column-major stacking of the columns."""
    __slots__ = ()

    def _compute_shape(self):
        r, c = self.arg.shape
        return (size_mul(r, c), 1)


class Unvec(Expr):
    """unvec(v, m): the vector v (length m·n) as an m×n matrix, column-major, so that
    unvec(vec(X), rows(X)) = X and vec(unvec(v, m)) = v.  n is None before shape
    inference (the parser knows only m)."""
    __slots__ = ("arg", "m", "n")
    fields = ("arg", "m", "n")

    def __init__(self, arg, m, n=None):
        _put(self, "arg", arg)
        _put(self, "m", m)
        _put(self, "n", n)
        finish_node(self, self._compute_args())

    def _compute_shape(self):
        return (self.m, self.n)


class DiagMat(_Unary):
    """diag(x): the diagonal matrix with the vector x on its diagonal."""
    __slots__ = ()

    def _compute_shape(self):
        n = self.arg.shape[0]
        return (n, n)


class DiagVec(_Unary):
    """diag(X): the vector of the diagonal of a square X."""
    __slots__ = ()

    def _compute_shape(self):
        return (self.arg.shape[0], 1)


class _Named(Expr):
    """A function of one argument, by name (its record in ``matcalc.operators`` says what
    it is): the elementwise and the spectral functions."""
    __slots__ = ("name", "arg")
    fields = ("name", "arg")

    def __init__(self, name, arg):
        _put(self, "name", name)
        _put(self, "arg", arg)
        finish_node(self, (arg,) if isinstance(arg, Expr) else ())


class Func(_Named):
    """An elementwise function, by name: one of the records of ``matcalc.operators``."""
    __slots__ = ()

    def _compute_shape(self):
        return self.arg.shape


class ArrayFunc(Expr):
    """A function of a whole array, by name (softmax, logsumexp): one of the
    ``ArrayFunction`` records of ``matcalc.operators``.  The record's shape rule (the
    argument's shape -> the result's) rides along in ``rule`` (not a field: the name
    determines it), handed down by whoever builds the node (``record.node(arg)``), so
    that the tree needs nothing from the records, which sit above it."""
    __slots__ = ("name", "arg", "rule")
    fields = ("name", "arg")

    def __init__(self, name, arg, rule):
        _put(self, "name", name)
        _put(self, "arg", arg)
        _put(self, "rule", rule)
        finish_node(self, self._compute_args())

    def rebuild(self, args):
        return ArrayFunc(self.name, args[0], self.rule)

    def _compute_shape(self):
        return self.rule(self.arg.shape)


class MatPow(Expr):
    """X^k for a square X and an integer k >= 0."""
    __slots__ = ("arg", "k")
    fields = ("arg", "k")

    def __init__(self, arg, k):
        _put(self, "arg", arg)
        _put(self, "k", k)
        finish_node(self, self._compute_args())

    def _compute_shape(self):
        return self.arg.shape


class MatFunc(Expr):
    """A function of a square matrix (not elementwise), by name: ``expm``, ``logm``,
    ``sqrtm`` (the principal square root, also ``X^(1/2)``) or ``powm`` (``X^p`` for a
    non-integer number p, the principal power; p a Fraction, None for the others).
    CONTRACT §5.1."""
    __slots__ = ("name", "arg", "p")
    fields = ("name", "arg", "p")

    def __init__(self, name, arg, p=None):
        _put(self, "name", name)
        _put(self, "arg", arg)
        _put(self, "p", p)
        finish_node(self, self._compute_args())

    def _compute_shape(self):
        return self.arg.shape


class Frechet(Expr):
    """L_f(X, E): the Fréchet derivative of the matrix function f (a ``MatFunc`` name, with
    its p) at X in the direction E; linear in E, of X's shape.  Written ``dexpm(X, E)``,
    ``dlogm(X, E)``, ``dsqrtm(X, E)``, ``dpowm(X, E, p)``."""
    __slots__ = ("name", "arg", "dir", "p")
    fields = ("name", "arg", "dir", "p")

    def __init__(self, name, arg, dir, p=None):
        _put(self, "name", name)
        _put(self, "arg", arg)
        _put(self, "dir", dir)
        _put(self, "p", p)
        finish_node(self, self._compute_args())

    def _compute_shape(self):
        return self.arg.shape


class FrechetJac(Expr):
    """The n²×n² matrix J of the Fréchet derivative of f at the n×n X:
    vec L_f(X, E) = J vec(E).  Written ``jexpm(X)``, ``jlogm(X)``, ``jsqrtm(X)``,
    ``jpowm(X, p)``."""
    __slots__ = ("name", "arg", "p")
    fields = ("name", "arg", "p")

    def __init__(self, name, arg, p=None):
        _put(self, "name", name)
        _put(self, "arg", arg)
        _put(self, "p", p)
        finish_node(self, self._compute_args())

    def _compute_shape(self):
        n = self.arg.shape[0]
        nn = size_mul(n, n)
        return (nn, nn)


class Spectral(_Named):
    """A scalar function of a matrix's spectrum, by name: ``lambda_max`` and
    ``lambda_min`` (of a symmetric matrix), ``nuclear`` (``||X||_*``, the sum of the
    singular values) and ``norm1`` (``||x||_1``, the sum of the absolute values of the
    entries).  (The spectral norm ``||X||_2`` is ``SpecNorm``.)  CONTRACT §5.1."""
    __slots__ = ()

    def _compute_shape(self):
        return SCALAR


class SpectralVec(_Named):
    """A vector or factor of a spectral decomposition, as the gradients of ``Spectral``
    and ``SpecNorm`` need them: ``eigvec_max(S)``, ``eigvec_min(S)`` (unit eigenvectors of
    the largest / smallest eigenvalue of a symmetric S, n×1); ``svec_left(X)`` (m×1) and
    ``svec_right(X)`` (n×1), the top singular vectors, X svec_right(X) = ||X||_2 svec_left(X);
    ``polar(X)`` (m×n), U Vᵀ of X's thin SVD."""
    __slots__ = ()

    def _compute_shape(self):
        r, c = self.arg.shape
        if self.name in ("eigvec_max", "eigvec_min", "svec_right"):
            return (c, 1)
        if self.name == "svec_left":
            return (r, 1)
        return (r, c)


class Pow(Expr):
    """s^p for scalars s and p."""
    __slots__ = ("base", "exp")
    fields = ("base", "exp")

    def __init__(self, base, exp):
        _put(self, "base", base)
        _put(self, "exp", exp)
        finish_node(self, self._compute_args())

    def _compute_shape(self):
        return SCALAR


class ElemPow(Expr):
    """X .^ p: every entry raised to the scalar p."""
    __slots__ = ("base", "exp")
    fields = ("base", "exp")

    def __init__(self, base, exp):
        _put(self, "base", base)
        _put(self, "exp", exp)
        finish_node(self, self._compute_args())

    def _compute_shape(self):
        return self.base.shape


# Nodes that exist only between parsing and shape inference, where the meaning of the
# notation depends on the operands' shapes.


class RawPower(Expr):
    """``a ^ p``: Pow for a scalar, MatPow or Inverse for a square matrix."""
    __slots__ = ("base", "exp")
    fields = ("base", "exp")

    def __init__(self, base, exp):
        _put(self, "base", base)
        _put(self, "exp", exp)
        finish_node(self, self._compute_args())


class RawDiv(Expr):
    """``a / s``: a divided by the scalar s."""
    __slots__ = ("num", "den")
    fields = ("num", "den")

    def __init__(self, num, den):
        _put(self, "num", num)
        _put(self, "den", den)
        finish_node(self, self._compute_args())


class RawBars(_Unary):
    """``|e|``: determinant of a matrix, absolute value of a scalar."""
    __slots__ = ()


class RawDiag(_Unary):
    """``diag(e)``: DiagMat of a vector, DiagVec of a square matrix."""
    __slots__ = ()


class RawNorm(Expr):
    """``||e||``, ``||e||_2``, ``||e||_F``, ``norm(e)``: sub is None, "2" or "F"."""
    __slots__ = ("arg", "sub")
    fields = ("arg", "sub")

    def __init__(self, arg, sub=None):
        _put(self, "arg", arg)
        _put(self, "sub", sub)
        finish_node(self, self._compute_args())


NODE_TYPES = (Num, Sym, Diff, Identity, Zero, Commutation, Fill, Add, Mul, Hadamard, Kron,
              Transpose, Inverse, Det, LogDet, Trace, Sum, Norm, SpecNorm, Vec, Unvec, DiagMat,
              DiagVec, Func, ArrayFunc, Spectral, SpectralVec, MatPow, Pow, ElemPow,
              MatFunc, Frechet, FrechetJac)


# ---------------------------------------------------------------------------- helpers

ONE = Num(1)
MINUS_ONE = Num(-1)
ZERO = Num(0)


def is_num(e, value=None):
    return isinstance(e, Num) and (value is None or e.value == value)


def is_zero(e):
    return isinstance(e, Zero) or (isinstance(e, Num) and e.value == 0)


def walk(e):
    """Every node of e (or of a list of trees), parents before children, each distinct
    node once."""
    seen = set()
    stack = list(reversed(e)) if isinstance(e, list) else [e]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        yield n
        stack.extend(reversed(n.args))


def symbols_of(e):
    """The symbols occurring in e, in order of first appearance."""
    out = {}
    for n in walk(e):
        if isinstance(n, Sym):
            out.setdefault(n.name, n)
        elif isinstance(n, Diff):
            out.setdefault(n.var.name, n.var)
    return out


def contains(e, pred, _memo=None):
    """Whether some node of e satisfies pred (memoized by identity for DAGs)."""
    memo = {} if _memo is None else _memo
    k = id(e)
    if k in memo:
        return memo[k]
    r = pred(e)
    if not r:
        r = False
        for a in e.args:            # a loop, not a generator: one frame per level
            if contains(a, pred, memo):
                r = True
                break
    memo[k] = r
    return r


def same_items(old, new):
    """Whether new holds the very objects of old, in order (a rebuild would change
    nothing): the identity test at C speed (map over operator.is_, not a generator)."""
    return all(map(is_, old, new))


def fold(e, combine, replace=None):
    """The one bottom-up fold over a tree: combine(x, results) for each distinct node x
    once (by identity), given its children's results in order, after them.  replace(x)
    may give x's result at once (its children are then not visited), or None to go on.
    One Python frame per level (a loop, not a generator), so the deepest tree the parser
    accepts stays within the default recursion limit."""
    memo = {}                  # id -> (node, result): the node is kept, so its id is not reused

    def go(x):
        hit = memo.get(id(x))
        if hit is not None:
            return hit[1]
        out = replace(x) if replace is not None else None
        if out is None:
            args = x.args
            if args:
                results = []
                for a in args:
                    results.append(go(a))
                out = combine(x, tuple(results))
            else:
                out = combine(x, ())
        memo[id(x)] = (x, out)
        return out

    return go(e)


def rewrite(e, replace=None, after=None):
    """e rebuilt bottom-up (the fold), each distinct subexpression once.

    replace(x) may return a replacement for x itself (its children are then not
    visited); after(y) may return a replacement for a node once its children are
    rebuilt.  Either returns None to keep the node.  Spans ride along."""

    def combine(x, new):
        if same_items(x.args, new):
            out = x
        else:
            out = x.rebuild(new)
            if getattr(x, "span", None) is not None:
                out.span = x.span
        if after is not None:
            out = after(out) or out
        return out

    return fold(e, combine, replace)


def zero_like(x):
    """The zero with x's shape: the number 0 for a scalar."""
    return ZERO if x.is_scalar else Zero(*x.shape)


def depends_on(e, name):
    return contains(e, lambda n: (isinstance(n, Sym) and n.name == name)
                    or (isinstance(n, Diff) and n.var.name == name))


def has_diff(e):
    return contains(e, lambda n: isinstance(n, Diff))
