"""The Python API: parse, evaluate, diff, hessian and the Derivative they return.

The pipeline, one module per arrow:

    text --parse--> raw tree --shapes--> typed tree --differential--> df
         --canon--> G with df = tr(Gᵀ dX) --simplify--> G --layout--> answer
"""
from collections.abc import Mapping

from . import budget
from . import expr as E
from . import shapes as S
from .canon import gradient_terms
from .jacobian import jacobian_expr
from .differential import differentiate
from .errors import MatcalcError, ParseError, ShapeError, UnsupportedError
from .parse import LOOKALIKES as _LOOKALIKES, parse_raw
from .printing import to_latex, to_text
from .simplify import is_symmetric, simplify, split_coef, tidy, transpose

LAYOUTS = ("gradient", "numerator", "denominator")


def _typed(text, symbols=None, extra=()):
    raw = parse_raw(text, reserved=extra)       # a where clause may not define the variable
    return S.infer(raw, _declarations(symbols, text), text, extra)


# ---------------------------------------------------------------------------- declarations



def _declarations(symbols, text=None):
    """symbols= as a dict of declarations: a mapping whose keys are symbol names (not
    I, not a function, not empty or a number); a MatcalcError that says why otherwise."""
    if symbols is None:
        return None
    if not isinstance(symbols, Mapping):
        raise MatcalcError(f"symbols= takes a dict of declarations such as "
                           f"{{\"A\": \"symmetric\", \"X\": \"matrix(m,n)\"}}, got "
                           f"{type(symbols).__name__} {symbols!r}")
    from .parse import FUNCTION_NAMES
    for name in symbols:
        if not isinstance(name, str):
            raise MatcalcError(f"cannot declare {name!r}: a symbol's name is a string")
        shown = name if name.strip() else "an empty name"
        if not name.strip():
            raise MatcalcError("cannot declare an empty name: write NAME=KIND, e.g. A=symmetric")
        if name == "I":
            raise MatcalcError("cannot declare I: I is the identity matrix, a reserved name")
        if name in FUNCTION_NAMES:
            raise MatcalcError(f"cannot declare {name}: {name} is a function of the language")
        if not S._NAME_RE.match(name):
            why = "a number" if name.strip()[:1].isdigit() or name.strip()[:1] == "." else \
                "not a symbol name (a letter, then letters, digits or _)"
            odd = [c for c in name if ord(c) > 127 and not ("\u0370" <= c <= "\u03FF")]
            if odd:
                import unicodedata
                c = odd[0]
                why = (f"not a symbol name: it contains {unicodedata.name(c, 'U+%04X' % ord(c))} "
                       f"(U+{ord(c):04X})" + (f", which looks like the Latin {c.translate(_LOOKALIKES)}"
                                              if c.translate(_LOOKALIKES) != c else ""))
                folded = name.strip().translate(_LOOKALIKES)
                if isinstance(text, str) and folded in S._NAMES_IN.findall(text):
                    why += f"; did you mean {folded}?"
            raise MatcalcError(f"cannot declare {shown!r}: {why}")
    return dict(symbols)


def _check_declared(symbols, syms, text):
    """Every declared name is a symbol of the expression (or the variable): a
    declaration that names nothing is an error naming the nearest symbol."""
    for name in symbols or {}:
        if name in syms:
            continue
        import difflib
        names = sorted(syms)
        folded = name.translate(_LOOKALIKES)
        near = [n for n in names if n == folded] or [n for n in names if n.lower() == name.lower()] \
            or difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        hint = f"; did you mean {near[0]}?" if near else ""
        if near and folded == near[0] and folded != name:
            hint += (f" ({name!r} is written with letters of another script that look like "
                     f"{near[0]!r})")
        raise MatcalcError(f"{name!r} is declared but is not a symbol of {text!r}{hint} "
                           f"(its symbols: {', '.join(names)})")


def parse(text, symbols=None):
    """The typed expression tree of text (kinds from symbols= or first letters)."""
    tree, _ = _typed(text, symbols)
    return tree


# ---------------------------------------------------------------------------- evaluate


def _bind(symbols, values, text=None):
    """Declarations with concrete sizes from the values, and the size names they bind.
    A value must fit its declaration: an array for an array kind, a number (or one entry)
    for a scalar, a symmetric or diagonal square matrix for those kinds."""
    from .numeric import internal, structure_error, value_kind
    sizes = {}
    decls = {}
    for name, v in values.items():
        kind, shape = value_kind(v, name)
        declared = (symbols or {}).get(name)
        if declared is not None:
            dkind, dsizes = S.parse_declaration(name, declared)
            _check_kind(name, declared, dkind, dsizes, shape)
            problem = structure_error(name, dkind, internal(v, name))
            if problem:
                raise ShapeError(problem)
            if dkind == "scalar":
                dsizes = []
            elif dkind == "vector":
                dsizes = dsizes[:1]
            elif dkind != "matrix":
                dsizes = (dsizes[:1] * 2) if dsizes else []
            for dn, actual in zip(dsizes, shape if len(shape) == 2 else (shape[0] if shape else 1, 1)):
                if isinstance(dn, str) and not isinstance(dn, E.SizeProd):
                    if sizes.get(dn, actual) != actual:
                        raise ShapeError(f"the value of {name} has shape {shape}, but the size {dn} "
                                         f"is {sizes[dn]} from another value")
                    sizes[dn] = actual
        if kind == "scalar":
            decls[name] = "scalar"
        elif kind == "vector":
            decls[name] = f"vector({shape[0]})"
        else:
            decls[name] = f"matrix({shape[0]},{shape[1]})"
    return decls, sizes


def _check_kind(name, declared, dkind, dsizes, shape):
    """A value's number of dimensions must fit the declared kind (sizes are checked by the
    shapes): a scalar has one entry, a vector is 1-D or one column, a number is not an
    array whose declared sizes are not all 1."""
    entries = 1
    for k in shape:
        entries *= k
    if dkind == "scalar":
        if entries != 1:
            raise ShapeError(f"the value of {name} has shape {shape}, but {name} is declared "
                             f"{declared}: give a number")
        return
    if dkind == "vector" and len(shape) == 2 and shape[1] != 1:
        raise ShapeError(f"the value of {name} has shape {shape}, but {name} is declared "
                         f"{declared}: give a 1-D array (or one column)")
    if not shape and not (dsizes and all(k == 1 for k in dsizes)):
        raise ShapeError(f"the value of {name} is a number, but {name} is declared {declared}: "
                         f"give an array")


def _substitute_sizes(raw, sizes):
    """Replace size names in I(n), K(m,n) and unvec(v, m) by the numbers the values fix; an I(n) whose
    n nothing fixes is sized by what it meets, like I."""
    def fixed(s):
        return sizes.get(s, s) if isinstance(s, str) else s

    def replace(e):
        if isinstance(e, E.Identity) and isinstance(e.n, str):
            return E.Identity(sizes.get(e.n))
        if isinstance(e, E.Commutation):
            return E.Commutation(fixed(e.m), fixed(e.n))
        if isinstance(e, E.Unvec) and isinstance(e.m, str) and e.m in sizes:
            return E.Unvec(E.rewrite(e.arg, replace), sizes[e.m], e.n)
        if isinstance(e, (E.Zero, E.Fill)):     # zeros(m,n), ones(n): like I(n)
            rows, cols = (sizes.get(x) if isinstance(x, str) else x for x in (e.rows, e.cols))
            if isinstance(e, E.Zero):
                return E.Zero(rows, cols)
            return E.Fill(replace(e.value) or e.value, rows, cols)
        return None
    return E.rewrite(raw, replace)


def evaluate(expr, values, symbols=None):
    """The NumPy value of an expression (text or tree) at the given values."""
    from .numeric import evaluate_for_user, internal, to_user
    values = _values_dict(values)
    if not isinstance(expr, (str, E.Expr)):
        raise ParseError(f"the expression must be text (or a tree from matcalc.parse), got "
                         f"{type(expr).__name__} {expr!r:.60}")
    decls, sizes = _bind(_declarations(symbols), values)
    if isinstance(expr, str):
        raw = _substitute_sizes(parse_raw(expr), sizes)
        tree, syms = S.infer(raw, decls, expr, reserved=set(sizes))
    else:
        tree, syms = expr, E.symbols_of(expr)
    missing = [n for n in syms if n not in values]
    if missing:
        raise ShapeError(f"no value given for {', '.join(missing)}")
    env = {n: internal(values[n], n) for n in syms}
    _check_values(tree, syms, env, sizes)
    out = evaluate_for_user(tree, env, sizes)
    _check_result_shape(tree, out, env, sizes, "the expression")
    shape = tree.shape
    if shape == E.SCALAR and isinstance(expr, str) and any(
            k == "vector(1)" or k.startswith("matrix(1,") or k.endswith(",1)") for k in decls.values()):
        shape = _general_shape(expr, decls, shape)
    return to_user(shape, out)


def _general_shape(text, decls, shape):
    """The shape of the expression for values of any size: x for a vector x of length 1 is
    a vector (CONTRACT §3: a vector result is a 1-D array), x^T x a scalar."""
    general = {n: k.partition("(")[0] for n, k in decls.items()}
    try:
        tree, _ = S.infer(parse_raw(text), general, text)
    except MatcalcError:
        return shape
    return tree.shape


def _check_result_shape(tree, out, env, sizes, what):
    """The value must have the shape the tree says (never reshaped into it)."""
    import numpy as np
    from .numeric import Evaluator
    ev = Evaluator(env, sizes)
    try:
        want = tuple(ev.size(s) for s in tree.shape)
    except ShapeError:
        return                                    # a size no value fixes: nothing to compare
    got = np.shape(out) if isinstance(out, np.ndarray) else (1, 1)
    if got != want:
        raise ShapeError(f"{what} evaluates to an array of shape {got}, but it is "
                         f"{want[0]}×{want[1]} by its sizes: refused rather than reshaped")


def _values_dict(values):
    """The values as a dict name -> value (a ShapeError for anything else)."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ShapeError(f"values must be a dict of name -> number or array, got "
                         f"{type(values).__name__}")
    bad = [k for k in values if not isinstance(k, str)]
    if bad:
        raise ShapeError(f"the names in values must be strings, got {bad[0]!r}")
    return dict(values)


def _check_values(tree, syms, env, sizes):
    """Values must fit the tree's symbols (for trees typed elsewhere): their shapes, and
    the structure of symmetric, spd and diagonal symbols."""
    import numpy as np
    from .numeric import structure_error
    source = {}
    for name, s in syms.items():
        v = env[name]
        problem = structure_error(name, s.kind, v)
        if problem:
            raise ShapeError(problem)
        shape = (1, 1) if not isinstance(v, np.ndarray) else v.shape
        for want, got in zip((s.rows, s.cols), shape):
            if isinstance(want, int):
                if want != got:
                    raise ShapeError(f"the value of {name} has shape {shape}; {name} is {S.kind_string(s)}")
            elif isinstance(want, str):
                if sizes.setdefault(want, got) != got:
                    if source.get(want) == name:
                        raise ShapeError(f"the value of {name} has shape {shape}; {name} is "
                                         f"{S.kind_string(s)}")
                    raise ShapeError(f"the value of {name} has shape {shape}, but the size {want} "
                                     f"is {sizes[want]} from "
                                     + (f"the value of {source[want]}" if want in source else "another value"))
                source.setdefault(want, name)


# ---------------------------------------------------------------------------- derivatives


class Derivative:
    """The derivative of f with respect to one variable, as the API returns it."""

    def __init__(self, text, f, var, symbols, expr, kind, layout, raw_gradient=None,
                 symmetric=None, declarations=None):
        self.text = text                # the input
        self.f = f                      # typed tree of f
        self.wrt = var.name
        self.var = var                  # typed symbol of the variable
        self._symbols = symbols         # name -> typed Sym
        self.expr = expr                # the answer, simplified and tidied
        self.kind = kind                # "gradient" | "derivative" (wrt a scalar) | "jacobian"
        self.layout = layout
        self._symmetric = symmetric
        self._declarations = declarations
        self._steps = None
        self.notes = []                 # what the reader should know (a symbol taken for a vector)

    # printed forms
    def __str__(self):
        return to_text(self.expr)

    def __repr__(self):
        return f"<Derivative d/d{self.wrt} {self.text!r}: {self}>"

    def latex(self, abbreviate=False):
        """The answer in LaTeX; abbreviate=True names its long repeated subexpressions
        ("… \\text{where } W = …", ``matcalc.abbreviate``) where that is markedly shorter."""
        if abbreviate:
            from .abbreviate import of_derivative
            ab = of_derivative(self)
            if ab:
                return ab.latex()
        return to_latex(self.expr)

    def _repr_latex_(self):             # the notebook shows the abbreviated form
        return "$" + self.latex(abbreviate=True) + "$"

    @property
    def symbols(self):
        """Every symbol's kind with its size names, e.g. {"X": "matrix(m,n)"}."""
        return {n: S.kind_string(s) for n, s in self._symbols.items()}

    @property
    def steps(self):
        if self._steps is None:
            from .steps import derivation
            self._steps = derivation(self)
        return self._steps

    @property
    def shape(self):
        return self.expr.shape

    def evaluate(self, values):
        """The NumPy value of the derivative at the given values (CONTRACT §3 shapes)."""
        from .numeric import evaluate_for_user, internal, to_user
        values = _values_dict(values)
        env, sizes = {}, {}
        for n, s in self._symbols.items():
            if n not in values:
                continue
            env[n] = internal(values[n], n)
        used = E.symbols_of(self.expr)
        missing = [n for n in used if n not in values]
        if missing:
            raise ShapeError(f"no value given for {', '.join(missing)}")
        _check_values(self.expr, {n: self._symbols[n] for n in env}, env, sizes)
        out = evaluate_for_user(self.expr, env, sizes)
        _check_result_shape(self.expr, out, env, sizes, "the derivative")
        if self.kind == "gradient" and self.layout == "gradient" and self.wrt in env:
            return _gradient_value(self.wrt, out, env[self.wrt], values[self.wrt])
        return to_user(self.expr.shape, out)

    def to_sympy(self):
        """The SymPy matrix expression of the answer (MatrixSymbol, Trace, Inverse, ...)."""
        from .interop import to_sympy
        return to_sympy(self.expr)[0]

    def to_code(self, target="numpy"):
        """Python source of f_and_grad(...) (and hessian(...) for a Hessian) for the
        target "numpy", "jax" or "torch"."""
        from .codegen import generate
        return generate(self, target=target)

    def check(self, **kw):
        """This derivative against finite differences of f at random points where f is
        defined (``matcalc.check.check``): a CheckResult with ok, error, tolerance,
        points, status and note.  Never ok where the answer is NaN, infinite or of the
        wrong shape; status "no valid point" or "not run" (sizes too large) is not ok
        either.  Keywords: trials, seed, tol, values (a first point), max_tries,
        time_limit."""
        from .check import check
        return check(self, **kw)


def _gradient_value(name, out, internal_value, user_value):
    """The gradient in the shape of the array given for the variable (a 1-D array for a
    1-D vector): the gradient has the variable's shape, or it is refused, never reshaped."""
    import numpy as np
    g = np.asarray(out, dtype=float)
    want = np.shape(internal_value)
    if g.shape != want and not (g.size == 1 and not want):
        raise ShapeError(f"the gradient evaluates to shape {g.shape}, but {name} has shape "
                         f"{want}: the derivative does not have the variable's shape")
    if not np.ndim(user_value):
        return float(g.reshape(-1)[0])
    return g.reshape(np.shape(user_value))


def _project(G, var, symmetric):
    """The gradient along the variable's own space (CONTRACT §2)."""
    half = E.Num(E.Fraction(1, 2))
    if var.kind in ("symmetric", "spd"):
        # sym(G) = (G + Gᵀ)/2, which is G itself when G is symmetric
        S_ = G if is_symmetric(G) else simplify(E.Add((E.Mul((half, G)), E.Mul((half, transpose(G))))))
        if symmetric == "cookbook":
            # the Matrix Cookbook's 2 S − I ∘ S
            return simplify(E.Add((E.Mul((E.Num(2), S_)), E.Mul((E.MINUS_ONE, E.Hadamard((E.Identity(var.rows), S_)))))))
        return S_
    if var.kind == "diagonal":
        return simplify(E.Hadamard((E.Identity(var.rows), G)))
    return G


def _with_text(fn):
    """Attach the input text to errors raised by a derivation, for the caret."""
    import functools

    @functools.wraps(fn)
    def run(expr, *args, **kw):
        try:
            return fn(expr, *args, **kw)
        except MatcalcError as err:
            if err.text is None and isinstance(expr, str):
                err.text = expr
            raise
        except RecursionError:
            # Python's own recursion limit, which matcalc leaves as it is (no global state)
            raise UnsupportedError("the derivation is nested too deeply for Python's recursion "
                                   "limit (sys.getrecursionlimit()); write the expression with "
                                   "less nesting", None, expr if isinstance(expr, str) else None) \
                from None
    return run


def _prepare(text, wrt, symbols, layout, symmetric):
    if not isinstance(wrt, str) or not wrt.strip():
        raise MatcalcError(f"wrt must be the name of a symbol (or a list of names), got {wrt!r}")
    wrt = wrt.strip()
    from .parse import FUNCTION_NAMES
    if not S._NAME_RE.match(wrt) or wrt == "I" or wrt in FUNCTION_NAMES:
        raise MatcalcError(f"wrt={wrt!r} is not a symbol name")
    if layout not in LAYOUTS:
        raise MatcalcError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if symmetric not in (None, "sym", "cookbook"):
        raise MatcalcError(f"unknown symmetric={symmetric!r}; use 'sym' (the default) or 'cookbook'")
    f, syms = _typed(text, symbols, extra=(wrt,))
    _check_declared(symbols, syms, text)
    return f, syms, syms[wrt]


def _scalar_notes(text, f, syms, symbols):
    """Notes for an f that is a vector or matrix only because a symbol whose kind came
    from its first letter sits where a scalar also fits (||X w - y||^2 + lambda ||w||^2
    without lambda declared a scalar): f adds a scalar to an array, and each such
    symbol (or a smallest group of them), re-typed as a scalar, makes f a scalar.  A
    symbol that f is a function of alone (exp(x)) is not suspected."""
    if f.is_scalar or not E.contains(f, lambda n: isinstance(n, E.Fill)):
        return []       # no scalar added to an array: f is an array by design (t^2 a, exp(t A))
    declared = dict(symbols or {})
    present = E.symbols_of(f)
    if len(present) < 2:
        return []
    arrays = [n for n, s in syms.items() if n in present and not s.is_scalar]
    undeclared = [n for n in arrays if n not in declared]
    if len(arrays) < 2 or not undeclared or len(text) > 3000:
        return []       # f is about its one array (exp(x)); or too long to re-type cheaply
    notes = []
    raw = parse_raw(text)           # parsed once, typed once per suspect
    for name in undeclared[:8]:
        try:
            g, _ = S.infer(raw, {**declared, name: "scalar"}, text)
        except MatcalcError:
            continue
        if g.is_scalar:
            notes.append(_scalar_note(text, [name], syms))
    if notes or not 2 <= len(undeclared) <= 6 or len(text) > 500:
        return notes
    # several at once (a^T x + c + d)
    def scalar_with(names):
        try:
            return S.infer(raw, {**declared, **{n: "scalar" for n in names}}, text)[0].is_scalar
        except MatcalcError:
            return False
    # the smallest group (of two or three) that makes f a scalar
    from itertools import combinations, islice
    for k in (2, 3):
        for group in islice(combinations(undeclared, k), 40):
            if len(group) < len(arrays) and scalar_with(group):
                return [_scalar_note(text, list(group), syms)]
    return notes


def _scalar_note(text, names, syms):
    kinds = " and ".join(f"{n} is a {S.kind_string(syms[n]).split('(')[0]}" for n in names)
    one = len(names) == 1
    return (f"{text!r} is not a scalar only because {kinds} (a kind that comes from the first "
            f"letter); if {'it is a scalar' if one else 'they are scalars'}, declare "
            f"{'it' if one else 'them'}: {' '.join(f'--let {n}=scalar' for n in names)}, or "
            f"symbols={{{', '.join(f'{chr(34)}{n}{chr(34)}: {chr(34)}scalar{chr(34)}' for n in names)}}}")


def _noted(d, notes):
    """Attach notes to a Derivative and warn with each."""
    import warnings
    d.notes = list(notes)
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=4)
    return d


def _prepared(f):
    """f as it is differentiated: simplified first when it holds Kronecker products (so
    that mixed products and tr(A ⊗ B) = tr(A) tr(B) come out first) or elementwise
    functions of diagonal matrices (abs(D) = diag(abs(diag(D))): the derivative of abs,
    sqrt, ... at the zeros off the diagonal would be 0/0)."""
    def needs(n):
        if isinstance(n, E.Kron):
            return True
        if isinstance(n, (E.Func, E.ElemPow)):
            from .simplify import is_diagonal
            a = n.args[0]
            return not a.is_scalar and a.shape[1] != 1 and is_diagonal(a)
        return False
    if E.contains(f, needs):
        return simplify(_vectors_unkroned(f))
    return f


def _vectors_unkroned(f):
    """Kronecker products of vectors as products and vecs, which the trace identities
    handle: a ⊗ b = vec(b aᵀ) for columns, x yᵀ for a column and a row."""
    def col(v):
        return v.shape[1] == 1 and v.shape[0] != 1

    def row(v):
        return v.shape[0] == 1 and v.shape[1] != 1

    def after(e):
        if isinstance(e, E.Kron) and len(e.items) == 2:
            a, b = e.items
            if col(a) and col(b):
                return E.Vec(E.Mul((b, E.Transpose(a))))
            if row(a) and col(b):
                return E.Mul((b, a))
            if col(a) and row(b):
                return E.Mul((a, b))
        return None
    return E.rewrite(f, after=after)


def _differential(f, var, trace):
    """df of f as the engine differentiates it; with a trace (a list), the stages are
    recorded in it for the derivation steps: ("prepared", f, f as differentiated) when
    they differ, ("differential", [(node, rule, formula, d(node), ds), ...], df)."""
    g = _prepared(f)
    if trace is None:
        return differentiate(g, var)
    if g is not f:
        trace.append(("prepared", f, g))
    rules = []
    df = differentiate(g, var, trace=rules)
    trace.append(("differential", rules, df))
    return df


def gradient_expr(f, var, symmetric=None, project=True, trace=None):
    """G with df = tr(Gᵀ dX), simplified and projected for structured variables.

    trace: a list receiving the stages (see _differential), then ("canonical",
    [(identity, formula), ...], [G_k, ...]), ("collected", G) and, for a structured
    variable, ("projected", G projected)."""
    df = _differential(f, var, trace)
    if df is None:
        return E.zero_like(var)
    used = [] if trace is not None else None
    terms = gradient_terms(df, used)
    raw = terms[0] if len(terms) == 1 else E.Add(tuple(terms))
    budget.check_raw(raw, "gradient")
    G = simplify(raw)
    if trace is not None:
        trace.append(("canonical", used, terms))
        trace.append(("collected", G))
    if not project:
        return G
    out = _project(G, var, symmetric)
    if trace is not None and var.kind in E.SQUARE_KINDS:
        trace.append(("projected", out))
    return out


def _vec_size(x):
    return E.size_mul(x.shape[0], x.shape[1])


def structure_projector(var):
    """P with vec(dX) = P vec(dX) for the variable's own space (None if unstructured):
    (I + K)/2 for symmetric and spd, diag(vec I) for diagonal."""
    if var.kind in ("symmetric", "spd"):
        n = var.rows
        return E.Mul((E.Num(E.Fraction(1, 2)), E.Add((E.Identity(E.size_mul(n, n)), E.Commutation(n, n)))))
    if var.kind == "diagonal":
        return E.DiagMat(E.Vec(E.Identity(var.rows)))
    return None


def _commutes_with_K(H, var):
    """Whether K H K = H with K = K(n,n), for H a sum of multiples of Kronecker products of
    n×n matrices (K (A ⊗ B) K = B ⊗ A): the sum is the same with the factors swapped."""
    if var.kind not in ("symmetric", "spd"):
        return False
    n = var.rows

    def swapped(t):
        c, rest = split_coef(t)
        if isinstance(rest, E.Kron) and len(rest.items) == 2 and all(
                x.shape == (n, n) for x in rest.items):
            return E.Mul((E.Num(c), E.Kron(rest.items[::-1])))
        return None
    terms = H.items if isinstance(H, E.Add) else (H,)
    out = [swapped(t) for t in terms]
    if any(t is None for t in out):
        return False
    return simplify(E.Add(tuple(out)) if len(out) > 1 else out[0]) == H


def jacobian_of(F, var, trace=None):
    """J with vec(dF) = J vec(dX), simplified (unprojected).

    trace: a list receiving the stages (see _differential), then ("vec", [(identity,
    formula), ...], J)."""
    dF = _differential(F, var, trace)
    if dF is None:
        return E.Zero(_vec_size(F), _vec_size(var))
    used = [] if trace is not None else None
    J = jacobian_expr(dF, var, used)
    budget.check_raw(J, "Jacobian" if _vec_size(F) != 1 else "derivative")
    J = simplify(J)
    if trace is not None:
        trace.append(("vec", used, J))
    return J


def derivative_wrt_scalar(f, var, trace=None):
    """dF/dt for any F and a scalar t: df with dt = 1 (trace: see _differential)."""
    df = _differential(f, var, trace)
    if df is None:
        return E.zero_like(f)
    raw = E.rewrite(df, lambda e: E.ONE if isinstance(e, E.Diff) else None)
    budget.check_raw(raw, "derivative")
    return simplify(raw)


def _several(fn, expr, wrt, **kw):
    """A list of derivatives when wrt names several variables ("U,V" or ["U", "V"])."""
    names = wrt.split(",") if isinstance(wrt, str) else list(wrt)
    return [fn(expr, w.strip() if isinstance(w, str) else w, **kw) for w in names]


def _plain_names(wrt, symbols):
    """wrt and declared names written in LaTeX (\\Sigma, \\mathbf{x}) as their plain names."""
    keys = symbols if isinstance(symbols, Mapping) else ()      # anything else: _declarations says why
    if "\\" in str(wrt) or any("\\" in str(k) for k in keys):
        from .latex_input import plain_names
        return plain_names(wrt, symbols)
    return wrt, symbols


@_with_text
def diff(expr, wrt, symbols=None, layout="gradient", symmetric=None):
    """The derivative of expr with respect to the symbol wrt (CONTRACT §2, §3); a list
    of derivatives when wrt is a list of symbols."""
    wrt, symbols = _plain_names(wrt, symbols)
    if isinstance(wrt, (list, tuple)) or (isinstance(wrt, str) and "," in wrt):
        return _several(diff, expr, wrt, symbols=symbols, layout=layout, symmetric=symmetric)
    f, syms, var = _prepare(expr, wrt, symbols, layout, symmetric)
    if var.is_scalar:
        G = derivative_wrt_scalar(f, var)
        kind = "derivative"
        out = G
        if layout != "gradient" and not f.is_scalar:
            if f.shape[1] == 1:
                out = G if layout == "numerator" else transpose(G)
            elif f.shape[0] == 1:
                out = transpose(G) if layout == "numerator" else G
    elif f.is_scalar:
        G = gradient_expr(f, var, symmetric)
        kind = "gradient"
        out = G
        if layout == "numerator":
            out = transpose(G)
        elif layout == "denominator" and var.shape[1] == 1:
            out = G
    else:
        J = jacobian_of(f, var)
        P = structure_projector(var)
        if P is not None:
            J = simplify(E.Mul((J, P)))
        kind = "jacobian"
        out = transpose(J) if layout == "denominator" else J
    out = tidy(out)
    budget.check_answer(out, kind)
    d = Derivative(expr, f, var, syms, out, kind, layout, symmetric=symmetric,
                   declarations=symbols)
    return _noted(d, _scalar_notes(expr, f, syms, symbols))


@_with_text
def hessian(expr, wrt, symbols=None, layout="gradient", symmetric=None):
    """The Hessian of a scalar expr with respect to wrt (a list for several)."""
    wrt, symbols = _plain_names(wrt, symbols)
    if isinstance(wrt, (list, tuple)) or (isinstance(wrt, str) and "," in wrt):
        return _several(hessian, expr, wrt, symbols=symbols, layout=layout, symmetric=symmetric)
    f, syms, var = _prepare(expr, wrt, symbols, layout, symmetric)
    if not f.is_scalar:
        notes = _scalar_notes(expr, f, syms, symbols)
        raise ShapeError(f"the Hessian needs a scalar function; {expr!r} is not a scalar"
                         + "".join(f"; {n}" for n in notes))
    if var.is_scalar:
        g = derivative_wrt_scalar(f, var)
        h = tidy(derivative_wrt_scalar(g, var))
        budget.check_answer(h, "Hessian")
        d = Derivative(expr, f, var, syms, h, "hessian", layout, declarations=symbols)
        d.gradient = g
        return d
    G = gradient_expr(f, var, project=False)
    H = jacobian_of(G, var)
    P = structure_projector(var)
    if P is not None:
        # P H P; for a symmetric variable and K H K = H (a sum of A ⊗ B that swapping the
        # factors leaves alone) that is P H: H K = K H, so (I+K) H (I+K)/4 = (I+K) H / 2
        H = simplify(E.Mul((P, H) if _commutes_with_K(H, var) else (P, H, P)))
    H = tidy(H)
    budget.check_answer(H, "Hessian")
    d = Derivative(expr, f, var, syms, H, "hessian", layout, symmetric=symmetric,
                   declarations=symbols)
    d.gradient = G
    return d


def from_sympy(expr):
    """A matcalc expression tree from a SymPy matrix expression."""
    from .interop import from_sympy as convert
    return convert(expr)


def compile(expr, wrt, symbols=None, target="numpy", hessian=False):  # noqa: A001
    """The callable f_and_grad(**values) -> (value, derivative) generated for expr
    (and, with hessian=True, returning the Hessian too)."""
    from .codegen import compile_function
    return compile_function(expr, wrt=wrt, symbols=symbols, target=target, hessian=hessian)
