"""What the engine prints in LaTeX, it reads back (CONTRACT §5.4; issues 10 and 14).

Every answer of the conformance suite and every elementwise function of the operator
records (f(A x), f(X), f(xᵀ x), and a gradient that holds f′) is checked against finite
differences, and its LaTeX, flat and abbreviated, read by ``matcalc.evaluate`` evaluates
to the same numbers as the answer.  (The everyday and cookbook corpora do the same in
tests/_fd_everyday.py.)  Names with digits print as subscripts (W1 → W_{1}) and read back
as W_1: the values are passed under the names the reader gives (``read_back_name``).
"""
import os
import sys
import zlib

import numpy as np
import pytest

import matcalc
from matcalc.latex_input import read_back_name
from matcalc.operators import ELEMENTWISE_RECORDS
from helpers import check_derivative, check_hessian, draw, fitting_sizes, katex_or_skip, rel_err

HERE = os.path.dirname(os.path.abspath(__file__))
CONFORMANCE = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "conformance"))


def _conformance_cases():
    if not os.path.isdir(CONFORMANCE):
        return []
    if CONFORMANCE not in sys.path:
        sys.path.insert(0, CONFORMANCE)
    dont, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        import cases  # noqa: E402
    finally:
        sys.dont_write_bytecode = dont
    return list(cases.CASES)


CASES = _conformance_cases()


def renamed(named):
    return {read_back_name(k): v for k, v in named.items()}


def assert_latex_reads_back(d, seed, dom="any", trials=2):
    """d's LaTeX (flat and abbreviated) evaluates, at random values, like d."""
    rng = np.random.default_rng(seed)
    texs = [d.latex(), d.latex(abbreviate=True)]
    done = 0
    for _ in range(10 * trials):
        vals = draw(d.symbols, rng, dom, fitting_sizes(d, rng))
        want = np.asarray(d.evaluate(vals), dtype=float)
        if not np.all(np.isfinite(want)):
            continue
        for tex in texs:
            got = np.asarray(matcalc.evaluate(tex, renamed(vals), symbols=renamed(d.symbols)),
                             dtype=float)
            assert got.size == want.size, f"{tex!r} reads back with shape {got.shape}, d has {want.shape}"
            assert rel_err(got.reshape(want.shape), want) < 1e-9, \
                f"{tex!r} reads back to {got}, the answer {str(d)!r} is {want}"
        done += 1
        if done == trials:
            return texs
    pytest.fail(f"no values where {str(d)!r} is finite")


def declarations(case):
    """The case's sizes and kinds as matcalc declarations (vector(p), spd(n), ...)."""
    out = {}
    for name, shape in case["sizes"].items():
        kind = (case.get("symbols") or {}).get(name)
        if kind is not None and ("(" in kind or kind == "scalar"):
            out[name] = kind
        elif kind is not None:                      # spd, symmetric, diagonal: square
            out[name] = f"{kind}({shape[0]})"
        else:
            out[name] = ("scalar", f"vector({shape[0]})", f"matrix({','.join(shape)})")[len(shape)]
    return out


@pytest.mark.skipif(not CASES, reason=f"no conformance suite at {CONFORMANCE}")
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_conformance_answer_latex_reads_back(case):
    symbols, layout = declarations(case), case["layout"]
    props = set((case.get("props") or {}).values())
    dom = "pos" if props & {"pos", "posdet"} else "any"
    if case["kind"] == "hessian":
        d = check_hessian(case["expr"], case["wrt"], symbols=symbols, dom=dom, trials=1,
                          allow_unsupported=False)
    else:
        d = check_derivative(case["expr"], case["wrt"], symbols=symbols, layout=layout,
                             dom=dom, trials=1)
    assert_latex_reads_back(d, zlib.crc32(case["id"].encode()), dom)


def _record_cases():
    out = []
    for r in ELEMENTWISE_RECORDS:
        dom = "pos" if r.domain == "positive" or r.name in ("sqrt", "log") else "any"
        f = r.name
        out += [(f"{f}(A x)", "x", "numerator", dom), (f"{f}(X)", "X", "numerator", dom),
                (f"{f}(x^T x)", "x", "gradient", dom), (f"sum({f}(A x))", "x", "gradient", dom),
                (f"a^T {f}(X) b", "X", "gradient", dom)]
    return out


RECORD_CASES = _record_cases()


@pytest.mark.parametrize("expr,wrt,layout,dom", RECORD_CASES, ids=[c[0] for c in RECORD_CASES])
def test_operator_record_latex_reads_back(expr, wrt, layout, dom):
    d = check_derivative(expr, wrt, layout=layout, dom=dom, trials=1)
    seed = zlib.crc32(expr.encode())
    assert_latex_reads_back(d, seed, dom)
    # and the input itself: its LaTeX reads back as the same function
    f = matcalc.parse(expr)
    back = matcalc.parse(f.latex())
    rng = np.random.default_rng(seed)
    vals = draw(d.symbols, rng, dom, fitting_sizes(d, rng))
    want = np.asarray(matcalc.evaluate(expr, vals, symbols=d.symbols), dtype=float)
    got = np.asarray(matcalc.evaluate(back.latex(), vals, symbols=d.symbols), dtype=float)
    assert rel_err(got, want) < 1e-12, f"{f.latex()!r} reads back as {back}"


# ---------------------------------------------------------------------------- the forms


def test_sigma_against_left_paren_is_the_sigmoid():
    assert matcalc.parse(r"\sigma\left(W x\right)") == matcalc.parse("sigmoid(W x)")
    assert matcalc.parse(matcalc.parse("sigmoid(A x)").latex()) == matcalc.parse("sigmoid(A x)")
    vals = {"W": np.random.default_rng(1).standard_normal((4, 3)), "x": np.arange(3.0)}
    got = matcalc.evaluate(r"\sigma\left(W x\right)", vals)
    assert np.allclose(got, 1 / (1 + np.exp(-vals["W"] @ vals["x"])))


@pytest.mark.parametrize("tex,plain", [
    (r"\sigma \left(x - \mu\right)", "sigma (x - mu)"),       # a space: the symbol σ
    (r"\sigma(x - \mu)", "sigma (x - mu)"),                   # a bare parenthesis
    (r"\Sigma\left(x - \mu\right)", "Sigma (x - mu)"),        # Σ is never the sigmoid
    (r"\sigma^{2} \left(x^{\top} x\right)", "sigma^2 (x^T x)"),
])
def test_ordinary_sigma_stays_a_product(tex, plain):
    decl = {"sigma": "scalar"}
    assert matcalc.parse(tex, decl) == matcalc.parse(plain, decl)


def test_sigma_a_symbol_and_the_sigmoid_in_one_answer():
    # σ names a symbol: the sigmoid prints as \operatorname{sigmoid} and a product with σ
    # keeps its space, so both read back
    d = check_derivative("sigma sum(sigmoid(A x)) + sigma x^T x", "x", symbols={"sigma": "scalar"})
    assert r"\operatorname{sigmoid}" in d.latex()
    assert_latex_reads_back(d, 7)


def test_abs_of_an_array_is_not_read_as_det():
    for expr in ("abs(X)", "abs(A x)"):
        tex = matcalc.parse(expr).latex()
        assert tex.startswith(r"\operatorname{abs}\left("), tex
        assert matcalc.parse(tex) == matcalc.parse(expr)
    # bars around a matrix stay the determinant, around a scalar the absolute value
    assert matcalc.parse(r"\left|X\right|") == matcalc.parse("det(X)")
    assert matcalc.parse(matcalc.parse("abs(x^T x)").latex()) == matcalc.parse("abs(x^T x)")
    d = check_derivative("sum(abs(X)) + abs(a^T X b)", "X")
    assert_latex_reads_back(d, 3)


def test_det_of_a_scalar_is_not_read_as_abs():
    tex = matcalc.parse("det(x^T A x)").latex()
    assert tex.startswith(r"\det\left("), tex
    vals = {"x": np.array([1.0, -2.0]), "A": np.array([[-3.0, 0.0], [0.0, -1.0]])}
    assert matcalc.evaluate(tex, vals) == pytest.approx(-7.0)


def test_several_letter_names_and_digit_subscripts_read_back():
    assert matcalc.parse(r"\mathit{eps} + x^{\top} x") == matcalc.parse("eps + x^T x")
    assert matcalc.parse("S_{2}^{-1} - I_{n}") == matcalc.parse("S_2^-1 - I(n)")
    assert read_back_name("W1") == "W_1" and read_back_name("Sigma") == "Sigma"
    d = check_derivative("lambda sum(sqrt(x .* x + eps)) + W1 x", "x", layout="numerator",
                         symbols={"lambda": "scalar", "eps": "scalar"}, dom="pos")
    assert_latex_reads_back(d, 5, "pos")


def test_new_forms_render_in_katex():
    runner = katex_or_skip()
    texs = [matcalc.parse(e).latex() for e in
            ("abs(X)", "abs(A x)", "det(x^T A x)", "sigmoid(A x)", "sigma sigmoid(x^T x)")]
    bad = runner.Katex(texs).problems(texs)
    assert not bad, bad


def test_a_symbol_named_pi_is_not_read_as_the_number():
    decl = {"pi": "scalar"}
    tex = matcalc.parse("pi x", decl).latex()
    assert tex == r"\mathit{pi} x"
    assert np.allclose(matcalc.evaluate(tex, {"pi": 2.0, "x": [1.0, 3.0]}, symbols=decl), [2.0, 6.0])
    assert matcalc.evaluate(r"\pi", {}) == pytest.approx(np.pi)        # \pi is still π
    d = check_derivative("pi x^T x + sum(sin(x))", "x", symbols=decl)
    assert_latex_reads_back(d, 11)


@pytest.mark.parametrize("name", ["x_", "y__", "x__1", "ΔTU", "jΔ", "ϖ", "eps", "W1", "Sigma_inv"])
def test_printed_names_read_back_as_one_symbol(name):
    """The printer's names (\\mathit{x\\_}, \\mathit{j\\Delta}, \\varpi, W_{1}) read back as
    one symbol each, whose value is the one given under the original name."""
    expr = f"{name} + x^T x"
    decl = {name: "scalar"}
    d = check_derivative(expr, "x", symbols=decl)
    tex = matcalc.parse(expr, decl).latex()
    vals = {name: 1.5, "x": np.array([1.0, 2.0])}
    assert matcalc.evaluate(tex, renamed(vals), symbols=renamed(decl)) == pytest.approx(6.5)
    assert_latex_reads_back(d, 13)
