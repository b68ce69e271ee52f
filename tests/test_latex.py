"""LaTeX that renders.

Exact strings pin the notation (\\operatorname{tr}, ^{\\top}, ^{-1}, \\otimes, \\odot,
\\left|X\\right|, norms, \\frac, Greek letters, subscripts, sized I and K), and a real
renderer judges the rest: KaTeX, run with node, must accept every LaTeX string these
tests produce -- the answer and the input of every conformance case, the answers of a
broad list of expressions that uses every operator of the language, many symbol names,
the derivations (steps), the notebook forms and the command line's --latex output.

All the strings are rendered in one node process per test session (the session
fixture ``katex``).  Where node or the katex npm package is missing, the KaTeX checks
skip and say so; install with ``npm ci --prefix tests/katex``.
"""
import contextlib
import functools
import importlib.util
import io
import os
import random
import sys

import pytest

import matcalc
from matcalc import expr as E

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CONFORMANCE = os.path.normpath(os.path.join(ROOT, "..", "shared", "conformance"))


def _load_katex_runner():
    spec = importlib.util.spec_from_file_location("katex_runner", os.path.join(HERE, "katex", "katex_runner.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


katex_runner = _load_katex_runner()


def _conformance_cases():
    """The conformance suite's cases (as benchmarks/bench_derive.py loads them)."""
    if not os.path.isdir(CONFORMANCE):
        return []
    if CONFORMANCE not in sys.path:
        sys.path.insert(0, CONFORMANCE)
    dont = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        import cases  # noqa: E402
    finally:
        sys.dont_write_bytecode = dont
    return list(cases.CASES)


CASES = _conformance_cases()
CASE_IDS = [c["id"] for c in CASES]
needs_conformance = pytest.mark.skipif(not CASES, reason=f"no conformance suite at {CONFORMANCE}")


@functools.lru_cache(maxsize=None)
def case_derivative(case_id):
    c = next(c for c in CASES if c["id"] == case_id)
    kw = {"symbols": c.get("symbols")}
    if c["layout"] != "gradient":
        kw["layout"] = c["layout"]
    fn = matcalc.hessian if c["kind"] == "hessian" else matcalc.diff
    return fn(c["expr"], c["wrt"], **kw)


def case_latex(case_id):
    """The LaTeX of the case's answer and of its input."""
    c = next(c for c in CASES if c["id"] == case_id)
    return [case_derivative(case_id).latex(), matcalc.parse(c["expr"], c.get("symbols")).latex()]


def case_steps_latex(case_id):
    return case_derivative(case_id).steps.latex()


# Expressions that together use every operator and function of the language (CONTRACT
# §1), with their declarations.  Each is rendered as typed, and so is its derivative
# with respect to each of its symbols (and the Hessian, for a scalar).
EXPRESSIONS = [
    ("tr(X^T A X)", None),
    ("x^T A x + c", {"A": "symmetric", "c": "scalar"}),
    ("a^T X b", None),
    ("det(A X B)", None),
    ("logdet(Sigma) + tr(Sigma^-1 S)", {"Sigma": "spd", "S": "symmetric"}),
    ("log(det(X))", None),
    ("log|X| - |X|", None),
    ("-0.5 (x - mu)^T Sigma^-1 (x - mu)", {"Sigma": "spd"}),
    ("sum(log(1 + exp(-y .* (X w))))", None),
    ("sum(softplus(X w)) - y^T X w", None),
    ("||X w - y||^2 + lambda ||w||^2", {"lambda": "scalar"}),
    ("norm(A x - b)", None),
    ("||X||_F^2", None),
    ("||A - X||_F", None),
    ("||X||_2", None),
    ("tr(A .* X)", None),
    ("sum(A ./ X)", None),
    ("sum(X .^ 3)", None),
    ("sum(sqrt(x .* x + 1))", None),
    # square factors declared: A ⊗ X square leaves A and X of any shapes with m·p = n·q,
    # which SymPy's matrix expressions cannot hold (tests/test_kron_scalar.py has those)
    ("tr(kron(A, X))", {"A": "matrix(m,m)", "X": "matrix(n,n)"}),
    ("tr((A ⊗ B) (X ⊗ X))", {"A": "matrix(m,n)", "B": "matrix(m,n)", "X": "matrix(n,m)"}),
    ("a^T X^-1 b", None),
    ("a^T X^-T b", None),
    ("tr(inv(X) A)", None),
    ("tr(X^3 A)", None),
    ("tr(X^{-1})", None),
    ("x^T x / (1 + x^T x)", None),
    ("t^2 a + sin(t) b", {"t": "scalar"}),
    ("exp(t A) b", {"t": "scalar"}),
    ("sigmoid(W x + b)", None),
    ("tanh(W x)", None),
    ("cos(x) .* sin(x)", None),
    ("abs(x)", None),
    ("vec(X)", None),
    ("vec(A X B)", None),
    ("K(m,n) vec(X)", {"X": "matrix(m,n)"}),
    ("(I(n) ⊗ A) vec(X)", {"X": "matrix(m,n)"}),
    ("diag(x) A x", None),
    ("diag(X)^T a", None),
    ("X A X^T", None),
    ("X^T X", None),
    ("A X B + C", None),
    ("(A + X)^-1", None),
    ("X .^ 2", None),
    ("exp(X) ./ (1 + exp(X))", None),
    ("x^T diag(w) x", None),
    ("tr(X^T X)^(1/2)", None),
    ("(x^T x)^(-1/2) x", None),
    ("mu^T Sigma mu", {"Sigma": "symmetric"}),
    ("w_2^T A1 w_2", None),
    ("σ^2 x^T x + beta_1 sum(x)", {"σ": "scalar", "beta_1": "scalar"}),
    ("theta_hat^T x_max", None),
    ("alpha x^T Lambda x", {"alpha": "scalar", "Lambda": "diagonal"}),
    ("tr(D X)", {"D": "diagonal"}),
    ("x^T y / (x^T x)", None),
    ("1e-3 ||x||^2 + 2.5 sum(x)", None),
    ("1/3 tr(X)^3", None),
    ("log(sum(exp(x)))", None),
    ("2^t a", {"t": "scalar"}),
    ("X'", None),
    ("X.T A", None),
    ("Xᵀ A X⁻¹", None),
    ("X^-1 A X^-T", None),
    ("tr(X^T X^-1^T)", None),
    ("1 + exp(x)", None),
    ("x ⊗ y", None),
    ("X ∘ A", None),
    ("A @ X * B", None),
    ("tr(X) / n", {"n": "scalar"}),
    ("log(x^T A x)", None),
    ("sqrt(t) + ln(t) + cos(t)", {"t": "scalar"}),
    ("(a^T x)^2", None),
    ("x^T (A + A^T) x / 2", None),
    ("tr(I - X)", None),
    ("sum(X ./ (A + B))", None),
    ("||x||^2 / t - t^(-1/3)", {"t": "scalar"}),
    ("X² + X³", None),
    ("tr(X^2 (A - X)^-T)", None),
]


@functools.lru_cache(maxsize=None)
def expression_latex(text, decl_items):
    """The LaTeX of the typed expression and of its derivatives (a tuple)."""
    decls = dict(decl_items) if decl_items is not None else None
    tree = matcalc.parse(text, decls)
    out = [tree.latex()]
    for name in E.symbols_of(tree):
        for fn in (matcalc.diff, matcalc.hessian):
            if fn is matcalc.hessian and not tree.is_scalar:
                continue
            try:
                out.append(fn(text, name, symbols=decls).latex())
            except matcalc.UnsupportedError:
                pass          # e.g. the spectral norm: the engine declines, as it should
    return tuple(out)


def _items(decls):
    return None if decls is None else tuple(sorted(decls.items()))


# Symbol names: every Greek letter LaTeX spells, Unicode Greek, subscripts of all kinds,
# and a reproducible sample of random names of the language's NAME token.
GREEK_WORDS = sorted(__import__("matcalc.printing", fromlist=["GREEK"]).GREEK)
GREEK_CHARS = "αβγδεζηθικλμνξοπρςστυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩϑϕϖϱϵ"


def _names():
    rng = random.Random(5)
    names = list(GREEK_WORDS) + list(GREEK_CHARS)
    names += ["A1", "A12", "x0", "w_2", "w_ij", "x_max", "theta_hat", "Sigma_inv", "Sigma1", "mu_0",
              "σ_k", "Σ2", "αβ", "x_α", "x_alpha", "alpha_beta", "a_b_c", "x__1", "x_", "y__",
              "A1_x", "Xi_2", "loss", "W_out1", "x1y", "sigma2", "K", "T", "d", "e"]
    first = "abcdefghijklmnopqrstuvwxyzABCDEFGHJKLMNOPQRSTUVWXYZ" + GREEK_CHARS
    rest = first + "0123456789___"
    while len(names) < 300:
        n = rng.choice(first) + "".join(rng.choice(rest) for _ in range(rng.randint(0, 6)))
        if n not in names and n != "I" and not _is_function_word(n):
            names.append(n)
    return names


def _is_function_word(n):
    from matcalc.parse import FUNCTION_NAMES, function_suggestion
    return n in FUNCTION_NAMES or function_suggestion(n) is not None


NAMES = _names()


@functools.lru_cache(maxsize=None)
def name_latex(name):
    return (matcalc.parse(name, {name: "scalar"}).latex(),
            matcalc.parse(f"{name}^T {name} + {name}^-1", {name: "matrix"}).latex())


# Exact strings: (expression, declarations, LaTeX).
EXACT = [
    ("tr(X^T A X)", None, r"\operatorname{tr}\left(X^{\top} A X\right)"),
    ("X^-1", None, r"X^{-1}"),
    ("X^-T", None, r"X^{-\top}"),
    ("X^T", None, r"X^{\top}"),
    ("(A B)^T", None, r"\left(A B\right)^{\top}"),
    ("X^-1^T", None, r"\left(X^{-1}\right)^{\top}"),
    ("X^T .^ 2", None, r"\left(X^{\top}\right)^{\circ 2}"),
    ("A ⊗ B", None, r"A \otimes B"),
    ("kron(A B, C)", None, r"\left(A B\right) \otimes C"),
    ("A .* B", None, r"A \odot B"),
    ("A ./ B", None, r"A \oslash B"),
    ("X .^ 2", None, r"X^{\circ 2}"),
    ("X^3", None, r"X^{3}"),
    ("det(X)", None, r"\left|X\right|"),
    ("logdet(X)", None, r"\log\left|X\right|"),
    ("log|X|", None, r"\log\left|X\right|"),
    ("abs(t)", {"t": "scalar"}, r"\left|t\right|"),
    ("norm(x)", None, r"\left\|x\right\|"),
    ("||x||^2", None, r"\left\|x\right\|^{2}"),
    ("||X||_F", None, r"\left\|X\right\|_{F}"),
    ("||X||_2", None, r"\left\|X\right\|_{2}"),
    ("x^T y / (x^T x)", None, r"\frac{x^{\top} y}{x^{\top} x}"),
    ("2 t / (1 + t^2)", {"t": "scalar"}, r"\frac{2 t}{1 + t^{2}}"),
    ("1/2 x^T x", None, r"\frac{1}{2} x^{\top} x"),
    ("1e-3 x", None, r"0.001 x"),
    ("0.2 x + 123.456 y", None, r"0.2 x + 123.456 y"),
    ("1/3 x", None, r"\frac{1}{3} x"),
    ("1.5 x", None, r"\frac{3}{2} x"),
    ("1e-12 x", None, r"10^{-12} x"),
    ("1e60 x", None, r"10^{60} x"),
    ("2.5e60 x", None, r"2.5 \times 10^{60} x"),
    ("x / 4e29", None, r"2.5 \times 10^{-30} x"),
    ("2^(x^T x)", None, r"2^{x^{\top} x}"),
    ("sqrt(t)", {"t": "scalar"}, r"\sqrt{t}"),
    ("Sigma", None, r"\Sigma"),
    ("mu", None, r"\mu"),
    ("σ", None, r"\sigma"),
    ("Σ", None, r"\Sigma"),
    ("mu^T Sigma^-1 mu", None, r"\mu^{\top} \Sigma^{-1} \mu"),
    ("w_2", None, r"w_{2}"),
    ("A1", None, r"A_{1}"),
    ("Sigma_12", None, r"\Sigma_{12}"),
    ("beta_1", None, r"\beta_{1}"),
    ("x_max", None, r"x_{\mathrm{max}}"),
    ("loss", {"loss": "scalar"}, r"\mathit{loss}"),
    ("I(n)", None, r"I_{n}"),
    ("K(m,n)", None, r"K_{m,n}"),
    ("vec(X)", None, r"\operatorname{vec}\left(X\right)"),
    ("diag(x)", None, r"\operatorname{diag}\left(x\right)"),
    ("sum(X)", None, r"\operatorname{sum}\left(X\right)"),
    ("exp(X)", None, r"\exp\left(X\right)"),
    ("sigmoid(x)", None, r"\sigma\left(x\right)"),
    ("sigma sigmoid(x)", {"sigma": "scalar"}, r"\sigma \operatorname{sigmoid}\left(x\right)"),
    ("softplus(x)", None, r"\operatorname{softplus}\left(x\right)"),
    ("-X^T", None, r"-X^{\top}"),
    ("A - 2 B", None, r"A - 2 B"),
]

# Derivatives: (expression, wrt, declarations, LaTeX of the answer).
EXACT_DERIVATIVES = [
    ("tr(X^T A X)", "X", None, r"\left(A + A^{\top}\right) X"),
    ("det(X)", "X", None, r"\left|X\right| X^{-\top}"),
    ("x^T A x", "x", {"A": "symmetric"}, r"2 A x"),
    ("logdet(Sigma) + tr(Sigma^-1 S)", "Sigma", {"Sigma": "spd", "S": "symmetric"},
     r"\Sigma^{-1} - \Sigma^{-1} S \Sigma^{-1}"),
    ("A X", "X", None, r"I_{p} \otimes A"),
    ("X^T", "X", None, r"K_{m,n}"),
    ("sum(X)", "X", None, r"\mathbf{1}_{m\times n}"),
    ("log(1 + x^T x)", "x", None, r"\frac{2 x}{1 + x^{\top} x}"),
]

EXACT_HESSIANS = [
    ("x^T A x", "x", None, r"A + A^{\top}"),
    ("tr(X^T A X)", "X", None, r"I_{n} \otimes \left(A + A^{\top}\right)"),
]


def exact_strings():
    return [t for *_, t in EXACT + EXACT_DERIVATIVES + EXACT_HESSIANS]


# Pairs of expressions that differ in meaning must differ in LaTeX: a dropped
# parenthesis would make them equal.
SCALARS = {"a": "scalar", "b": "scalar", "c": "scalar"}
DISTINCT = [
    ("(A B) ⊗ C", "A (B ⊗ C)", None),
    ("(A .* B) C", "A .* (B C)", None),
    ("(A ⊗ B) .* C", "A ⊗ (B .* C)", None),
    ("(A - B) - C", "A - (B - C)", None),
    ("-(A + B)", "-A + B", None),
    ("(X^T)^-1 A", "X^T A^-1", None),
    ("(A B)^T", "A B^T", None),
    ("(A + B)^-1", "A + B^-1", None),
    ("(X .^ 2)^T", "X .^ 2", None),
    ("(a^T x)^2", "a^T x .^ 2", None),
    ("tr(X) A", "tr(X A)", None),
    ("exp(x) .* y", "exp(x .* y)", None),
    ("a / (b c)", "a / b c", SCALARS),
    ("(a + b) / c", "a + b / c", SCALARS),
    ("A ./ (B + C)", "A ./ B + C", None),
    ("(A ./ B) .* C", "A ./ (B .* C)", None),
    ("2^(a b)", "2^a b", SCALARS),
]


def _distinct_pairs():
    return [(matcalc.parse(a, s).latex(), matcalc.parse(b, s).latex()) for a, b, s in DISTINCT]


def cli_latex():
    """The command line's --latex and --steps --latex output."""
    from matcalc.cli import main
    outs = []
    for argv in (["diff", "tr(X^T A X)", "--wrt", "X", "--latex"],
                 ["diff", "logdet(Sigma) + tr(Sigma^-1 S)", "--wrt", "Sigma", "--let", "Sigma=spd",
                  "--let", "S=symmetric", "--latex"],
                 ["hessian", "x^T A x", "--wrt", "x", "--latex"],
                 ["diff", "det(A X B)", "--wrt", "X", "--steps", "--latex"]):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = main(argv)
        assert rc in (0, None), (argv, rc)
        outs.append((argv, buf.getvalue()))
    return outs


def _cli_blocks(argv, out):
    """The LaTeX blocks of one --latex output: the answer line, and the aligned steps."""
    text = out.strip()
    if "--steps" not in argv:
        return [text.splitlines()[0]]
    start = text.index("\\begin{aligned}")
    end = text.index("\\end{aligned}") + len("\\end{aligned}")
    rest = (text[:start] + text[end:]).strip()
    blocks = [text[start:end]]
    blocks += [line for line in rest.splitlines() if line.strip()]
    return blocks


REPR_CASES = [("tr(X^T A X)", "X", None), ("x^T A x", "x", {"A": "symmetric"}),
              ("logdet(Sigma) + tr(Sigma^-1 S)", "Sigma", {"Sigma": "spd", "S": "symmetric"})]


def repr_strings():
    out = []
    for text, wrt, decls in REPR_CASES:
        out.append(_strip_dollars(matcalc.parse(text, decls)._repr_latex_()))
        d = matcalc.diff(text, wrt, symbols=decls)
        out.append(_strip_dollars(d._repr_latex_()))
        out.extend(_markdown_math(d.steps._repr_markdown_()))
    return out


def _strip_dollars(s):
    s = s.strip()
    for d in ("$$", "$"):
        if s.startswith(d) and s.endswith(d) and len(s) > 2 * len(d):
            return s[len(d):-len(d)].strip()
    raise AssertionError(f"not a $...$ math string: {s!r}")


def _markdown_math(md):
    """The $$...$$ blocks of a Markdown string."""
    parts = md.split("$$")
    assert len(parts) % 2 == 1 and len(parts) >= 3, f"no $$ math in {md!r}"
    return [p.strip() for p in parts[1::2]]


# strings KaTeX must reject, and one it must accept: the renderer is really judging
PROBES = ("\\frac{1}{", "X^{\\top}^{2}", "X^{\\top}")

FUZZ_SEEDS = range(400)


@functools.lru_cache(maxsize=None)
def fuzz_latex():
    """The LaTeX of random well-typed inputs of the whole language (matcalc.fuzz's
    generator, fixed seeds) and of their derivatives: (strings, what they came from)."""
    try:
        from matcalc.testing import generate
    except ImportError:
        return (), ()
    texs, origin = [], []
    for seed in FUZZ_SEEDS:
        try:
            ex = generate(seed)
            tree = matcalc.parse(ex.text, ex.symbols)
            fn = matcalc.hessian if ex.op == "hessian" else matcalc.diff
            found = [tree.latex(), fn(ex.text, ex.wrt, symbols=ex.symbols).latex()]
        except Exception:       # noqa: BLE001 - what the engine declines or breaks on is test_fuzz's
            continue
        texs += found
        origin += [f"seed {seed}: {ex.text}", f"seed {seed}: d/d{ex.wrt} {ex.text}"]
    return tuple(texs), tuple(origin)


def all_latex():
    """Every LaTeX string this module checks with KaTeX (one batch)."""
    out = []
    for cid in CASE_IDS:
        out.extend(case_latex(cid))
        try:
            out.append(case_steps_latex(cid))
        except matcalc.MatcalcError:
            pass
    for text, decls in EXPRESSIONS:
        out.extend(expression_latex(text, _items(decls)))
    for n in NAMES:
        out.extend(name_latex(n))
    out.extend(exact_strings())
    for a, b in _distinct_pairs():
        out += [a, b]
    out.extend(repr_strings())
    for argv, text in cli_latex():
        out.extend(_cli_blocks(argv, text))
    out.extend(fuzz_latex()[0])
    out.extend(PROBES)
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def katex():
    reason = katex_runner.unavailable()
    if reason:
        if katex_runner.required():
            pytest.fail(reason + "; MATCALC_REQUIRE_KATEX is set")
        pytest.skip(reason)
    return katex_runner.Katex(all_latex())


def assert_renders(katex, texs, warnings=True):
    bad = katex.problems(list(texs), warnings=warnings)
    assert not bad, "KaTeX rejects:\n" + "\n".join(f"  {t}\n    -> {m}" for t, m in bad)


# ---------------------------------------------------------------------------- exact strings


@pytest.mark.parametrize("text,decls,want", EXACT, ids=[e[0] for e in EXACT])
def test_exact_latex(text, decls, want):
    assert matcalc.parse(text, decls).latex() == want


@pytest.mark.parametrize("text,wrt,decls,want", EXACT_DERIVATIVES, ids=[e[0] for e in EXACT_DERIVATIVES])
def test_exact_derivative_latex(text, wrt, decls, want):
    assert matcalc.diff(text, wrt, symbols=decls).latex() == want


@pytest.mark.parametrize("text,wrt,decls,want", EXACT_HESSIANS, ids=[e[0] for e in EXACT_HESSIANS])
def test_exact_hessian_latex(text, wrt, decls, want):
    assert matcalc.hessian(text, wrt, symbols=decls).latex() == want


def test_sized_identity_and_commutation_of_product_sizes():
    n2 = E.size_mul("n", "n")
    assert E.Identity(n2).latex() == "I_{n^{2}}"
    assert E.Identity(E.size_mul(2, "n")).latex() == "I_{2 n}"
    assert E.Commutation(E.size_mul("m", "p"), "n").latex() == "K_{m p,n}"
    assert E.Fill(E.Num(2), "n", 1).latex() == r"2 \mathbf{1}_{n}"
    assert E.Fill(E.Num(1), "m", "n").latex() == r"\mathbf{1}_{m\times n}"


def test_distinct_meanings_give_distinct_latex():
    for (a, b, _), (la, lb) in zip(DISTINCT, _distinct_pairs()):
        assert la != lb, f"{a!r} and {b!r} both print as {la!r}"


def test_text_printer_is_untouched_by_latex():
    # the text form is the input language: no LaTeX ever leaks into it
    for text, decls in EXPRESSIONS:
        s = str(matcalc.parse(text, decls))
        assert "\\" not in s and "{" not in s, (text, s)


def test_repr_latex_and_markdown():
    t = matcalc.parse("tr(X^T A X)")
    assert t._repr_latex_() == "$" + t.latex() + "$"
    d = matcalc.diff("tr(X^T A X)", "X")
    assert _strip_dollars(d._repr_latex_()) == d.latex()
    md = d.steps._repr_markdown_()
    blocks = _markdown_math(md)
    assert blocks[0].startswith("\\begin{aligned}") and blocks[0].endswith("\\end{aligned}")
    assert d.latex() in blocks[0]


# ---------------------------------------------------------------------------- KaTeX


def test_katex_rejects_bad_latex(katex):
    # the renderer is really judging: a broken string and a double superscript fail
    bad, double, good = PROBES
    assert not katex.result(bad)["ok"]
    assert "Double superscript" in katex.result(double)["error"]
    assert katex.result(good)["ok"] and not katex.result(good)["warnings"]


@needs_conformance
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_conformance_latex_renders(katex, case_id):
    assert_renders(katex, case_latex(case_id))


@needs_conformance
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_conformance_steps_render(katex, case_id):
    assert_renders(katex, [case_steps_latex(case_id)])


@pytest.mark.parametrize("text,decls", EXPRESSIONS, ids=[e[0] for e in EXPRESSIONS])
def test_expression_latex_renders(katex, text, decls):
    assert_renders(katex, expression_latex(text, _items(decls)))


def test_names_render(katex):
    texs = []
    for n in NAMES:
        texs.extend(name_latex(n))
    assert_renders(katex, texs)


def test_exact_strings_render(katex):
    assert_renders(katex, exact_strings())


def test_distinct_pairs_render(katex):
    texs = []
    for a, b in _distinct_pairs():
        texs += [a, b]
    assert_renders(katex, texs)


def test_notebook_forms_render(katex):
    assert_renders(katex, repr_strings())


def test_cli_latex_renders(katex):
    texs = []
    for argv, out in cli_latex():
        texs.extend(_cli_blocks(argv, out))
    assert_renders(katex, texs)


def test_random_expressions_render(katex):
    texs, origin = fuzz_latex()
    if not texs:
        pytest.skip("matcalc.fuzz has no generator")
    assert len(texs) > 400
    bad = dict(katex.problems(list(texs)))
    where = [f"{o}\n  {t}\n    -> {bad[t]}" for t, o in zip(texs, origin) if t in bad]
    assert not where, "KaTeX rejects:\n" + "\n".join(where[:20])
