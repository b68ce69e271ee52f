"""The package's architecture, checked: no import cycles, no module that changes
another's tables or the interpreter's state when imported.

The import graph is built from the AST of every file of the package, with every
import, counted as the project's before-stop hook counts them: at the top of a module
and inside functions (a function-level import is an edge as much as a top-level one: it
runs whenever the function does), and ``from X import y`` as an import of X as well as
of X.y (``from . import ir`` in a submodule reads its package, whose ``__init__`` may
import that submodule).  Only the package's root, ``matcalc``, is left out: Python
loads it before any of its modules.  Data flows one way (text → parse → expr →
differential → canon → simplify → derive → printing / numeric / codegen → api → cli /
web), and no cycle is allowed: where a lower layer needs what a higher one knows, it is
handed down (the printers given to the tree by ``matcalc/__init__``, an array function's
shape rule carried by its node).
"""
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "matcalc"


def _modules():
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _targets(module, path, node, modules):
    """The package modules an import statement names: ``import a.b`` names a.b; ``from a
    import b`` names a, and a.b where that is a module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in modules]
    if node.level:
        base = package
        for _ in range(node.level - 1):
            base = base.rpartition(".")[0]
        base = f"{base}.{node.module}" if node.module else base
    else:
        base = node.module or ""
    out = [base] if base in modules else []
    out += [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
    return out


def import_graph():
    """{module: {imported module: [(line, top-level?), ...]}} of the package."""
    modules = _modules()
    graph = {m: {} for m in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _targets(module, path, node, modules):
                if target not in (module, "matcalc"):
                    graph[module].setdefault(target, []).append((node.lineno, id(node) in top))
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(graph[w])))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def _explained(graph, comps):
    return "; ".join(" ".join(f"{a} -> {b} (line {graph[a][b][0][0]})" for a in c for b in graph[a]
                              if b in c) for c in comps)


def test_no_import_cycles():
    graph = import_graph()
    assert "matcalc.api" in graph and "matcalc.codegen.program" in graph
    comps = cycles(graph)
    assert not comps, "import cycles: " + _explained(graph, comps)


def test_the_graph_counts_imports_as_the_hook_does():
    """Function-level imports are edges, ``from . import x`` names the package too, and
    ``import a.b as c`` names a.b only (the graph the test and the hook read alike)."""
    graph = import_graph()
    # a function-level import (check imports the evaluation inside a function)
    assert any(not top for _, top in graph["matcalc.check"]["matcalc.evaluation"])
    modules = _modules()
    path = PACKAGE / "codegen" / "program.py"

    def names(src):
        node = ast.parse(src).body[0]
        return sorted(_targets("matcalc.codegen.program", path, node, modules))
    assert names("from . import ir") == ["matcalc.codegen", "matcalc.codegen.ir"]
    assert names("from .ir import Name") == ["matcalc.codegen.ir"]
    assert names("import matcalc.codegen.ir as ir") == ["matcalc.codegen.ir"]
    assert names("from .. import expr as E") == ["matcalc", "matcalc.expr"]
    assert names("from ..operators import kernels") == ["matcalc.operators",
                                                         "matcalc.operators.kernels"]


def test_the_checker_finds_a_cycle():
    """The cycle finder itself (a test that cannot fail is a defect)."""
    assert cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b": 1}, "b": {}}) == []
    graph = import_graph()
    graph["matcalc.expr"]["matcalc.api"] = [(0, False)]        # a node that would call the API
    assert cycles(graph)
    graph = import_graph()                                     # a pass reading its package
    graph["matcalc.codegen.passes.cse"]["matcalc.codegen"] = [(0, True)]
    assert cycles(graph)


_ENTERED_BY_EXPR = r"""
import sys
import matcalc.expr as E
x = E.Sym("x", "vector", "n", 1)
A = E.Sym("A", "matrix", "n", "n")
e = E.Add((E.Mul((E.Transpose(x), A, x)), E.Func("exp", E.Trace(A))))
class P:
    def text(self, s):
        self.out = s
p = P()
e._repr_pretty_(p, False)
print(str(e)); print(e.latex()); print(e._repr_latex_()); print(p.out)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("numpy", "scipy", "sympy")))
"""


def test_a_tree_prints_itself_when_only_matcalc_expr_is_imported():
    """The printers sit above the tree and are handed down to it by the package's
    __init__: str(e), e.latex() and the notebook's displays work however the package is
    entered, and printing imports no NumPy."""
    p = subprocess.run([sys.executable, "-c", _ENTERED_BY_EXPR], cwd=ROOT, capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert p.returncode == 0, p.stderr
    text, latex, shown, pretty, loaded = p.stdout.strip().splitlines()
    assert text == pretty == "x^T A x + exp(tr(A))"
    assert latex == "x^{\\top} A x + \\exp\\left(\\operatorname{tr}\\left(A\\right)\\right)"
    assert shown == "$" + latex + "$"
    assert loaded == "[]"


def test_diff_works_when_only_matcalc_is_imported():
    script = ("import matcalc, sys\n"
              "d = matcalc.diff('softmax(x)^T a + logsumexp(A x)', wrt='x')\n"
              "print(d); print(d.latex()); print(d.expr._repr_latex_() == '$' + d.latex() + '$')\n")
    p = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert p.returncode == 0, p.stderr
    text, latex, same = p.stdout.strip().splitlines()
    assert text == "(diag(softmax(x)) - softmax(x) softmax(x)^T) a + A^T softmax(A x)"
    assert "\\operatorname{softmax}" in latex and same == "True"
    cli = subprocess.run([sys.executable, "-m", "matcalc", "diff", "logsumexp(A x) + tr(X^T B X)",
                          "--wrt", "x"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip().splitlines()[0] == "A^T softmax(A x)"


_IMPORT_ALL = r"""
import importlib, json, pkgutil, sys
sys.setrecursionlimit(1234)
import matcalc

def snapshot():
    out = {}
    for name, mod in list(sys.modules.items()):
        if not (name == "matcalc" or name.startswith("matcalc.")):
            continue
        for attr, v in vars(mod).items():
            if isinstance(v, (dict, list, set)):
                out[f"{name}.{attr}"] = (id(v), repr(sorted(map(repr, v)) if type(v) is not list
                                                     else list(map(repr, v))))
    return out

before = snapshot()
names = sorted(m.name for m in pkgutil.walk_packages(matcalc.__path__, "matcalc."))
for name in names:
    if name != "matcalc.__main__":
        importlib.import_module(name)
after = snapshot()
changed = sorted(k for k in before if after.get(k) != before[k])

# derivations of every kind, their steps, values, checks and code
import numpy as np
d = matcalc.diff("tr(A X B) + tr(B A X) + logsumexp(X c) + sum(exp(X)) + log(det(X))", wrt="X")
h = matcalc.hessian("x^T A x + softmax(x)^T a + sum(tanh(x))", wrt="x")
j = matcalc.diff("sigmoid(W x) + D x", wrt="x", layout="numerator", symbols={"D": "diagonal"})
for x in (d, h, j):
    str(x), x.latex(), str(x.steps), x.to_code(), x.check(trials=1, seed=0)
rng = np.random.default_rng(0)
d.evaluate({"A": rng.normal(size=(3, 3)), "B": rng.normal(size=(3, 3)), "c": rng.normal(size=3),
            "X": np.eye(3) + 0.1 * rng.normal(size=(3, 3))})
worked = snapshot()
written = sorted(k for k in after if worked.get(k) != after[k])
print(json.dumps({"modules": names, "changed": changed, "limit": sys.getrecursionlimit(),
                  "written": written,
                  "loaded": sorted(n for n in sys.modules if n.startswith("matcalc"))}))
"""


@pytest.fixture(scope="module")
def imported_all():
    p = subprocess.run([sys.executable, "-c", _IMPORT_ALL], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_every_module_imports_in_a_fresh_interpreter(imported_all):
    graph = import_graph()
    missing = set(graph) - {"matcalc.__main__"} - set(imported_all["loaded"])
    assert not missing, f"modules that did not import: {sorted(missing)}"


def test_importing_a_module_changes_no_other_modules_tables(imported_all):
    """Importing steps, check, codegen, the fuzzer, the playground, ... after the
    engine leaves every module-level dict, list and set of the engine as it was
    (importing steps once added an entry to simplify.BUILDERS)."""
    assert imported_all["changed"] == []


def test_deriving_writes_no_module_level_table(imported_all):
    """No module-level dict, list or set (caches included) is written while deriving,
    simplifying, printing, evaluating, checking or generating code: what a derivation
    remembers is kept on the (immutable) nodes or in the call's own memo (a global cache
    of the simplifier's trace rotations was one)."""
    assert imported_all["written"] == []


def test_importing_every_module_leaves_the_recursion_limit_alone(imported_all):
    assert imported_all["limit"] == 1234


# ---------------------------------------------------------------------------- frozen nodes


def test_expression_nodes_are_frozen():
    """Every field of every node of a typed tree (and of the derivative's) is set once:
    assigning or deleting it raises, and the tree is unchanged."""
    import matcalc
    from matcalc import expr as E
    d = matcalc.diff("tr(X^T A X) + log(det(X^T X)) + sum(exp(X b)) + sum(kron(A, X)) "
                     "+ x^T inv(A) x", wrt="X")
    seen = 0
    for tree in (d.f, d.expr):
        before = str(tree)
        stack = [tree]
        while stack:
            n = stack.pop()
            stack.extend(n.args)
            for name in n.fields:
                with pytest.raises(AttributeError, match="immutable"):
                    setattr(n, name, getattr(n, name))
                with pytest.raises(AttributeError, match="immutable"):
                    delattr(n, name)
                seen += 1
        assert str(tree) == before
    assert seen > 30
    assert isinstance(d.f, E.Expr)


def test_a_derivative_is_read_only():
    import matcalc
    d = matcalc.hessian("x^T A x", wrt="x")
    for name in ("expr", "gradient", "var", "notes", "typed_symbols", "symmetric"):
        with pytest.raises(AttributeError):
            setattr(d, name, None)
    with pytest.raises(TypeError):
        d.typed_symbols["x"] = None                  # a read-only view
    w = d.replace(expr=d.gradient)
    assert w.expr is d.gradient and d.expr is not d.gradient and w.var is d.var


# ---------------------------------------------------------------------------- the one fold


def test_the_fold_visits_each_distinct_node_once_one_frame_per_level():
    """expr.fold is the bottom-up traversal that rewrite, simplify, the shape checker's
    size substitution and tidy's orderings share: each distinct node once (a DAG with 2^40
    paths is 41 visits), children before parents, one Python frame per level (an 800-deep
    tree within a recursion limit of 1000 frames; a generator per level would need 1600)."""
    from matcalc import expr as E
    x = E.Sym("x", "matrix", "n", "n")
    e = x
    for _ in range(40):
        e = E.Add((e, e))                      # shared: 2^40 paths to x
    seen = []
    total = E.fold(e, lambda n, rs: seen.append(n) or (1 if not rs else sum(rs)))
    assert total == 2 ** 40 and len(seen) == 41 and seen[0] is x and seen[-1] is e
    deep = x
    for _ in range(800):
        deep = E.Transpose(deep)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        assert E.fold(deep, lambda n, rs: 1 + sum(rs)) == 801
        y = E.Sym("y", "matrix", "n", "n")
        swapped = E.rewrite(deep, after=lambda n: y if n is x else None)
    finally:
        sys.setrecursionlimit(old)
    n = swapped
    for _ in range(800):
        n = n.arg
    assert n is y
    assert E.rewrite(deep, replace=lambda n: x if n is deep.arg else None) == E.Transpose(x)


def test_a_derived_table_entry_is_not_stored():
    """An operator table derives an entry from its record at each lookup and never writes
    it: no table is written after import (a stored entry of a test's stand-in record
    outlived the test)."""
    from matcalc.errors import UnsupportedError
    from matcalc.operators import OperatorTable
    t = OperatorTable("piece", {"a": 1}, derive=lambda k: 2 if k == "b" else None)
    assert t["a"] == 1 and t["b"] == 2 and t.has("b")
    assert "b" not in t and dict(t) == {"a": 1}
    with pytest.raises(UnsupportedError, match="the operator c has no piece"):
        t["c"]


def test_a_tree_with_an_array_function_pickles():
    """An array function's node carries its record's shape rule (handed down, so that expr
    imports no records): the rule is a module-level function, so trees and derivatives
    still pickle (for a process pool), and the copy has the shape and value of the
    original (checked against finite differences)."""
    import pickle
    import numpy as np
    import matcalc
    from helpers import check_derivative
    text = "softmax(x)^T a + logsumexp(A x)"
    e = matcalc.parse(text)
    back = pickle.loads(pickle.dumps(e))
    assert back == e and back.shape == e.shape and str(back) == str(e)
    d = check_derivative(text, "x")
    d2 = pickle.loads(pickle.dumps(d))
    assert str(d2) == str(d) and d2.expr.shape == d.expr.shape
    rng = np.random.default_rng(1)
    vals = {"x": rng.normal(size=4), "a": rng.normal(size=4), "A": rng.normal(size=(3, 4))}
    assert np.allclose(d2.evaluate(vals), d.evaluate(vals))
