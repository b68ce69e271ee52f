"""Kronecker products inside scalar functions (issue 13 item 3) and the sizes beside them
(issue 10, "0 valid values rejected").

⟨W, A ⊗ dX⟩ is answered for every W and every shape of the factors: sum and trace, a
Kronecker W of the factors' shapes, a rank-one W = u vᵀ by uᵀ (A ⊗ B) v = tr(Uᵀ B V Aᵀ)
(U = unvec(u, p), V = unvec(v, q)), and any other W by vec(A ⊗ B) = (I ⊗ K ⊗ I)(vec A ⊗ vec B).
Sizes beside a Kronecker product are as general as the expression: A ⊗ X square does not
make A and X square.  Every derivative is checked against finite differences with
non-square declared sizes (tests/helpers), and read back from its text.
"""
import numpy as np
import pytest

import matcalc
from helpers import check_derivative, check_hessian, katex_or_skip, rel_err

# non-square, all different: a transposed or misplaced factor cannot pass
XB = {"X": "matrix(2,3)", "B": "matrix(4,5)"}

GRADIENTS = [
    # (expression, variable, declarations)
    ("a^T (X ⊗ B) c", "X", XB),
    ("a^T (X ⊗ B) c", "B", XB),
    ("a^T (B ⊗ X) c", "X", XB),
    ("a^T (A ⊗ X) c", "X", {"A": "matrix(3,3)", "X": "matrix(2,3)"}),
    ("a^T (X ⊗ A) c", "X", {"A": "matrix(3,3)", "X": "matrix(2,3)"}),
    ("a^T kron(X, X) c", "X", {"X": "matrix(2,3)"}),
    ("vec(X)^T (A ⊗ B) vec(X)", "X", {"X": "matrix(2,6)", "A": "matrix(3,4)", "B": "matrix(4,3)"}),
    ("vec(X)^T (A ⊗ B) vec(X)", "A", {"X": "matrix(2,6)", "A": "matrix(3,4)", "B": "matrix(4,3)"}),
    ("tr(A (X ⊗ B))", "X", XB),
    ("tr(A (B ⊗ X))", "X", XB),
    ("tr(A (X ⊗ X))", "X", {"X": "matrix(2,3)"}),
    ("tr(A (X ⊗ B) C (X ⊗ D))", "X", {"X": "matrix(2,3)", "B": "matrix(4,5)", "D": "matrix(3,2)"}),
    ("||X ⊗ B||_F^2", "X", XB),
    ("||X ⊗ B - C||_F^2", "X", XB),
    ("sum(X ⊗ Y)", "X", {"X": "matrix(2,3)", "Y": "matrix(4,5)"}),
    ("sum(X ⊗ X)", "X", {"X": "matrix(2,3)"}),
    ("x^T kron(A, B) x", "x", {"A": "matrix(2,3)", "B": "matrix(3,2)"}),
    ("x^T kron(A, B) x", "A", {"A": "matrix(2,3)", "B": "matrix(3,2)"}),
    ("a^T (A ⊗ X ⊗ B) c", "X", {"A": "matrix(2,3)", "X": "matrix(3,2)", "B": "matrix(2,4)"}),
    ("a^T (A ⊗ B ⊗ X) c", "X", {"A": "matrix(2,3)", "X": "matrix(3,2)", "B": "matrix(2,4)"}),
    ("a^T (X ⊗ b) c", "X", {"X": "matrix(2,3)", "b": "vector(4)"}),
    ("u^T (x ⊗ y)", "x", {"x": "vector(3)", "y": "vector(4)"}),
    ("(x ⊗ y)^T M (x ⊗ y)", "y", {"x": "vector(3)", "y": "vector(2)"}),
    ("exp(a^T (X ⊗ B) c / 10)", "X", XB),
    ("log(1 + (a^T (X ⊗ B) c)^2)", "X", XB),
    ("tanh(tr(A (B ⊗ X)))", "X", XB),
    ("tr(A ⊗ X)", "X", {"A": "matrix(2,3)", "X": "matrix(3,2)"}),
    ("tr(X ⊗ X)", "X", {"X": "matrix(3,3)"}),
    ("tr((A ⊗ B) (X ⊗ X))", "X", {"X": "matrix(2,3)", "A": "matrix(3,2)", "B": "matrix(3,2)"}),
]


@pytest.mark.parametrize("expr,wrt,syms", GRADIENTS, ids=[f"{e} / {w}" for e, w, _ in GRADIENTS])
def test_gradient(expr, wrt, syms):
    d = check_derivative(expr, wrt, symbols=syms)
    d.latex()


UNDECLARED = ["a^T (X ⊗ B) c", "tr(A (X ⊗ B))", "a^T (B ⊗ X) c", "tr(A ⊗ X)", "sum(X ⊗ Y)",
              "vec(X)^T (A ⊗ B) vec(X)", "exp(tr(A (X ⊗ B)) / 10)"]


@pytest.mark.parametrize("expr", UNDECLARED)
def test_gradient_undeclared(expr):
    """No declarations: the sizes drawn fit only what the expression requires."""
    check_derivative(expr, "X", trials=3)


def test_short_forms():
    """The rank-one identity gives the short answer; sum and trace stay as they were."""
    d = check_derivative("a^T (X ⊗ B) c", "X", symbols=XB)
    assert str(d) == "unvec(a, 4)^T B unvec(c, 5)"
    d = check_derivative("a^T (B ⊗ X) c", "X", symbols=XB)
    assert str(d) == "unvec(a, 2) B unvec(c, 3)^T"
    d = check_derivative("x^T kron(A, B) x", "B")
    assert "unvec(x, " in str(d) and "K(" not in str(d)
    d = check_derivative("sum(X ⊗ Y)", "X", symbols={"X": "matrix(2,3)", "Y": "matrix(4,5)"})
    assert str(d) == "sum(Y) ones(2,3)"
    d = check_derivative("tr(A ⊗ X)", "X", symbols={"A": "matrix(n,n)", "X": "matrix(m,m)"})
    assert str(d) == "tr(A) I(m)"


def test_non_square_factors_of_a_square_product():
    """A ⊗ X square (6×6) with A 2×3 and X 3×2: accepted, with the right gradient, which
    is not tr(A) I (no trace of a non-square A)."""
    d = matcalc.diff("tr(A ⊗ X)", wrt="X")
    rng = np.random.default_rng(3)
    A, X = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    G = d.evaluate({"A": A, "X": X})
    want = np.zeros((3, 2))
    for i in range(3):
        for j in range(2):
            E = np.zeros((3, 2))
            E[i, j] = 1
            want[i, j] = np.trace(np.kron(A, E))
    assert rel_err(G, want) < 1e-12
    back = matcalc.evaluate(str(d), {"A": A, "X": X}, symbols=d.symbols)
    assert rel_err(back, G) < 1e-12


HESSIANS = [
    ("exp(a^T (X ⊗ B) c / 10)", "X", XB),
    ("a^T kron(X, X) c", "X", {"X": "matrix(2,3)"}),
    ("tr(A (X ⊗ X))", "X", {"X": "matrix(2,3)"}),
    ("vec(X)^T (A ⊗ B) vec(X)", "X", {"X": "matrix(2,6)", "A": "matrix(3,4)", "B": "matrix(4,3)"}),
    ("tanh(tr(A (B ⊗ X)))", "X", XB),
    ("log(1 + (a^T (X ⊗ B) c)^2)", "X", XB),
    ("||X ⊗ B||_F^2", "X", XB),
    ("x^T kron(A, B) x", "x", {"A": "matrix(2,3)", "B": "matrix(3,2)"}),
    ("(x ⊗ y)^T M (x ⊗ y)", "y", {"x": "vector(3)", "y": "vector(2)"}),
]


@pytest.mark.parametrize("expr,wrt,syms", HESSIANS, ids=[e for e, _, _ in HESSIANS])
def test_hessian(expr, wrt, syms):
    check_hessian(expr, wrt, symbols=syms, allow_unsupported=False)


# ---------------------------------------------------------------------------- sizes
# The fuzzer's "rejected" class: vec pairings beside a Kronecker product typed with one
# shape, factor by factor, so that valid values of other shapes were refused.

REJECTED = [
    # (expression, variable, declarations the old typing refused)
    ("2 + cos(vec(A)^T (S ⊗ B y))", "A",
     {"A": "matrix(4,5)", "S": "matrix(2,3)", "B": "matrix(10,2)", "y": "vector(6)"}),
    ("2 + cos(vec(A)^T (S ⊗ B y))", "S",
     {"A": "matrix(4,5)", "S": "matrix(2,3)", "B": "matrix(10,2)", "y": "vector(6)"}),
    ("2 + cos(vec(A)^T (S ⊗ B y))", "B",
     {"A": "matrix(4,5)", "S": "matrix(2,3)", "B": "matrix(10,2)", "y": "vector(6)"}),
    ("log(2 + cos(vec(A)^T (kron(S, F A2) vec(A2))))", "F",
     {"A": "matrix(4,6)", "S": "matrix(4,2)", "F": "matrix(6,2)", "A2": "matrix(2,3)"}),
    ("vec(B)^T ((W + H W) ⊗ I(2) vec(A))", "H",
     {"B": "matrix(2,4)", "W": "matrix(4,3)", "H": "matrix(4,4)", "A": "matrix(3,2)"}),
    ("vec(X)^T (A ⊗ B) vec(X)", "X", {"X": "matrix(4,5)", "A": "matrix(2,10)", "B": "matrix(10,2)"}),
    ("tr(A ⊗ X)", "X", {"A": "matrix(2,6)", "X": "matrix(6,2)"}),
]


@pytest.mark.parametrize("expr,wrt,syms", REJECTED, ids=[f"{e} / {w}" for e, w, _ in REJECTED])
def test_values_of_other_shapes_accepted(expr, wrt, syms):
    """Declared (so drawn) at shapes the one-shape typing refused; and undeclared, the
    same values are accepted by diff's own typing."""
    check_derivative(expr, wrt, symbols=syms)
    rng = np.random.default_rng(5)
    from helpers import draw
    vals = draw(syms, rng)
    d = matcalc.diff(expr, wrt=wrt, symbols={k: v for k, v in syms.items() if v == "scalar"})
    G = np.asarray(d.evaluate(vals))
    assert G.shape == np.shape(vals[wrt])
    back = matcalc.evaluate(str(d), vals, symbols=d.symbols)
    assert rel_err(back, G) < 1e-10
    declared = check_derivative(expr, wrt, symbols=syms, trials=1)
    assert rel_err(np.asarray(declared.evaluate(vals)), G) < 1e-10


def test_conflict_names_both_sides():
    with pytest.raises(matcalc.ShapeError) as err:
        matcalc.diff("vec(A)^T (S ⊗ B) y", wrt="S",
                     symbols={"A": "matrix(4,5)", "S": "matrix(3,3)", "B": "matrix(3,3)"})
    msg = str(err.value)
    assert "vec(A)^T" in msg and "S ⊗ B" in msg and "20" in msg and "9" in msg


def test_values_that_do_not_fit_are_refused():
    """The constraint m·p = n·q kept for the values is checked when they come."""
    d = matcalc.diff("tr(A ⊗ X)", wrt="X")
    rng = np.random.default_rng(0)
    with pytest.raises(matcalc.ShapeError):
        d.evaluate({"A": rng.standard_normal((2, 3)), "X": rng.standard_normal((2, 2))})


def test_latex_renders_in_katex():
    runner = katex_or_skip()
    texs = [matcalc.diff(e, wrt="X").latex() for e in
            ("a^T (X ⊗ B) c", "tr(A (X ⊗ B))", "tr(A ⊗ X)", "exp(a^T (B ⊗ X) c)")]
    texs.append(matcalc.hessian("tr(A (X ⊗ X))", wrt="X").latex())
    assert not runner.Katex(texs).problems(texs)


@pytest.mark.parametrize("expr,syms", [
    ("tr(A (X ⊗ B))", XB),
    ("a^T (X ⊗ B) c", XB),
    ("tr(A ⊗ X)", {"A": "matrix(2,3)", "X": "matrix(3,2)"}),
    ("exp(tr(A (X ⊗ X)) / 10)", {"X": "matrix(2,3)"}),
])
def test_codegen(expr, syms):
    """The generated NumPy function gives the engine's gradient and Hessian."""
    from helpers import draw
    d = check_derivative(expr, "X", symbols=syms, trials=1)
    h = matcalc.hessian(expr, wrt="X", symbols=syms)
    vals = draw(d.symbols, np.random.default_rng(4))
    _, G, H = matcalc.compile(expr, wrt="X", symbols=syms, hessian=True)(**vals)
    assert rel_err(G, d.evaluate(vals)) < 1e-12
    assert rel_err(H, h.evaluate(vals)) < 1e-12
