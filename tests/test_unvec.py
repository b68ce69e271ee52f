"""unvec(v, m), the inverse of vec, in the language (issue 13 item 3, issue 10 "size names
collide" / "0 valid values rejected"): vec pairings of matrices of other shapes, and of
general vectors, are answered with it instead of refused or typed with one shape.  Every
derivative is checked against finite differences at non-square, differing shapes."""
import numpy as np
import pytest

import matcalc
from matcalc import expr as E
from helpers import check_derivative, check_hessian, katex_or_skip, rel_err


def test_vec_pairing_of_other_shapes_is_not_rejected():
    """vec(M)ᵀ vec(V) needs only as many entries: M 4×5 with V 5×4 (or 2×10)."""
    d = matcalc.diff("vec(M)^T vec(V)", wrt="M")
    rng = np.random.default_rng(1)
    M = rng.standard_normal((4, 5))
    for shape in ((5, 4), (2, 10), (20, 1)):
        V = rng.standard_normal(shape)
        G = d.evaluate({"M": M, "V": V})
        assert G.shape == (4, 5)
        assert rel_err(G, V.reshape(-1, order="F").reshape((4, 5), order="F")) < 1e-14
        back = matcalc.evaluate(str(d), {"M": M, "V": V}, symbols=d.symbols)
        assert rel_err(back, G) < 1e-14


@pytest.mark.parametrize("V", ["matrix(5,4)", "matrix(2,10)"])
def test_vec_pairing_numeric(V):
    d = check_derivative("vec(M)^T vec(V)", "M", symbols={"M": "matrix(4,5)", "V": V})
    assert "unvec" in str(d)


def test_vec_pairing_undeclared_numeric():
    """No declarations: the sizes the check draws fit m·n = p·q, not m = p, n = q."""
    d = check_derivative("vec(M)^T vec(V)", "M")
    assert d.symbols["M"] != d.symbols["V"]
    from matcalc.check import check
    assert check(d).ok


def test_general_vector_paired_with_vec():
    d = check_derivative("g^T vec(X)", "X", symbols={"X": "matrix(3,4)"})
    assert str(d) == "unvec(g, 3)"
    d = check_derivative("g^T vec(X)", "X")
    assert str(d).startswith("unvec(g, ")


def test_commutation_of_another_shape():
    """K(m,n) vec(G) = vec(Gᵀ) with Gᵀ n×m: paired with an m×n X, the gradient is a
    reshape of Gᵀ (not Gᵀ itself, issue 10's wrong shape)."""
    syms = {"X": "matrix(m,n)", "G": "matrix(m,n)"}
    d = check_derivative("vec(X)^T (K(m,n) vec(G))", "X", symbols=syms, sizes={"m": 2, "n": 3})
    assert "unvec" in str(d)
    G = np.arange(6.0).reshape(2, 3)
    got = d.evaluate({"X": np.zeros((2, 3)), "G": G})
    want = G.T.reshape(-1, order="F").reshape((2, 3), order="F")
    assert rel_err(got, want) < 1e-14
    check_derivative("vec(X)^T (K(n,m) vec(G))", "X", symbols={"X": "matrix(m,n)", "G": "matrix(n,m)"},
                     sizes={"m": 2, "n": 3})


def test_commutation_undeclared():
    """G undeclared: only its number of entries is m·n."""
    d = check_derivative("vec(X)^T (K(m,n) vec(G))", "X", symbols={"X": "matrix(m,n)"},
                         sizes={"m": 2, "n": 3})
    assert d.symbols["G"] != "matrix(m,n)"


@pytest.mark.parametrize("syms", [
    {"X": "matrix(2,6)", "A": "matrix(3,2)", "B": "matrix(6,4)"},
    {"X": "matrix(3,4)", "A": "matrix(4,3)", "B": "matrix(4,3)"},
    {"X": "matrix(3,3)", "A": "matrix(3,3)", "B": "matrix(3,3)"},
])
def test_vec_of_a_product(syms):
    check_derivative("vec(X)^T vec(A X B)", "X", symbols=syms)


def test_vec_of_a_product_undeclared():
    d = check_derivative("vec(X)^T vec(A X B)", "X")
    assert "unvec" in str(d)


def test_short_forms_are_kept():
    """Where the identities give the matrix in X's shape, no unvec."""
    cases = [("vec(X)^T vec(A)", {"X": "matrix(2,3)", "A": "matrix(2,3)"}, "A"),
             ("vec(X)^T (K(n,m) vec(G))", {"X": "matrix(m,n)", "G": "matrix(n,m)"}, "G^T")]
    for expr, syms, want in cases:
        d = check_derivative(expr, "X", symbols=syms)
        assert str(d) == want


def test_unvec_in_the_language():
    v = np.arange(12.0)
    got = matcalc.evaluate("unvec(v, 3)", {"v": v})
    assert got.shape == (3, 4)
    assert np.array_equal(got, v.reshape((3, 4), order="F"))
    X = np.arange(12.0).reshape(4, 3)
    assert np.array_equal(matcalc.evaluate("unvec(vec(X), 4)", {"X": X}), X)
    assert np.array_equal(matcalc.evaluate("unvec(vec(X), 2)", {"X": X}),
                          X.reshape(-1, order="F").reshape((2, 6), order="F"))
    assert np.array_equal(matcalc.evaluate("vec(unvec(v, 3))", {"v": v}).ravel(), v)
    e = matcalc.parse("unvec(v, m)")
    assert isinstance(e, E.Unvec) and str(e) == "unvec(v, m)"
    assert e.latex() == r"\operatorname{unvec}_{m}\left(v\right)"


def test_unvec_simplifies():
    assert str(matcalc.diff("tr(A^T unvec(vec(X), m))", wrt="X", symbols={"X": "matrix(m,n)"})) == "A"
    d = matcalc.diff("a^T vec(unvec(v, 3))", wrt="v")
    assert "unvec" not in str(d)


def test_unvec_errors():
    with pytest.raises(matcalc.ShapeError):
        matcalc.evaluate("unvec(v, 3)", {"v": np.arange(7.0)})
    with pytest.raises(matcalc.ParseError):
        matcalc.parse("unvec(v)")
    with pytest.raises(matcalc.ParseError):
        matcalc.parse("unvec(v, x^T x)")
    with pytest.raises(matcalc.ShapeError):
        matcalc.parse("unvec(v, 3)", symbols={"v": "vector(7)"})


def test_derivative_through_unvec():
    """d unvec(v) = unvec(dv); its adjoint is vec."""
    check_derivative("tr(A unvec(v, 3))", "v", symbols={"A": "matrix(4,3)", "v": "vector(12)"})
    check_derivative("||unvec(v, 3) B||^2", "v", symbols={"B": "matrix(4,2)", "v": "vector(12)"})
    check_derivative("unvec(v, 3) b", "v", symbols={"b": "vector(4)", "v": "vector(12)"})


def test_hessians():
    check_hessian("||vec(X) - g||^2", "X", symbols={"X": "matrix(2,3)"}, allow_unsupported=False)
    check_hessian("(g^T vec(X))^2", "X", symbols={"X": "matrix(3,2)"}, allow_unsupported=False)
    check_hessian("(vec(M)^T vec(V))^2", "M", symbols={"M": "matrix(2,3)", "V": "matrix(3,2)"},
                  allow_unsupported=False)


def test_text_and_latex_read_back():
    d = matcalc.diff("vec(X)^T (K(m,n) vec(G))", wrt="X", symbols={"X": "matrix(m,n)", "G": "matrix(m,n)"})
    vals = {"X": np.zeros((2, 5)), "G": np.arange(10.0).reshape(2, 5)}
    assert rel_err(matcalc.evaluate(str(d), vals, symbols=d.symbols), d.evaluate(vals)) < 1e-14
    assert "\\operatorname{unvec}" in d.latex()


def test_latex_renders_in_katex():
    runner = katex_or_skip()
    texs = [matcalc.parse("unvec(v, m)").latex(),
            matcalc.diff("g^T vec(X)", wrt="X").latex(),
            matcalc.diff("vec(M)^T vec(V)", wrt="M").latex()]
    assert not runner.Katex(texs).problems(texs)


def test_codegen():
    from matcalc.api import generate_source
    f = matcalc.compile("vec(M)^T vec(V)", wrt="M")
    rng = np.random.default_rng(3)
    M, V = rng.standard_normal((4, 5)), rng.standard_normal((2, 10))
    val, G = f(M=M, V=V)
    assert rel_err(G, V.reshape(-1, order="F").reshape((4, 5), order="F")) < 1e-14
    f = matcalc.compile("g^T vec(X)", wrt="X", symbols={"X": "matrix(3,4)"})
    g = rng.standard_normal(12)
    _, G = f(g=g, X=np.zeros((3, 4)))
    assert np.array_equal(G, g.reshape((3, 4), order="F"))
    for target in ("numpy", "jax", "torch"):
        src = generate_source("vec(M)^T vec(V)", wrt="M", target=target)
        compile(src, f"<{target}>", "exec")
        assert ".reshape(-1, m).T" in src


def test_sympy_names_unvec():
    d = matcalc.diff("g^T vec(X)", wrt="X")
    pytest.importorskip("sympy")
    with pytest.raises(matcalc.UnsupportedError, match="unvec"):
        d.to_sympy()


def test_kronecker_forms_unchanged():
    """Beside a Kronecker product the factors still take one shape (their identities need it)."""
    check_derivative("tr(A ⊗ X)", "X")
    check_derivative("x^T kron(A, B) x", "x")


def test_rules_list_unvec():
    from matcalc.canon import IDENTITIES
    from matcalc.differential import RULES
    from matcalc.jacobian import VEC_IDENTITIES
    assert RULES[E.Unvec].name == "d-unvec"
    assert E.Unvec in IDENTITIES and E.Unvec in VEC_IDENTITIES


def test_jacobians_through_unvec():
    """vec(unvec(dv)) = dv: Jacobians of matrix-valued functions of v, and of unvec(v)ᵀ."""
    check_derivative("unvec(v, 3)^T A", "v", symbols={"v": "vector(12)", "A": "matrix(3,2)"})
    check_derivative("A unvec(v, 3) B", "v", symbols={"v": "vector(12)", "A": "matrix(2,3)", "B": "matrix(4,5)"})
    check_derivative("unvec(v, 2) .* X", "X", symbols={"v": "vector(6)", "X": "matrix(2,3)"})
    check_derivative("tr(unvec(v, 3))", "v", symbols={"v": "vector(9)"})


def test_check_draws_sizes_that_fit():
    """--check of an undeclared vec pairing: the drawn sizes have as many entries on each side."""
    from matcalc.check import check
    for expr, wrt in [("vec(M)^T vec(V)", "M"), ("vec(X)^T vec(A X B)", "X"), ("g^T vec(X)", "X")]:
        assert check(matcalc.diff(expr, wrt=wrt)).ok, expr
