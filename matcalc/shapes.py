"""Kinds, symbolic sizes and shape inference.

``infer(raw, declarations)`` turns the parser's raw tree into a typed tree: every
symbol gets its kind and a shape, sizes are solved by unification, the notations whose
meaning depends on shapes are decided (``|e|`` is a determinant or an absolute value,
``X^k`` a matrix power, an inverse or a scalar power, ``diag`` builds or extracts),
scalars added to arrays become ``Fill`` nodes, and products are grouped so that a 1×1
result scales what follows it.  A size that cannot fit raises ``ShapeError`` naming
both operands and pointing at them.
"""
import math
import re

from . import expr as E
from .errors import ShapeError, UnsupportedError

_put = object.__setattr__       # a node's span: an annotation, set past the frozen __setattr__

_DECL_RE = re.compile(r"^\s*([A-Za-z]+)\s*(?:\(\s*([^()]*?)\s*\))?\s*$")
_SIZE_RE = re.compile(r"^(\d+|[A-Za-z][A-Za-z0-9_]*)(\s*\*\s*(\d+|[A-Za-z][A-Za-z0-9_]*))*$")


def read_size(text):
    """'n' -> 'n', '3' -> 3, 'm*n' -> the product of m and n."""
    out = 1
    for part in text.split("*"):
        part = part.strip()
        out = E.size_mul(out, int(part) if part.isdigit() else part)
    return out

# names handed to sizes that nothing names, in order of first appearance
SIZE_NAMES = ("m", "n", "p", "q", "r", "s", "k", "l", "u", "v", "w")


class _Var(str):
    """A size variable: a string of its own type, so it sorts inside SizeProd."""
    __slots__ = ()


def parse_declaration(name, decl):
    """'matrix(m,n)' -> ('matrix', ['m', 'n']); sizes are ints or names, or [] if none."""
    if not isinstance(decl, str):
        raise ShapeError(f"the kind of {name} must be a string like 'matrix(m,n)', got {decl!r}")
    m = _DECL_RE.match(decl)
    if not m:
        raise ShapeError(f"cannot read the declaration {name}={decl!r}; "
                         f"write a kind such as matrix(m,n), vector(n), symmetric(n) or scalar")
    kind = m.group(1).lower()
    if kind not in E.KINDS:
        raise ShapeError(f"unknown kind {m.group(1)!r} for {name}; the kinds are {', '.join(E.KINDS)}")
    sizes = []
    if m.group(2) is not None and m.group(2) != "":
        for part in m.group(2).split(","):
            part = part.strip()
            if not _SIZE_RE.match(part):
                raise ShapeError(f"bad size {part!r} in the declaration {name}={decl!r}")
            sizes.append(read_size(part))
            if sizes[-1] == 0:
                raise ShapeError(f"size 0 in the declaration {name}={decl!r}")
    want = {"scalar": (0,), "vector": (0, 1), "matrix": (0, 2)}.get(kind, (0, 1))
    if len(sizes) not in want:
        raise ShapeError(f"{kind} takes {' or '.join(str(w) for w in want)} sizes, "
                         f"got {len(sizes)} in {name}={decl!r}")
    return kind, sizes


def default_kind(name):
    return "matrix" if name[:1].isupper() else "vector"


def kind_string(sym):
    """'matrix(m,n)', 'vector(n)', 'spd(n)', 'scalar' for a typed symbol."""
    if sym.kind == "scalar":
        return "scalar"
    if sym.kind == "vector":
        return f"vector({E.size_str(sym.rows)})"
    if sym.kind == "matrix":
        return f"matrix({E.size_str(sym.rows)},{E.size_str(sym.cols)})"
    return f"{sym.kind}({E.size_str(sym.rows)})"


def describe_shape(shape):
    r, c = (E.size_str(x) for x in shape)
    if shape == E.SCALAR:
        return "a scalar"
    if c == "1":
        return f"a vector of length {r}"
    if r == "1":
        return f"a row vector of length {c}"
    return f"a {r}×{c} matrix"


def check_value_sizes(trees, sizes):
    """The sizes that values bind must satisfy what typing left to them (m·p = n·q where
    A ⊗ X is square, rows(A)·cols(A) = rows(B)·cols(B) in vec(A)ᵀ vec(B)): a ShapeError
    naming both sides, never NumPy's error (or a trace of a non-square matrix) from inside
    the evaluation.  The constraints of the first tree (f) are named first."""
    from .check import size_constraints
    from .numeric import size_value
    constraints = [c for t in trees for c in size_constraints([t])]
    solve_sizes(constraints, sizes)
    for a, b in constraints:
        try:
            va, vb = size_value(a, sizes), size_value(b, sizes)
        except (KeyError, TypeError):
            continue
        if va != vb:
            raise ShapeError(f"the values do not fit the expression: it needs {E.size_str(a)} = "
                             f"{E.size_str(b)}, and the values make {E.size_str(a)} = {va} but "
                             f"{E.size_str(b)} = {vb}")


def solve_sizes(constraints, sizes):
    """Bind, in sizes, the size names that only the constraints fix: where one side's value
    is known and the other is a product with one unknown name (once), that name is the
    quotient (vec(A)ᵀ (I(m) ⊗ B) vec(C) with A 2×3 and B 3×3 gives m = 2).  Repeated until
    nothing more is decided; a quotient that is not a whole positive number is left for
    the check to report."""
    from .numeric import size_value
    changed = True
    while changed:
        changed = False
        for a, b in constraints:
            for known, other in ((a, b), (b, a)):
                try:
                    total = size_value(known, sizes)
                except (KeyError, TypeError):
                    continue
                coef, names = E.size_factors(other)
                unknown = [x for x in names if x not in sizes]
                if len(unknown) != 1 or names.count(unknown[0]) != 1:
                    continue
                for x in names:
                    if x != unknown[0]:
                        coef *= sizes[x]
                if coef > 0 and total % coef == 0 and total // coef > 0:
                    sizes[unknown[0]] = total // coef
                    changed = True


def written_size_names(raw):
    """The size names the text itself writes: in I(n), K(m,n) (and their products)."""
    out = set()
    for e in E.walk(raw):
        if isinstance(e, E.Identity):
            sizes = (e.n,)
        elif isinstance(e, E.Commutation):
            sizes = (e.m, e.n)
        elif isinstance(e, E.Unvec):
            sizes = (e.m, e.n)
        else:
            continue
        for sz in sizes:
            if sz is not None:
                out.update(E.size_factors(sz)[1])
    return out


class Inference:
    """Sizes are solved by union-find.  Three sorts of size meet: numbers, the size names
    the user wrote (in declarations, I(n), K(m,n)), and variables (_Var) for what nothing
    names.  A variable takes whatever it meets; a user's name takes a number when the
    expression forces it (tr(I(q) + X) + tr(I(5) + X) makes q = 5), never another name or
    a different number (that conflict is an error naming both operands).  The names
    handed to variables at the end avoid every name the user wrote."""

    def __init__(self, text, declarations):
        self.text = text or ""
        self.parent = {}          # union-find over _Var
        self.bound = {}           # a user's size name -> the number the expression forces
        self.deferred = []        # (a, b, why): product sizes the expression makes equal
        self.count = 0
        self.symbols = {}         # name -> typed Sym (with _Var sizes until resolved)
        self.decls = {}
        self.user_names = set()
        self.needs_symmetry = False   # a lambda_max or eigvec_max: check_symmetric_arguments
        for name, decl in (declarations or {}).items():
            kind, sizes = parse_declaration(name, decl)
            self.decls[name] = (kind, sizes)
            for sz in sizes:
                self.user_names.update(E.size_factors(sz)[1])

    # ------------------------------------------------------------------ sizes

    def fresh(self):
        self.count += 1
        v = _Var(f"?{self.count}")
        self.parent[v] = v
        return v

    def find(self, s):
        if type(s) is int:              # most sizes are 1 or a number: themselves
            return s
        if isinstance(s, _Var):
            root, path = s, []
            while isinstance(self.parent.get(root), _Var) and self.parent[root] != root:
                path.append(root)
                root = self.parent[root]
            if not isinstance(self.parent.get(root), _Var):
                val = self.parent[root]
                for v in path or (s,):   # the whole path points at the value: finds stay short
                    self.parent[v] = val
                return self.find(val)
            for v in path or (s,):       # path compression (linear, not quadratic, in long sums)
                self.parent[v] = root
            return root
        if isinstance(s, E.SizeProd):
            out = s[0]
            for f in s[1:]:
                out = E.size_mul(out, self.find(f))
            return out
        if isinstance(s, str) and s in self.bound:
            return self.bound[s]
        return s

    def resolve_shape(self, shape):
        return (self.find(shape[0]), self.find(shape[1]))

    def unify(self, a, b, why):
        """Make sizes a and b equal, or raise ShapeError(why()).

        Products are solved only as far as the expression forces: common factors cancel
        (m*n = m*k gives n = k), a lone variable takes the rest (p = m*n), and what stays
        ambiguous (m*n = 10, 4*p = q*q, m*n = p*q among a user's names) is kept as a
        constraint, settled when later sizes decide it and otherwise left to the values
        (evaluate checks them).  Two products of as many unknown factors (vec(A)ᵀ vec(B))
        are equal only in their totals: A and B keep shapes of their own (the answers
        for other shapes are written with unvec, the inverse of vec), beside a Kronecker
        product too (A ⊗ X square does not make A and X square)."""
        a, b = self.find(a), self.find(b)
        if a == b:
            return
        if isinstance(a, _Var) and not isinstance(b, _Var):
            a, b = b, a
        if isinstance(b, _Var):
            if a == 1:
                raise why()
            if isinstance(a, E.SizeProd) and b in a[1:]:
                raise why()
            self.parent[b] = a
            return
        if isinstance(a, E.SizeProd) or isinstance(b, E.SizeProd):
            return self._unify_products(a, b, why)
        if isinstance(b, str):
            a, b = b, a
        if isinstance(a, str) and isinstance(b, int) and b > 1:
            self.bound[a] = b        # a name the user wrote, forced to a number
            return
        raise why()

    def _unify_products(self, a, b, why):
        ca, na = E.size_factors(a)
        cb, nb = E.size_factors(b)
        rest = list(nb)
        left = []
        for x in na:
            if x in rest:
                rest.remove(x)
            else:
                left.append(x)
        g = math.gcd(ca, cb)
        ca, cb = ca // g, cb // g
        a2, b2 = ca, cb
        for x in left:
            a2 = E.size_mul(a2, x)
        for x in rest:
            b2 = E.size_mul(b2, x)
        if a2 == b2:
            return
        single = [x for x in (a2, b2) if not isinstance(x, E.SizeProd)]
        if single and (a2, b2) != (a, b):
            # something cancelled: what is left may be a lone variable or name
            return self.unify(a2, b2, why)
        if left or rest:
            # not decided by the factors alone (4*p = q*q, m*n = 10): kept for the values
            self.deferred.append((a, b, why))
            return
        raise why()

    def settle(self):
        """Decide the kept product constraints that later sizes settled; raise for those
        that became false."""
        while self.deferred:
            pending, self.deferred = self.deferred, []
            for a, b, why in pending:
                self.unify(a, b, why)
            if [(self.find(a), self.find(b)) for a, b, _ in self.deferred] == \
                    [(self.find(a), self.find(b)) for a, b, _ in pending]:
                break

    def is_scalar(self, node):
        return self.resolve_shape(node.shape) == E.SCALAR

    # ------------------------------------------------------------------ errors

    def src(self, node):
        sp = getattr(node, "span", None)
        if sp is None or not self.text:
            return str(node)
        return self.text[sp[0]:sp[1]].strip() or str(node)

    def shown(self, node):
        return f"{self.src(node)} ({describe_shape(self.named_shape(node))})"

    def named_shape(self, node):
        names = self.provisional_names()
        return tuple(self._subst(s, names) for s in self.resolve_shape(node.shape))

    def error(self, msg, *nodes):
        spans = [n.span for n in nodes if getattr(n, "span", None) is not None]
        span = (min(s[0] for s in spans), max(s[1] for s in spans)) if spans else None
        called = self._called_symbol(nodes)
        if called is not None:
            # foo(X) where foo is no function: say that first, then why the product fails
            from .parse import FUNCTIONS
            msg = (f"{called} is not a function of the language (the functions are "
                   f"{', '.join(FUNCTIONS)}); read as {called} times a parenthesized factor, "
                   f"the expression does not fit: {msg}")
        return ShapeError(msg, span, self.text or None)

    def _called_symbol(self, nodes):
        """The name of a symbol written like a call, foo(X) with no space (eye (3) with one),
        that is one of nodes or a factor of one of them (the operands of the failing
        operation), or None."""
        from .parse import function_suggestion
        for e in nodes:
            for x in (e.items if isinstance(e, E.Mul) else (e,)):
                sp = getattr(x, "span", None)
                if not (isinstance(x, E.Sym) and sp):
                    continue
                after = self.text[sp[1]:]
                if after[:1] == "(" or (after.lstrip()[:1] == "(" and function_suggestion(x.name)):
                    return x.name
        return None

    # ------------------------------------------------------------------ symbols

    def symbol(self, raw):
        name = raw.name
        if name in self.symbols:
            return self.symbols[name]
        kind, sizes = self.decls.get(name, (default_kind(name), []))
        if kind == "scalar":
            rows, cols = 1, 1
        elif kind == "vector":
            rows, cols = (sizes[0] if sizes else self.fresh()), 1
        elif kind == "matrix":
            rows, cols = (sizes if sizes else (self.fresh(), self.fresh()))
        else:
            n = sizes[0] if sizes else self.fresh()
            rows, cols = n, n
        s = E.Sym(name, kind, rows, cols)
        self.symbols[name] = s
        return s

    # ------------------------------------------------------------------ the pass

    def infer(self, raw):
        method = getattr(self, "t_" + type(raw).__name__, None)
        out = method(raw) if method is not None else self.t_record(raw)
        span = raw.span
        if span is not None and out.span is None:
            _put(out, "span", span)     # an annotation: past the frozen __setattr__
        return out

    def t_record(self, n):
        """A unary node without a t_ method: the shape rule of its record (the node's
        own shape; its argument square where the record says so)."""
        from .operators.nodes import record_of_unary
        rec = record_of_unary(type(n))
        if rec is None:
            raise UnsupportedError(f"the operator {type(n).__name__} has no shape rule: give "
                                   f"shapes.py a t_{type(n).__name__} method")
        a = self.infer(n.arg)
        if rec.square and not self.is_scalar(a):
            self.square(a, rec.text or rec.name)
        return type(n)(a)

    def t_Num(self, n):
        return E.Num(n.value)

    def t_Sym(self, n):
        s = self.symbol(n)
        out = E.Sym(s.name, s.kind, s.rows, s.cols)
        _put(out, "span", n.span)
        return out

    def t_Identity(self, n):
        return E.Identity(self.fresh() if n.n is None else n.n)

    def t_Commutation(self, n):
        return E.Commutation(n.m, n.n)

    def t_Zero(self, n):            # zeros(m,n): a size left None is sized by what it meets
        return E.Zero(self.fresh() if n.rows is None else n.rows,
                      self.fresh() if n.cols is None else n.cols)

    def t_Fill(self, n):            # ones(m,n) is Fill(1, m, n)
        return E.Fill(self.infer(n.value), self.fresh() if n.rows is None else n.rows,
                      self.fresh() if n.cols is None else n.cols)

    def t_Add(self, n):
        items = [self.infer(a) for a in n.items]
        target = next((t for t in items if not self.is_scalar(t)), None)
        if target is None:
            return E.Add(tuple(items))
        out = []
        for t in items:
            if self.is_scalar(t):
                r, c = target.shape
                f = E.Fill(t, r, c)
                f.span = t.span
                out.append(f)
                continue
            self.unify_shapes(target, t, lambda t=t: self.error(
                f"cannot add {self.shown(target)} and {self.shown(t)}", target, t))
            out.append(t)
        return E.Add(tuple(out))

    def unify_shapes(self, a, b, why):
        (ra, ca), (rb, cb) = a.shape, b.shape
        self.unify(ra, rb, why)
        self.unify(ca, cb, why)

    def t_Mul(self, n):
        """Left-associated products: a 1×1 chain becomes one scalar factor before a
        matrix that follows it (x^T y A is (x^T y) A)."""
        group = []
        first = last = None          # the first and last non-scalar factors of the group
        start = 0                    # where the chain of the group begins

        def push(f):
            nonlocal group, first, last, start
            if self.is_scalar(f):
                group.append(f)
                return
            if first is None:
                start = len(group)
                group.append(f)
                first = last = f
                return
            if (self.find(first.shape[0]), self.find(last.shape[1])) == E.SCALAR:
                # the chain so far is 1×1: it becomes one scalar factor (earlier scalar
                # factors stay beside it, so long products of 1×1 chains stay flat)
                part = group[start:]
                left = E.Mul(tuple(part)) if len(part) > 1 else part[0]
                left.span = _cover(part)
                group = group[:start] + [left]
                start = len(group)
                group.append(f)
                first = last = f
                return
            left = list(group)
            self.unify(last.shape[1], f.shape[0], lambda: self._product_error(left, f))
            group.append(f)
            last = f

        for a in n.items:
            t = self.infer(a)
            if isinstance(t, E.Mul) and not (self.is_scalar(t) and any(
                    not self.is_scalar(x) for x in t.items)):
                for x in t.items:
                    push(x)
            else:
                push(t)
        return E.Mul(tuple(group)) if len(group) > 1 else group[0]

    def _product_error(self, group, f):
        left = E.Mul(tuple(group)) if len(group) > 1 else group[0]
        left.span = _cover(group)
        cols = E.size_str(self.named_shape(left)[1])
        rows = E.size_str(self.named_shape(f)[0])
        clash = (f"cannot multiply {self.shown(left)} by {self.shown(f)}: {cols} "
                 f"column{'s' if cols != '1' else ''} against {rows} row{'s' if rows != '1' else ''}")
        return self.error(clash, left, f)

    def _elementwise(self, n, op_name, cls):
        items = [self.infer(a) for a in n.items]
        scalars = [t for t in items if self.is_scalar(t)]
        arrays = [t for t in items if not self.is_scalar(t)]
        for t in arrays[1:]:
            self.unify_shapes(arrays[0], t, lambda t=t: self.error(
                f"{op_name} of {self.shown(arrays[0])} and {self.shown(t)}: the shapes differ",
                arrays[0], t))
        core = arrays[0] if len(arrays) == 1 else (cls(tuple(arrays)) if arrays else None)
        if core is not None and not scalars:
            return core
        return E.Mul(tuple(scalars) + ((core,) if core is not None else ()))

    def t_Hadamard(self, n):
        return self._elementwise(n, "elementwise product", E.Hadamard)

    def t_Kron(self, n):
        items = [self.infer(a) for a in n.items]
        scalars = [t for t in items if self.is_scalar(t)]
        arrays = [t for t in items if not self.is_scalar(t)]
        core = arrays[0] if len(arrays) == 1 else (E.Kron(tuple(arrays)) if arrays else None)
        if core is not None and not scalars:
            return core
        return E.Mul(tuple(scalars) + ((core,) if core is not None else ()))

    def t_Transpose(self, n):
        return E.Transpose(self.infer(n.arg))

    def square(self, a, what):
        r, c = a.shape
        self.unify(r, c, lambda: self.error(f"{what} of {self.shown(a)}, which is not square", a))

    def t_Inverse(self, n):
        a = self.infer(n.arg)
        if self.is_scalar(a):
            return E.Pow(a, E.Num(-1))
        self.square(a, "inverse")
        return E.Inverse(a)

    def t_Det(self, n):
        a = self.infer(n.arg)
        if not self.is_scalar(a):
            self.square(a, "determinant")
        return E.Det(a)

    def t_LogDet(self, n):
        a = self.infer(n.arg)
        if self.is_scalar(a):
            return E.Func("log", a)
        self.square(a, "log-determinant")
        return E.LogDet(a)

    def t_Trace(self, n):
        a = self.infer(n.arg)
        if not self.is_scalar(a):
            self.square(a, "trace")
        return E.Trace(a)

    def t_Sum(self, n):
        return E.Sum(self.infer(n.arg))

    def t_RawNorm(self, n):
        a = self.infer(n.arg)
        r, c = self.resolve_shape(a.shape)
        if n.sub == "1":                    # entrywise, of any shape
            return E.Spectral("norm1", a)
        if n.sub in ("2", "*") and r != 1 and c != 1:
            return E.SpecNorm(a) if n.sub == "2" else E.Spectral("nuclear", a)
        return E.Norm(a)                    # ||x||_2 = ||x||_* = ||x|| of a vector

    def t_Spectral(self, n):
        return self._spectral(n, E.Spectral)

    def t_SpectralVec(self, n):
        return self._spectral(n, E.SpectralVec)

    def _spectral(self, n, cls):
        """A spectral function of its record (operators/spectral.py): λ_max, eigvec_max, ...
        of a square argument, symmetric by declaration or by form (checked once the
        sizes are settled: ``check_symmetric_arguments``)."""
        from .operators import SPECTRAL
        rec = SPECTRAL[n.name]
        a = self.infer(n.arg)
        if rec.symmetric and not self.is_scalar(a):
            self.square(a, n.name)
            self.needs_symmetry = True
        return cls(n.name, a)

    def t_Vec(self, n):
        return E.Vec(self.infer(n.arg))

    def t_Unvec(self, n):
        """unvec(v, m): v a vector of length m·c, c inferred (or given once typed)."""
        a = self.infer(n.arg)
        m = n.m
        r, c = self.resolve_shape(a.shape)
        if c != 1 or r == 1:
            if r == 1 and c == 1:
                raise self.error(f"unvec of {self.shown(a)}: unvec(v, m) takes a column vector", a)
            self.unify(c, 1, lambda: self.error(
                f"unvec of {self.shown(a)}: unvec(v, m) takes a column vector (write unvec(vec(A), m) "
                f"for a matrix A)", a))
        cols = n.n
        if cols is None:
            if isinstance(m, int) and isinstance(r, int):
                if r % m:
                    raise self.error(f"unvec(…, {m}) of {self.shown(a)}: the length is not a multiple "
                                     f"of {m}", a)
                cols = r // m
            else:
                cols = self.fresh()
        self.unify(r, E.size_mul(m, cols), lambda: self.error(
            f"unvec(…, {E.size_str(m)}) of {self.shown(a)}: the length is not {E.size_str(m)} times "
            f"a number of columns", a))
        return E.Unvec(a, m, cols)

    def t_RawDiag(self, n):
        a = self.infer(n.arg)
        r, c = self.resolve_shape(a.shape)
        if (r, c) == E.SCALAR:
            return a
        if c == 1:
            return E.DiagMat(a)
        if r == 1:
            raise self.error(f"diag of {self.shown(a)}: give a column vector or a square matrix", a)
        self.square(a, "diag")
        return E.DiagVec(a)

    def t_Func(self, n):
        if n.name == "log" and isinstance(n.arg, E.RawBars):
            a = self.infer(n.arg.arg)
            if not self.is_scalar(a):
                self.square(a, "log-determinant")
                return E.LogDet(a)
            return E.Func("log", E.Func("abs", a))
        a = self.infer(n.arg)
        if n.name == "log" and isinstance(a, E.Det) and not self.is_scalar(a.arg):
            return E.LogDet(a.arg)
        return E.Func(n.name, a)

    def t_ArrayFunc(self, n):
        from .operators import ARRAY_FUNCTIONS
        a = self.infer(n.arg)
        ARRAY_FUNCTIONS[n.name].check(self, a)
        return n.rebuild((a,))

    def _matrix_arg(self, n, what):
        from .operators import matrix_function
        rec = matrix_function(n.name)
        a = self.infer(n.arg)
        if not self.is_scalar(a):
            r, c = a.shape
            self.unify(r, c, lambda: self.error(
                f"{what(rec)} of {self.shown(a)}: {what(rec)} takes a square matrix, and this "
                f"one is not square", a))
        return rec, a

    def t_MatFunc(self, n):
        rec, a = self._matrix_arg(n, lambda r: r.text or f"the power X^({n.p})")
        return E.MatFunc(n.name, a, n.p)      # (of a 1×1 a: the simplifier's mf-scalar)

    def t_Frechet(self, n):
        rec, a = self._matrix_arg(n, lambda r: r.frechet)
        e = self.infer(n.dir)
        self.unify_shapes(e, a, lambda: self.error(
            f"{rec.frechet}(X, E) with X = {self.shown(a)} and E = {self.shown(e)}: the "
            f"direction E must have X's shape", e))
        return E.Frechet(n.name, a, e, n.p)

    def t_FrechetJac(self, n):
        rec, a = self._matrix_arg(n, lambda r: r.jacobian)
        return E.FrechetJac(n.name, a, n.p)

    def t_RawBars(self, n):
        a = self.infer(n.arg)
        if self.is_scalar(a):
            return E.Func("abs", a)
        r, c = self.resolve_shape(a.shape)
        if c == 1 or r == 1:
            raise self.error(f"|…| of {self.shown(a)}: bars take the determinant of a square "
                             f"matrix or the absolute value of a scalar; write ||…|| for a norm", a)
        self.square(a, "determinant |…|")
        return E.Det(a)

    def scalar_exponent(self, p, base):
        if not self.is_scalar(p):
            raise self.error(f"the exponent {self.shown(p)} must be a scalar", p)

    def t_RawPower(self, n):
        base = self.infer(n.base)
        p = self.infer(n.exp)
        self.scalar_exponent(p, base)
        if self.is_scalar(base):
            return E.Pow(base, p)
        r, c = self.resolve_shape(base.shape)
        if c == 1 or r == 1:
            raise self.error(f"power of {self.shown(base)}: write x .^ p for an elementwise "
                             f"power, or x^T x for the squared length", n)
        from .parse import number_value
        pv = number_value(p)
        if pv is None:
            raise self.error(f"a power of the matrix {self.src(base)} needs a number exponent "
                             f"(X^2, X^-1, X^(1/3), X^0.5); .^ is a different function, the "
                             f"elementwise power", n)
        self.square(base, "power")
        if pv.denominator != 1:
            # the principal power (CONTRACT §5.1): X^(1/2) is sqrtm(X)
            from .operators import mat_func
            return mat_func("powm", base, pv)
        k = int(pv)
        if k >= 0:
            return E.MatPow(base, k)
        inv = E.Inverse(base)
        return inv if k == -1 else E.MatPow(inv, -k)

    def t_ElemPow(self, n):
        base = self.infer(n.base)
        p = self.infer(n.exp)
        self.scalar_exponent(p, base)
        if self.is_scalar(base):
            return E.Pow(base, p)
        return E.ElemPow(base, p)

    def t_RawDiv(self, n):
        num = self.infer(n.num)
        den = self.infer(n.den)
        if not self.is_scalar(den):
            hint = "write ./ for elementwise division or inv(…) for an inverse"
            if isinstance(den, E.Sym) and den.name not in self.decls and den.kind != "scalar":
                # a lowercase name is a vector unless declared: most likely a scalar meant
                hint = (f"{den.name} is a {den.kind} because its kind comes from its first "
                        f"letter: declare it a scalar (--let {den.name}=scalar, or "
                        f"symbols={{\"{den.name}\": \"scalar\"}}), or {hint}")
            raise self.error(f"division by {self.shown(den)}: / divides by a scalar; {hint}", den)
        if isinstance(den, E.Num):
            if den.value == 0:
                raise self.error("division by zero", den)
            return E.Mul((E.Num(1 / den.value), num))
        return E.Mul((num, E.Pow(den, E.Num(-1))))

    # ------------------------------------------------------------------ resolution

    def provisional_names(self):
        """A name for every unbound size variable, in order of first appearance."""
        names = {}
        taken = set(self.user_names)
        order = []
        for s in self.symbols.values():
            for x in (s.rows, s.cols):
                x = self.find(x)
                if isinstance(x, _Var) and x not in order:
                    order.append(x)
        for v in list(self.parent):
            r = self.find(v)
            if isinstance(r, _Var) and r not in order:
                order.append(r)
        seq = list(SIZE_NAMES)
        first = next(iter(self.symbols.values()), None)
        if first is not None and (first.kind == "vector" or self.find(first.rows) == self.find(first.cols)):
            seq = ["n", "m"] + [x for x in seq if x not in ("m", "n")]
        seq = [x for x in seq if x not in taken]
        i = 0
        for v in order:
            while i < len(seq) and seq[i] in taken:
                i += 1
            if i < len(seq):
                names[v] = seq[i]
                taken.add(seq[i])
                i += 1
            else:
                k = 1
                while f"d{k}" in taken:
                    k += 1
                names[v] = f"d{k}"
                taken.add(f"d{k}")
        return names

    def _subst(self, s, names):
        s = self.find(s)
        if isinstance(s, _Var):
            return names[s]
        if isinstance(s, E.SizeProd):
            out = s[0]
            for f in s[1:]:
                out = E.size_mul(out, self._subst(f, names))
            return out
        return s

    def finish(self, typed):
        names = self.provisional_names()
        sub = lambda s: self._subst(s, names)  # noqa: E731

        def sized(e):
            """e (its children done) with its own sizes substituted, or None: none."""
            if isinstance(e, E.Sym):
                out = E.Sym(e.name, e.kind, sub(e.rows), sub(e.cols))
            elif isinstance(e, E.Identity):
                out = E.Identity(sub(e.n))
            elif isinstance(e, E.Fill):
                out = E.Fill(e.value, sub(e.rows), sub(e.cols))
            elif isinstance(e, E.Zero):
                out = E.Zero(sub(e.rows), sub(e.cols))
            elif isinstance(e, E.Commutation):
                out = E.Commutation(sub(e.m), sub(e.n))
            elif isinstance(e, E.Unvec):
                out = E.Unvec(e.arg, sub(e.m), sub(e.n))
            else:
                return None
            if e.span is not None:
                _put(out, "span", e.span)
            return out

        result = E.rewrite(typed, after=sized)
        symbols = {}
        for name, s in self.symbols.items():
            symbols[name] = E.Sym(name, s.kind, sub(s.rows), sub(s.cols))
        return result, symbols


def _order(x):
    """Factors in order of creation (?2 before ?10), names after variables."""
    if isinstance(x, _Var):
        return (0, int(x[1:]), "")
    return (1, 0, str(x))


def _cover(nodes):
    spans = [n.span for n in nodes if getattr(n, "span", None) is not None]
    return (min(s[0] for s in spans), max(s[1] for s in spans)) if spans else None


def check_symmetric_arguments(tree, text=None):
    """The type rule of λ_max, λ_min (and their eigenvectors): the argument is symmetric
    by declaration or by form — XᵀX, Xᵀ A X with A symmetric, A + t B with A and B
    symmetric: whatever ``simplify.is_symmetric`` sees equal to its transpose once
    canonical — else a ShapeError that says how to make it so."""
    from .operators import SPECTRAL
    from .printing import to_text
    from .simplify import is_symmetric, simplify
    for node in E.walk(tree):
        rec = SPECTRAL.get(getattr(node, "name", None)) if isinstance(
            node, (E.Spectral, E.SpectralVec)) else None
        if rec is None or not rec.symmetric or node.arg.is_scalar:
            continue
        if not is_symmetric(simplify(node.arg)):
            plain = [s.name for s in E.symbols_of(node.arg).values()
                     if isinstance(s, E.Sym) and s.kind == "matrix" and s.rows == s.cols]
            declare = (f"declare {' and '.join(plain)} symmetric ({plain[0]}=symmetric) if "
                       f"{'it is' if len(plain) == 1 else 'they are'}, " if plain else "")
            err = ShapeError(
                f"{rec.name} of {to_text(node.arg)}: {rec.name} takes a symmetric matrix, and "
                f"{to_text(node.arg)} is not symmetric by its declaration or by its form; "
                f"{declare}{'or ' if declare else ''}write a symmetric form (X^T X, X^T A X or "
                f"A + t B with A, B symmetric)", getattr(node, "span", None))
            raise err.with_text(text) if text else err


def infer(raw, declarations=None, text=None, extra_symbols=(), reserved=(), structure=True):
    """(typed tree, {name: typed Sym}) for a raw tree.

    extra_symbols: names (like the variable of a derivative) to type even if they do
    not occur in the expression; reserved: size names the inferred sizes must not take
    (names that already mean something to the caller); structure=False leaves out the
    type rules on a matrix's structure (λ_max's symmetric argument), for trees typed
    from values, whose kinds are plain matrices (the evaluator checks the values)."""
    inf = Inference(text, declarations)
    inf.user_names.update(reserved)
    inf.user_names.update(written_size_names(raw))
    try:
        typed = inf.infer(raw)
        for name in extra_symbols:
            if name not in inf.symbols:
                inf.symbol(E.Sym(name))
        inf.settle()
    except ShapeError as err:
        raise err.with_text(text) if text else err
    out = inf.finish(typed)
    if inf.needs_symmetry and structure:
        check_symmetric_arguments(out[0], text)
    return out
