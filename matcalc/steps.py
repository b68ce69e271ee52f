"""The derivation, step by step: f, the differential rules applied, df, the identities
that bring df to its canonical form (tr(Gᵀ dX) for a scalar f, vec(dF) = J vec(dX)
otherwise), and the derivative read off and simplified."""
from . import expr as E
from .canon import IDENTITIES, gradient_terms
from .differential import differentiate
from .jacobian import VEC_IDENTITIES, jacobian_expr
from .printing import to_text
from .simplify import simplify, tidy


def _rules(f, var, lines):
    """The differential rules applied to f, one line per distinct subexpression."""
    trace = []
    df = differentiate(f, var, trace)
    shown = set()
    for node, name, formula, dnode in trace:
        if isinstance(node, (E.Sym, E.Add)):
            continue
        left = f"d({to_text(node)})"
        right = to_text(simplify(dnode))
        if (left, right) in shown:
            continue
        shown.add((left, right))
        lines.append(f"{left} = {right}  [{name}: {formula}]")
    return df


def _used(table, df, var):
    """The names of the identities of `table` that apply to the nodes of df holding dX."""
    names = []
    for n in E.walk(df):
        if type(n) in table and E.has_diff(n):
            name, formula, _ = table[type(n)]
            if (name, formula) not in names:
                names.append((name, formula))
    return ", ".join(f"{n}: {fm}" for n, fm in names)


def derivation(d):
    f, var = d.f, d.var
    x = var.name
    lines = [f"f = {to_text(f)}"]
    if d.kind == "hessian" and not var.is_scalar:
        lines.append(f"the Hessian is the Jacobian of the gradient G = ∂f/∂{x} = {to_text(tidy(d.gradient))}")
        f = d.gradient
    df = _rules(f, var, lines)
    if df is None:
        lines.append(f"d{'G' if d.kind == 'hessian' else 'f'} = 0  [it does not depend on {x}]")
        lines.append(f"answer: {d}")
        return lines
    dfs = simplify(df)
    head = "dG" if d.kind == "hessian" and not var.is_scalar else "df"
    lines.append(f"{head} = {to_text(dfs)}")
    if d.kind in ("derivative",) or var.is_scalar:
        lines.append(f"d f/d{x} = {d}  [{head} with d{x} = 1]")
        return lines
    if d.kind == "gradient":
        terms = gradient_terms(df)
        raw = terms[0] if len(terms) == 1 else E.Add(tuple(terms))
        lines.append(f"df = tr(Gᵀ d{x}),  G = {to_text(tidy(simplify(raw)))}  [{_used(IDENTITIES, df, var)}]")
        if var.kind in ("symmetric", "spd"):
            lines.append(f"∂f/∂{x} = sym(G) = (G + Gᵀ)/2 = {d}  [{x} is {var.kind}]")
        elif var.kind == "diagonal":
            lines.append(f"∂f/∂{x} = I ∘ G = {d}  [{x} is diagonal]")
        else:
            lines.append(f"∂f/∂{x} = G = {d}  [first identification theorem]")
        if d.layout == "numerator":
            lines.append(f"numerator layout: the transpose, {d}")
        return lines
    J = tidy(simplify(jacobian_expr(df, var)))
    lines.append(f"vec({head}) = J vec(d{x}),  J = {to_text(J)}  [{_used(VEC_IDENTITIES, df, var)}]")
    if var.kind in ("symmetric", "spd", "diagonal"):
        lines.append(f"along the {var.kind} {x}: vec(d{x}) = P vec(d{x}), so the answer is "
                     f"{'P H P' if d.kind == 'hessian' else 'J P'} = {d}")
    elif d.layout == "denominator":
        lines.append(f"denominator layout: Jᵀ = {d}")
    else:
        lines.append(f"{'H' if d.kind == 'hessian' else 'J'} = {d}")
    return lines
