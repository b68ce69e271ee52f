"""The numeric side of matrix functions (matcalc.spectral_values): values against SciPy,
Fréchet derivatives against central differences of the function, the non-differentiable
points raising."""
import numpy as np
import pytest

scipy_linalg = pytest.importorskip("scipy.linalg")

from matcalc import spectral_values as sv
from matcalc.errors import EvaluationError, ShapeError

RNG = np.random.default_rng(7)
CASES = [("expm", None), ("logm", None), ("sqrtm", None), ("power", 0.5), ("power", -1.5),
         ("power", 2.7)]


def _spd(n, rng=RNG):
    A = rng.standard_normal((n, n))
    return A @ A.T / n + 0.5 * np.eye(n)


def _general(n, rng=RNG):
    # eigenvalues well inside the right half plane: every principal function is defined
    return 2.0 * np.eye(n) + 0.3 * rng.standard_normal((n, n))


def _central(name, p, X, E, h=1e-5):
    """Fourth-order central difference of f along E (values from SciPy, not from sv)."""
    def f(Y):
        if name == "expm":
            return scipy_linalg.expm(Y)
        if name == "logm":
            return np.real(scipy_linalg.logm(Y))
        if name == "sqrtm":
            return np.real(scipy_linalg.sqrtm(Y))
        return np.real(scipy_linalg.fractional_matrix_power(Y, p))
    return (-f(X + 2 * h * E) + 8 * f(X + h * E) - 8 * f(X - h * E) + f(X - 2 * h * E)) / (12 * h)


@pytest.mark.parametrize("name,p", CASES)
@pytest.mark.parametrize("make", [_spd, _general], ids=["symmetric", "general"])
def test_value_matches_scipy(name, p, make):
    X = make(5)
    got = sv.value(name, X, p)
    want = {"expm": lambda: scipy_linalg.expm(X), "logm": lambda: scipy_linalg.logm(X),
            "sqrtm": lambda: scipy_linalg.sqrtm(X),
            "power": lambda: scipy_linalg.fractional_matrix_power(X, p)}[name]()
    assert np.allclose(got, np.real(want), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name,p", CASES)
@pytest.mark.parametrize("make", [_spd, _general], ids=["symmetric", "general"])
def test_frechet_matches_differences(name, p, make):
    X = make(4)
    E = RNG.standard_normal((4, 4))
    got = sv.frechet(name, X, E, p)
    want = _central(name, p, X, E)
    assert np.allclose(got, want, rtol=1e-6, atol=1e-8), np.abs(got - want).max()


@pytest.mark.parametrize("name,p", CASES)
def test_frechet_at_repeated_eigenvalues_is_finite_and_right(name, p):
    """Naive divided differences give 0/0 at repeated eigenvalues (Theano #6379)."""
    X = 1.7 * np.eye(4)
    X[0, 0] = 1.7 + 1e-12          # nearly repeated too
    E = RNG.standard_normal((4, 4))
    got = sv.frechet(name, X, E, p)
    assert np.all(np.isfinite(got))
    assert np.allclose(got, _central(name, p, X, E), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name,p", CASES)
def test_symmetric_and_block_paths_agree(name, p):
    X = _spd(5)
    E = RNG.standard_normal((5, 5))
    via_block = sv.block_frechet(lambda B: sv.value(name, B, p), X, E)
    assert np.allclose(sv.frechet(name, X, E, p), via_block, rtol=1e-7, atol=1e-9)


def test_divided_differences_diagonal_is_the_derivative():
    lam = np.array([0.3, 1.0, 2.5])
    for name, p, fp in [("expm", None, np.exp), ("logm", None, lambda x: 1 / x),
                        ("sqrtm", None, lambda x: 0.5 / np.sqrt(x)), ("power", 1.3, lambda x: 1.3 * x ** 0.3)]:
        K = sv.divided_differences(name, lam, p)
        assert np.allclose(np.diag(K), fp(lam), rtol=1e-12)


@pytest.mark.parametrize("name,p", [("logm", None), ("sqrtm", None), ("power", 0.5)])
def test_principal_branch_refuses_negative_eigenvalues(name, p):
    X = np.diag([1.0, -2.0, 3.0])
    with pytest.raises(EvaluationError, match="negative real axis"):
        sv.value(name, X, p)
    with pytest.raises(EvaluationError, match="negative real axis"):
        sv.frechet(name, X, np.eye(3), p)
    with pytest.raises(EvaluationError):
        sv.value(name, np.diag([1.0, 0.0]), p)


def test_not_square_is_a_shape_error():
    with pytest.raises(ShapeError, match="square"):
        sv.value("expm", np.ones((2, 3)))


def test_eigenvector_gradient_of_lambda_max():
    S = _spd(5)
    v = sv.eigenvector(S, "max")
    E = RNG.standard_normal((5, 5)); E = E + E.T
    h = 1e-6
    fd = (sv.eigenvalue(S + h * E, "max") - sv.eigenvalue(S - h * E, "max")) / (2 * h)
    assert np.isclose(fd, (v.T @ E @ v).item(), rtol=1e-6)
    w = sv.eigenvector(S, "min")
    fd = (sv.eigenvalue(S + h * E, "min") - sv.eigenvalue(S - h * E, "min")) / (2 * h)
    assert np.isclose(fd, (w.T @ E @ w).item(), rtol=1e-6)


def test_repeated_top_eigenvalue_raises():
    with pytest.raises(EvaluationError, match="repeated"):
        sv.eigenvector(np.diag([3.0, 3.0, 1.0]), "max")
    with pytest.raises(ShapeError, match="symmetric"):
        sv.eigenvector(np.array([[1.0, 2.0], [0.0, 1.0]]), "max")


def test_singular_vectors_and_polar_factor():
    X = RNG.standard_normal((5, 3))
    E = RNG.standard_normal((5, 3))
    h = 1e-6
    u, v = sv.top_singular_vectors(X)
    two = lambda Y: np.linalg.norm(Y, 2)
    fd = (two(X + h * E) - two(X - h * E)) / (2 * h)
    assert np.isclose(fd, float(np.sum((u @ v.T) * E)), rtol=1e-6)
    nuc = lambda Y: np.linalg.norm(Y, "nuc")
    fd = (nuc(X + h * E) - nuc(X - h * E)) / (2 * h)
    assert np.isclose(fd, float(np.sum(sv.polar_factor(X) * E)), rtol=1e-6)


def test_spectral_kinks_raise():
    with pytest.raises(EvaluationError, match="repeated"):
        sv.top_singular_vectors(np.eye(3))
    with pytest.raises(EvaluationError, match="X = 0"):
        sv.top_singular_vectors(np.zeros((2, 2)))
    with pytest.raises(EvaluationError, match="full rank"):
        sv.polar_factor(np.array([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(EvaluationError, match="zero"):
        sv.sign_nonzero(np.array([1.0, 0.0, -2.0]))
    assert np.array_equal(sv.sign_nonzero(np.array([1.5, -2.0])), [1.0, -1.0])


def test_expm_of_large_symmetric_overflow_is_an_error():
    with pytest.raises(EvaluationError, match="overflows"):
        sv.value("expm", np.diag([800.0, 1.0]))
    # large but representable: the divided differences do not overflow before the product
    K = sv.divided_differences("expm", np.array([700.0, 699.0]))
    assert np.all(np.isfinite(K))
