"""Where operators are declared: one frozen record per operator.

An elementwise function is one ``Elementwise`` record in ``elementwise.py``: its
spellings (grammar keyword and text, LaTeX, SymPy), f′ (an expression builder) with the
formula the steps and ``matcalc rules`` show, its values at special points (what the
simplifier folds), its domain (for the fuzzer), its NumPy evaluator (resolved lazily:
``matcalc diff`` imports no NumPy) and its spelling per code target.  The engine's
tables (``differential.FUNC_DERIVATIVES``, ``numeric.FUNCS``, the printers' LaTeX names,
the code backends' ``_kf``, interop's SymPy maps, the simplifier's special values, the
fuzzer's lists) are views built from these records, and a name missing from a view is
an ``UnsupportedError`` that names the operator and the missing piece.

A function of a whole array (softmax, logsumexp) is one ``ArrayFunction`` record in
``array.py``: its type rule, its differential (written with the language's nodes), its
NumPy kernel and its spelling per code target; the node is ``expr.ArrayFunc``.

A function of a square matrix (expm, logm, sqrtm, X^p) is one ``MatrixFunction`` record
in ``matrix.py``: its spellings (f, its Fréchet derivative, its Jacobian), f′ as an
expression, its values (``spectral_values``) and its branch; the nodes are
``expr.MatFunc``, ``expr.Frechet`` and ``expr.FrechetJac``.

Adding an elementwise function: one record here plus one row in
``tests/test_operators.py`` (and its keyword in the grammar's FUNC terminal).

A spectral function (λ_max, λ_min, ‖X‖_*, ‖x‖₁) or a vector of a decomposition that its
gradient is written with (eigvec_max, svec_left, polar, ...) is one ``SpectralFunction``
record in ``spectral.py``: its spellings, type rule, value, differential and the guard
that refuses a point where it is not differentiable; the nodes are ``expr.Spectral`` and
``expr.SpectralVec``.

A node class of ``expr.py`` is one ``Node`` record in ``nodes.py``: its spellings, arity,
shape rule and the tables it must be in (or why not); the node dispatch tables are
``OperatorTable`` views keyed by the class.
"""
from .records import (ArrayFunction, Elementwise, MatrixFunction, OperatorTable,  # noqa: F401
                      SpectralFunction, TARGETS, resolve_numpy)
from .elementwise import ELEMENTWISE_RECORDS  # noqa: F401
from .array import ARRAY_RECORDS  # noqa: F401
from .spectral import SPECNORM, SPECTRAL, SPECTRAL_RECORDS, record_of_guarded  # noqa: F401
from .spectral import guard_of as _spectral_guard
from .matrix import MATRIX_RECORDS, mat_func  # noqa: F401
from .nodes import NODE_RECORDS, NODES, PIECES, node_record  # noqa: F401

ELEMENTWISE = {r.name: r for r in ELEMENTWISE_RECORDS}     # name -> record
ELEMENTWISE_NAMES = tuple(ELEMENTWISE)                     # in declaration order
ARRAY_FUNCTIONS = {r.name: r for r in ARRAY_RECORDS}       # softmax, logsumexp
MATRIX_FUNCTIONS = {r.name: r for r in MATRIX_RECORDS}     # expm, logm, sqrtm, powm
# every spelling of a matrix function -> (record, node kind): expm -> MatFunc, dexpm ->
# Frechet, jexpm -> FrechetJac (the grammar's keywords; printing and parsing read it)
MATRIX_SPELLINGS = {}
for _r in MATRIX_RECORDS:
    for _spelling, _kind in ((_r.text, "MatFunc"), (_r.frechet, "Frechet"), (_r.jacobian, "FrechetJac")):
        if _spelling is not None:
            MATRIX_SPELLINGS[_spelling] = (_r, _kind)


def _record(records, name, what, where, piece):
    """records[name], or an UnsupportedError naming the function and where to declare it."""
    rec = records.get(name)
    if rec is None:
        from ..errors import UnsupportedError
        raise UnsupportedError(f"the {what} {name} has no {piece}: it is not declared in {where}")
    return rec


def matrix_function(name, piece="record"):
    """The record of the matrix function name (UnsupportedError naming it)."""
    return _record(MATRIX_FUNCTIONS, name, "matrix function", "matcalc/operators/matrix.py", piece)


def guard_of(node):
    """The guard of a node of f: a function of its argument's value that raises an
    EvaluationError where f has no derivative there (a repeated λ_max or σ₁, a
    rank-deficient X under ‖X‖_*, a zero entry under ‖x‖₁: the spectral records' guards;
    an eigenvalue on the closed negative real axis under logm, sqrtm or X^p: the matrix
    function's domain, where a closed form such as X⁻ᵀ for tr logm(X) would still give a
    number), or None.  ``Derivative.evaluate`` calls it (numeric.guarded_nodes)."""
    from .. import expr as E
    if isinstance(node, E.MatFunc):
        rec = MATRIX_FUNCTIONS.get(node.name)
        if rec is None or not rec.principal or node.arg.is_scalar:
            return None
        return lambda X, _rec=rec, _p=node.p: _rec.check_domain(X, _p)
    return _spectral_guard(node)


def elementwise(name, piece="record"):
    """The record of the elementwise function name (UnsupportedError naming it)."""
    return _record(ELEMENTWISE, name, "elementwise function", "matcalc/operators", piece)


def table(piece, value, records=ELEMENTWISE_RECORDS):
    """The view {name: value(record)} of the records that have the piece (value(record)
    is None where a record declares it absent)."""
    out = OperatorTable(piece)
    for r in records:
        v = value(r)
        if v is not None:
            out[r.name] = v
    return out
