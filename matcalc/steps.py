"""The derivation, step by step, as a textbook page writes it, rendered from what the
engine did.

    f  = tr(X^T A X)
    df = d(tr(X^T A X))
       = tr(d(X^T A X))              d-trace: d tr(X) = tr(dX)
       = tr(d(X^T) A X + X^T A dX)   d-product: d(XY) = dX Y + X dY
       = tr(X^T A dX + dX^T A X)     d-transpose: d(Xᵀ) = (dX)ᵀ
       = tr(((A + A^T) X)^T dX)      cyclic trace: …; transpose: …
    ∂f/∂X = (A + A^T) X              first identification theorem: df = tr(Gᵀ dX) ⇔ ∂f/∂X = G

One algorithm: reading ``d.steps`` runs the pipeline of ``derive`` once more with its
``trace=`` on, and renders the record.  The record holds, per node, the differential rule
the engine applied and d(node) as that rule built it from the children's differentials;
putting d(child) back in place of those gives the rule's own layer, and the layers are
expanded from the outside in, one rule per line (d‖r‖² = 2 rᵀ dr, the power rule and
the norm rule composed, is one line).  Then the trace identities the engine applied
(``canon.gradient_terms``) or the vec identities (``jacobian.jacobian_expr``), the terms
collected, and the read-off of ``READ_OFF``.  Long subexpressions that recur are named
once (``let r = …``).  Every step is an expression: ``check_steps`` confirms numerically
that each line equals the one before.  Every rule cited is listed by ``matcalc rules``.
"""
from . import expr as E
from .abbreviate import best_repeat, fresh_name, replace, shape_sym as _shape_sym, taken_names
from .conventions import SYM_KINDS, is_structured
from .differential import SQUARED_NORM
from .operators import ARRAY_FUNCTIONS, ELEMENTWISE_NAMES, MATRIX_SPELLINGS, SPECTRAL
from .printing import LatexPrinter, Printer
from .simplify import in_users_order, simplify, tidy


class DiffOf(E.Expr):
    """d(e): the differential of e, not yet expanded (appears only in the steps; the
    simplifier sees a placeholder symbol in its place, see ``_simplified``)."""
    __slots__ = ("arg",)
    fields = ("arg",)

    def __init__(self, arg):
        self.arg = arg
        E.finish_node(self, (arg,) if isinstance(arg, E.Expr) else ())

    def _compute_shape(self):
        return self.arg.shape


class _Text(Printer):
    def p_DiffOf(self, e):
        if isinstance(e.arg, E.Sym):
            return f"d{self.p(e.arg)[0]}", 4
        return f"d({self.p(e.arg)[0]})", 4


class _Latex(LatexPrinter):
    def p_DiffOf(self, e):
        if isinstance(e.arg, E.Sym):
            return f"\\mathrm{{d}}{self.p(e.arg)[0]}", 4
        return f"\\mathrm{{d}}\\left({self.p(e.arg)[0]}\\right)", 4


def text_of(e):
    return _Text()(e)


def latex_of(e):
    return _Latex()(e)


class Step(str):
    """One line `lhs = rhs  [rule]`: a string, carrying its parts.  `quantity` says what
    rhs equals ("f", "df", "vec(df)", "answer", or "let" for an abbreviation), so lines
    of one quantity can be compared numerically; `full` is rhs with the abbreviations
    written out."""

    def __new__(cls, lhs, rhs, rule, quantity, full=None):
        text = (f"let {lhs} = {text_of(rhs)}" if quantity == "let"
                else f"{lhs} = {text_of(rhs)}" + (f"  [{rule}]" if rule else ""))
        self = super().__new__(cls, text)
        self.lhs, self.rhs, self.rule, self.quantity = lhs, rhs, rule, quantity
        self.full = rhs if full is None else full
        return self

    def __getnewargs__(self):
        return (self.lhs, self.rhs, self.rule, self.quantity, self.full)


class Steps(list):
    """The steps of a derivation; str() aligns them, latex() gives an aligned block."""

    def text(self):
        def left(s):
            return f"let {s.lhs}" if s.quantity == "let" else s.lhs
        width = max(len(left(s)) for s in self)
        rows = []
        prev = None
        for s in self:
            lhs = left(s) if s.lhs != prev or s.quantity == "let" else ""
            prev = s.lhs
            rule = "" if s.quantity == "let" else s.rule
            rows.append((f"{lhs:>{width}} = {text_of(s.rhs)}", rule))
        col = min(max(len(r) for r, _ in rows), 60)
        return "\n".join(f"{r:<{col}}   {rule}".rstrip() if rule else r for r, rule in rows)

    def __str__(self):
        return self.text()

    def latex(self):
        lines = []
        prev = None
        for s in self:
            if s.quantity == "let":
                lhs = "\\text{let } " + LatexPrinter().name(s.lhs)
            else:
                lhs = _latex_lhs(s.lhs) if s.lhs != prev else ""
            prev = s.lhs
            rule = "" if s.quantity == "let" else _rule_latex(s.rule)
            rule = f" && {rule}" if rule else ""
            lines.append(f"{lhs} &= {latex_of(s.rhs)}{rule}")
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"

    def _repr_markdown_(self):
        return "$$\n" + self.latex() + "\n$$"


_SUP = {"ᵀ": "\\top ", "⁻": "-", "¹": "1", "²": "2", "ⁱ": "i", "ᵏ": "k", "ᵖ": "p",
        "⁺": "+", "³": "3", "⁰": "0", "ᵃ": "a", "ᵇ": "b", "ʲ": "j"}    # (the simplifier's rules)
_SUB = {"₁": "1", "₂": "2", "ᵢ": "i"}
_SYMBOLS = {"∘": " \\circ ", "⊗": " \\otimes ", "‖": "\\|", "⟨": "\\langle ", "⟩": "\\rangle ",
            "⇔": " \\Leftrightarrow ", "−": "-", "Σ": "\\sum", "′": "'", "σ": "\\sigma ",
            "≠": " \\neq ", "∂": "\\partial ", "…": "\\dots ", "|": "\\vert ",
            "√": "\\sqrt ", "π": "\\pi ", "λ": "\\lambda ", "≥": " \\geq ", "×": "\\times "}
_FUNCTIONS = ({"tr", "vec", "unvec", "diag", "sum", "sym", "det"} | set(ELEMENTWISE_NAMES)
              | set(ARRAY_FUNCTIONS) | set(SPECTRAL) | set(MATRIX_SPELLINGS))


_LATIN1 = __import__("re").compile(r"[\x00-\x7fÀ-ÖØ-öø-ÿ]+")     # Fréchet: prose, in \text


def _formula_latex(text):
    """A rule's formula (as the tables write it, in Unicode) in LaTeX."""
    import re
    out = []
    for tok in re.findall(r"_[A-Za-z](?![A-Za-z])|_[*1]|\.\^\([^()]*\)|\.\^\w+|\./|[ᵀ⁻¹²ⁱᵏᵖ⁺³⁰ᵃᵇʲ]+|[₁₂ᵢ]+|"
                          r"[A-Za-zÀ-ÖØ-öø-ÿ]+(?:_[A-Za-z]{2,})*|\s+|.", text):
        if tok[0] == "_" and len(tok) == 2 and tok[1].isalpha():   # L_f: a subscript
            out.append("_{" + tok[1] + "}")
        elif tok == "./":
            out.append(" \\oslash ")
        elif tok in ("_*", "_1"):                    # ‖X‖_*, ‖x‖_1
            out.append("_{" + tok[1] + "}")
        elif tok.startswith(".^"):
            out.append("^{\\circ " + _formula_latex(tok[2:]) + "}")
        elif tok[0] in _SUP:
            out.append("^{" + "".join(_SUP[c] for c in tok) + "}")
        elif tok[0] in _SUB:
            out.append("_{" + "".join(_SUB[c] for c in tok) + "}")
        elif tok[0].isalpha() and (tok.isascii() or _LATIN1.fullmatch(tok)):
            if tok in _FUNCTIONS:
                out.append("\\operatorname{" + tok.replace("_", "\\_") + "}")
            elif tok == "d":
                out.append("\\mathrm{d}")
            elif re.fullmatch(r"d[A-Za-z]", tok):
                out.append(f"\\mathrm{{d}}{tok[1]}")
            elif tok.isupper() or len(tok) == 1:
                out.append(tok)
            elif out and out[-1].startswith("\\text{ "):          # prose: one \text for a phrase
                out[-1] = out[-1][:-1] + tok + " }"
            else:
                out.append(f"\\text{{ {tok} }}")
        elif tok.isspace():
            if not (out and out[-1].startswith("\\text{ ")):
                out.append(" ")
        elif tok in _SYMBOLS:
            out.append(_SYMBOLS[tok])
        elif tok in "{}&%#$_\\^~":
            out.append(f"\\{tok}" if tok in "{}&%#$_" else "")
        else:
            out.append(tok)
    return "".join(out).strip()


def _name_latex(name):
    """A rule's name as LaTeX text; its symbols (↔, ...) in math."""
    import re
    out = []
    for tok in re.findall(r"[\x00-\x7fÀ-ÖØ-öø-ÿ]+|.", name):
        if tok.isascii() or _LATIN1.fullmatch(tok):
            out.append(f"\\text{{{_latex_text(tok)}}}")
        elif tok == "↔":
            out.append("\\leftrightarrow")
        else:
            out.append(_formula_latex(tok))
    return "".join(out)


def _rule_latex(rule):
    """A step's rule label in LaTeX: each rule's name as text, its formula as math."""
    parts = []
    for part in (rule or "").split("; "):
        if not part:
            continue
        name, sep, formula = part.partition(": ")
        if sep:
            parts.append(f"{_name_latex(name + ': ')}{_formula_latex(formula)}")
        else:
            parts.append(_name_latex(part))
    return "\\text{; }".join(parts)


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


# ---------------------------------------------------------------------------- the read-off
# The rules of the last lines: the derivative read off the canonical form, the structured
# variables' projection, the layouts (``matcalc rules`` lists them with the others).

READ_OFF = {
    "gradient": ("first identification theorem", "df = tr(Gᵀ dX) ⇔ ∂f/∂X = G"),
    "jacobian": ("read off", "vec(dF) = J vec(dX) ⇔ ∂vec(F)/∂vec(X)ᵀ = J"),
    "hessian": ("read off", "vec(dG) = H vec(dX) ⇔ ∂²f/∂vec(X)² = H, G = ∂f/∂X"),
    "scalar": ("the coefficient of dt", "dF = F′ dt ⇔ dF/dt = F′"),
    "symmetric": ("symmetric X", "∂f/∂X = sym(G) = (G + Gᵀ)/2"),
    "cookbook": ("symmetric X, Matrix Cookbook convention", "∂f/∂X = 2 sym(G) − I ∘ sym(G)"),
    "diagonal": ("diagonal X", "∂f/∂X = I ∘ G"),
    "structured": ("along a symmetric or diagonal X", "J P and P H P, P = (I + K)/2 or diag(vec I)"),
    "numerator": ("numerator layout", "∂f/∂X = Gᵀ"),
    "denominator": ("denominator layout", "Jᵀ"),
    "diagonal-first": ("f(D) for a diagonal D", "f(D) = diag(f(diag(D))), taken first"),
    "kron-first": ("Kronecker products multiplied out first",
                   "(A ⊗ B)(C ⊗ D) = AC ⊗ BD, tr(A ⊗ B) = tr(A) tr(B), a ⊗ b = vec(b aᵀ)"),
}


def _said(key, extra=""):
    name, formula = READ_OFF[key]
    return f"{name}: {formula}{extra}"


# ---------------------------------------------------------------------------- the record


def _simplified(e):
    """(simplify(e), tidy(simplify(e))) for e holding d(node)s: each d(node) stands in the
    simplifier as a placeholder symbol of its shape (a row as the transpose of a column
    symbol), so that no table learns of DiffOf."""
    held = {}

    def out(x):
        if isinstance(x, DiffOf):
            name = f"\0d{len(held)}"
            held[name] = x
            r, c = x.shape
            if r == 1 and c != 1:
                return E.Transpose(E.Sym(name, "vector", c, 1))
            return _shape_sym(name, x)
        return None

    def put_back(show):
        def replace(x):
            if isinstance(x, E.Transpose) and isinstance(x.arg, E.Sym) and x.arg.name in held:
                d = held[x.arg.name]
                if d.shape[0] == 1 and d.shape[1] != 1:
                    return show(d)
            if isinstance(x, E.Sym) and x.name in held:
                d = held[x.name]
                if d.shape[0] == 1 and d.shape[1] != 1:
                    return E.Transpose(show(d))
                return show(d)
            return None
        return replace

    s = simplify(E.rewrite(e, out))
    shown = put_back(lambda d: DiffOf(tidy(simplify(d.arg))))
    return E.rewrite(s, put_back(lambda d: d)), E.rewrite(tidy(s), shown)


class _Layer:
    """d(node) as the rule the engine applied writes it, with d(child) for the children
    that depend on the variable."""
    __slots__ = ("name", "formula", "form")

    def __init__(self, name, formula, form):
        self.name, self.formula, self.form = name, formula, form


def _layers(record, var):
    """The engine's differential record [(node, rule, formula, d(node), ds), ...] as one
    _Layer per node, keyed by id(node): the rule's result with each child's differential
    (the very object the rule was given) put back as d(child).  d‖r‖² is one layer (the
    power rule and the norm rule, composed)."""
    layers = {}
    for node, name, formula, out, ds in record:
        back = {}
        for child, dc in zip(node.args, ds):
            if dc is None or (isinstance(child, E.Sym) and child.name == var.name):
                continue
            back[id(dc)] = DiffOf(child)
        form = E.rewrite(out, lambda x, back=back: back.get(id(x)))
        if _is_squared_norm(node) and id(node.base) in layers:
            inner = layers[id(node.base)].form
            form = E.rewrite(form, lambda x, n=node.base, i=inner: i if isinstance(x, DiffOf) and x.arg is n else None)
            name, formula = SQUARED_NORM.name, SQUARED_NORM.formula
        layers[id(node)] = _Layer(name, formula, form)
    return layers


def _is_squared_norm(node):
    return (isinstance(node, E.Pow) and isinstance(node.base, E.Norm) and isinstance(node.exp, E.Num)
            and node.exp.value == 2)


def _df_steps(g, var, record, steps, name):
    """The differential of g, one rule per line from the outside in, as recorded."""
    layers = _layers(record, var)
    cur = E.Diff(var) if isinstance(g, E.Sym) and g.name == var.name else DiffOf(g)
    steps.append(Step(name, cur if isinstance(cur, E.Diff) else DiffOf(tidy(simplify(g))), "", "df"))
    while True:
        pending = [n for n in E.walk(cur) if isinstance(n, DiffOf)]
        if not pending:
            return
        rule = layers[id(pending[0].arg)].name
        first = layers[id(pending[0].arg)]

        def expand(x):
            if isinstance(x, DiffOf):
                layer = layers.get(id(x.arg))
                if layer is not None and layer.name == rule:
                    return layer.form
            return None

        before = E.rewrite(cur, expand)
        cur, shown = _simplified(before)
        label = "; ".join([f"{rule}: {first.formula}"] + _closed_forms(before, cur))
        steps.append(Step(name, shown, label, "df"))


def _closed_forms(before, after):
    """The simplifier's closed forms of Fréchet derivatives that a line applied (a
    Fréchet derivative of the rule's result gone from the simplified line): tr L_f(X, E)
    = tr(f′(X) E) under a trace, L_f(X, E) = f′(X) E for an E that commutes with X."""
    from .simplify import RULES as SIMPLIFY_RULES
    under_trace = {id(t.arg) for t in E.walk(before)
                   if isinstance(t, E.Trace) and isinstance(t.arg, E.Frechet)}
    found = set()
    for n in E.walk(before):
        if isinstance(n, E.Frechet) and not E.contains(after, lambda x, f=n: x == f):
            found.add("tr-frechet" if id(n) in under_trace else "frechet-commuting")
    rules = {r.name: r.formula for r in SIMPLIFY_RULES.get(E.Frechet, []) + SIMPLIFY_RULES.get(E.Trace, [])}
    return [f"{k}: {rules[k]}" for k in ("tr-frechet", "frechet-commuting") if k in found]


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


def _identities(used):
    """The identities a stage applied, each with its formula (linearity and w tr(dX) =
    tr((w I)ᵀ dX), the bookkeeping of every derivation, go without saying)."""
    shown = [(n, f) for n, f in used if n not in ("linearity", "trace")] or used[:1]
    return "; ".join(f"{n}: {f}" for n, f in shown)


def _inner(W, L, var):
    """⟨W, L⟩ as a reader writes it: tr(Wᵀ L), wᵀ l, or w l for a scalar."""
    W = tidy(simplify(W))
    if isinstance(L, E.Diff):
        return _pairing(W, var)
    if L.is_scalar:
        return L if E.is_num(W, 1) else E.Mul((W, L))
    if isinstance(W, E.Identity):                       # ⟨I, L⟩ = tr(L)
        return E.Trace(L)
    if L.shape[1] == 1:
        return E.Mul((_T(W), L))
    return E.Trace(E.Mul((_T(W), L)))


def _canonical_steps(sweep, used, var, rhs, steps):
    """The trace identities' lines, one identity per line: df = Σ ⟨W, L⟩ as it stands
    after each run of one identity (linearity and the trace go without saying), the
    last line the canonical form rhs."""
    quiet = ("linearity", "trace")
    groups = []                     # [(name, formula, pairs)], one per run of an identity
    for name, formula, pairs in sweep:
        if name in quiet and not groups:
            continue                # its form shows on the next identity's line
        if groups and (name in quiet or groups[-1][0] == name):
            groups[-1] = (groups[-1][0], groups[-1][1], pairs)
        else:
            groups.append((name, formula, pairs))
    if len(groups) <= 1:
        steps.append(Step("df", rhs, _identities(used), "df"))
        return
    for k, (name, formula, pairs) in enumerate(groups):
        line = rhs if k == len(groups) - 1 else (
            _inner(*pairs[0], var) if len(pairs) == 1
            else E.Add(tuple(_inner(W, L, var) for W, L in pairs)))
        if text_of(line) == text_of(steps[-1].rhs):
            continue
        steps.append(Step("df", line, f"{name}: {formula}", "df"))


def _prepared_rule(before, after):
    from .simplify import is_diagonal
    rules = []
    if E.contains(before, lambda n: isinstance(n, (E.Func, E.ElemPow)) and not n.args[0].is_scalar
                  and n.args[0].shape[1] != 1 and is_diagonal(n.args[0])):
        rules.append(_said("diagonal-first"))
    if E.contains(before, lambda n: isinstance(n, E.Kron)):
        rules.append(_said("kron-first"))
    return "; ".join(rules)


def _render_front(record, steps):
    """The lines of the stages every derivation shares: the function as differentiated,
    and its differential.  Returns the record's remaining stages by name."""
    stages = {}
    for ev in record:
        stages[ev[0]] = ev
    if "prepared" in stages:
        _, before, after = stages["prepared"]
        if text_of(tidy(after)) != text_of(tidy(before)):
            last = steps[-1]
            steps.append(Step(last.lhs, tidy(after), _prepared_rule(before, after), last.quantity))
    _, rules, df = stages["differential"]
    g = stages["prepared"][2] if "prepared" in stages else None
    return stages, rules, df, g


def derivation(d):
    """The steps of the Derivative d: the derivation the engine does, recorded (the
    ``trace=`` of ``derive.gradient_expr``, ``jacobian_of`` and ``derivative_wrt_scalar``)
    and rendered."""
    from . import derive
    f, var = d.f, d.var
    x = var.name
    steps = Steps()
    steps.append(Step("f", f, "", "f"))
    target = f
    if d.kind == "hessian":
        G = d.gradient
        steps.append(Step(f"∂f/∂{x}", tidy(G), "the gradient, derived as by diff", "gradient"))
        target = G
    record = []
    if var.is_scalar:
        derive.derivative_wrt_scalar(target, var, trace=record)
    elif d.kind == "gradient":
        derive.gradient_expr(target, var, d.symmetric, trace=record)
    else:
        derive.jacobian_of(target, var, trace=record)
    stages, rules, df, g = _render_front(record, steps)
    g = target if g is None else g
    dname = "dG" if d.kind == "hessian" else "df"
    if df is None:
        steps.append(Step(dname, E.zero_like(target), f"{'the gradient' if d.kind == 'hessian' else 'it'} "
                                                          f"does not depend on {x}", "df"))
        steps.append(Step("answer", d.expr, "", "answer"))
        return _abbreviated(steps, d)
    _df_steps(g, var, rules, steps, dname)

    if var.is_scalar:
        steps.append(Step(f"d/d{x}", d.expr, _said("scalar"), "answer"))
        return _abbreviated(steps, d)

    if d.kind == "gradient":
        _, used, terms, sweep = stages["canonical"]
        Gs = [tidy(simplify(t)) for t in terms]
        canon = [_pairing(t, var) for t in Gs]
        rhs = canon[0] if len(canon) == 1 else E.Add(tuple(canon))
        if len(canon) > 1 or text_of(rhs) != text_of(steps[-1].rhs):
            _canonical_steps(sweep, used, var, rhs, steps)
        G = stages["collected"][1]
        if len(Gs) > 1:
            steps.append(Step("df", _pairing(tidy(G), var), "collect the terms of G", "df"))
        lhs = f"∂f/∂{x}"
        read_off = _said("gradient")
        if var.kind in SYM_KINDS and text_of(tidy(G)) == text_of(d.expr):
            steps.append(Step(lhs, d.expr, _said("symmetric", " = G, as G is symmetric"), "answer"))
        elif var.kind in SYM_KINDS:
            steps.append(Step(lhs, tidy(G), read_off, "unprojected"))
            rule = _said("cookbook" if d.symmetric == "cookbook" else "symmetric")
            steps.append(Step(lhs, d.expr, rule, "answer"))
        elif var.kind == "diagonal" and text_of(tidy(G)) == text_of(d.expr):
            steps.append(Step(lhs, d.expr, _said("diagonal", " = G, as G is diagonal"), "answer"))
        elif var.kind == "diagonal":
            steps.append(Step(lhs, tidy(G), read_off, "unprojected"))
            steps.append(Step(lhs, d.expr, _said("diagonal"), "answer"))
        elif d.layout == "numerator":
            steps.append(Step(lhs, tidy(G), read_off, "unprojected"))
            steps.append(Step(lhs, d.expr, _said("numerator"), "answer"))
        else:
            steps.append(Step(lhs, d.expr, read_off, "answer"))
        return _abbreviated(steps, d)

    # vector or matrix F (a Jacobian), or the gradient of a Hessian
    _, used, J = stages["vec"]
    dvec = E.Diff(var) if var.shape[1] == 1 else E.Vec(E.Diff(var))
    steps.append(Step(f"vec({dname})", E.Mul((tidy(J), dvec)), _identities(used), "vec(df)"))
    lhs = "∂²f/∂vec(X)²" if d.kind == "hessian" else "∂vec(f)/∂vec(X)ᵀ"
    lhs = lhs.replace("X", x)
    structured = is_structured(var)
    read_off = _said("hessian" if d.kind == "hessian" else "jacobian")
    if structured or d.layout == "denominator":
        steps.append(Step(lhs, tidy(J), read_off, "unprojected"))
        if structured:
            rule = _said("structured")
        else:
            rule = _said("denominator")
        steps.append(Step(lhs, d.expr, rule, "answer"))
    else:
        steps.append(Step(lhs, d.expr, read_off, "answer"))
    return _abbreviated(steps, d)


# ---------------------------------------------------------------------------- abbreviations

LET_NAMES = ("r", "s", "u", "v", "w", "z", "q", "p")
MIN_LET = 14          # characters: a shorter repeated subexpression is left as it is
MIN_SAVING = 24       # characters the name saves over the lines: less is not worth a let
MAX_LETS = 3


def _counts(step):
    """Whether a line's repeats count for an abbreviation: the lines of the derivation,
    not the answer (which is abbreviated only where the derivation named a part of it)."""
    return step.quantity in ("df", "vec(df)", "gradient")


def _outside_d(e):
    """The compound subexpressions of e that hold neither d(·) nor dX, outside any d(·)
    (a repeat inside d(·) is expanded on the next line anyway)."""
    stack, seen = [e], set()
    while stack:
        n = stack.pop()
        if id(n) in seen or isinstance(n, DiffOf):
            continue
        seen.add(id(n))
        if not n.args:
            continue
        if E.contains(n, lambda m: isinstance(m, (DiffOf, E.Diff))):
            stack.extend(n.args)
        elif not (n.is_scalar and not E.contains(n, lambda m: isinstance(m, E.Sym))):
            yield n
            stack.extend(n.args)


def _abbreviated(steps, d):
    """Long subexpressions that recur in the lines after f named once ("let r = …") and
    written r from then on; each Step keeps its unabbreviated right side (``full``) for
    the check.  The picker is the answer's (``abbreviate.best_repeat``), with the lines
    as the trees: a line counts once for each subexpression it holds."""
    taken = taken_names(d.typed_symbols)
    taken |= {n for n in LET_NAMES if "d" + n in taken}
    body = [i for i, s in enumerate(steps) if s.quantity != "f"]
    for i in body:                  # every line in the order the user wrote the terms
        s = steps[i]
        rhs = in_users_order(s.rhs, d.f)
        if rhs is not s.rhs:
            steps[i] = Step(s.lhs, rhs, s.rule, s.quantity, full=s.full)
    counted = [i for i in body if _counts(steps[i])]
    lets = []
    for _ in range(MAX_LETS):
        best = best_repeat([steps[i].rhs for i in counted], _outside_d, lambda n: len(text_of(n)),
                           MIN_LET, MIN_SAVING, per_tree=True)
        name = fresh_name(best, taken, LET_NAMES) if best is not None else None
        if name is None:
            break
        taken.add(name)
        sym = _shape_sym(name, best)
        lets.append(Step(name, best, "let", "let"))
        for i in body:
            s = steps[i]
            if s.rhs == best:                        # a line is never just the name
                continue
            rhs = replace(s.rhs, best, sym)
            if rhs is not s.rhs:
                steps[i] = Step(s.lhs, rhs, s.rule, s.quantity, full=s.full)
    head = 1
    while head < len(steps) and steps[head].quantity == "f":
        head += 1
    return Steps(steps[:head] + lets + steps[head:])


# ---------------------------------------------------------------------------- checking


def evaluate_step(step, var, env, sizes):
    """The NumPy value of a step's right side; env holds the values and d<var>."""
    from .differential import differentiate
    from .evaluation import evaluate_tree

    def replace(x):
        if isinstance(x, DiffOf):
            return differentiate(x.arg, var) or E.zero_like(x)
        return None

    return evaluate_tree(E.rewrite(step.full, replace), env, sizes)


def check_steps(d, seed=0):
    """The largest relative disagreement in the derivation of d, at random values and a
    random dX in the variable's own space: every df line against the first, every
    vec(df) line against vec(df), and the answer read off against df (⟨G, dX⟩ for a
    gradient, J vec(dX) for a Jacobian or Hessian, f' dt for a scalar variable)."""
    import numpy as np
    from .check import direction, draw_values, vec as vecF
    from .conventions import project_value, sym_of_value
    from .layout import canonical_value
    from .numeric import internal

    def rel(a, b):
        a, b = np.asarray(a, dtype=float).reshape(-1), np.asarray(b, dtype=float).reshape(-1)
        # 1e-8: where df is zero, every line is rounding (1e-15) and so is their ratio
        scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), 1e-8)
        return float(np.max(np.abs(a - b))) / scale

    rng = np.random.default_rng(seed)
    for _ in range(10):
        values, sizes = draw_values(d.typed_symbols, d.f, rng)
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
            G = sym_of_value(canonical_value(D, d), d.var, d.symmetric) if D.ndim == 2 else D
            if G.size != V.size or (V.ndim == 2 and G.shape != V.shape):
                return float("inf")          # a gradient of another shape is wrong, never reshaped
            got = np.sum(G.reshape(V.shape) * V)
        elif d.var.is_scalar:
            got = vecF(D * float(V))
        else:
            J = canonical_value(D, d)
            got = J.reshape(-1, vecF(V).size) @ vecF(V)
            if d.kind == "hessian" and d.var.kind in E.SQUARE_KINDS:
                # P H P vec(dX) = P vec(dG): dG taken along the variable's own space too
                df0 = vecF(project_value(df0.reshape(V.shape, order="F"), d.var))
        return max(worst, rel(got, df0))
    return None


