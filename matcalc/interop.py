"""SymPy interop, both ways.

``to_sympy(e)`` gives the SymPy matrix expression of a typed tree -- MatrixSymbol,
MatAdd, MatMul, Transpose, Inverse, MatPow, Trace, Determinant, log(Determinant),
HadamardProduct, HadamardPower, KroneckerProduct, Identity, ZeroMatrix, OneMatrix,
DiagMatrix, DiagonalOf, elementwise functions (``A.applyfunc``) -- with the sizes as
SymPy symbols (integer, positive).  vec(X) and the commutation matrix K(m,n), which
SymPy lacks, are the small MatrixExpr classes ``Vec`` and ``CommutationMatrix`` made
here (``.as_explicit()`` gives their entries once the sizes are numbers).

``from_sympy(expr)`` reads such an expression back into a matcalc tree: each
MatrixSymbol becomes a symbol whose kind follows its shape (one column: a vector; 1×1:
a scalar; else a matrix), each SymPy Symbol a scalar, and the sizes stay size names
(SymPy symbols) or numbers.  The tree is built by writing the expression in matcalc's
input language and parsing it with the symbols declared, so it is typed and checked
exactly like ``matcalc.parse``'s.  A SymPy node with no counterpart raises
``matcalc.UnsupportedError`` naming it.

SymPy is imported here only, inside the functions, never on the path of ``matcalc diff``.
"""
import threading

from . import expr as E
from .declarations import NAME_RE as _NAME_RE
from .errors import MatcalcError, UnsupportedError, require_module
from .operators import ELEMENTWISE_RECORDS, table

def _func_words():
    from .parse import FUNCTION_NAMES, function_suggestion
    return FUNCTION_NAMES | {"I"}, function_suggestion

_classes = None
_CLASSES_LOCK = threading.Lock()


def _sympy():
    """SymPy, or a MissingDependencyError that says how to install it."""
    return require_module("sympy", "converting to and from SymPy",
                          'pip install "matcalc-symbolic[sympy]" (or pip install sympy)')


def sympy_classes():
    """(Vec, CommutationMatrix): SymPy matrix expressions for vec(X) and K(m,n), made
    once (under a lock: two threads must not make two different Vec classes)."""
    if _classes is not None:
        return _classes
    with _CLASSES_LOCK:
        return _make_classes()


def _make_classes():
    global _classes
    if _classes is not None:
        return _classes
    sp = _sympy()
    from sympy.matrices import MatrixBase
    from sympy.matrices.expressions.matexpr import MatrixExpr

    class Vec(MatrixExpr):
        """vec(X): the columns of X stacked, X_11, ..., X_m1, X_12, ... (column-major)."""

        def __new__(cls, arg):
            arg = sp.sympify(arg, strict=True)      # never a string: sympify evaluates those
            if not getattr(arg, "is_Matrix", False):
                raise TypeError("vec takes a matrix")
            return super().__new__(cls, arg)

        @property
        def arg(self):
            return self.args[0]

        @property
        def shape(self):
            return (self.arg.shape[0] * self.arg.shape[1], sp.S.One)

        def _entry(self, i, j, **kw):
            m = self.arg.shape[0]
            return self.arg[i % m, i // m]

        def doit(self, **hints):
            arg = self.arg.doit(**hints) if hints.get("deep", True) else self.arg
            if isinstance(arg, MatrixBase):
                return sp.ImmutableMatrix(arg.T.reshape(arg.rows * arg.cols, 1))
            return Vec(arg)

        def _eval_derivative(self, x):  # pragma: no cover - SymPy's own calculus, not used here
            return Vec(self.arg.diff(x))

        def _sympystr(self, printer):
            return f"vec({printer._print(self.arg)})"

        def _latex(self, printer):
            return f"\\operatorname{{vec}}\\left({printer._print(self.arg)}\\right)"

    class CommutationMatrix(MatrixExpr):
        """K(m,n), the mn×mn permutation with K vec(X) = vec(Xᵀ) for an m×n X."""

        def __new__(cls, m, n):
            return super().__new__(cls, sp.sympify(m, strict=True), sp.sympify(n, strict=True))

        @property
        def shape(self):
            m, n = self.args
            return (m * n, m * n)

        def _entry(self, i, j, **kw):
            m, n = self.args
            # row a + n b of vec(Xᵀ) is X[b, a], which is row b + m a of vec(X)
            target = i // n + m * (i % n)
            if all(isinstance(v, (int, sp.Integer)) for v in (i, j, target)):
                return sp.S.One if int(j) == int(target) else sp.S.Zero
            return sp.KroneckerDelta(j, target)

        def doit(self, **hints):
            # stays symbolic, like Identity(3); .as_explicit() gives the matrix of numbers
            return self

        def _eval_transpose(self):
            m, n = self.args
            return CommutationMatrix(n, m)

        def _sympystr(self, printer):
            m, n = self.args
            return f"K({printer._print(m)},{printer._print(n)})"

        def _latex(self, printer):
            m, n = self.args
            return f"K_{{{printer._print(m)},{printer._print(n)}}}"

    _classes = (Vec, CommutationMatrix)
    return _classes


# ---------------------------------------------------------------------------- to SymPy


def to_sympy(e, sizes=None):
    """(SymPy expression, {name: SymPy symbol}) of the typed tree e.  sizes maps size
    names to the SymPy symbols to use (filled in with new ones as they are met)."""
    sp = _sympy()
    from sympy import matrices as M
    from sympy.matrices.expressions.kronecker import KroneckerProduct
    Vec, CommutationMatrix = sympy_classes()
    sizes = {} if sizes is None else sizes
    syms = {}

    def size(s):
        if isinstance(s, int):
            return sp.Integer(s)
        if isinstance(s, E.SizeProd):
            out = sp.Integer(s[0])
            for f in s[1:]:
                out = out * size(f)
            return out
        if s not in sizes:
            sizes[s] = sp.Symbol(s, integer=True, positive=True)
        return sizes[s]

    funcs = table("SymPy spelling", lambda r: (lambda x, _f=r.sympy: _f(sp, x)) if r.sympy else None)
    memo = {}

    def go(x):
        k = id(x)
        hit = memo.get(k)
        if hit is not None and hit[0] is x:
            return hit[1]
        out = convert(x)
        if x.is_scalar and getattr(out, "is_Matrix", False):
            out = M.Trace(out)          # a 1×1 matrix used as a scalar: its one entry
        memo[k] = (x, out)
        return out

    def tidy(m):
        """SymPy's own flattening of a MatAdd or MatMul (nested sums and products, numbers
        collected); left as built where SymPy's assumptions system fails on it (it can,
        asking whether tanh(log(det(...))) is zero)."""
        try:
            return m.doit(deep=False)
        except (TypeError, ValueError, AttributeError, RecursionError):
            return m

    def scalars(x):
        return x.is_scalar and all(a.is_scalar for a in x.args)

    def convert(x):
        t = type(x)
        if t is E.Num:
            return sp.Rational(x.value.numerator, x.value.denominator)
        if t is E.Sym:
            if x.name not in syms:
                syms[x.name] = (sp.Symbol(x.name) if x.is_scalar
                                else M.MatrixSymbol(x.name, size(x.rows), size(x.cols)))
            return syms[x.name]
        if t is E.Identity:
            return M.Identity(size(x.n))
        if t is E.Zero:
            if x.is_scalar:
                return sp.S.Zero
            return M.ZeroMatrix(size(x.rows), size(x.cols))
        if t is E.Commutation:
            return CommutationMatrix(size(x.m), size(x.n))
        if t is E.Fill:
            return go(x.value) * M.OneMatrix(size(x.rows), size(x.cols))
        if t is E.Add:
            parts = [go(a) for a in x.items]
            if x.is_scalar:
                return sp.Add(*parts)
            return tidy(M.MatAdd(*parts))
        if t is E.Mul:
            parts = [go(a) for a in x.items]
            if x.is_scalar and all(a.is_scalar for a in x.items):
                return sp.Mul(*parts)
            if x.is_scalar:
                # a 1×1 product used as a scalar: the trace of the 1×1 matrix
                scal = [p for a, p in zip(x.items, parts) if a.is_scalar]
                chain = [p for a, p in zip(x.items, parts) if not a.is_scalar]
                return sp.Mul(*scal) * M.Trace(M.MatMul(*chain))
            return tidy(M.MatMul(*parts))
        if t is E.Hadamard:
            if scalars(x):
                return sp.Mul(*[go(a) for a in x.items])
            return M.HadamardProduct(*[go(a) for a in x.items])
        if t is E.Kron:
            if scalars(x):
                return sp.Mul(*[go(a) for a in x.items])
            return KroneckerProduct(*[go(a) for a in x.items])
        if t is E.Transpose:
            a = go(x.arg)
            return a if x.arg.is_scalar else M.Transpose(a)
        if t is E.Inverse:
            if x.arg.is_scalar:
                return 1 / go(x.arg)
            return M.Inverse(go(x.arg))
        if t is E.Det:
            return M.Determinant(go(x.arg)) if not x.arg.is_scalar else go(x.arg)
        if t is E.LogDet:
            return sp.log(M.Determinant(go(x.arg)) if not x.arg.is_scalar else go(x.arg))
        if t is E.Trace:
            a = go(x.arg)
            return a if x.arg.is_scalar else M.Trace(a)
        if t is E.MatPow:
            if x.arg.is_scalar:
                return sp.Pow(go(x.arg), x.k)
            return M.MatPow(go(x.arg), x.k)
        if t is E.Pow:
            return sp.Pow(go(x.base), go(x.exp))
        if t is E.ElemPow:
            if x.base.is_scalar:
                return sp.Pow(go(x.base), go(x.exp))
            return M.HadamardPower(go(x.base), go(x.exp))
        if t is E.ArrayFunc:            # softmax, logsumexp: SymPy has neither (written out)
            from .operators import ARRAY_FUNCTIONS
            return go(ARRAY_FUNCTIONS[x.name].expand(x.arg))
        if t is E.Func:
            a = go(x.arg)
            if x.arg.is_scalar:
                return funcs[x.name](a)
            return a.applyfunc(funcs[x.name])
        if t is E.Sum:
            a = go(x.arg)
            if x.arg.is_scalar:
                return a
            # sum(A) = 1ᵀ A 1, a 1×1 product: its trace
            r, c = size(x.arg.shape[0]), size(x.arg.shape[1])
            return M.Trace(M.MatMul(M.OneMatrix(1, r), a, M.OneMatrix(c, 1)))
        if t is E.Norm:
            a = go(x.arg)
            if x.arg.is_scalar:
                return sp.Abs(a)
            return sp.sqrt(M.Trace(M.MatMul(M.Transpose(a), a)))
        if t is E.Vec:
            a = go(x.arg)
            return a if x.arg.shape[1] == 1 else Vec(a)
        if t is E.DiagMat:
            return go(x.arg) if x.arg.is_scalar else M.DiagMatrix(go(x.arg))
        if t is E.DiagVec:
            return go(x.arg) if x.arg.is_scalar else M.DiagonalOf(go(x.arg))
        if t is E.SpecNorm:
            raise UnsupportedError("the spectral norm ||E||_2 has no SymPy matrix expression")
        if t in (E.Spectral, E.SpectralVec):
            from .operators import SPECTRAL
            rec = SPECTRAL.get(x.name)
            why = rec.sympy if rec is not None else f"{x.name} has no record"
            raise UnsupportedError(f"{x.name}: {why}; evaluate or compile the derivative instead")
        if t is E.Unvec:
            raise UnsupportedError("unvec(v, m), the inverse of vec (a column-major reshape), has no "
                                   "SymPy matrix expression; evaluate or compile the derivative instead")
        from .operators import NODES
        why = NODES[t.__name__].absent.get("sympy") if t.__name__ in NODES else None
        if why is not None:                 # the node record says why (expm, dexpm, jexpm: none)
            raise UnsupportedError(f"{x} has no SymPy counterpart: {why}; evaluate or compile "
                                   f"the derivative instead")
        raise UnsupportedError(f"no SymPy counterpart for {t.__name__}")

    from sympy.matrices.exceptions import NonSquareMatrixError, ShapeError as SympyShapeError
    try:
        return go(e), syms
    except (NonSquareMatrixError, SympyShapeError) as err:
        # sizes equal only as products (A ⊗ X square with m·p = n·q): SymPy checks the
        # shapes of its matrix expressions, and cannot know that they agree
        raise UnsupportedError(f"SymPy cannot hold this expression: {err} (its sizes are equal "
                               f"only as products, such as m·p = n·q beside a Kronecker product; "
                               f"declare the shapes of the factors, e.g. matrix(n,n))") from None


# ---------------------------------------------------------------------------- from SymPy


def from_sympy(expr):
    """The matcalc tree of a SymPy matrix (or scalar) expression."""
    text, decls = sympy_to_text(expr)
    from .declarations import typed
    return typed(text, decls)[0]


def sympy_to_text(expr):
    """(text in matcalc's input language, {name: kind declaration}) of a SymPy
    expression; raises UnsupportedError on a node with no counterpart."""
    sp = _sympy()
    from sympy import matrices as M
    from sympy.matrices import MatrixBase
    from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
    from sympy.matrices.expressions.diagonal import DiagonalMatrix
    from sympy.matrices.expressions.kronecker import KroneckerProduct
    Vec, CommutationMatrix = sympy_classes()
    decls = {}
    # SymPy's function class -> the elementwise function it reads back as (its record's)
    sympy_names = {getattr(sp, r.sympy_class): r.name for r in ELEMENTWISE_RECORDS if r.sympy_class}

    def unsupported(x, why=""):
        return UnsupportedError(f"SymPy's {type(x).__name__} has no counterpart in matcalc"
                                f"{why}: {x}")

    def check_name(name, what):
        words, looks_like_function = _func_words()
        if not _NAME_RE.match(name) or name in words or looks_like_function(name):
            raise MatcalcError(f"the SymPy {what} {name!r} cannot be a matcalc name "
                               f"(a letter, then letters, digits and _, and not a function name or I)")

    def declare(name, kind, what):
        check_name(name, what)
        old = decls.setdefault(name, kind)
        if old != kind:
            raise MatcalcError(f"the SymPy expression uses {name!r} both as {old} and as {kind}")

    def size_factors(s):
        """A size as a list of numbers and names (m*n -> ['m', 'n'])."""
        s = sp.sympify(s, strict=True)
        if s.is_Integer and s > 0:
            return [int(s)]
        if s.is_Symbol:
            check_name(s.name, "size")
            return [s.name]
        if s.is_Pow and s.exp.is_Integer and s.exp > 0:
            return size_factors(s.base) * int(s.exp)
        if s.is_Mul:
            out = []
            for f in s.args:
                out.extend(size_factors(f))
            return out
        raise UnsupportedError(f"the size {s} is not a product of size names and numbers")

    def size_text(s):
        return "*".join(str(f) for f in size_factors(s))

    def identity(s):
        parts = size_factors(s)
        return "(" + " ⊗ ".join(f"I({f})" for f in parts) + ")"

    def ones(r, c):
        col = f"diag{identity(r)}"
        if c == 1:
            return col
        row = f"diag{identity(c)}^T"
        return row if r == 1 else f"({col} {row})"

    def number(x):
        # the language has no π or e: SymPy's exact constants stay exact as 4 atan(1)
        # (math.atan(1) * 4 == math.pi) and exp(1), not floats
        if x is sp.pi:
            return "(4 * atan(1))"
        if x is sp.E:
            return "exp(1)"
        if x.is_Integer:
            v = int(x)
            return str(v) if v >= 0 else f"({v})"
        if x.is_Rational:
            return f"({x.p}/{x.q})"
        if x.is_real and x.is_finite:
            v = float(x)
            return repr(v) if v >= 0 else f"({v!r})"
        raise unsupported(x, " (only real numbers are)")

    def is_ones_row(a):
        return isinstance(a, M.OneMatrix) and a.shape[0] == 1

    def is_ones_col(a):
        return isinstance(a, M.OneMatrix) and a.shape[1] == 1

    def ew_function(f):
        """(variable, body) of the scalar function that ElementwiseApplyFunction applies."""
        if isinstance(f, sp.Lambda) and len(f.variables) == 1:
            v, body = f.variables[0], f.expr
        else:
            v = sp.Dummy("v")
            body = f(v)
        return v, body

    def go(x, ew=None):
        """Text of x; ew = (variable, text of the matrix) inside an elementwise function,
        where products and powers of the variable are entrywise."""
        if ew is not None and x == ew[0]:
            return ew[1]
        if isinstance(x, M.MatrixSymbol):
            name = str(x.name)
            r, c = x.shape
            if r == 1 and c == 1:
                declare(name, "scalar", "matrix symbol")
                return name
            if c == 1:
                declare(name, f"vector({size_text(r)})", "matrix symbol")
                return name
            if r == 1:
                declare(name, f"vector({size_text(c)})", "matrix symbol")
                return f"{name}^T"
            declare(name, f"matrix({size_text(r)},{size_text(c)})", "matrix symbol")
            return name
        if isinstance(x, sp.Symbol):
            if x.is_integer and x.is_positive:
                # a size as a number (SymPy writes det(2 A) as 2^n det(A)): the language
                # has no scalar for a size, and a new scalar n would be a misreading
                raise UnsupportedError(
                    f"SymPy wrote the size {x.name} as a number ({sp.sstr(x)} inside a scalar); the "
                    f"input language has no scalar for a size: keep the derivative in matcalc")
            declare(x.name, "scalar", "symbol")
            return x.name
        if isinstance(x, sp.Number) or (x.is_number and not isinstance(x, (sp.Add, sp.Mul, sp.Pow, sp.Function))
                                        and not getattr(x, "is_Matrix", False)):
            return number(x)
        if isinstance(x, (sp.Add, M.MatAdd)):
            return "(" + " + ".join(go(a, ew) for a in x.args) + ")"
        if isinstance(x, sp.Mul):
            if ew is None:
                return "(" + " * ".join(go(a) for a in x.args) + ")"
            const = [go(a) for a in x.args if not a.has(ew[0])]
            dep = [go(a, ew) for a in x.args if a.has(ew[0])]
            inner = " .* ".join(dep)
            return "(" + " * ".join(const + ([f"({inner})"] if dep else [])) + ")"
        special = _named_function(x)
        if special is not None:
            name, arg = special
            return f"{name}({go(arg, ew)})"
        if isinstance(x, sp.Pow):
            b, p = x.args
            if ew is not None and b.has(ew[0]):
                if p.has(ew[0]):
                    raise unsupported(x, " (an elementwise power with a varying exponent)")
                if p == sp.S.Half:
                    return f"sqrt({go(b, ew)})"
                return f"({go(b, ew)} .^ {go(p)})"
            if ew is not None and p.has(ew[0]):
                raise unsupported(x, " (an elementwise exponential base^x)")
            if p == sp.S.Half:
                norm = _norm_of(b)
                if norm is not None:
                    return f"norm({go(norm)})"
                return f"sqrt({go(b)})"
            return f"({go(b)})^({go(p)})"
        if isinstance(x, sp.log) and isinstance(x.args[0], M.Determinant):
            return f"logdet({go(x.args[0].arg)})"
        for r in ELEMENTWISE_RECORDS:           # relu = Max(0, x), step = Heaviside(x, 0)
            arg = r.sympy_match(sp, x) if r.sympy_match else None
            if arg is not None:
                return f"{r.name}({go(arg, ew)})"
        if isinstance(x, sp.Function) and len(x.args) == 1:
            name = sympy_names.get(type(x))
            if name is None:
                raise unsupported(x, f" (the functions are {', '.join(sorted(set(sympy_names.values())))}, "
                                     f"sqrt)")
            return f"{name}({go(x.args[0], ew)})"
        if ew is not None:
            raise unsupported(x, " inside an elementwise function")
        # ---- matrices
        if isinstance(x, MatrixBase):
            raise unsupported(x, " (an explicit matrix: matcalc works with symbols)")
        if isinstance(x, M.MatMul):
            return "(" + " * ".join(go(a) for a in x.args) + ")"
        if isinstance(x, M.Transpose):
            return f"({go(x.arg)})^T"
        if isinstance(x, M.Inverse):
            return f"inv({go(x.arg)})"
        if isinstance(x, M.MatPow):
            k = x.exp
            if not k.is_Integer:
                raise unsupported(x, " (a matrix power with an exponent that is not an integer)")
            k = int(k)
            base = go(x.base)
            if k < 0:
                base, k = f"inv({base})", -k
            return f"({base})^{k}"
        if isinstance(x, M.Trace):
            a = x.arg
            if isinstance(a, M.MatMul) and len(a.args) >= 3 and is_ones_row(a.args[0]) \
                    and is_ones_col(a.args[-1]):
                mid = M.MatMul(*a.args[1:-1])
                return f"sum({go(mid)})"
            return f"tr({go(a)})"
        if isinstance(x, M.Determinant):
            return f"det({go(x.arg)})"
        if isinstance(x, M.HadamardProduct):
            return "(" + " .* ".join(go(a) for a in x.args) + ")"
        if isinstance(x, M.HadamardPower):
            return f"({go(x.base)} .^ {go(x.exp)})"
        if isinstance(x, KroneckerProduct):
            return "(" + " ⊗ ".join(go(a) for a in x.args) + ")"
        if isinstance(x, M.Identity):
            return identity(x.rows)
        if isinstance(x, M.ZeroMatrix):
            return f"(0 * {ones(x.rows, x.cols)})"
        if isinstance(x, M.OneMatrix):
            return ones(x.rows, x.cols)
        if isinstance(x, M.DiagMatrix):
            v = x.args[0]
            return f"diag({go(v)}^T)" if v.shape[0] == 1 and v.shape[1] != 1 else f"diag({go(v)})"
        if isinstance(x, M.DiagonalOf):
            if x.arg.shape[0] != x.arg.shape[1]:
                raise unsupported(x, " (the diagonal of a matrix that is not square)")
            return f"diag({go(x.arg)})"
        if isinstance(x, DiagonalMatrix):
            return f"({identity(x.arg.rows)} .* {go(x.arg)})"
        if isinstance(x, ElementwiseApplyFunction):
            v, body = ew_function(x.function)
            return "(" + go(body, (v, go(x.expr))) + ")"
        if isinstance(x, Vec):
            return f"vec({go(x.arg)})"
        if isinstance(x, CommutationMatrix):
            m, n = x.args
            if not all(len(size_factors(s)) == 1 for s in (m, n)):
                raise unsupported(x, " (K(m,n) with a product size)")
            return f"K({size_text(m)},{size_text(n)})"
        raise unsupported(x)

    def _named_function(x):
        """('sigmoid', u) for 1/(1 + exp(-u)), ('softplus', u) for log(1 + exp(u))."""
        if isinstance(x, sp.Pow) and x.exp == -1 and isinstance(x.base, sp.Add) and len(x.base.args) == 2:
            one, ex = sorted(x.base.args, key=lambda a: not a.is_Number)
            if one == 1 and isinstance(ex, sp.exp):
                return "sigmoid", -ex.args[0]
        if isinstance(x, sp.log) and isinstance(x.args[0], sp.Add) and len(x.args[0].args) == 2:
            one, ex = sorted(x.args[0].args, key=lambda a: not a.is_Number)
            if one == 1 and isinstance(ex, sp.exp):
                return "softplus", ex.args[0]
        return None

    def _norm_of(b):
        """A with b = tr(Aᵀ A), else None."""
        if isinstance(b, M.Trace) and isinstance(b.arg, M.MatMul) and len(b.arg.args) == 2:
            left, right = b.arg.args
            if isinstance(left, M.Transpose) and left.arg == right:
                return right
        return None

    if isinstance(expr, (str, bytes)):
        # sympify would evaluate the text as Python (it runs whatever it names)
        raise MatcalcError("from_sympy takes a SymPy expression, not a string; to read an "
                           "expression written in matcalc's language use matcalc.parse(text)")
    try:
        expr = sp.sympify(expr, strict=True)
    except sp.SympifyError:
        raise MatcalcError(f"from_sympy takes a SymPy expression, not a value of type "
                           f"{type(expr).__name__}") \
            from None
    return go(expr), decls
