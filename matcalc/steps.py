"""The derivation, step by step: f, the differential rules applied, df, the trace
identities that bring df to tr(Gᵀ dX), and G read off and simplified."""
from . import expr as E
from .canon import gradient_terms
from .differential import differentiate
from .printing import to_text
from .simplify import simplify, tidy


def derivation(d):
    f, var = d.f, d.var
    lines = [f"f = {to_text(f)}"]
    trace = []
    df = differentiate(f, var, trace)
    if df is None:
        lines.append(f"df = 0  [f does not depend on {var.name}]")
        lines.append(f"∂f/∂{var.name} = {d}")
        return lines
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
    dfs = simplify(df)
    lines.append(f"df = {to_text(dfs)}")
    if d.kind in ("derivative", "hessian"):
        lines.append(f"d f/d{var.name} = {d}  [df with d{var.name} = 1]")
        return lines
    used = []
    terms = gradient_terms(df, used)
    raw = terms[0] if len(terms) == 1 else E.Add(tuple(terms))
    names = ", ".join(f"{n}: {fm}" for n, fm in used)
    lines.append(f"df = tr(Gᵀ d{var.name}),  G = {to_text(tidy(simplify(raw)))}  [{names}]")
    if var.kind in ("symmetric", "spd"):
        lines.append(f"∂f/∂{var.name} = sym(G) = (G + Gᵀ)/2 = {d}  [{var.name} is {var.kind}]")
    elif var.kind == "diagonal":
        lines.append(f"∂f/∂{var.name} = I ∘ G = {d}  [{var.name} is diagonal]")
    else:
        lines.append(f"∂f/∂{var.name} = G = {d}  [first identification theorem]")
    return lines
