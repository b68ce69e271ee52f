"""The derivation, step by step, as the seed notes and Magnus & Neudecker write it.

    f  = tr(X^T A X)
    df = d(tr(X^T A X))
       = tr(d(X^T A X))                          d-trace: d tr(X) = tr(dX)
       = tr(dX^T A X + X^T A dX)                 d-product, d-transpose
       = tr((A X)^T dX) + tr((A^T X)^T dX)       cyclic trace, transpose
       = tr(((A + A^T) X)^T dX)                  collect: G = A X + A^T X
    ∂f/∂X = (A + A^T) X                          first identification theorem

The differential is expanded from the outside in, one layer of rules per step (each
step names the rules it applies); then every term is brought to tr(G_kᵀ dX) (or
vec(dF) = J vec(dX)) by the identities of ``canon`` (``jacobian``), the terms are
collected, and the derivative is read off.  Every step is an expression, so it can be
evaluated: ``check_steps`` confirms numerically that each line equals the one before.
"""
from . import expr as E
from .canon import IDENTITIES, gradient_terms
from .differential import RULES, rule_name
from .jacobian import VEC_IDENTITIES, jacobian_expr
from .printing import LatexPrinter, Printer
from .simplify import BUILDERS, simplify, tidy


class DiffOf(E.Expr):
    """d(e): the differential of e, not yet expanded (appears only in the steps)."""
    __slots__ = ("arg",)
    fields = ("arg",)

    def __init__(self, arg):
        self.arg = arg

    def _compute_shape(self):
        return self.arg.shape


BUILDERS.setdefault(DiffOf, lambda e, a: DiffOf(a[0]))


class _Text(Printer):
    def p_DiffOf(self, e):
        return f"d({self.p(e.arg)[0]})", 4


class _Latex(LatexPrinter):
    def p_DiffOf(self, e):
        return f"\\mathrm{{d}}\\left({self.p(e.arg)[0]}\\right)", 4


def text_of(e):
    return _Text()(e)


def latex_of(e):
    return _Latex()(e)


class Step(str):
    """One line `lhs = rhs  [rule]`: a string, carrying its parts.  `quantity` says what
    rhs equals ("f", "df", "vec(df)" or "answer"), so lines of one quantity can be
    compared numerically."""

    def __new__(cls, lhs, rhs, rule, quantity):
        text = f"{lhs} = {text_of(rhs)}" + (f"  [{rule}]" if rule else "")
        self = super().__new__(cls, text)
        self.lhs, self.rhs, self.rule, self.quantity = lhs, rhs, rule, quantity
        return self

    def __getnewargs__(self):
        return (self.lhs, self.rhs, self.rule, self.quantity)


class Steps(list):
    """The steps of a derivation; str() aligns them, latex() gives an aligned block."""

    def text(self):
        width = max(len(s.lhs) for s in self)
        rows = []
        prev = None
        for s in self:
            lhs = s.lhs if s.lhs != prev else ""
            prev = s.lhs
            rows.append((f"{lhs:>{width}} = {text_of(s.rhs)}", s.rule))
        col = min(max(len(r) for r, _ in rows), 60)
        return "\n".join(f"{r:<{col}}   {rule}".rstrip() if rule else r for r, rule in rows)

    def __str__(self):
        return self.text()

    def latex(self):
        lines = []
        prev = None
        for s in self:
            lhs = _latex_lhs(s.lhs) if s.lhs != prev else ""
            prev = s.lhs
            tag = _short(s.rule)
            rule = f" && \\text{{{_latex_text(tag)}}}" if tag else ""
            lines.append(f"{lhs} &= {latex_of(s.rhs)}{rule}")
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"

    def _repr_markdown_(self):
        return "$$\n" + self.latex() + "\n$$"


def _short(rule):
    """A rule label without its formulas (for LaTeX: the names and the seed ids)."""
    import re
    parts = []
    for part in re.split(r", (?=[a-zA-Z][\w -]*(?:[:(]|$))", rule or ""):
        name = part.split(":", 1)[0].strip()
        seed = re.search(r"\((\d{3}[^)]*|D[TD]\d[^)]*)\)\s*$", part)
        parts.append(name + (f" ({seed.group(1)})" if seed and seed.group(1) not in name else ""))
    out = ", ".join(p for p in parts if p)
    return "".join(c for c in out if ord(c) < 128)


def _latex_lhs(lhs):
    import re
    name = lambda v: LatexPrinter().name(v)  # noqa: E731
    m = re.fullmatch(r"∂f/∂(.+)", lhs)
    if m:
        return f"\\frac{{\\partial f}}{{\\partial {name(m.group(1))}}}"
    m = re.fullmatch(r"∂vec\(f\)/∂vec\((.+)\)ᵀ", lhs)
    if m:
        return (f"\\frac{{\\partial \\operatorname{{vec}}(f)}}"
                f"{{\\partial \\operatorname{{vec}}({name(m.group(1))})^{{\\top}}}}")
    m = re.fullmatch(r"∂²f/∂vec\((.+)\)²", lhs)
    if m:
        return f"\\frac{{\\partial^2 f}}{{\\partial \\operatorname{{vec}}({name(m.group(1))})^2}}"
    m = re.fullmatch(r"d/d(.+)", lhs)
    if m:
        return f"\\frac{{\\mathrm{{d}}f}}{{\\mathrm{{d}}{name(m.group(1))}}}"
    return _LATEX_LHS.get(lhs, lhs)


_LATEX_LHS = {"f": "f", "df": "\\mathrm{d}f", "dG": "\\mathrm{d}G",
              "vec(df)": "\\operatorname{vec}(\\mathrm{d}f)", "vec(dG)": "\\operatorname{vec}(\\mathrm{d}G)"}


def _latex_text(s):
    for a, b in (("\\", "\\backslash "), ("{", "\\{"), ("}", "\\}"), ("_", "\\_"), ("^", "\\^{}"),
                 ("&", "\\&"), ("%", "\\%"), ("#", "\\#"), ("$", "\\$")):
        s = s.replace(a, b)
    return s


# ---------------------------------------------------------------------------- expansion


def _expand_once(e, var, applied):
    """Replace every d(node) in e by its rule, with d(child) for the children that hold
    the variable (the variable's own differential is dX at once)."""
    def child_d(a):
        if isinstance(a, E.Sym) and a.name == var.name:
            return E.Diff(var)
        return DiffOf(a) if E.depends_on(a, var.name) else None

    def replace(x):
        if not isinstance(x, DiffOf):
            return None
        node = x.arg
        if isinstance(node, E.Sym):
            return E.Diff(var) if node.name == var.name else E.zero_like(node)
        rule = RULES[type(node)]
        out = rule.apply(node, [child_d(a) for a in node.args])
        name, formula = rule_name(node)
        label = f"{name}: {formula}" + (f" ({rule.seed})" if rule.seed else "")
        if label not in applied:
            applied.append(label)
        return out if out is not None else E.zero_like(node)

    return E.rewrite(e, replace)


def _has_diffof(e):
    return E.contains(e, lambda n: isinstance(n, DiffOf))


def _df_steps(f, var, steps, name="df"):
    """Steps from d(f) to the expanded differential; returns the differential."""
    cur = DiffOf(f) if not (isinstance(f, E.Sym) and f.name == var.name) else E.Diff(var)
    steps.append(Step(name, cur, "", "df"))
    while _has_diffof(cur):
        applied = []
        cur = simplify(_expand_once(cur, var, applied))
        steps.append(Step(name, tidy(cur), ", ".join(applied), "df"))
    return cur


def _names(table, df):
    names = []
    for n in E.walk(df):
        if type(n) in table and E.has_diff(n):
            name, formula = table[type(n)][:2]
            if name not in names:
                names.append(name)
    return ", ".join(names)


def _T(G):
    """Gᵀ as a reader writes it: pushed into a symbol or an inverse, else (G)ᵀ."""
    from .simplify import transpose
    if isinstance(G, (E.Sym, E.Inverse, E.Transpose, E.Identity)):
        return transpose(G)
    return E.Transpose(G)


def _pairing(G, var):
    """tr(Gᵀ dX), or gᵀ dx for a vector variable, or g dt for a scalar."""
    dX = E.Diff(var)
    if var.is_scalar:
        return E.Mul((G, dX))
    if var.shape[1] == 1:
        return E.Mul((_T(G), dX))
    return E.Trace(E.Mul((_T(G), dX)))


def _prepared_step(target, steps):
    """The function as the engine differentiates it (``api._prepared``), with a line that
    says so when that differs from the last line: elementwise functions of a diagonal
    matrix taken of its diagonal, Kronecker products multiplied out.  The differential of
    abs(D) at D's zeros off the diagonal would be 0/0; that of diag(abs(diag(D))) is not."""
    from .api import _prepared
    prepared = _prepared(target)
    if prepared is target or text_of(tidy(prepared)) == text_of(tidy(target)):
        return target
    from .simplify import is_diagonal
    rules = []
    if E.contains(target, lambda n: isinstance(n, (E.Func, E.ElemPow)) and not n.args[0].is_scalar
                  and n.args[0].shape[1] != 1 and is_diagonal(n.args[0])):
        rules.append("f(D) = diag(f(diag(D))) for a diagonal D")
    if E.contains(target, lambda n: isinstance(n, E.Kron)):
        rules.append("Kronecker products multiplied out: (A ⊗ B)(C ⊗ D) = AC ⊗ BD, "
                     "tr(A ⊗ B) = tr(A) tr(B), a ⊗ b = vec(b aᵀ)")
    last = steps[-1]
    steps.append(Step(last.lhs, tidy(prepared), "simplified first: " + "; ".join(rules), last.quantity))
    return prepared


def derivation(d):
    """The steps of the Derivative d."""
    f, var = d.f, d.var
    x = var.name
    steps = Steps()
    steps.append(Step("f", f, "", "f"))
    target = f
    if d.kind == "hessian":
        G = d.gradient
        steps.append(Step(f"∂f/∂{x}", tidy(G), "the gradient, derived as by diff", "gradient"))
        target = G
    target = _prepared_step(target, steps)
    if not E.depends_on(target, x):
        steps.append(Step("df", E.zero_like(target), f"it does not depend on {x}", "df"))
        steps.append(Step("answer", d.expr, "", "answer"))
        return steps
    dname = "dG" if d.kind == "hessian" else "df"
    df = _df_steps(target, var, steps, dname)

    if var.is_scalar:
        steps.append(Step(f"d/d{x}", d.expr, f"df = (…) d{x}: the coefficient of d{x}", "answer"))
        return steps

    if d.kind == "gradient":
        terms = list(df.items) if isinstance(df, E.Add) else [df]
        Gs = []
        for t in terms:
            gt = gradient_terms(t)
            Gs.append(tidy(simplify(gt[0] if len(gt) == 1 else E.Add(tuple(gt)))))
        canon = [_pairing(g, var) for g in Gs]
        rhs = canon[0] if len(canon) == 1 else E.Add(tuple(canon))
        if len(canon) > 1 or text_of(rhs) != text_of(steps[-1].rhs):
            steps.append(Step("df", rhs, _names(IDENTITIES, df), "df"))
        G = simplify(Gs[0] if len(Gs) == 1 else E.Add(tuple(Gs)))
        if len(Gs) > 1:
            steps.append(Step("df", _pairing(tidy(G), var), "collect the terms of G", "df"))
        lhs = f"∂f/∂{x}"
        if var.kind in ("symmetric", "spd") and text_of(tidy(G)) == text_of(d.expr):
            steps.append(Step(lhs, d.expr, f"first identification theorem: G, symmetric already, "
                                           f"so sym(G) = G for the {var.kind} {x}", "answer"))
        elif var.kind in ("symmetric", "spd"):
            steps.append(Step(lhs, tidy(G), "first identification theorem: G", "unprojected"))
            rule = f"{x} is {var.kind}: sym(G) = (G + Gᵀ)/2"
            if d._symmetric == "cookbook":
                rule = f"{x} is {var.kind}, Matrix Cookbook convention: 2 sym(G) − I ∘ sym(G)"
            steps.append(Step(lhs, d.expr, rule, "answer"))
        elif var.kind == "diagonal":
            steps.append(Step(lhs, tidy(G), "first identification theorem: G", "unprojected"))
            steps.append(Step(lhs, d.expr, f"{x} is diagonal: I ∘ G", "answer"))
        elif d.layout == "numerator":
            steps.append(Step(lhs, tidy(G), "first identification theorem (001, 003): G", "unprojected"))
            steps.append(Step(lhs, d.expr, "numerator layout: the transpose", "answer"))
        else:
            steps.append(Step(lhs, d.expr, "first identification theorem (001, 003): df = tr(Gᵀ dX) ⇔ ∂f/∂X = G",
                              "answer"))
        return steps

    # vector or matrix F (a Jacobian), or the gradient of a Hessian
    J = tidy(simplify(jacobian_expr(df, var)))
    dvec = E.Diff(var) if var.shape[1] == 1 else E.Vec(E.Diff(var))
    steps.append(Step(f"vec({dname})", E.Mul((J, dvec)), _names(VEC_IDENTITIES, df), "vec(df)"))
    what = "H" if d.kind == "hessian" else "J"
    lhs = "∂²f/∂vec(X)²" if d.kind == "hessian" else "∂vec(f)/∂vec(X)ᵀ"
    lhs = lhs.replace("X", x)
    structured = var.kind in ("symmetric", "spd", "diagonal")
    if structured or d.layout == "denominator":
        steps.append(Step(lhs, J, f"read off: vec({dname}) = {what} vec(d{x})", "unprojected"))
        if structured:
            P = "(I + K)/2" if var.kind != "diagonal" else "diag(vec I)"
            rule = f"along the {var.kind} {x}: {'P H P' if what == 'H' else 'J P'}, P = {P}"
        else:
            rule = "denominator layout: the transpose"
        steps.append(Step(lhs, d.expr, rule, "answer"))
    else:
        steps.append(Step(lhs, d.expr, f"read off: vec({dname}) = {what} vec(d{x})", "answer"))
    return steps


# ---------------------------------------------------------------------------- checking


def evaluate_step(step, var, env, sizes):
    """The NumPy value of a step's right side; env holds the values and d<var>."""
    from .differential import differentiate
    from .numeric import evaluate_tree

    def replace(x):
        if isinstance(x, DiffOf):
            return differentiate(x.arg, var) or E.zero_like(x)
        return None

    return evaluate_tree(E.rewrite(step.rhs, replace), env, sizes)


def check_steps(d, seed=0):
    """The largest relative disagreement in the derivation of d, at random values and a
    random dX in the variable's own space: every df line against the first, every
    vec(df) line against vec(df), and the answer read off against df (⟨G, dX⟩ for a
    gradient, J vec(dX) for a Jacobian or Hessian, f' dt for a scalar variable)."""
    import numpy as np
    from .check import direction, draw_values
    from .numeric import internal

    def rel(a, b):
        a, b = np.asarray(a, dtype=float).reshape(-1), np.asarray(b, dtype=float).reshape(-1)
        scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), 1e-12)
        return float(np.max(np.abs(a - b))) / scale

    def vecF(v):
        v = np.asarray(v, dtype=float)
        return v.reshape(-1, order="F") if v.ndim == 2 else v.reshape(-1)

    rng = np.random.default_rng(seed)
    for _ in range(10):
        values, sizes = draw_values(d._symbols, d.f, rng)
        env = {n: internal(v) for n, v in values.items()}
        dv = direction(rng, d.var, values[d.var.name])
        env["d" + d.var.name] = internal(dv)
        df0, worst, finite = None, 0.0, True
        for s in d.steps:
            if s.quantity not in ("df", "vec(df)"):
                continue
            v = vecF(evaluate_step(s, d.var, env, dict(sizes)))
            if not np.all(np.isfinite(v)):
                finite = False
                break
            if df0 is None:
                df0 = v
            else:
                worst = max(worst, rel(v, df0))
        if not finite or df0 is None:
            continue
        D = np.asarray(d.evaluate(values), dtype=float)
        V = np.asarray(dv, dtype=float)
        if d.kind == "gradient":
            G = D.T if (d.layout == "numerator" and D.ndim == 2 and V.ndim == 2) else D
            if G.size != V.size or (V.ndim == 2 and G.shape != V.shape):
                return float("inf")          # a gradient of another shape is wrong, never reshaped
            got = np.sum(G.reshape(V.shape) * V)
        elif d.var.is_scalar:
            got = vecF(D * float(V))
        else:
            J = D.T if d.layout == "denominator" else D
            got = J.reshape(-1, vecF(V).size) @ vecF(V)
            if d.kind == "hessian" and d.var.kind in E.SQUARE_KINDS:
                # P H P vec(dX) = P vec(dG): dG taken along the variable's own space too
                dG = df0.reshape(V.shape, order="F")
                dG = (dG + dG.T) / 2 if d.var.kind != "diagonal" else np.diag(np.diag(dG))
                df0 = vecF(dG)
        return max(worst, rel(got, df0))
    return None


