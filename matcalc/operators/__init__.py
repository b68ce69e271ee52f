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
from .records import ArrayFunction, Elementwise, OperatorTable, SpectralFunction, TARGETS, resolve_numpy  # noqa: F401
from .elementwise import ELEMENTWISE_RECORDS  # noqa: F401
from .array import ARRAY_RECORDS  # noqa: F401
from .spectral import SPECNORM, SPECTRAL, SPECTRAL_RECORDS, guard_of, record_of_guarded  # noqa: F401
from .nodes import NODE_RECORDS, NODES, PIECES, node_record  # noqa: F401

ELEMENTWISE = {r.name: r for r in ELEMENTWISE_RECORDS}     # name -> record
ELEMENTWISE_NAMES = tuple(ELEMENTWISE)                     # in declaration order
ARRAY_FUNCTIONS = {r.name: r for r in ARRAY_RECORDS}       # softmax, logsumexp


def elementwise(name, piece="record"):
    """The record of the elementwise function name (UnsupportedError naming it)."""
    rec = ELEMENTWISE.get(name)
    if rec is None:
        from ..errors import UnsupportedError
        raise UnsupportedError(f"the elementwise function {name} has no {piece}: it is not "
                               f"declared in matcalc/operators")
    return rec


def table(piece, value, records=ELEMENTWISE_RECORDS):
    """The view {name: value(record)} of the records that have the piece (value(record)
    is None where a record declares it absent)."""
    out = OperatorTable(piece)
    for r in records:
        v = value(r)
        if v is not None:
            out[r.name] = v
    return out
