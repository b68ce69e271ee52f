"""Values: binding them to the symbols and checking that they fit.

A value fits its symbol when its number of dimensions fits the kind (a number for a
scalar, a 1-D array or one column for a vector), its shape the sizes (a size name takes
one number across all values), and its structure the kind (symmetric, spd, diagonal).
``evaluate`` is ``matcalc.evaluate``; ``check_values``, ``check_result_shape`` and
``gradient_value`` serve ``Derivative.evaluate`` and the compiled functions.  A value
that does not fit is a ShapeError, never reshaped.
"""
from collections.abc import Mapping

from . import expr as E
from . import shapes as S
from .declarations import declarations
from .errors import MatcalcError, ParseError, ShapeError
from .parse import parse_raw


def bind(symbols, values, text=None):
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


def substitute_sizes(raw, sizes):
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
    from .evaluation import evaluate_for_user
    from .numeric import internal, to_user
    values = values_dict(values)
    if not isinstance(expr, (str, E.Expr)):
        raise ParseError(f"the expression must be text (or a tree from matcalc.parse), got "
                         f"{type(expr).__name__} {expr!r:.60}")
    decls, sizes = bind(declarations(symbols), values)
    if isinstance(expr, str):
        raw = substitute_sizes(parse_raw(expr), sizes)
        tree, syms = S.infer(raw, decls, expr, reserved=set(sizes), structure=False)
    else:
        tree, syms = expr, E.symbols_of(expr)
    missing = [n for n in syms if n not in values]
    if missing:
        raise ShapeError(f"no value given for {', '.join(missing)}")
    env = {n: internal(values[n], n) for n in syms}
    check_values(tree, syms, env, sizes)
    out = evaluate_for_user(tree, env, sizes)
    check_result_shape(tree, out, env, sizes, "the expression")
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
        tree, _ = S.infer(parse_raw(text), general, text, structure=False)
    except MatcalcError:
        return shape
    return tree.shape


def check_result_shape(tree, out, env, sizes, what):
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


def values_dict(values):
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


def check_values(tree, syms, env, sizes):
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


def gradient_value(name, out, internal_value, user_value):
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
