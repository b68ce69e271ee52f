"""Jacobians, layouts and Hessians, each checked against finite differences.

Every row is derived, then compared with central differences computed here from the
function's own value (``matcalc.evaluate`` of the input text, the same for every
derivative code path) by matcalc.check's differences (``directional``): J vec(V) against
the derivative of vec F(X + tV) for a Jacobian, H vec(V) against that of the gradient
for a Hessian.  The printed
answer must read back to the same numbers.  A few canonical closed forms are also
checked as text, to keep answers closed (no index expressions)."""
import numpy as np
import pytest

import matcalc
from matcalc.check import direction, directional, draw_values
from matcalc.check import vec as vecF


def sample(d, seed):
    rng = np.random.default_rng(seed)
    values, sizes = draw_values(d.typed_symbols, d.f, rng)
    V = direction(rng, d.var, values[d.var.name])
    return values, V


def fd(text, values, name, V, symbols=None):
    """The derivative of matcalc.evaluate(text) at values along V."""
    return along(lambda v: matcalc.evaluate(text, v, symbols=symbols), values, name, V)


def along(f, values, name, V):
    got, _ = directional(f, values, name, V)
    assert got is not None, "the finite differences are not finite"
    return got


def project(a, kind):
    if kind in ("symmetric", "spd"):
        return (a + a.T) / 2
    if kind == "diagonal":
        return np.diag(np.diag(a))
    return a


def assert_close(got, want, what):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    scale = max(1.0, float(np.max(np.abs(want))))
    err = float(np.max(np.abs(got - want))) / scale
    assert err < 1e-5, f"{what}: relative error {err:.2e}"


JACOBIANS = [
    # (expr, wrt, symbols) — vector and matrix functions of vectors and matrices
    ("A x", "x", None),
    ("A x + b", "x", None),
    ("(x - b)^T A", "x", None),
    ("x^T A", "x", None),
    ("A exp(x)", "x", None),
    ("exp(x)", "x", None),
    ("x .* (A x)", "x", None),
    ("x ∘ x", "x", None),
    ("x ./ (1 + x .* x)", "x", None),
    ("kron(x, A x)", "x", None),
    ("x ⊗ y", "x", None),
    ("tanh(W x + b)", "x", None),
    ("sigmoid(W x)", "x", None),
    ("log(1 + exp(A x))", "x", None),
    ("exp(A x) / sum(exp(A x))", "x", None),              # softmax
    ("(x - a) / ||x - a||", "x", None),
    ("(b^T x) (A x)", "x", None),
    ("A x + sin(B x)", "x", None),
    ("B tanh(A x)", "x", None),
    ("x / (x^T x)", "x", None),
    ("diag(x) A x", "x", None),
    ("diag(A)", "A", {"A": "matrix(n,n)"}),
    ("diag(x)", "x", None),
    ("vec(x y^T)", "x", None),
    ("X", "X", None),
    ("X^T", "X", None),
    ("A X B", "X", None),
    ("A X + X B", "X", None),
    ("X A X", "X", None),
    ("X A X^T", "X", None),
    ("X^T X", "X", None),
    ("X^T - X", "X", {"X": "matrix(n,n)"}),
    ("X^-1", "X", None),
    ("(X + A)^-1", "X", None),
    ("X^2", "X", None),
    ("X^3", "X", None),
    ("exp(X)", "X", None),
    ("tanh(X + B)", "X", None),
    ("X .* X", "X", None),
    ("A ./ X", "X", {"X": "matrix(m,n)", "A": "matrix(m,n)"}),
    ("X .^ 3", "X", None),
    ("vec(A X B^T)", "X", None),
    ("vec(A X^T)", "X", None),
    ("X x", "X", None),
    ("X^T y", "X", None),
    ("X^-1 b", "X", None),
    ("det(X) X^-1", "X", None),
    ("tr(X) A", "X", {"X": "matrix(n,n)"}),
    ("kron(A, X)", "X", None),
    ("kron(X, B)", "X", None),
    ("A ⊗ X ⊗ B", "X", None),
    ("kron(X, X)", "X", None),
    ("(X ⊗ A)^T", "X", None),
    ("X / ||X||", "X", None),
    ("sigmoid(W x)", "W", None),
    ("tanh(W x + b)", "W", None),
    ("tanh(W x + b)", "b", None),
    ("A S B", "S", {"S": "symmetric"}),
    ("S^-1", "S", {"S": "spd"}),
    ("D x", "D", {"D": "diagonal"}),
    ("D A D", "D", {"D": "diagonal"}),
]


@pytest.mark.parametrize("expr,wrt,symbols", JACOBIANS, ids=[f"{e} d{w}" for e, w, _ in JACOBIANS])
@pytest.mark.parametrize("layout", ["gradient", "numerator", "denominator"])
def test_jacobian_against_differences(expr, wrt, symbols, layout):
    d = matcalc.diff(expr, wrt=wrt, symbols=symbols, layout=layout)
    for seed in range(2):
        values, V = sample(d, seed)
        J = np.asarray(d.evaluate(values), dtype=float)
        F = np.asarray(matcalc.evaluate(expr, values, symbols=symbols), dtype=float)
        n_f, n_x = F.size, np.size(V)
        if layout == "denominator":
            assert J.reshape(n_x, n_f).shape == (n_x, n_f)
            J = J.reshape(n_x, n_f).T
        else:
            assert J.shape == (n_f, n_x), f"Jacobian of shape {J.shape}, want {(n_f, n_x)}"
        want = vecF(fd(expr, values, wrt, V, symbols))
        assert_close(J @ vecF(V), want, f"{expr} d{wrt} [{layout}]")
        back = np.asarray(matcalc.evaluate(str(d), values, symbols=d.symbols), dtype=float)
        assert_close(back.reshape(np.shape(d.evaluate(values))), d.evaluate(values), f"read-back of {d}")


HESSIANS = [
    ("x^T A x", "x", None),
    ("x^T A x + c", "x", {"A": "symmetric", "c": "scalar"}),
    ("||A x - b||^2", "x", None),
    ("(y - X^T w)^T (y - X^T w)", "w", None),
    ("sum(log(1 + exp(A w)))", "w", None),
    ("sum(log(1 + exp(-y .* (A w)))) + 0.5 c w^T w", "w", {"c": "scalar"}),
    ("log(sum(exp(A w))) - y^T (A w)", "w", None),
    ("(a^T x) (x^T B x)", "x", None),
    ("exp(a^T x)", "x", None),
    ("log(1 + x^T x)", "x", None),
    ("||x||", "x", None),
    ("sum(x .^ 4)", "x", None),
    ("x^T A x / (x^T x)", "x", {"A": "symmetric"}),
    ("tr(X^T A X)", "X", None),
    ("tr(A X B X^T)", "X", None),
    ("tr(A X) tr(B X)", "X", None),
    ("||X||_F^2", "X", None),
    ("||A X B - C||_F^2", "X", None),
    ("logdet(X)", "X", None),
    ("logdet(X^T X)", "X", {"X": "matrix(5,3)"}),
    ("tr(X^-1)", "X", None),
    ("det(X)", "X", None),
    ("sum(exp(X))", "X", None),
    ("||X - U V^T||_F^2", "U", None),
    ("logdet(S)", "S", {"S": "spd"}),
    ("logdet(S) + tr(S^-1 C)", "S", {"S": "spd", "C": "spd"}),
    # K H K = H: printed as (I + K) H / 2, not (I + K) H (I + K) / 4
    ("logdet(S) + (x - mu)^T S^-1 (x - mu)", "S", {"S": "spd"}),
    ("tr(S A S A)", "S", {"S": "symmetric", "A": "symmetric"}),
    # K H K ≠ H: the two-sided form
    ("tr(S A S B)", "S", {"S": "symmetric"}),
    ("tr(A D)", "D", {"D": "diagonal"}),
    ("x^T D x", "D", {"D": "diagonal"}),
    ("exp(t) t^2", "t", {"t": "scalar"}),
]


@pytest.mark.parametrize("expr,wrt,symbols", HESSIANS, ids=[f"{e} d{w}" for e, w, _ in HESSIANS])
def test_hessian_against_differences_of_the_gradient(expr, wrt, symbols):
    h = matcalc.hessian(expr, wrt=wrt, symbols=symbols)
    g = matcalc.diff(expr, wrt=wrt, symbols=symbols)
    kind = h.var.kind
    for seed in range(2):
        values, V = sample(h, seed)
        Hm = np.asarray(h.evaluate(values), dtype=float)
        if np.ndim(V) == 0:
            want = along(g.evaluate, values, wrt, V)
            assert_close(np.asarray(Hm).reshape(-1) * V, np.reshape(want, -1), f"{expr} d{wrt}²")
            continue
        n = np.size(V)
        assert Hm.shape == (n, n), f"Hessian of shape {Hm.shape}, want {(n, n)}"
        assert_close(Hm, Hm.T, f"symmetry of the Hessian of {expr}")
        if kind in ("symmetric", "spd"):      # in the symmetric space on both sides: H K = H
            m = np.shape(V)[0]
            K = np.eye(n)[np.arange(n).reshape(m, m).T.reshape(-1)]
            assert_close(Hm @ K, Hm, f"H K = H for the Hessian of {expr}")
        diff_g = along(g.evaluate, values, wrt, V)
        want = vecF(project(diff_g.reshape(np.shape(V)), kind) if np.ndim(V) == 2 else diff_g)
        assert_close(Hm @ vecF(V), want, f"{expr} d{wrt}²")
        back = np.asarray(matcalc.evaluate(str(h), values, symbols=h.symbols), dtype=float)
        if str(h) == "0":            # a zero of any shape prints as 0
            assert not np.any(Hm)
        else:
            assert_close(back.reshape(Hm.shape), Hm, f"read-back of {h}")


CLOSED_FORMS = [
    # (function, wrt, kind, the closed form matcalc prints) — answers stay closed forms
    ("A X B", "X", "diff", "B^T ⊗ A"),
    ("X^-1", "X", "diff", "-(X^-T ⊗ X^-1)"),
    ("X^T", "X", "diff", "K(m,n)"),
    ("exp(X)", "X", "diff", "diag(vec(exp(X)))"),
    ("A x", "x", "diff", "A"),
    ("x^T A x", "x", "hessian", "A + A^T"),
    ("||A x - b||^2", "x", "hessian", "2 A^T A"),
    ("tr(X^T A X)", "X", "hessian", "I(n) ⊗ (A + A^T)"),
]


@pytest.mark.parametrize("expr,wrt,how,text", CLOSED_FORMS)
def test_closed_forms(expr, wrt, how, text):
    d = (matcalc.hessian if how == "hessian" else matcalc.diff)(expr, wrt=wrt)
    assert str(d) == text
    assert d.check().ok


def test_several_variables_at_once():
    ds = matcalc.diff("||X - U V^T||_F^2", wrt=["U", "V"])
    assert [d.wrt for d in ds] == ["U", "V"]
    assert matcalc.diff("||X - U V^T||_F^2", wrt="U,V")[1].wrt == "V"
    for d in ds:
        r = d.check()
        assert r.ok, (str(d), r)


def test_scalar_variable_of_matrix_function():
    d = matcalc.diff("(X + t A)^-1", wrt="t", symbols={"t": "scalar"})
    assert d.check().ok
    values, V = sample(d, 3)
    got = np.asarray(d.evaluate(values)) * V
    assert_close(got, fd("(X + t A)^-1", values, "t", V, {"t": "scalar"}), "d(X + tA)^-1/dt")


def test_every_step_of_a_jacobian_checks():
    from matcalc.steps import check_steps
    for expr, wrt, symbols in JACOBIANS[:20] + [(e, w, s) for e, w, s in HESSIANS[:10]]:
        d = matcalc.diff(expr, wrt=wrt, symbols=symbols)
        err = check_steps(d)
        assert err is not None and err < 1e-6, (expr, wrt, err)
