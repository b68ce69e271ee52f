"""A derivative as people and programs outside Python read it, for the command line and the
playground alike: the text of the answer, the note under a zero derivative, the JSON
document, and NAME=KIND declarations."""
from .errors import MatcalcError


def derivative_text(d, ascii=False, abbreviate=False):
    """The answer's text; ascii=True spells it with the language's ASCII spellings;
    abbreviate=True names its long repeated subexpressions ("… where W = …") where that
    is markedly shorter (``abbreviate.worth_it``)."""
    from .printing import to_text
    if abbreviate:
        from .abbreviate import of_derivative
        ab = of_derivative(d)
        if ab:
            return ab.text(ascii=ascii)
    return to_text(d.expr, ascii=ascii)


def declarations(lets):
    """--let NAME=KIND items (or the playground's) as a dict of declarations."""
    out = {}
    for item in lets:
        if "=" not in item:
            raise MatcalcError(f"--let takes NAME=KIND, got {item!r}")
        name, kind = item.split("=", 1)
        name, kind = name.strip(), kind.strip()
        if name in out and out[name] != kind:
            raise MatcalcError(f"--let declares {name} twice: {name}={out[name]} and {name}={kind}")
        out[name] = kind
    return out


def _is_zero(e):
    from . import expr as E
    return isinstance(e, E.Zero) or (isinstance(e, E.Num) and e.value == 0)


def zero_note(d):
    """The note under a zero derivative: its shape, and what is true of f: a zero Hessian
    whose gradient is not zero says that f is linear in the variable; otherwise f does not
    depend on it."""
    from .shapes import describe_shape
    from . import expr as E
    if not _is_zero(d.expr):
        return None
    what = "zero" if isinstance(d.expr, E.Num) else f"{describe_shape(d.expr.shape)} of zeros"
    if d.kind == "hessian" and d.gradient is not None and not _is_zero(d.gradient):
        return f"  ({what}: the expression is linear in {d.wrt}, so its Hessian is zero)"
    return f"  ({what}: the expression does not depend on {d.wrt})"


def as_json(d, ascii=False):
    """The machine-readable form of a derivative (for editors and other programs)."""
    return {
        "input": d.text,
        "wrt": d.wrt,
        "kind": d.kind,
        "layout": d.layout,
        "symbols": d.symbols,
        "shape": [str(x) for x in d.shape],
        "derivative": derivative_text(d, ascii),
        "latex": d.latex(),
        # the answer with its long repeated subexpressions named ("… where W = …"), the
        # same as the flat one where naming them is not markedly shorter
        "abbreviated": derivative_text(d, ascii, abbreviate=True),
        "abbreviated_latex": d.latex(abbreviate=True),
        "steps": [str(s) for s in d.steps],
        "notes": list(getattr(d, "notes", ())),
    }
