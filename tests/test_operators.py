"""The operator records (matcalc/operators): every operator has every piece in every
table, or declares it absent; a missing piece is an UnsupportedError naming the operator
and the piece, never a KeyError; and every elementwise function has one row here that
checks it end to end (value against an independent reference, parse, text and LaTeX that
read back, gradient and Hessian against finite differences, generated code)."""
import math
import re

import numpy as np
import pytest

import matcalc
from matcalc import expr as E
from matcalc.operators import ELEMENTWISE, ELEMENTWISE_NAMES, ELEMENTWISE_RECORDS, TARGETS

from helpers import check_derivative, check_hessian, katex_or_skip

# ---------------------------------------------------------------------------- the rows
# One row per elementwise function: an independent reference for its value (Python's
# math module) and the points where it is checked.  A record without a row fails
# test_every_record_has_a_row.

ROWS = {
    "exp": (math.exp, (-1.3, 0.0, 0.7, 2.0)),
    "log": (math.log, (0.3, 1.0, 2.5)),
    "sin": (math.sin, (-1.3, 0.0, 0.7, 2.0)),
    "cos": (math.cos, (-1.3, 0.0, 0.7, 2.0)),
    "tanh": (math.tanh, (-1.3, 0.0, 0.7, 2.0)),
    "sqrt": (math.sqrt, (0.0, 0.3, 1.0, 2.5)),
    "sigmoid": (lambda t: 1 / (1 + math.exp(-t)), (-40.0, -1.3, 0.0, 0.7, 40.0)),
    "softplus": (lambda t: math.log1p(math.exp(t)), (-40.0, -1.3, 0.0, 0.7, 30.0)),
    "abs": (abs, (-1.3, 0.0, 0.7)),
    "log1p": (math.log1p, (0.0, 1e-12, 0.3, 2.5)),
    "expm1": (math.expm1, (-1.3, 0.0, 1e-12, 0.7)),
    "tan": (math.tan, (-1.3, 0.0, 0.7)),
    "atan": (math.atan, (-1.3, 0.0, 0.7, 20.0)),
    "erf": (math.erf, (-1.3, 0.0, 0.7, 3.0)),
    "relu": (lambda t: max(t, 0.0), (-1.3, 0.0, 0.7, 1e300)),
    "step": (lambda t: 1.0 if t > 0 else 0.0, (-1.3, -0.0, 0.0, 1e-300, 0.7)),
    "sign": (lambda t: float((t > 0) - (t < 0)), (-1.3, -0.0, 0.0, 1e-300, 0.7)),
}
DOM = {"any": "any", "positive": "pos"}     # a record's domain as tests/helpers draws it


def test_every_record_has_a_row():
    assert set(ROWS) == set(ELEMENTWISE_NAMES)


@pytest.mark.parametrize("name", ELEMENTWISE_NAMES)
def test_value_against_an_independent_reference(name):
    ref, points = ROWS[name]
    for t in points:
        got = matcalc.evaluate(f"{name}(t)", {"t": t})
        assert got == pytest.approx(ref(t), rel=1e-12, abs=1e-300), (name, t)
    rec = ELEMENTWISE[name]
    for x, v in rec.at.items():                   # the special values the simplifier folds
        assert ref(float(x)) == pytest.approx(float(v), abs=1e-15), (name, x)
    if rec.nonnegative:
        assert all(ref(t) >= 0 for t in points)
    if rec.zero_at_zero:
        assert ref(0.0) == 0


@pytest.mark.parametrize("name", ELEMENTWISE_NAMES)
def test_parse_and_text_round_trip(name):
    e = matcalc.parse(f"{name}(A x)")
    rec = ELEMENTWISE[name]
    assert isinstance(e, E.Func) and e.name == name and e.shape == rec.shape(e.arg.shape)
    with pytest.raises(matcalc.ParseError, match=f"{name}.. takes {rec.arity} argument"):
        matcalc.parse(f"{name}(x, x)")
    assert matcalc.parse(str(e)) == e
    s = matcalc.parse(f"{name}(a^T x)")             # |…| of an array would be a determinant
    if ELEMENTWISE[name].latex != "\\sigma":     # \sigma(…) reads back as the symbol σ times (…)
        assert matcalc.parse(s.latex()) == s, s.latex()


@pytest.mark.parametrize("name", ELEMENTWISE_NAMES)
def test_gradient_jacobian_and_hessian(name):
    dom = DOM[ELEMENTWISE[name].domain]
    check_derivative(f"b^T {name}(A x)", "x", dom=dom)
    check_derivative(f"sum({name}(X))", "X", dom=dom)
    check_derivative(f"{name}(x)", "x", dom=dom)                 # a Jacobian
    check_hessian(f"sum({name}(A x))", "x", dom=dom, allow_unsupported=False)


@pytest.mark.parametrize("name", ELEMENTWISE_NAMES)
def test_steps_cite_the_records_formula(name):
    d = matcalc.diff(f"sum({name}(x))", wrt="x")
    assert ELEMENTWISE[name].formula in "\n".join(d.steps)


@pytest.mark.parametrize("name", ELEMENTWISE_NAMES)
def test_generated_numpy_code_agrees_with_evaluate(name):
    dom = DOM[ELEMENTWISE[name].domain]
    rng = np.random.default_rng(1)
    x = rng.uniform(0.5, 1.5, 3) if dom == "pos" else rng.standard_normal(3)
    A = rng.uniform(0.2, 0.6, (3, 3)) if dom == "pos" else 0.5 * rng.standard_normal((3, 3))
    text = f"sum({name}(A x))"
    d = matcalc.diff(text, wrt="x")
    fn = matcalc.compile(text, wrt="x")
    f, g = fn(x=x, A=A)
    assert f == pytest.approx(matcalc.evaluate(text, {"x": x, "A": A}), rel=1e-12)
    assert np.allclose(g, d.evaluate({"x": x, "A": A}), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", ELEMENTWISE_NAMES)
def test_generated_code_spells_the_function_for_every_target(name, target):
    from matcalc.api import generate_source
    rec = ELEMENTWISE[name]
    spelling, _ = rec.spelling(target)
    assert spelling, f"{name} has no {target} spelling"
    src = generate_source(f"sum({name}(A x))", wrt="x", target=target)
    assert spelling in src
    if target in rec.imports:
        assert rec.imports[target] in src.splitlines()


def test_latex_renders_in_katex():
    runner = katex_or_skip()
    texs = []
    for name in ELEMENTWISE_NAMES:
        texs += [matcalc.parse(f"{name}(A x)").latex(), matcalc.diff(f"sum({name}(A x))", wrt="x").latex()]
    bad = runner.Katex(texs).problems(texs)
    assert not bad, bad


# ---------------------------------------------------------------------------- completeness


def _tables():
    """Every view of the records: (what, table) with the names it must hold."""
    from matcalc import differential, numeric, printing, simplify, steps
    from matcalc.codegen import backends
    return differential, numeric, printing, simplify, steps, backends


@pytest.mark.parametrize("rec", ELEMENTWISE_RECORDS, ids=lambda r: r.name)
def test_every_elementwise_function_is_in_every_table(rec):
    differential, numeric, printing, simplify, steps, backends = _tables()
    import importlib
    from matcalc import latex_input
    from matcalc.testing.generator import engine_functions
    parse = importlib.import_module("matcalc.parse")     # matcalc.parse is the function
    n = rec.name
    # the grammar's keyword and the parser's list
    assert n in parse.FUNCTION_NAMES and n in parse.FUNCTIONS and n not in parse.FOREIGN_FUNCTIONS
    # differential rule and the catalogue's formula
    formula, fprime = differential.FUNC_DERIVATIVES[n]
    assert formula.startswith(f"d ") and fprime(E.Sym("x", "vector", "n", 1)).shape == ("n", 1)
    from matcalc.rules import catalogue
    assert (f"d-{n}", formula) in catalogue()[0][1]
    # evaluator
    assert callable(numeric.FUNCS[n])
    # text and LaTeX printers (a LaTeX command, a template, or \operatorname: declared)
    assert (n in printing._LATEX_FUNCS) == (rec.latex is not None)
    assert rec.latex is None or rec.latex_form is None
    assert n in steps._FUNCTIONS and n in latex_input.FUNCS
    # code per target: present, or declared absent by the record (none is today)
    for target in backends.TARGETS:
        b = backends.backend(target)
        assert n in b._kf, f"{n} has no {target} spelling"
    assert set(backends.TARGETS) == set(TARGETS)
    # SymPy: one way always, back where SymPy has the function
    assert callable(rec.sympy)
    if rec.sympy_class:
        import sympy
        assert isinstance(getattr(sympy, rec.sympy_class), type)
    # simplifier's special values, fuzzer's generator
    assert all((n, x) in simplify._FUNC_AT for x in rec.at)
    assert (n in simplify.ZERO_AT_ZERO) == rec.zero_at_zero
    assert (n in simplify.NONNEGATIVE) == rec.nonnegative
    assert rec.domain in DOM
    assert rec.fuzz_weight >= 1, f"{n} is never fuzzed"
    fn = engine_functions()[n]
    assert fn.positive_domain == (rec.domain == "positive")


def test_no_other_list_of_elementwise_names():
    """The names of the elementwise functions are written once, in their records."""
    import pathlib
    root = pathlib.Path(matcalc.__file__).parent
    pat = re.compile(r'"sigmoid",\s*"softplus"|"tanh",\s*"sqrt"')
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if "operators" not in p.parts and pat.search(p.read_text(encoding="utf-8"))]
    assert offenders == [], offenders


# ---------------------------------------------------------------------------- missing pieces


def test_missing_differential_rule_is_unsupported_not_keyerror(monkeypatch):
    from matcalc import differential
    monkeypatch.delitem(differential.FUNC_DERIVATIVES, "sin")
    with pytest.raises(matcalc.UnsupportedError, match=r"sin.*differential rule"):
        matcalc.diff("sum(sin(x))", wrt="x")


def test_missing_evaluator_is_unsupported_not_keyerror(monkeypatch):
    from matcalc import numeric
    monkeypatch.delitem(numeric.FUNCS, "sin")
    with pytest.raises(matcalc.UnsupportedError, match=r"sin.*evaluator"):
        matcalc.evaluate("sum(sin(x))", {"x": np.ones(2)})


def test_missing_code_spelling_is_an_error_naming_it(monkeypatch):
    from matcalc.codegen import backends
    monkeypatch.delitem(backends.Backend._kf, "sin")
    with pytest.raises(matcalc.MatcalcError, match=r"sin"):
        matcalc.diff("sum(sin(x))", wrt="x").to_code()


def test_an_undeclared_function_is_unsupported_everywhere():
    """A Func whose name has no record (as after a record is removed): every table
    refuses with an UnsupportedError that names it, never a KeyError."""
    from matcalc.differential import differentiate
    from matcalc.numeric import FUNCS
    from matcalc.printing import to_latex
    x = E.Sym("x", "vector", "n", 1)
    f = E.Sum(E.Func("nosuch", x))
    with pytest.raises(matcalc.UnsupportedError, match="nosuch.*differential rule"):
        differentiate(f, x)
    with pytest.raises(matcalc.UnsupportedError, match="nosuch.*evaluator"):
        FUNCS["nosuch"]
    with pytest.raises(matcalc.UnsupportedError, match="nosuch"):
        to_latex(f)


# ---------------------------------------------------------------------------- the drifted copy


def test_codegen_folds_constants_with_the_evaluator():
    """softplus(1000) overflowed in codegen's own folder (exit 3) while evaluate was right."""
    text = "softplus(1000) a^T x"
    d = matcalc.diff(text, wrt="x")
    fn = matcalc.compile(text, wrt="x")
    a, x = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    f, g = fn(x=x, a=a)
    assert f == pytest.approx(matcalc.evaluate(text, {"a": a, "x": x}), rel=1e-15)
    assert np.allclose(g, d.evaluate({"a": a, "x": x}))
    assert np.allclose(g, 1000.0 * a)


def test_one_sigmoid():
    """The evaluator's sigmoid and the generated code's helper are the same function."""
    import inspect
    from matcalc.codegen.backends import Backend
    from matcalc.numeric import FUNCS
    from matcalc.operators import kernels
    assert FUNCS["sigmoid"] is kernels._sigmoid
    b = Backend()
    b.spelling("sigmoid")
    assert b.helpers["_sigmoid"] == inspect.getsource(kernels._sigmoid)
    z = np.array([-800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = kernels._sigmoid(z)
    want = np.array([0.0, math.exp(-40) / (1 + math.exp(-40)), 1 / (1 + math.e), 0.5,
                     1 / (1 + math.exp(-1)), 1 / (1 + math.exp(-40)), 1.0])
    assert np.allclose(got, want, rtol=1e-15, atol=0)


def test_one_precedence_table():
    from matcalc import printing
    from matcalc.testing import tree as fuzz
    assert (fuzz.SUM, fuzz.NEG, fuzz.PROD, fuzz.POST, fuzz.ATOM) == \
        (printing.SUM, printing.NEG, printing.PROD, printing.POST, printing.ATOM)


def test_diff_imports_no_numpy_through_the_records():
    import subprocess
    import sys
    code = ("import sys, matcalc, matcalc.operators\n"
            "matcalc.diff('sum(sigmoid(A x))', wrt='x')\n"
            "print(sorted(m for m in ('numpy', 'scipy', 'sympy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- node records
# Every node class of expr.py has a record (matcalc/operators/nodes.py) and an entry in
# every table the record says it must be in; what it lacks, the record says why.

from matcalc.operators import NODE_RECORDS, NODES, PIECES, node_record  # noqa: E402


def _has_piece(cls, piece):
    """Whether the node class cls has its entry in the table of piece."""
    from matcalc import canon, differential, jacobian, numeric, printing, simplify
    from matcalc.codegen.lowering import LOWERINGS
    rec = NODES[cls.__name__]
    if piece in ("text", "latex"):
        printer = printing.Printer if piece == "text" else printing.LatexPrinter
        return hasattr(printer, "p_" + cls.__name__) or (rec.text is not None and rec.arity == 1)
    table = {"evaluator": numeric.EVAL, "lowering": LOWERINGS, "simplifier": simplify.BUILDERS,
             "differential": differential.RULES, "adjoint": canon.IDENTITIES,
             "vec identity": jacobian.VEC_IDENTITIES}[piece]
    return table.has(cls) if hasattr(table, "has") else cls in table     # given, or from the record


def test_every_node_class_has_a_record():
    assert [r.name for r in NODE_RECORDS] == [t.__name__ for t in E.NODE_TYPES]


@pytest.mark.parametrize("cls", E.NODE_TYPES, ids=lambda t: t.__name__)
def test_every_node_is_in_every_table_or_says_why_not(cls):
    rec = node_record(cls)
    for piece in PIECES:
        if piece in rec.absent:
            assert len(rec.absent[piece]) > 20, (cls.__name__, piece)      # a reason, not a flag
            assert not _has_piece(cls, piece), f"{cls.__name__} declares no {piece} but has one"
        else:
            assert _has_piece(cls, piece), f"{cls.__name__} has no {piece} ({PIECES[piece]})"


@pytest.mark.parametrize("cls", E.NODE_TYPES, ids=lambda t: t.__name__)
def test_node_record_spellings(cls):
    """The record's keywords build the node, its arity and its SymPy class are real."""
    import importlib
    import sympy
    from matcalc import interop
    parse = importlib.import_module("matcalc.parse")
    rec = node_record(cls)
    for kw in rec.keywords:
        assert kw in parse.FUNCTION_NAMES, (rec.name, kw)
    if rec.text is not None:
        assert rec.text in rec.keywords
        arg = "x" if rec.name == "DiagMat" else "X"
        e = matcalc.parse(f"{rec.text}({arg})", symbols={"X": "matrix(n,n)"})
        assert isinstance(e, cls) and str(e) == f"{rec.text}({arg})"
    assert rec.arity in (0, 1, 2, "n")
    if rec.sympy is None:
        assert "sympy" in rec.absent
    else:
        assert hasattr(sympy, rec.sympy) or rec.sympy in ("Vec", "CommutationMatrix"), rec.sympy
        assert interop is not None


def test_a_record_piece_unknown_is_refused():
    from matcalc.operators.nodes import Node
    with pytest.raises(ValueError, match="unknown pieces"):
        Node("X", 1, "n×n", absent={"no such table": "because"})


# A deleted entry, each table in turn: an UnsupportedError that names the node and the
# piece, never a KeyError or AttributeError.
_DELETIONS = [
    ("matcalc.numeric", "EVAL", E.Trace, lambda: matcalc.evaluate("tr(X)", {"X": np.eye(2)}),
     r"Trace.*evaluator"),
    ("matcalc.simplify", "BUILDERS", E.Trace,
     lambda: __import__("matcalc.simplify").simplify.simplify(matcalc.parse("tr(A X)")),
     r"Trace.*simplifier"),
    ("matcalc.differential", "RULES", E.Det, lambda: matcalc.diff("det(X)", wrt="X"),
     r"differential rule.*Det|Det.*differential rule"),
    ("matcalc.codegen.lowering", "LOWERINGS", E.Det, lambda: matcalc.diff("det(X)", wrt="X").to_code(),
     r"Det"),
    ("matcalc.canon", "IDENTITIES", E.Trace, lambda: matcalc.diff("tr(A X)", wrt="X"),
     r"Trace"),
    ("matcalc.jacobian", "VEC_IDENTITIES", E.DiagMat, lambda: matcalc.diff("diag(x) a", wrt="x"),
     r"Jacobian through DiagMat"),
]


@pytest.mark.parametrize("module, name, cls, call, match", _DELETIONS,
                         ids=[f"{n}-{c.__name__}" for _, n, c, _, _ in _DELETIONS])
def test_a_deleted_node_entry_is_unsupported_naming_it(monkeypatch, module, name, cls, call, match):
    import importlib
    monkeypatch.delitem(getattr(importlib.import_module(module), name), cls)
    with pytest.raises(matcalc.UnsupportedError, match=match):
        call()


@pytest.mark.parametrize("printer", ["text", "latex"])
def test_a_node_without_printing_is_unsupported_naming_it(monkeypatch, printer):
    from matcalc import printing
    from matcalc.operators import nodes
    monkeypatch.delattr(printing.Printer, "p_Det")
    monkeypatch.setitem(nodes.NODES, "Det", nodes.NODES["Det"].replace(text=None))
    e = matcalc.parse("det(X)")
    with pytest.raises(matcalc.UnsupportedError, match=f"Det has no {'LaTeX' if printer == 'latex' else 'text'} printing"):
        e.latex() if printer == "latex" else str(e)


def test_a_node_without_a_record_is_unsupported_naming_it(monkeypatch):
    from matcalc.operators import nodes
    monkeypatch.delitem(nodes.NODES, "Trace")
    with pytest.raises(matcalc.UnsupportedError, match="Trace has no text printing"):
        str(matcalc.parse("tr(X)"))


# ---------------------------------------------------------------------------- a matrix function
# A matrix function is one record (spellings, shape rule, NumPy function) plus its
# differential rule in differential.RULES: the stand-in inv2(X) = X⁻¹ (a name the language
# does not have, declared only here) gets its printing, shape rule, evaluator, simplifier
# builder and code lowering from its record alone.


class _Inv2(E._Unary):
    __slots__ = ()

    def _compute_shape(self):
        return self.arg.shape


_Inv2.__name__ = "Inv2"


@pytest.fixture
def inv2(monkeypatch):
    from matcalc import differential
    from matcalc.operators import nodes
    rec = nodes.Node("Inv2", 1, "n×n", text="inv2", numpy="np.linalg.inv", square=True, cls=_Inv2,
                     absent={"adjoint": "not linear", "vec identity": "not linear",
                             "sympy": "a stand-in of the tests"})
    monkeypatch.setitem(nodes.NODES, "Inv2", rec)
    monkeypatch.setitem(differential.RULES, _Inv2,
                        differential.Rule("d-inv2", "d inv2(X) = −inv2(X) dX inv2(X)",
                                          differential._inverse))
    return rec


def _with_inv2(text):
    """The typed tree of text with every inverse X⁻¹ written as the stand-in inv2(X)."""
    return E.rewrite(matcalc.parse(text), after=lambda y: _Inv2(y.arg) if isinstance(y, E.Inverse) else None)


def test_a_matrix_function_is_one_record_and_its_rule(inv2):
    from matcalc import derive, numeric
    from matcalc.codegen.lowering import LOWERINGS
    from helpers import central
    f = _with_inv2("tr(A X^-1 B)")
    assert str(f) == "tr(A inv2(X) B)" and f.latex() == \
        "\\operatorname{tr}\\left(A \\operatorname{inv2}\\left(X\\right) B\\right)"
    for piece in ("text", "latex", "evaluator", "lowering", "simplifier", "differential"):
        assert _has_piece(_Inv2, piece), piece
    assert LOWERINGS.has(_Inv2) and numeric.EVAL.has(_Inv2)
    kind, G = derive.derivative(f, f.arg.items[1].arg)           # the gradient by X
    assert kind == "gradient" and "inv2" in str(G)
    rng = np.random.default_rng(3)
    vals = {"A": rng.standard_normal((3, 3)), "B": rng.standard_normal((3, 3)),
            "X": rng.standard_normal((3, 3)) + 3 * np.eye(3)}
    sizes = {"n": 3}

    def value(v):
        return np.asarray(numeric.Evaluator(v, sizes).ev(f), dtype=float)
    assert value(vals) == pytest.approx(np.trace(vals["A"] @ np.linalg.inv(vals["X"]) @ vals["B"]))
    g = np.asarray(numeric.Evaluator(vals, sizes).ev(G), dtype=float)
    V = rng.standard_normal((3, 3))
    assert np.sum(g * V) == pytest.approx(central(value, vals, "X", V), rel=1e-6)
    want = matcalc.diff("tr(A X^-1 B)", wrt="X").evaluate(vals)
    assert np.allclose(g, want, rtol=1e-10)


def test_a_matrix_function_lowers_from_its_record(inv2):
    from matcalc.codegen import backends
    from matcalc.codegen.lowering import LOWERINGS
    low = LOWERINGS[_Inv2]
    assert callable(low)
    for target in TARGETS:
        assert inv2.spelling(target).endswith("linalg.inv")
    assert set(TARGETS) == set(backends.TARGETS)




def test_a_matrix_function_takes_its_shape_rule_from_its_record(inv2):
    import importlib
    from matcalc import shapes
    parse = importlib.import_module("matcalc.parse")

    def raw(text):
        return E.rewrite(parse.parse_raw(text), after=lambda y: _Inv2(y.arg) if isinstance(y, E.Inverse) else None)
    typed, syms = shapes.infer(raw("tr(inv(X) A)"))
    assert isinstance(typed.arg.items[0], _Inv2) and syms["X"].shape[0] == syms["X"].shape[1]
    with pytest.raises(matcalc.ShapeError, match="inv2 of"):
        shapes.infer(raw("inv(X)"), {"X": "matrix(2,3)"})


def test_records_are_frozen_with_fresh_defaults_and_replace():
    from matcalc.operators.frozen import Record, factory
    from dataclasses import FrozenInstanceError
    from typing import ClassVar

    class R(Record):
        name: str
        table: dict = factory(dict)
        weight: int = 1
        arity: ClassVar[int] = 1            # not a field

    a, b = R("a"), R(name="b", weight=3)
    assert R._fields == ("name", "table", "weight") and (a.weight, b.weight) == (1, 3)
    assert a.table == {} and a.table is not b.table           # a fresh default each time
    with pytest.raises(FrozenInstanceError):
        a.name = "c"
    with pytest.raises(TypeError, match="needs the field 'name'"):
        R()
    with pytest.raises(TypeError, match="no field 'colour'"):
        R("a", colour=1)
    c = a.replace(weight=5)
    assert (c.name, c.weight, a.weight) == ("a", 5, 1) and c != a   # identity equality
    assert repr(c) == "R(name='a', table={}, weight=5)"
    for record in _some_records():
        with pytest.raises(FrozenInstanceError):
            record.name = "changed"


def _some_records():
    from matcalc.operators import ELEMENTWISE_RECORDS, NODE_RECORDS
    for records in (ELEMENTWISE_RECORDS, NODE_RECORDS):
        yield from (records.values() if isinstance(records, dict) else records)
