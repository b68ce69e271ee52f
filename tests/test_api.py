"""The Python API (CONTRACT §3): symbols, evaluate shapes, steps, layouts, LaTeX,
shape errors from evaluate.  Every derivative here is also checked numerically."""
import numpy as np
import pytest

import matcalc
from helpers import Unsupported, check_derivative, check_hessian, draw, fitting_sizes, rel_err, spd

RNG = np.random.default_rng(99)


# ---------------------------------------------------------------------------- symbols

@pytest.mark.parametrize("expr,wrt,symbols,want", [
    ("tr(X^T A X)", "X", None, {"X": "matrix(m,n)", "A": "matrix(m,m)"}),
    ("x^T A x + c", "x", {"A": "symmetric", "c": "scalar"},
     {"x": "vector(n)", "A": "symmetric(n)", "c": "scalar"}),
    ("tr(X^T A X)", "X", {"X": "matrix(3,4)"}, {"X": "matrix(3,4)", "A": "matrix(3,3)"}),
    ("logdet(S)", "S", {"S": "spd"}, {"S": "spd(n)"}),
    ("tr(D A)", "D", {"D": "diagonal"}, {"D": "diagonal(n)", "A": "matrix(n,n)"}),
    ("t^2 a", "t", {"t": "scalar"}, {"t": "scalar", "a": "vector(n)"}),
    ("a^T X b", "X", {"a": "vector(p)"}, {"a": "vector(p)", "X": "matrix(p,n)", "b": "vector(n)"}),
])
def test_symbols(expr, wrt, symbols, want):
    d = check_derivative(expr, wrt, symbols=symbols, trials=1)
    got = d.symbols
    if "b" in want and want["X"] == "matrix(p,n)":
        # the second size's name is the engine's choice; it must be consistent
        assert got["a"] == "vector(p)"
        q = got["X"][len("matrix(p,"):-1]
        assert got["X"] == f"matrix(p,{q})" and got["b"] == f"vector({q})" and q != "p"
        return
    assert got == want


def test_symbols_include_the_variable_even_if_absent():
    d = matcalc.diff("tr(A)", wrt="X")
    assert d.symbols["X"].startswith("matrix(")
    assert d.symbols["A"].startswith("matrix(")


def test_size_names_of_printed_identities_are_in_symbols():
    d = check_derivative("tr(X) tr(A X)", "X", trials=1)
    assert "I(" in str(d)
    name = str(d).split("I(")[1].split(")")[0]
    assert any(f"({name}" in k or f",{name})" in k for k in d.symbols.values())


def test_symbols_with_product_sizes_read_back():
    """A size the engine writes as a product (a vector of length m*n) must be one that
    evaluate(…, symbols=d.symbols) can read."""
    d = matcalc.diff("x^T kron(A, B) x", wrt="x")
    vals = draw(d.symbols, RNG, sizes=fitting_sizes(d, RNG))
    back = matcalc.evaluate(str(d), vals, symbols=d.symbols)
    assert rel_err(back, d.evaluate(vals)) < 1e-10


# ---------------------------------------------------------------------------- evaluate shapes

def test_evaluate_shapes_of_expressions():
    X = RNG.standard_normal((3, 4))
    x = RNG.standard_normal(4)
    assert isinstance(matcalc.evaluate("tr(X^T X)", {"X": X}), float)
    assert isinstance(matcalc.evaluate("x^T x", {"x": x}), float)
    assert matcalc.evaluate("X x", {"X": X, "x": x}).shape == (3,)
    assert matcalc.evaluate("x^T X^T", {"X": X, "x": x}).shape == (1, 3)
    assert matcalc.evaluate("X^T X", {"X": X}).shape == (4, 4)
    assert isinstance(matcalc.evaluate("s^2", {"s": 3}), float)
    assert isinstance(matcalc.evaluate("s^2", {"s": np.float64(3)}), float)
    assert isinstance(matcalc.evaluate("2 + 3", {}), float)
    assert matcalc.evaluate("s x", {"s": 2.0, "x": x}).shape == (4,)


@pytest.mark.parametrize("expr,wrt,symbols,kind", [
    ("t^3", "t", {"t": "scalar"}, "float"),
    ("x^T A x", "x", None, "vector"),
    ("tr(X^T A X)", "X", None, "matrix"),
    ("t^2 a", "t", {"t": "scalar"}, "f"),
    ("exp(t) A", "t", {"t": "scalar"}, "f"),
    ("t x^T A", "t", {"t": "scalar"}, "size"),
    ("logdet(S)", "S", {"S": "spd"}, "matrix"),
    ("x^T D x", "D", {"D": "diagonal"}, "matrix"),
])
def test_derivative_evaluate_shapes(expr, wrt, symbols, kind):
    d = check_derivative(expr, wrt, symbols=symbols, trials=1)
    vals = draw(d.symbols, RNG)
    got = d.evaluate(vals)
    if kind == "float":
        assert isinstance(got, float)
    elif kind in ("vector", "matrix"):
        assert isinstance(got, np.ndarray) and got.shape == np.shape(vals[wrt])
        assert got.ndim == (1 if kind == "vector" else 2)
    else:
        f = np.asarray(matcalc.evaluate(expr, vals, symbols=symbols))
        assert np.size(got) == f.size
        if kind == "f":
            assert np.shape(got) == f.shape


@pytest.mark.parametrize("expr,wrt,shape", [
    ("a^T x", "x", lambda v: (1, v["x"].size)),
    ("x^T A x", "x", lambda v: (1, v["x"].size)),
    ("tr(A X B)", "X", lambda v: v["X"].shape[::-1]),
    ("a^T X b", "X", lambda v: v["X"].shape[::-1]),
])
def test_numerator_layout_shapes(expr, wrt, shape):
    d = check_derivative(expr, wrt, layout="numerator", trials=1)
    g = matcalc.diff(expr, wrt=wrt)
    vals = draw(d.symbols, RNG)
    N = np.asarray(d.evaluate(vals))
    assert N.shape == shape(vals)
    G = np.asarray(g.evaluate(vals))
    assert rel_err(N, G.reshape(1, -1) if G.ndim == 1 else G.T) < 1e-12


@pytest.mark.parametrize("expr,wrt", [("a^T x", "x"), ("x^T A x", "x"), ("tr(A X B)", "X")])
def test_denominator_layout_is_the_gradient(expr, wrt):
    d = check_derivative(expr, wrt, layout="denominator", trials=1)
    g = matcalc.diff(expr, wrt=wrt)
    vals = draw(d.symbols, RNG)
    D = np.asarray(d.evaluate(vals))
    assert D.shape == np.shape(vals[wrt])
    assert rel_err(D, g.evaluate(vals)) < 1e-12


def test_layouts_on_structured_variable():
    d = check_derivative("tr(A X)", "X", symbols={"X": "symmetric"}, layout="numerator", trials=1)
    vals = draw(d.symbols, RNG)
    N = d.evaluate(vals)
    assert rel_err(N, (vals["A"] + vals["A"].T) / 2) < 1e-12


# ---------------------------------------------------------------------------- steps

@pytest.mark.parametrize("expr,wrt,symbols,rules", [
    ("tr(X^-1)", "X", None, ["d-inv", "d-trace"]),
    ("logdet(X)", "X", None, ["d-logdet"]),
    ("det(X)", "X", None, ["d-det"]),
    ("tr(X^T A X)", "X", None, ["d-product", "d-transpose", "d-trace"]),
    ("sum(exp(x))", "x", None, ["d-exp"]),
    ("a^T X^-1 b", "X", None, ["d-inv"]),
    ("x^T A x", "x", {"A": "symmetric"}, ["d-product"]),
])
def test_steps_name_their_rules(expr, wrt, symbols, rules):
    d = check_derivative(expr, wrt, symbols=symbols, trials=1)
    steps = d.steps
    assert len(steps) >= 2
    text = "\n".join(str(s) for s in steps)
    for r in rules:
        assert r in text, f"{r} not in\n{text}"
    # the derivation starts at f and ends at the answer
    assert "f" in str(steps[0])
    assert str(d).replace(" ", "") in str(steps[-1]).replace(" ", "")


def test_steps_are_strings():
    """CONTRACT §3 / the API: d.steps is a list of str (so "\\n".join(d.steps) works)."""
    d = check_derivative("tr(X^-1)", "X", trials=1)
    assert all(isinstance(s, str) for s in d.steps)
    assert "d-inv" in "\n".join(d.steps)


def test_steps_for_a_constant():
    d = matcalc.diff("tr(A)", wrt="X")
    assert len(d.steps) >= 1
    assert np.all(d.evaluate(draw(d.symbols, RNG)) == 0)


# ---------------------------------------------------------------------------- LaTeX

@pytest.mark.parametrize("expr,wrt,needles", [
    ("tr(X^T A X)", "X", ["\\top"]),
    ("tr(A X) tr(X)", "X", ["tr"]),
    ("tr(X)^2", "X", ["tr"]),
    ("logdet(X)", "X", ["-", "\\top"]),
    ("a^T X b", "X", ["\\top"]),
    ("det(X)", "X", ["\\top"]),
])
def test_latex(expr, wrt, needles):
    d = check_derivative(expr, wrt, trials=1)
    tex = d.latex()
    assert tex.strip()
    for n in needles:
        assert n in tex, (n, tex)
    if "tr" in needles:
        assert any(t in tex for t in ("\\operatorname{tr}", "\\mathrm{tr}", "\\text{tr}", "\\mathrm{Tr}",
                                      "\\operatorname{Tr}"))
    # LaTeX is not the plain text
    assert "^T" not in tex


def test_latex_of_expressions():
    e = matcalc.parse("tr(X^T A X) + ||x||^2 + logdet(S)")
    tex = e.latex()
    assert "\\top" in tex and "tr" in tex


# ---------------------------------------------------------------------------- evaluate errors

def test_evaluate_shape_error_for_values_that_do_not_fit():
    with pytest.raises(matcalc.ShapeError):
        matcalc.evaluate("A x", {"A": np.ones((2, 3)), "x": np.ones(4)})
    with pytest.raises(matcalc.ShapeError):
        matcalc.evaluate("x + y", {"x": np.ones(2), "y": np.ones(3)})
    with pytest.raises(matcalc.ShapeError):
        matcalc.evaluate("tr(X)", {"X": np.ones((2, 3))})
    with pytest.raises(matcalc.ShapeError):
        matcalc.evaluate("x^T A x", {"A": np.ones((3, 3)), "x": np.ones((3, 3, 3))})
    with pytest.raises(matcalc.MatcalcError):
        matcalc.evaluate("x^T A x", {"x": np.ones(3)})            # no value for A


def test_derivative_evaluate_shape_error():
    d = check_derivative("x^T A x", "x", trials=1)
    with pytest.raises(matcalc.ShapeError):
        d.evaluate({"x": np.ones(3), "A": np.eye(4)})
    d = check_derivative("tr(X^T A X)", "X", symbols={"X": "matrix(3,4)"}, trials=1)
    with pytest.raises(matcalc.ShapeError):
        d.evaluate({"X": np.ones((4, 3)), "A": np.eye(4)})
    with pytest.raises(matcalc.ShapeError):
        d.evaluate({"X": np.ones((3, 4)), "A": np.eye(4)})


def test_evaluate_with_printed_size_names():
    d = check_derivative("tr(X) tr(A X)", "X", trials=1)
    vals = draw(d.symbols, RNG)
    back = matcalc.evaluate(str(d), vals, symbols=d.symbols)
    assert rel_err(back, d.evaluate(vals)) < 1e-12


# ---------------------------------------------------------------------------- misc API

def test_parse_reads_back_its_derivative():
    d = check_derivative("logdet(S) + (x - mu)^T S^-1 (x - mu)", "S", symbols={"S": "spd"}, trials=1)
    e = matcalc.parse(str(d), symbols=d.symbols)
    assert e.shape == d.expr.shape


def test_check_method_reports_small_error_for_right_answers():
    for expr, wrt, syms in [("tr(X^T A X)", "X", None), ("logdet(S)", "S", {"S": "spd"}),
                            ("(A + t B)^-1", "t", {"t": "scalar"})]:
        d = check_derivative(expr, wrt, symbols=syms, trials=1)
        r = d.check()
        assert r.ok and r.error is not None and r.error < 1e-6


def test_values_are_not_modified():
    d = check_derivative("tr(X^T A X)", "X", trials=1)
    vals = draw(d.symbols, RNG)
    before = {k: np.copy(v) for k, v in vals.items()}
    d.evaluate(vals)
    matcalc.evaluate("tr(X^T A X)", vals)
    for k in vals:
        assert np.array_equal(vals[k], before[k])


def test_derivative_at_given_values_matches_closed_form():
    """A few closed forms at concrete values (NumPy written by hand)."""
    X = 0.3 * RNG.standard_normal((3, 3)) + 2 * np.eye(3)
    A = RNG.standard_normal((3, 3))
    S = spd(RNG, 3)
    x = RNG.standard_normal(3)
    d = check_derivative("tr(X^T A X)", "X", trials=1)
    assert rel_err(d.evaluate({"X": X, "A": A}), (A + A.T) @ X) < 1e-12
    d = check_derivative("logdet(X)", "X", trials=1)
    assert rel_err(d.evaluate({"X": X}), np.linalg.inv(X).T) < 1e-12
    d = check_derivative("x^T S x", "x", symbols={"S": "spd"}, trials=1)
    assert rel_err(d.evaluate({"x": x, "S": S}), 2 * S @ x) < 1e-12
    d = check_derivative("logdet(S)", "S", symbols={"S": "spd"}, trials=1)
    assert rel_err(d.evaluate({"S": S}), np.linalg.inv(S)) < 1e-12
    d = check_derivative("det(X)", "X", trials=1)
    assert rel_err(d.evaluate({"X": X}), np.linalg.det(X) * np.linalg.inv(X).T) < 1e-12


def test_hessian_api_right_or_unsupported():
    for expr, wrt, syms in [("x^T A x", "x", None), ("t^4", "t", {"t": "scalar"})]:
        try:
            h = check_hessian(expr, wrt, syms, dom="pos")
        except Unsupported:
            continue
        assert str(h)


def test_jacobian_api_right_or_unsupported():
    try:
        d = check_derivative("A x", "x", trials=1, allow_unsupported=True)
    except Unsupported:
        return
    vals = draw(d.symbols, RNG)
    assert rel_err(d.evaluate(vals), vals["A"]) < 1e-12
