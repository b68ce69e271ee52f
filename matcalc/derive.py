"""The pipeline: a typed f and a variable to the derivative, one module per arrow.

    typed f --differential--> df --canon--> G with df = tr(Gᵀ dX)   (scalar f)
                                 --jacobian--> J with vec(dF) = J vec(dX)
                                 --simplify--> G or J --conventions--> projected
                                 --layout--> the answer

``derivative(f, var, layout, symmetric)`` and ``hessian(f, var)`` are what the API
returns the answer of; ``gradient_expr``, ``jacobian_of`` and ``derivative_wrt_scalar``
take a ``trace=`` list that records the stages for the steps (``steps.derivation``
renders that record: the steps are the derivation the engine did).
"""
from . import budget
from . import conventions
from . import expr as E
from .canon import gradient_terms
from .differential import differentiate
from .jacobian import jacobian_expr
from .layout import oriented
from .simplify import is_diagonal, simplify, tidy


def _prepared(f):
    """f as it is differentiated: simplified first when it holds Kronecker products (so
    that mixed products and tr(A ⊗ B) = tr(A) tr(B) come out first) or elementwise
    functions of diagonal matrices (abs(D) = diag(abs(diag(D))): the derivative of abs,
    sqrt, ... at the zeros off the diagonal would be 0/0)."""
    def needs(n):
        if isinstance(n, E.Kron):
            return True
        if isinstance(n, (E.Func, E.ElemPow)):
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
    [(identity, formula), ...], [G_k, ...], [(identity, formula, [(W, L), ...]), ...]: df as
    Σ ⟨W, L⟩ after each node the identities move dX out of), ("collected", G) and, for a structured
    variable, ("projected", G projected)."""
    df = _differential(f, var, trace)
    if df is None:
        return E.zero_like(var)
    used = [] if trace is not None else None
    stages = [] if trace is not None else None
    terms = gradient_terms(df, used, stages)
    raw = terms[0] if len(terms) == 1 else E.Add(tuple(terms))
    budget.check_raw(raw, "gradient")
    G = simplify(raw)
    if trace is not None:
        trace.append(("canonical", used, terms, stages))
        trace.append(("collected", G))
    if not project:
        return G
    out = conventions.project_gradient(G, var, symmetric)
    if trace is not None and var.kind in E.SQUARE_KINDS:
        trace.append(("projected", out))
    return out


def _vec_size(x):
    return E.size_mul(x.shape[0], x.shape[1])


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


def derivative(f, var, layout="gradient", symmetric=None):
    """(kind, answer) of the derivative of the typed f by the typed variable var: kind
    "derivative" (a scalar variable), "gradient" (a scalar f) or "jacobian", the answer
    projected on the variable's own space, in the layout, tidied and within budget."""
    if var.is_scalar:
        kind, answer = "derivative", derivative_wrt_scalar(f, var)
    elif f.is_scalar:
        kind, answer = "gradient", gradient_expr(f, var, symmetric)
    else:
        kind, answer = "jacobian", conventions.project_jacobian(jacobian_of(f, var), var)
    out = tidy(oriented(answer, kind, layout, f), like=f)
    budget.check_answer(out, kind)
    return kind, out


def hessian(f, var):
    """(H, G) for a scalar f: the Hessian (projected on the variable's own space) and
    the unprojected gradient it is the Jacobian of (dF/dt twice for a scalar t)."""
    if var.is_scalar:
        G = derivative_wrt_scalar(f, var)
        H = tidy(derivative_wrt_scalar(G, var), like=f)
    else:
        G = gradient_expr(f, var, project=False)
        H = tidy(conventions.project_hessian(jacobian_of(G, var), var), like=f)
    budget.check_answer(H, "Hessian")
    return H, G
