"""One frozen record per node class of ``expr.py``: its spellings, arity, shape rule,
and which of the engine's tables it must have an entry in (or why not).

The calculus tables stay where they read like the mathematics — ``differential.RULES``
(d of a node), ``canon.IDENTITIES`` (the adjoint that moves dX out of a linear node),
``jacobian.VEC_IDENTITIES`` (vec of a linear node), ``simplify.RULES`` (named rewrites).
The dispatch tables (``numeric.EVAL``, ``simplify.BUILDERS``, codegen's ``LOWERINGS``,
``differential.RULES``) are ``OperatorTable`` views: a missing entry is an
``UnsupportedError`` naming the node and the piece, never a KeyError. The printers
spell a node that is written as a call (``tr(X)``, ``\\operatorname{tr}``) from its
record: a call-spelled unary node needs no printer method.

``tests/test_operators.py`` checks every record against every table (present, or
declared absent here with a reason).
"""
from types import MappingProxyType

from ..errors import UnsupportedError
from .frozen import Record, factory

# piece -> where it lives (what the completeness test reads)
PIECES = {
    "text": "printing.Printer (p_<Node>, or the record's text call spelling)",
    "latex": "printing.LatexPrinter (p_<Node>, or the record's LaTeX call spelling)",
    "evaluator": "numeric.EVAL",
    "lowering": "codegen.lowering.LOWERINGS",
    "simplifier": "simplify.BUILDERS",
    "differential": "differential.RULES",
    "adjoint": "canon.IDENTITIES",
    "vec identity": "jacobian.VEC_IDENTITIES",
}

_LEAF = "a leaf: constant in every variable but itself, so no dX to move out of it"
_NONLINEAR = "not linear: a differential has it only around constants, never around dX"
_SCALAR_OUT = "its value is a scalar: the trace identities see it as a scalar factor"


class Node(Record):
    """The record of one node class of ``expr.py``.

    name      the class name in ``expr.py`` (the key of every table)
    keywords  the grammar's call keywords that build it (aliases in parse.FUNC_ALIASES)
    text      its text call spelling when printed as name(arg) (None: a notation)
    latex     its LaTeX call spelling, \\cmd\\left(arg\\right) (None: a notation or
              \\operatorname{text})
    sympy     the SymPy class that holds it in interop (None: none, reason in absent)
    arity     the number of arguments ("n": two or more)
    shape     its shape rule, in words (expr.<name>.shape computes it)
    absent    piece -> why the node has no entry in that table

    A unary node (a matrix function) may give its pieces here instead of in the tables:
    numpy     the NumPy function of its (2-D) argument, np.<f> or np.linalg.<f>: the
              evaluator and the generated code's call (jnp./torch. for the other targets)
              — numeric.EVAL, codegen's LOWERINGS and simplify.BUILDERS then derive its
              entries from the record
    square    its argument must be square (shapes.py's rule for it, with its name)
    cls       the node class, where it is not expr.<name>
    Its differential rule stays in differential.RULES (the calculus reads there).
    """
    name: str
    arity: object
    shape: str
    keywords: tuple = ()
    text: str = None
    latex: str = None
    sympy: str = None
    absent: MappingProxyType = factory(dict)
    numpy: str = None
    square: bool = False
    cls: type = None

    def __post_init__(self):
        object.__setattr__(self, "absent", MappingProxyType(dict(self.absent)))
        unknown = set(self.absent) - set(PIECES) - {"sympy"}
        if unknown:
            raise ValueError(f"{self.name}: unknown pieces {sorted(unknown)}")

    def node_class(self):
        if self.cls is not None:
            return self.cls
        from .. import expr
        return getattr(expr, self.name)

    def spelling(self, target):
        """The generated code's call for the record's NumPy function in target."""
        if self.numpy is None or not self.numpy.startswith("np."):
            return None
        return {"numpy": "np.", "jax": "jnp.", "torch": "torch."}[target] + self.numpy[3:]

    @property
    def pieces(self):
        """The tables this node must have an entry in."""
        return tuple(p for p in PIECES if p not in self.absent)


NODE_RECORDS = (
    Node("Num", 0, "1×1", sympy="Rational",
         absent={"adjoint": _LEAF, "vec identity": _LEAF}),
    Node("Sym", 0, "as declared or inferred", sympy="MatrixSymbol",
         absent={"adjoint": _LEAF, "vec identity": _LEAF}),
    Node("Diff", 0, "its variable's", sympy="MatrixSymbol",
         absent={"differential": "the differential dX itself: the rules produce it, nothing "
                                 "differentiates it",
                 "adjoint": "dX is where the trace identities stop",
                 "vec identity": "vec(dX) is where the Jacobian stops"}),
    Node("Identity", 0, "n×n", sympy="Identity",
         absent={"adjoint": _LEAF, "vec identity": _LEAF}),
    Node("Zero", 0, "m×n", sympy="ZeroMatrix",
         absent={"adjoint": _LEAF, "vec identity": _LEAF}),
    Node("Commutation", 0, "mn×mn", sympy="CommutationMatrix",
         absent={"adjoint": _LEAF, "vec identity": _LEAF}),
    Node("Fill", 1, "m×n (a scalar broadcast)", sympy="OneMatrix"),
    Node("Add", "n", "the operands' (equal) shape", sympy="MatAdd"),
    Node("Mul", "n", "m×k times k×n is m×n", sympy="MatMul"),
    Node("Hadamard", "n", "the operands' (equal) shape", sympy="HadamardProduct"),
    Node("Kron", "n", "(m×n) ⊗ (p×q) is mp×nq", keywords=("kron",), sympy="KroneckerProduct"),
    Node("Transpose", 1, "m×n becomes n×m", sympy="Transpose"),
    Node("Inverse", 1, "n×n", keywords=("inv",), sympy="Inverse",
         absent={"adjoint": _NONLINEAR, "vec identity": _NONLINEAR}),
    Node("Det", 1, "n×n to 1×1", keywords=("det",), text="det", latex="\\det", sympy="Determinant",
         absent={"adjoint": _NONLINEAR, "vec identity": _NONLINEAR}),
    Node("LogDet", 1, "n×n to 1×1", keywords=("logdet",), text="logdet", sympy="log",
         absent={"adjoint": _NONLINEAR, "vec identity": _NONLINEAR}),
    Node("Trace", 1, "n×n to 1×1", keywords=("tr",), text="tr", latex="\\operatorname{tr}",
         sympy="Trace", absent={"vec identity": _SCALAR_OUT}),
    Node("Sum", 1, "m×n to 1×1", keywords=("sum",), text="sum", latex="\\operatorname{sum}",
         sympy="Trace", absent={"vec identity": _SCALAR_OUT}),
    Node("Norm", 1, "m×n to 1×1", keywords=("norm",), sympy="sqrt",
         absent={"adjoint": _NONLINEAR, "vec identity": _NONLINEAR}),
    Node("SpecNorm", 1, "m×n to 1×1",
         absent={"adjoint": _NONLINEAR, "vec identity": _NONLINEAR,
                 "sympy": "SymPy has no matrix expression for the spectral norm"}),
    Node("Vec", 1, "m×n to mn×1", keywords=("vec",), text="vec", latex="\\operatorname{vec}",
         sympy="Vec"),
    Node("Unvec", 1, "mn×1 to m×n (m given)", keywords=("unvec",),
         absent={"sympy": "SymPy has no matrix expression for unvec (a column-major reshape)"}),
    Node("DiagMat", 1, "n×1 to n×n", keywords=("diag",), text="diag",
         latex="\\operatorname{diag}", sympy="DiagMatrix"),
    Node("DiagVec", 1, "n×n to n×1", keywords=("diag",), text="diag",
         latex="\\operatorname{diag}", sympy="DiagonalOf"),
    Node("Func", 1, "its argument's (an elementwise function: matcalc/operators/elementwise.py)",
         sympy="Function",
         absent={"adjoint": _NONLINEAR, "vec identity": _NONLINEAR}),
    Node("ArrayFunc", 1, "softmax: n×1 to n×1; logsumexp: m×n to 1×1 (matcalc/operators/array.py)",
         absent={"adjoint": _NONLINEAR, "vec identity": _NONLINEAR,
                 "sympy": "SymPy has no softmax or logsumexp: interop writes them out"}),
    Node("Spectral", 1, "lambda_max, lambda_min: n×n (symmetric) to 1×1; nuclear, norm1: m×n "
         "to 1×1 (matcalc/operators/spectral.py)",
         keywords=("lambda_max", "lambda_min"),
         absent={"adjoint": _NONLINEAR, "vec identity": _NONLINEAR,
                 "sympy": "SymPy has no matrix expression for eigenvalues or the nuclear and "
                          "1-norms"}),
    Node("SpectralVec", 1, "eigvec_max, eigvec_min: n×n to n×1; svec_left: m×n to m×1; "
         "svec_right: m×n to n×1; polar: m×n to m×n (matcalc/operators/spectral.py)",
         keywords=("eigvec_max", "eigvec_min", "svec_left", "svec_right", "polar"),
         absent={"adjoint": _NONLINEAR, "vec identity": _NONLINEAR,
                 "sympy": "SymPy has no matrix expression for eigenvectors, singular vectors "
                          "or the polar factor"}),
    Node("MatPow", 1, "n×n", sympy="MatPow",
         absent={"adjoint": _NONLINEAR, "vec identity": _NONLINEAR}),
    Node("Pow", 2, "1×1", sympy="Pow",
         absent={"adjoint": _NONLINEAR, "vec identity": _NONLINEAR}),
    Node("ElemPow", 2, "its base's", sympy="HadamardPower",
         absent={"adjoint": _NONLINEAR, "vec identity": _NONLINEAR}),
    # CONTRACT §5.1: functions of a square matrix (records in matcalc/operators/matrix.py)
    Node("MatFunc", 1, "n×n (expm, logm, sqrtm, X^p: matcalc/operators/matrix.py)",
         keywords=("expm", "logm", "sqrtm"),
         absent={"adjoint": _NONLINEAR, "vec identity": _NONLINEAR,
                 "sympy": "SymPy has no matrix exponential, logarithm or root of a matrix "
                          "expression (its exp(X) raises TypeError)"}),
    Node("Frechet", 2, "X's (n×n): L_f(X, E), linear in E",
         keywords=("dexpm", "dlogm", "dsqrtm", "dpowm"),
         absent={"sympy": "SymPy has no Fréchet derivative of a matrix function"}),
    Node("FrechetJac", 1, "n×n to n²×n²: vec L_f(X, E) = J vec(E)",
         keywords=("jexpm", "jlogm", "jsqrtm", "jpowm"),
         absent={"adjoint": "constant in dX wherever it appears (d of it is refused: a second "
                            "Fréchet derivative), so no dX to move out of it",
                 "vec identity": "constant in dX wherever it appears (a second Fréchet "
                                 "derivative is refused)",
                 "sympy": "SymPy has no Fréchet derivative of a matrix function"}),
)

NODES = {r.name: r for r in NODE_RECORDS}          # class name -> record


def record_of_unary(cls):
    """The record of a unary node class that gives its pieces itself — a matrix function,
    with its NumPy function — (None otherwise): what the tables derive entries from."""
    rec = NODES.get(getattr(cls, "__name__", None))
    if rec is None or rec.arity != 1 or rec.numpy is None or rec.node_class() is not cls:
        return None
    return rec


def node_record(cls_or_name, piece="record"):
    """The record of a node class (UnsupportedError naming it when there is none)."""
    name = getattr(cls_or_name, "__name__", cls_or_name)
    rec = NODES.get(name)
    if rec is None:
        raise UnsupportedError(f"the node {name} has no {piece}: it is not declared in "
                               f"matcalc/operators/nodes.py")
    return rec
