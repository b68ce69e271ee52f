"""Issue 10, the robustness part: no crash (exit 3), no code of someone else's run, no
global state, bounded time, one JSON document, and what the engine prints it reads.

Every derivative here is checked against finite differences (helpers.check_derivative /
check_hessian); the command line runs in subprocesses, as a user runs it.
"""
import json
import os
import pickle
import subprocess
import sys
import threading

import pytest

import matcalc
from helpers import check_derivative, check_hessian

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args, env=None, stdout=subprocess.PIPE, timeout=60):
    """Run `python -m matcalc args` from the checkout; (exit status, stdout, stderr)."""
    e = dict(os.environ)
    e.update(env or {})
    e["PYTHONPATH"] = ROOT
    p = subprocess.run([sys.executable, "-m", "matcalc", *args], cwd=ROOT, env=e, stdout=stdout,
                       stderr=subprocess.PIPE, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace") if p.stdout is not None else ""
    return p.returncode, out, p.stderr.decode("utf-8", "replace")


# ---------------------------------------------------------------------------- the parser cache

class _Plant:
    """A pickle that, when loaded, creates the file at path (the proof that it ran)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _cache_name_and_key():
    parse = sys.modules["matcalc.parse"]
    with open(parse.grammar_path(), encoding="utf-8") as fh:
        return parse._cache_file(fh.read())


def _plant(path, marker, header=True):
    name, key = _cache_name_and_key()
    from matcalc import parsercache
    with open(path, "wb") as fh:
        if header:
            fh.write(parsercache._MAGIC + key.encode() + b"\n")
        pickle.dump(_Plant(str(marker)), fh)


def _env(tmp_path, **extra):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"HOME": str(home), "TMPDIR": str(tmp_path), "XDG_CACHE_HOME": "", "MATCALC_CACHE": ""}
    env.update(extra)
    return env


def test_a_cache_planted_in_the_shared_temporary_folder_is_never_loaded(tmp_path):
    name, _ = _cache_name_and_key()
    marker = tmp_path / "ran"
    shared = tmp_path / "matcalc-cache"          # where every earlier version looked
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    for header in (False, True):
        _plant(shared / name, marker, header=header)
        rc, out, err = cli("diff", "tr(X^T A X)", "--wrt", "X", env=_env(tmp_path))
        assert (rc, out.strip()) == (0, "(A + A^T) X"), err
        assert not marker.exists(), "a planted cache ran code"


@pytest.mark.parametrize("how", ["file writable by others", "folder writable by others",
                                 "file is a symbolic link", "folder is a symbolic link",
                                 "file owned by someone else"])
def test_a_cache_with_wrong_owner_or_permissions_is_ignored(tmp_path, how):
    name, _ = _cache_name_and_key()
    marker = tmp_path / "ran"
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    os.chmod(cache, 0o700)
    env = _env(tmp_path, MATCALC_CACHE=str(cache))
    target = cache / name
    if how == "file writable by others":
        _plant(target, marker)
        os.chmod(target, 0o666)
    elif how == "folder writable by others":
        _plant(target, marker)
        os.chmod(target, 0o600)
        os.chmod(cache, 0o777)
    elif how == "file is a symbolic link":
        elsewhere = tmp_path / "elsewhere"
        _plant(elsewhere, marker)
        os.chmod(elsewhere, 0o600)
        os.symlink(elsewhere, target)
    elif how == "folder is a symbolic link":
        _plant(target, marker)
        os.chmod(target, 0o600)
        link = tmp_path / "link"
        os.symlink(cache, link)
        env["MATCALC_CACHE"] = str(link)
    else:
        if os.getuid() != 0:
            pytest.skip("changing a file's owner needs root")
        _plant(target, marker)
        os.chmod(target, 0o600)
        os.chown(target, 54321, 54321)
    rc, out, err = cli("diff", "tr(X^T A X)", "--wrt", "X", env=env)
    assert (rc, out.strip()) == (0, "(A + A^T) X"), err
    assert not marker.exists(), f"a cache whose {how} ran code"


def test_the_cache_is_private_and_used(tmp_path):
    """Without a cache folder named, the cache goes to ~/.cache/matcalc, mode 0700, the
    file 0600; the next run loads it (its parse is the same)."""
    env = _env(tmp_path)
    rc, out, err = cli("diff", "x^T A x", "--wrt", "x", env=env)
    assert rc == 0, err
    folder = tmp_path / "home" / ".cache" / "matcalc"
    files = [f for f in os.listdir(folder) if f.endswith(".lark.cache")]
    assert len(files) == 1
    assert os.stat(folder).st_mode & 0o777 == 0o700
    assert os.stat(folder / files[0]).st_mode & 0o077 == 0
    from matcalc import parsercache
    name, key = _cache_name_and_key()
    old = os.environ.get("MATCALC_CACHE")
    os.environ["MATCALC_CACHE"] = str(folder)
    try:
        parse = sys.modules["matcalc.parse"]
        loaded = parsercache.load(name, key, postlex=parse.BarPostLex(), transformer=parse.Build())
    finally:
        if old is None:
            del os.environ["MATCALC_CACHE"]
        else:
            os.environ["MATCALC_CACHE"] = old
    assert loaded is not None
    assert loaded.parse("tr(X^T A X)") == parse.parse_raw("tr(X^T A X)")
    rc2, out2, _ = cli("diff", "x^T A x", "--wrt", "x", env=env)
    assert (rc2, out2) == (rc, out)


# ---------------------------------------------------------------------------- global state

def test_import_leaves_the_recursion_limit_alone():
    code = ("import sys; sys.setrecursionlimit(1234); import matcalc; "
            "matcalc.diff('tr(X^T A X)', wrt='X'); print(sys.getrecursionlimit())")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert p.stdout.strip() == "1234", p.stderr


def _nested(d):
    s = "x"
    for _ in range(d):
        s = f"({s} + a)"
    return "sum(" + s + ")"


def test_depth_200_inputs_work_under_the_default_recursion_limit():
    """The deepest input the parser accepts goes through every pass at Python's default
    limit of 1000 frames (the test runs in a fresh interpreter to be sure of the limit)."""
    code = r"""
import sys, numpy as np, matcalc
assert sys.getrecursionlimit() == 1000
def nest(fmt, inner, d):
    s = inner
    for _ in range(d):
        s = fmt.format(s)
    return s
cases = [(nest("({} + a)", "x", 197).join(["sum(", ")"]), "x"),
         ("tr(" + nest("({})^-1", "X", 197) + ")", "X"),
         ("tr(" + nest("(A ({})^T)", "X", 98) + ")", "X"),
         ("sum(" + nest("sin({})", "x", 10) + ")", "x")]
v = {"x": np.full(3, 0.1), "a": np.full(3, 0.01), "X": np.eye(3) * 1.01, "A": np.eye(3)}
for e, w in cases:
    d = matcalc.diff(e, wrt=w)
    str(d); d.latex(); d.steps.text(); d.evaluate(v)
    matcalc.compile(e, wrt=w)
    if w == "x":
        str(matcalc.hessian(e, wrt=w))
print("ok")
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=ROOT), timeout=300)
    assert p.stdout.strip() == "ok", p.stderr[-2000:]


def test_the_nesting_limit_holds_under_threads():
    from matcalc.errors import ParseError
    deep = _nested(400)
    ok = _nested(150)
    passed, refused, wrong = [], [], []

    def work():
        for _ in range(25):
            try:
                matcalc.parse(deep)
                passed.append(1)
            except ParseError:
                refused.append(1)
            try:
                matcalc.parse(ok)
            except ParseError:
                wrong.append(1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(passed), len(refused), len(wrong)) == (0, 200, 0)
    check_derivative(ok, "x")


# ---------------------------------------------------------------------------- API errors

def _without(module, code):
    """Run code in a fresh interpreter where importing module fails."""
    pre = f"import sys; sys.modules[{module!r}] = None\n"
    p = subprocess.run([sys.executable, "-c", pre + code], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    return p.stdout.strip(), p.stderr


@pytest.mark.parametrize("module, call, install", [
    ("sympy", "matcalc.diff('x^T A x', wrt='x').to_sympy()", 'pip install "matcalc-symbolic[sympy]"'),
    ("sympy", "matcalc.from_sympy(1)", 'pip install "matcalc-symbolic[sympy]"'),
    ("jax", "matcalc.compile('x^T x', wrt='x', target='jax')", "pip install jax"),
    ("torch", "matcalc.compile('x^T x', wrt='x', target='torch')", "pip install torch"),
])
def test_a_missing_optional_library_says_what_to_install(module, call, install):
    code = ("import matcalc\n"
            f"try:\n    {call}\n"
            "except matcalc.MatcalcError as e:\n"
            "    print(isinstance(e, ImportError), e)\n")
    out, err = _without(module, code)
    assert out.startswith("True ") and install in out, err


@pytest.mark.parametrize("name", ["self", "lambda", "None", "True", "print", "np", "f_and_grad",
                                  "fn", "args", "values", "sizes", "jnp"])
def test_compile_renames_symbols_that_are_python_names(name):
    import numpy as np
    kind = "matrix" if name[0].isupper() else "vector"
    expr = f"tr({name}^T {name} A)" if kind == "matrix" else f"{name}^T A {name}"
    fn = matcalc.compile(expr, wrt=name)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 3)) if kind == "matrix" else rng.standard_normal(3)
    A = rng.standard_normal((3, 3))
    value, grad = fn(x, A)
    value2, grad2 = fn(**{name: x, "A": A})
    d = check_derivative(expr, name)
    want = d.evaluate({name: x, "A": A})
    assert np.allclose(grad, want) and np.allclose(grad2, want)
    assert np.isclose(value, matcalc.evaluate(expr, {name: x, "A": A}))


def test_from_sympy_refuses_a_string_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    attack = f"__import__('builtins').open({str(marker)!r}, 'w') or X"
    with pytest.raises(matcalc.MatcalcError, match="not a string"):
        matcalc.from_sympy(attack)
    with pytest.raises(matcalc.MatcalcError):
        matcalc.from_sympy(attack.encode())
    with pytest.raises(matcalc.MatcalcError, match="SymPy expression"):
        matcalc.from_sympy(object())
    assert not marker.exists()
    sp = pytest.importorskip("sympy")
    X = sp.MatrixSymbol("X", 3, 3)
    from matcalc.interop import sympy_classes
    Vec, K = sympy_classes()
    for bad in (lambda: Vec(attack), lambda: K(attack, 2)):
        with pytest.raises(Exception):
            bad()
    assert not marker.exists()
    e = matcalc.from_sympy(sp.Trace(X.T * X))
    check_derivative(str(e), "X")


# ---------------------------------------------------------------------------- the command line

def test_huge_constants_stay_exact_and_never_crash():
    """1e309 is inf as a float: the engine keeps numbers exact (fractions), so it
    differentiates, and the check says plainly that f is not finite."""
    rc, out, err = cli("diff", "exp(1e309 x^T x)", "--wrt", "x")
    assert (rc, out.strip()) == (0, "2e309 exp(1e309 x^T x) x"), err
    rc, out, err = cli("hessian", "exp(1e309 x^T x)", "--wrt", "x")
    assert rc == 0 and "Traceback" not in err
    rc, out, err = cli("diff", "exp(1e309 x^T x)", "--wrt", "x", "--check")
    assert rc == 1 and "not finite" in out and "Traceback" not in err
    check_derivative("exp(1e-300 x^T x) + 1e200 x^T x", "x")
    check_hessian("1e-200 x^T A x", "x")
    check_hessian("1e200 x^T A x", "x")


@pytest.mark.parametrize("args", [
    ("diff", "A X B", "--wrt", "X"),
    ("diff", "X^-1", "--wrt", "X"),
    ("hessian", "tr(X^T A X)", "--wrt", "X"),
    ("diff", "vec(kron(X, kron(A, B)))", "--wrt", "X"),
    ("diff", "A X B", "--wrt", "X", "--steps"),
    ("diff", "A X B", "--wrt", "X", "--json"),
    ("diff", "tr(X ⊗ A", "--wrt", "X"),
])
def test_an_ascii_terminal_gets_ascii_spellings_that_read_back(args):
    rc, out, err = cli(*args, env={"PYTHONIOENCODING": "ascii"})
    assert rc in (0, 2) and "Traceback" not in err and "internal error" not in err, err
    if rc == 2:
        assert "ParseError" in err
        return
    assert out.isascii()
    if "--json" in args:
        doc = json.loads(out)
        assert doc["derivative"] == str(matcalc.diff(args[1], wrt="X"))
        return
    first = out.splitlines()[0]
    fn = matcalc.hessian if args[0] == "hessian" else matcalc.diff
    d = fn(args[1], wrt="X")
    assert matcalc.parse(first, symbols=d.symbols) == matcalc.parse(str(d), symbols=d.symbols)
    import numpy as np
    from helpers import bind_sizes, draw
    vals = draw(d.symbols, np.random.default_rng(3), sizes=bind_sizes(d.symbols))
    assert np.allclose(matcalc.evaluate(first, vals, symbols=d.symbols), d.evaluate(vals))
    if args[0] == "hessian":
        check_hessian(args[1], "X")
    else:
        check_derivative(args[1], "X")


@pytest.mark.parametrize("text,wrt,symbols", [
    ("tr(X^T A X) + log(det(X)) + ||X - B||_F^2 + ||X^T||", "X", None),
    ("sum(exp(X) .* A ./ (B + 1)) + sum(X .^ 3) + tr(inv(X) A)", "X", None),
    ("vec(X)^T kron(A, B) vec(X) + vec(X)^T K(m, n) vec(X^T)", "X", {"X": "matrix(m,n)"}),
    ("softmax(x)^T a + logsumexp(A x) + sum(sigmoid(x)) + x^T diag(a) x", "x", None),
    ("tr(unvec(x, m)^T A unvec(x, m))", "x", None),
    ("α x^T Σ x + sum(x .^ 2) / 2", "x", None),
])
def test_an_ascii_answer_is_its_own_ascii_spelling(text, wrt, symbols):
    """check_answer prints the ASCII spelling only when the text has a character past
    ASCII: the two printers differ nowhere else (the answer, the input, and each of their
    subexpressions)."""
    from matcalc import expr as E
    from matcalc.printing import to_text
    d = matcalc.diff(text, wrt=wrt, symbols=symbols)
    seen = 0
    for node in E.walk([d.expr, d.f]):
        s = to_text(node)
        if s.isascii():
            assert to_text(node, ascii=True) == s
            seen += 1
    assert seen > 5
    assert not str(d.f).isascii() or to_text(d.f, ascii=True) == str(d.f)
    check_derivative(text, wrt, symbols)     # the answers printed are right


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args", [("diff", "A X B", "--wrt", "X"), ("diff", "A X B", "--wrt", "X", "--json"),
                                  ("rules",), ("codegen", "x^T x", "--wrt", "x"), ("--version",)])
def test_an_output_that_cannot_be_written_is_a_message_and_exit_1(args):
    with open("/dev/full", "w") as full:
        rc, _, err = cli(*args, stdout=full)
    assert rc == 1, err
    assert "cannot write the output" in err and "Traceback" not in err and "Exception" not in err


def test_a_closed_pipe_is_not_an_error():
    p = subprocess.Popen([sys.executable, "-m", "matcalc", "rules"], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=ROOT))
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(60) == 0 and "Traceback" not in err


def test_no_error_exits_3():
    """Whatever goes wrong inside, the command line says so in one message and exits 2."""
    from matcalc import cli as C
    import io
    import contextlib

    class Args:
        json = False
        expr = "x"

    for exc in (ValueError("boom"), IndexError(), RecursionError(), MemoryError(), ZeroDivisionError()):
        def boom(out, exc=exc):
            raise exc
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert C._guarded(Args, boom) == 2
        assert err.getvalue().startswith("matcalc: ") and "Traceback" not in err.getvalue()
        Args.json = True
        outbuf = io.StringIO()
        with contextlib.redirect_stdout(outbuf):
            assert C._guarded(Args, boom) == 2
        doc = json.loads(outbuf.getvalue())
        assert doc["error"]["kind"] in ("InternalError", "UnsupportedError")
        Args.json = False


def test_json_is_one_document():
    rc, out, err = cli("diff", "||X - U V^T||_F^2", "--wrt", "U,V", "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["wrt"] == ["U", "V"] and [x["wrt"] for x in doc["derivatives"]] == ["U", "V"]
    for x in doc["derivatives"]:
        check_derivative("||X - U V^T||_F^2", x["wrt"])
        assert x["derivative"] == str(matcalc.diff("||X - U V^T||_F^2", wrt=x["wrt"]))
    rc, out, err = cli("diff", "x^T A x", "--wrt", "x", "--json", "--check")
    doc = json.loads(out)
    assert rc == 0 and doc["derivative"] == "(A + A^T) x" and doc["check"]["ok"] is True
    check_derivative("x^T A x", "x")


@pytest.mark.parametrize("args, kind, position", [
    (("diff", "tr(X +", "--wrt", "X"), "ParseError", 5),
    (("diff", "tr(x)", "--wrt", "x"), "ShapeError", None),
    (("diff", "x^T x", "--wrt", "x,", "--let", "x=nonsense"), None, None),
    (("hessian", "A x", "--wrt", "x"), None, None),
])
def test_errors_under_json_are_json(args, kind, position):
    rc, out, err = cli(*args, "--json")
    assert rc == 2 and not err.strip(), err
    doc = json.loads(out)
    assert set(doc) == {"error"} and doc["error"]["message"]
    if kind:
        assert doc["error"]["kind"] == kind
    if position is not None:
        assert doc["error"]["position"] == position and "^" in doc["error"]["caret"]


# ---------------------------------------------------------------------------- time and size

def _chain(k):
    return "tr(" + " ".join(f"A{i} X" for i in range(1, k + 1)) + ")"


def _nest(d, inner="x^T x"):
    s = inner
    for _ in range(d):
        s = f"exp({s})"
    return s


@pytest.mark.parametrize("fn, expr, wrt", [
    ("hessian", _chain(100), "X"), ("hessian", _chain(40), "X"), ("hessian", _nest(50), "x"),
    ("hessian", _nest(40), "x"), ("diff", _nest(190), "x"), ("diff", _chain(100), "X"),
])
def test_enormous_answers_are_refused_before_the_time_is_spent(monkeypatch, fn, expr, wrt):
    """The refusal says why, and nothing larger than the budget is ever simplified."""
    from matcalc import budget, conventions, derive
    seen = []
    real = derive.simplify

    def watched(e):
        seen.append(budget.dag_size(e, {}))
        return real(e)
    monkeypatch.setattr(derive, "simplify", watched)         # the pipeline's simplify calls
    monkeypatch.setattr(conventions, "simplify", watched)    # and the projections'
    with pytest.raises(matcalc.UnsupportedError, match="too large|characters long") as info:
        getattr(matcalc, fn)(expr, wrt=wrt)
    assert "matcalc.compile" in str(info.value)
    assert max(seen, default=0) <= budget.MAX_RAW_EDGES


@pytest.mark.parametrize("fn, expr, wrt", [
    ("hessian", _chain(10), "X"), ("diff", _chain(64), "X"), ("hessian", _nest(20), "x"),
    ("hessian", _nest(25), "x"), ("diff", _nest(100), "x"),
    ("diff", " + ".join(f"x^T A{i} x" for i in range(300)), "x"),
    # small answers of large differentials are not refused by the budget
    ("diff", "tr(" + "(" * 190 + "X" + ")^-1" * 190 + ")", "X"),
    ("hessian", "sum(" + "(" * 190 + "x" + " .* x)" * 190 + ")", "x"),
    ("diff", "tr(" + " + ".join(["X^T A X"] * 1800) + ")", "X"),
])
def test_what_the_engine_prints_it_reads(fn, expr, wrt):
    import numpy as np
    from helpers import bind_sizes, draw
    from matcalc.printing import to_text
    d = getattr(matcalc, fn)(expr, wrt=wrt)
    parse = sys.modules["matcalc.parse"]
    vals = draw(d.symbols, np.random.default_rng(5), sizes=bind_sizes(d.symbols))
    tower = "exp(exp(exp(exp(" in str(d)     # a tower of four exp overflows at any value
    if tower:
        with pytest.raises(matcalc.EvaluationError, match="overflows float64"):
            d.evaluate(vals)
    else:
        want = d.evaluate(vals)
    first = None
    for text in (str(d), to_text(d.expr, ascii=True)):
        assert len(text) <= parse.MAX_LENGTH
        tree = matcalc.parse(text, symbols=d.symbols)
        first = first or tree
        assert tree == first
        if not tower:
            back = matcalc.evaluate(text, vals, symbols=d.symbols)
            assert np.all(np.isfinite(want)) and np.allclose(back, want, rtol=1e-9, atol=0)


def test_the_families_are_right_where_they_are_small():
    check_hessian(_chain(4), "X")
    check_derivative(_chain(6), "X")
    check_hessian("exp(exp(exp(0.05 x^T x)))", "x")
    check_derivative(_nest(4, "0.05 x^T x"), "x")
    check_derivative("tr(" + "(" * 21 + "X" + ")^-1" * 21 + ")", "X")
    check_hessian("sum(" + "(" * 10 + "x" + " .* x)" * 10 + ")", "x")
    check_derivative("tr(" + " + ".join(["X^T A X"] * 50) + ")", "X")


def test_the_memoised_comparison_orders_as_the_keys_do():
    import functools
    import random
    simplify = sys.modules["matcalc.simplify"]
    nodes = []

    def walk(e):
        nodes.append(e)
        for a in e.args:
            walk(a)
    for text, wrt in [(_chain(5), "X"), (_nest(6), "x"), ("sum(log(1 + exp(-y .* (A w))))", "w"),
                      ("logdet(S) + (x - mu)^T S^-1 (x - mu)", "S"), ("tr(X ⊗ A) + 1e309 sum(X .^ 3)", "X")]:
        walk(matcalc.parse(text))
        walk(matcalc.hessian(text, wrt=wrt).expr if "⊗" not in text and "mu" not in text
             else matcalc.diff(text, wrt=wrt).expr)
    rng = random.Random(7)
    memo = {}                       # one memo across all the comparisons, as in one sort
    for _ in range(3000):
        a, b = rng.choice(nodes), rng.choice(nodes)
        ka, kb = simplify.order_key(a), simplify.order_key(b)
        assert simplify._compare(a, b, memo) == (ka > kb) - (ka < kb)
    sample = rng.sample(nodes, min(300, len(nodes)))
    by_cmp = functools.cmp_to_key(lambda a, b: simplify._compare(a, b, {}))
    assert sorted(sample, key=simplify.order_key) == sorted(sample, key=by_cmp)
    items = list(sample)
    simplify.sort_canonical(items)                  # the sort with its own memo
    assert items == sorted(sample, key=simplify.order_key)


# ---------------------------------------------------------------------------- the vec pairing of the exit-3 example

def test_the_commutation_pairing_of_another_shape_is_refused_not_misshapen():
    """(K(n,m) vec(G))ᵀ kron(u, w) pairs vec(Gᵀ) (m×n) with vec(w uᵀ) (n×m): the engine
    gave Gᵀ u, an answer of no valid shape, and --check crashed (exit 3) evaluating it.
    Now the rebuilt matrix has the shape of the vec'd one: where the identities give
    another shape, the answer is the inverse of vec, unvec(…, m), checked numerically."""
    rc, out, err = cli("diff", "(K(n,m) vec(G))^T kron(u, w)", "--wrt", "w", "--let", "G=matrix(n,m)",
                       "--let", "u=vector(m)", "--let", "w=vector(n)", "--check")
    assert rc == 0 and "ok" in out, (out, err)
    check_derivative("(K(n,m) vec(G))^T kron(u, w)", "w",
                     symbols={"G": "matrix(n,m)", "u": "vector(m)", "w": "vector(n)"})
    check_derivative("vec(X)^T (K(m,n) vec(G))", "X", symbols={"X": "matrix(m,n)"}, sizes={"m": 2, "n": 3})
    # where the shapes agree the answer stands, checked numerically
    check_derivative("(K(n,n) vec(G))^T kron(u, w)", "w",
                     symbols={"G": "matrix(n,n)", "u": "vector(n)", "w": "vector(n)"})
    check_derivative("vec(X)^T (K(n,n) vec(G))", "X", symbols={"X": "matrix(n,n)", "G": "matrix(n,n)"})
    check_derivative("vec(X)^T kron(A, B) vec(H)", "X",
                     symbols={"A": "matrix(m,p)", "B": "matrix(q,r)", "H": "matrix(r,p)", "X": "matrix(q,m)"})
    d = check_derivative("vec(X)^T kron(A, B) vec(H)", "X",
                         symbols={"A": "matrix(m,p)", "B": "matrix(q,r)", "H": "matrix(r,p)", "X": "matrix(m,q)"},
                         sizes={"m": 2, "q": 3, "p": 4, "r": 5})
    assert "unvec" in str(d)


def test_derivations_in_threads_agree_with_sequential_ones():
    """No mutable module state on the derivation path: the caches that remain (order_key,
    transpose, comparisons in simplify) are keyed by node identity and hold the node."""
    cases = [("tr(X^T A X)", "X", matcalc.hessian), ("||A x - b||^2", "x", matcalc.diff),
             ("logdet(S) + (x - mu)^T S^-1 (x - mu)", "S", matcalc.diff),
             ("sum(log(1 + exp(-y .* (A w))))", "w", matcalc.hessian),
             (_nest(8), "x", matcalc.hessian), (_chain(6), "X", matcalc.diff)]
    want = [str(fn(e, wrt=w)) for e, w, fn in cases]
    got, errors = [], []

    def work(seed):
        try:
            order = list(range(len(cases)))
            import random
            random.Random(seed).shuffle(order)
            for i in order * 3:
                e, w, fn = cases[i]
                got.append((i, str(fn(e, wrt=w))))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(text == want[i] for i, text in got) and len(got) == 8 * 3 * len(cases)
    check_derivative("||A x - b||^2", "x")
