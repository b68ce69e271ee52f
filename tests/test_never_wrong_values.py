"""Issue 10, "Wrong values": never a wrong shape, never 0/0 where the derivative is
finite, never a value that does not fit its declaration read silently, and errors of
evaluation inside the MatcalcError family.

Every derivative here is checked against central differences (tests/helpers.py), at
non-square sizes (helpers.SIZE_VALUES gives every size name its own number), at values
with zero entries, and for diagonal and symmetric variables.
"""
import itertools
import subprocess
import sys

import numpy as np
import pytest

import matcalc
from matcalc.steps import check_steps
from helpers import SIZE_VALUES, central, check_derivative, draw, rel_err


# ---------------------------------------------------------------------------- 1. the inverse of vec


def _unvec(expr, wrt, symbols=None, sizes=None):
    """The derivative, checked numerically, written with the inverse of vec (where the
    identities give a matrix of another shape than the variable's, it is a reshape)."""
    d = check_derivative(expr, wrt, symbols, sizes=sizes)
    assert "unvec(" in str(d), str(d)
    return d


def test_commutation_of_the_wrong_shape_is_a_reshape_not_transposed():
    # K(m,n) vec(G) = vec(G^T) is n×m: paired with vec(X), X m×n, it is a reshape, not G^T
    d = _unvec("vec(X)^T (K(m,n) vec(G))", "X", {"X": "matrix(m,n)", "G": "matrix(m,n)"})
    assert "G^T" in str(d)
    # G declared n×m: K(m,n) vec(G) is no vec of a transpose at all
    _unvec("vec(X)^T (K(m,n) vec(G))", "X", {"X": "matrix(m,n)", "G": "matrix(n,m)"})


def test_commutation_of_the_right_shape_gives_the_transpose():
    # K(n,m) vec(G) = vec(G^T) for G n×m: the gradient is G^T (m×n), checked at m=4, n=3
    d = check_derivative("vec(X)^T (K(n,m) vec(G))", "X", {"X": "matrix(m,n)", "G": "matrix(n,m)"})
    assert str(d) == "G^T"


@pytest.mark.parametrize("expr", ["vec(X)^T (P ⊗ Q) vec(N)", "vec(X)^T kron(P, Q) vec(N)"])
def test_kronecker_pairings_of_the_wrong_shape_are_reshaped(expr):
    check_derivative(expr, "X")
    # (P ⊗ Q) vec(N) = vec(Q N P^T), n×m against m×n
    _unvec(expr, "X", {"X": "matrix(m,n)", "P": "matrix(m,p)", "Q": "matrix(n,q)", "N": "matrix(q,p)"})


@pytest.mark.parametrize("expr", ["vec(X)^T (P ⊗ Q) vec(N)", "vec(X)^T kron(P, Q) vec(N)"])
def test_kronecker_pairings_of_the_right_shape(expr):
    d = check_derivative(expr, "X", {"X": "matrix(m,n)", "P": "matrix(n,p)", "Q": "matrix(m,q)",
                                     "N": "matrix(q,p)"})
    assert str(d) == "Q N P^T"


def test_every_declared_kronecker_pairing_is_right():
    """All orientations of P, Q and N around vec(X)^T (P ⊗ Q) vec(N), X m×n: each answer
    is checked numerically (those of another shape with unvec); none is refused."""
    answered = refused = 0
    for pr, pc, qr, qc, nr, nc in itertools.product("mn", "pq", "mn", "pq", "pq", "pq"):
        if pr == qr or pc == qc:
            continue
        symbols = {"X": "matrix(m,n)", "P": f"matrix({pr},{pc})", "Q": f"matrix({qr},{qc})",
                   "N": f"matrix({nr},{nc})"}
        try:
            matcalc.diff("vec(X)^T (P ⊗ Q) vec(N)", wrt="X", symbols=symbols)
        except matcalc.ShapeError:
            continue                             # sizes that do not multiply
        except matcalc.UnsupportedError:
            refused += 1
            continue
        check_derivative("vec(X)^T (P ⊗ Q) vec(N)", "X", symbols)
        answered += 1
    assert answered >= 2 and refused == 0


@pytest.mark.parametrize("expr,symbols,answer", [
    ("vec(X)^T kron(u, w)", {"X": "matrix(m,n)", "u": "vector(n)", "w": "vector(m)"}, "w u^T"),
    ("vec(X)^T (K(n,m) kron(u, w))", {"X": "matrix(m,n)", "u": "vector(m)", "w": "vector(n)"}, "u w^T"),
])
def test_kronecker_products_of_vectors_paired_with_vec(expr, symbols, answer):
    d = check_derivative(expr, "X", symbols)
    assert str(d) == answer


@pytest.mark.parametrize("expr,symbols", [
    ("vec(X)^T kron(u, w)", {"X": "matrix(m,n)", "u": "vector(m)", "w": "vector(n)"}),
    ("vec(X)^T (K(m,n) kron(u, w))", {"X": "matrix(m,n)", "u": "vector(n)", "w": "vector(m)"}),
])
def test_kronecker_products_of_vectors_of_the_wrong_shape_are_reshaped(expr, symbols):
    _unvec(expr, "X", symbols)


_SAME = {"X": "matrix(m,n)", "A": "matrix(m,n)", "B": "matrix(m,n)"}


@pytest.mark.parametrize("expr,symbols,answer", [
    ("vec(X)^T (vec(A) .* vec(B))", _SAME, "A .* B"),
    ("vec(X)^T (diag(vec(A)) vec(B))", _SAME, "A .* B"),
    ("vec(A)^T diag(vec(X)) vec(B)", _SAME, "A .* B"),
    ("vec(X)^T exp(vec(A))", {"X": "matrix(m,n)", "A": "matrix(m,n)"}, "exp(A)"),
    ("vec(X)^T (K(n,m) (vec(A) .* vec(B)))",
     {"X": "matrix(m,n)", "A": "matrix(n,m)", "B": "matrix(n,m)"}, "A^T .* B^T"),
])
def test_the_inverse_of_vec_through_elementwise_operations(expr, symbols, answer):
    d = check_derivative(expr, "X", symbols)
    assert str(d) == answer
    if "K(" not in expr:
        check_derivative(expr, "X")          # undeclared: shapes equal only in their entries


def test_the_issue_pairing_with_kron_of_vectors_is_reshaped():
    symbols = {"G": "matrix(n,m)", "u": "vector(m)", "w": "vector(n)"}
    check_derivative("(K(n,m) vec(G))^T kron(u, w)", "w", symbols)


def test_the_cli_answers_with_unvec_instead_of_printing_the_transpose():
    out = subprocess.run([sys.executable, "-m", "matcalc", "diff", "vec(X)^T (K(m,n) vec(G))", "--wrt", "X",
                          "--let", "X=matrix(m,n)", "--let", "G=matrix(m,n)", "--check"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out
    assert out.stdout.startswith("unvec(") and "ok" in out.stdout


def test_derivative_evaluate_refuses_a_gradient_of_another_shape():
    d = matcalc.diff("tr(A X)", wrt="X")               # X m×n, A n×m: the gradient A^T is m×n
    rng = np.random.default_rng(0)
    values = {"X": rng.standard_normal((4, 3)), "A": rng.standard_normal((3, 4))}
    assert np.shape(d.evaluate(values)) == (4, 3)
    d = d.replace(expr=d.expr.arg if isinstance(d.expr, matcalc.expr.Transpose)
                  else matcalc.parse("A", d.symbols))
    with pytest.raises(matcalc.ShapeError, match="shape"):
        d.evaluate(values)                             # A is 3×4: refused, never reshaped into 4×3


# ---------------------------------------------------------------------------- 2. no 0/0


ELEMENTWISE_TRACES = ["tr(log(X))", "tr(X .^ -1)", "tr(sqrt(X))", "tr(abs(X))", "tr(X .^ 0.5)",
                      "tr(exp(X))", "tr(sin(X))", "tr(X .^ 3)", "tr(X .^ -1 + 2 sqrt(X))",
                      "tr(log(X) .* exp(X))", "tr(sqrt(X) ./ (1 + X .^ 2))"]


def _zeros_off_the_diagonal(values, rng):
    X = np.array(values["X"], dtype=float)
    n = X.shape[0]
    X[0, 1] = X[1, 0] = 0.0                 # zero entries (symmetric ones, for a symmetric X)
    if n > 2:
        X[n - 1, 0] = X[0, n - 1] = 0.0
    X[np.diag_indices(n)] = np.abs(X[np.diag_indices(n)]) + 0.5   # a positive diagonal
    return {"X": X}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # f's own log(0) in the generated code
@pytest.mark.parametrize("kind", [None, "diagonal", "symmetric"])
@pytest.mark.parametrize("expr", ELEMENTWISE_TRACES)
def test_trace_of_elementwise_function_is_finite_at_zero_entries(expr, kind):
    symbols = {"X": kind} if kind else None
    d = check_derivative(expr, "X", symbols, override=_zeros_off_the_diagonal)
    assert "I ./" not in str(d) and "I .*" not in str(d)
    values = draw(d.symbols, np.random.default_rng(1), override=_zeros_off_the_diagonal)
    G = d.evaluate(values)
    assert np.all(np.isfinite(G)), (str(d), G)
    # the generated code computes the same finite gradient
    compiled = matcalc.compile(expr, wrt="X", symbols=symbols)
    _, G2 = compiled(**values)
    assert np.all(np.isfinite(G2)) and rel_err(G2, G) < 1e-12


def _every_elementwise_function():
    """f({}) for every function of the records (a fast-growing one of {} / 4: tan's poles
    and exp's overflow stay away from the values drawn), and powers."""
    from matcalc.operators import ELEMENTWISE_RECORDS
    return sorted(f"{r.name}({{}} / 4)" if r.fast_growing else f"{r.name}({{}})"
                  for r in ELEMENTWISE_RECORDS) + ["{} .^ -1", "{} .^ -2", "{} .^ 0.5", "{} .^ 1.5"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind", [None, "diagonal", "symmetric"])
@pytest.mark.parametrize("form", ["tr({f})", "tr({f} .* exp({x}))", "tr({f} - 3 tanh({x}))"])
def test_every_elementwise_function_under_a_trace(form, kind):
    """The mechanism, not a list: every elementwise function of the language and powers,
    alone, in an elementwise product and in a sum, at zero entries off the diagonal."""
    symbols = {"X": kind} if kind else None
    for f in _every_elementwise_function():
        expr = form.format(f=f.format("X"), x="X")
        d = check_derivative(expr, "X", symbols, override=_zeros_off_the_diagonal)
        values = draw(d.symbols, np.random.default_rng(5), override=_zeros_off_the_diagonal)
        assert np.all(np.isfinite(d.evaluate(values))), (expr, kind, str(d))


@pytest.mark.parametrize("expr,fn,kind", [
    ("tr(log(X))", "hessian", None), ("tr(log(X))", "hessian", "diagonal"),
    ("tr(X .^ -1)", "hessian", "diagonal"), ("tr(sqrt(X))", "hessian", "symmetric"),
    ("diag(log(X))", "diff", None), ("diag(sqrt(X)) .* x", "diff", None),
])
def test_jacobians_and_hessians_of_elementwise_functions_are_finite_at_zero_entries(expr, fn, kind):
    symbols = {"X": kind} if kind else None
    if fn == "hessian":
        d = matcalc.hessian(expr, wrt="X", symbols=symbols)
    else:
        d = check_derivative(expr, "X", symbols, override=_zeros_off_the_diagonal)
    values = draw(d.symbols, np.random.default_rng(2), override=_zeros_off_the_diagonal)
    H = d.evaluate(values)
    assert np.all(np.isfinite(H)), (str(d), H)
    if fn == "hessian":                     # H vec(V) against the gradient's central differences
        g = matcalc.diff(expr, wrt="X", symbols=symbols)
        V = np.zeros_like(values["X"])
        V[np.diag_indices(V.shape[0])] = np.random.default_rng(3).standard_normal(V.shape[0])
        fd = central(g.evaluate, values, "X", V)
        got = (H @ V.reshape(-1, order="F")).reshape(V.shape, order="F")
        assert rel_err(got, fd) < 1e-6


def test_steps_of_an_elementwise_function_of_a_diagonal_have_no_nan_line():
    d = matcalc.diff("sum(abs(D))", wrt="D", symbols={"D": "diagonal"})
    assert "sum(abs(diag(D)))" in str(d.steps)
    err = check_steps(d)
    assert err is not None and err < 1e-9       # None: some line was not finite at any draw
    check_derivative("sum(abs(D))", "D", {"D": "diagonal"})


# ---------------------------------------------------------------------------- 3. values that do not fit


@pytest.mark.parametrize("value,why", [
    ([1 + 2j, 3], "complex"), (np.array([1.0, 2.0], dtype=complex), "complex"),
    (None, "None"), ([1.0, None], "None"), ("1 2", "string"), (["1", "2"], "string"),
    (np.array([1.0, object()], dtype=object), "not a number"), ([[1.0, 2.0], [3.0]], "not an array"),
])
def test_values_that_are_not_real_numbers_are_refused(value, why):
    with pytest.raises(matcalc.ShapeError, match=why):
        matcalc.evaluate("x^T x", {"x": value})
    d = matcalc.diff("x^T x", wrt="x")
    with pytest.raises(matcalc.ShapeError, match=why):
        d.evaluate({"x": value})


def test_the_issue_complex_value_is_refused_not_truncated():
    with pytest.raises(matcalc.ShapeError, match="complex"):
        matcalc.evaluate("x^T x", {"x": [1 + 2j, 3]})       # gave 10.0


def test_nan_and_inf_are_the_users_business():
    assert np.isnan(matcalc.evaluate("x^T x", {"x": [np.nan, 1.0]}))
    assert matcalc.evaluate("x^T x", {"x": [np.inf, 1.0]}) == np.inf
    assert matcalc.evaluate("x^T x", {"x": np.array([1, 2], dtype=object)}) == 5.0   # numbers in objects


def _asymmetric(n=3, seed=0):
    A = np.random.default_rng(seed).standard_normal((n, n))
    return A + 3 * np.eye(n)


def test_asymmetric_value_for_a_symmetric_symbol_is_refused_everywhere():
    d = matcalc.diff("x^T A x", wrt="x", symbols={"A": "symmetric"})
    assert str(d) == "2 A x"                          # right only for a symmetric A
    A, x = _asymmetric(), np.array([1.0, -2.0, 0.5])
    for call in (lambda: d.evaluate({"A": A, "x": x}),
                 lambda: matcalc.evaluate(str(d), {"A": A, "x": x}, symbols=d.symbols),
                 lambda: matcalc.compile("x^T A x", wrt="x", symbols={"A": "symmetric"})(A=A, x=x)):
        with pytest.raises(matcalc.ShapeError, match="not symmetric"):
            call()
    S = (A + A.T) / 2
    assert rel_err(d.evaluate({"A": S, "x": x}), 2 * S @ x) < 1e-12
    check_derivative("x^T A x", "x", {"A": "symmetric"})


@pytest.mark.parametrize("kind", ["symmetric", "spd"])
def test_symmetry_is_judged_relative_to_the_values_scale(kind):
    d = matcalc.diff("tr(S^-1 A)", wrt="A", symbols={"S": kind})
    B = np.random.default_rng(4).standard_normal((3, 3))
    S = B @ B.T + 3 * np.eye(3)
    A = np.eye(3)
    for scale in (1e-12, 1.0, 1e12):
        Sr = scale * S
        Sr[0, 1] *= 1 + 1e-13                         # rounding: accepted at any scale
        d.evaluate({"S": Sr, "A": A})
        Sb = scale * S
        Sb[0, 1] += 1e-3 * scale                      # a real asymmetry: refused at any scale
        with pytest.raises(matcalc.ShapeError, match="not symmetric"):
            d.evaluate({"S": Sb, "A": A})


def test_non_diagonal_value_for_a_diagonal_symbol_is_refused():
    d = matcalc.diff("tr(A D)", wrt="D", symbols={"D": "diagonal"})
    A = np.arange(9.0).reshape(3, 3)
    with pytest.raises(matcalc.ShapeError, match="not diagonal"):
        d.evaluate({"A": A, "D": np.ones((3, 3))})
    with pytest.raises(matcalc.ShapeError, match="not diagonal"):
        matcalc.evaluate("tr(A D)", {"A": A, "D": np.ones((3, 3))}, symbols={"D": "diagonal"})
    with pytest.raises(matcalc.ShapeError, match="square"):
        matcalc.evaluate("tr(A D)", {"A": A, "D": np.ones((3, 2))}, symbols={"D": "diagonal"})
    assert rel_err(d.evaluate({"A": A, "D": np.diag([1.0, 2, 3])}), np.diag(np.diag(A))) < 1e-12


def test_values_that_do_not_fit_the_declared_kind_are_refused():
    with pytest.raises(matcalc.ShapeError, match="declared scalar"):
        matcalc.evaluate("c x", {"c": [1.0, 2.0], "x": [1.0, 2.0]}, symbols={"c": "scalar"})
    with pytest.raises(matcalc.ShapeError, match="declared vector"):
        matcalc.evaluate("x^T x", {"x": np.ones((2, 3))}, symbols={"x": "vector"})
    with pytest.raises(matcalc.ShapeError, match="number"):
        matcalc.evaluate("tr(X)", {"X": 2.0}, symbols={"X": "matrix(m,n)"})
    assert matcalc.evaluate("c x", {"c": np.array([2.0]), "x": [1.0]}, symbols={"c": "scalar"}) == 2.0


# ---------------------------------------------------------------------------- 4. errors of evaluation


def test_singular_matrix_is_an_evaluation_error():
    assert issubclass(matcalc.EvaluationError, matcalc.MatcalcError)
    with pytest.raises(matcalc.EvaluationError, match="singular"):
        matcalc.evaluate("inv(X)", {"X": np.zeros((2, 2))})
    with pytest.raises(matcalc.EvaluationError, match="X - A is singular"):
        matcalc.evaluate("tr((X - A)^-1)", {"X": np.eye(2), "A": np.eye(2)})
    d = matcalc.diff("logdet(X) + tr(X^-1 A)", wrt="X")
    with pytest.raises(matcalc.EvaluationError, match="singular"):
        d.evaluate({"X": np.ones((2, 2)), "A": np.eye(2)})
    compiled = matcalc.compile("logdet(X) + tr(X^-1 A)", wrt="X")
    with pytest.raises(matcalc.EvaluationError, match="singular"):
        compiled(X=np.ones((2, 2)), A=np.eye(2))
    value, G = compiled(X=2 * np.eye(2), A=np.eye(2))
    assert rel_err(G, d.evaluate({"X": 2 * np.eye(2), "A": np.eye(2)})) < 1e-12


@pytest.mark.parametrize("call", [
    lambda: matcalc.evaluate(123, {}),
    lambda: matcalc.evaluate(None, {}),
    lambda: matcalc.evaluate("x^T x", [1.0, 2.0]),
    lambda: matcalc.evaluate("x^T x", {"x": "abc"}),
    lambda: matcalc.evaluate("x^T x", {"x": [1.0, 2.0]}, symbols="X=matrix"),
    lambda: matcalc.diff("x^T x", wrt="x").evaluate("x"),
    lambda: matcalc.diff("tr(X)", wrt="X", symbols="X=matrix"),
    lambda: matcalc.hessian("tr(X)", wrt="X", symbols=["X"]),
    lambda: matcalc.evaluate("inv(X)", {"X": [[1.0, 2.0], [2.0, 4.0]]}),
])
def test_misuse_of_evaluate_is_a_matcalc_error(call):
    with pytest.raises(matcalc.MatcalcError):
        call()


def test_sizes_used_here_are_non_square():
    assert len({SIZE_VALUES[k] for k in "mnpq"}) == 4
