"""The differential rules: one entry per core node, in ``RULES``.

Each entry reads like the math it implements and has a name that the derivation
steps show, e.g. ``d(X⁻¹) = −X⁻¹ dX X⁻¹`` is the rule "d-inv".  ``differentiate(f,
var)`` applies them bottom-up (once per distinct subexpression) and returns df, an
expression linear in the differential ``Diff(var)``; a node type without an entry
raises ``UnsupportedError``, never a silent zero.
"""
from fractions import Fraction

from . import expr as E
from .budget import RawCounter
from .build import add, const_like, neg, num, one_minus, power, times  # noqa: F401 (rules' builders)
from .errors import UnsupportedError
from .operators import ARRAY_RECORDS, ELEMENTWISE_RECORDS, MATRIX_RECORDS, SPECNORM, SPECTRAL, OperatorTable

MAX_MATRIX_POWER = 100
MAX_VARYING_FACTORS = 100   # the product rule over more factors holding X is not expanded


class Rule:
    """A differential rule: its name, its formula for the steps, and the function that
    builds d(node) from the node and the differentials of its children (None where a
    child is constant)."""

    __slots__ = ("name", "formula", "apply")

    def __init__(self, name, formula, apply):
        self.name, self.formula, self.apply = name, formula, apply


# ---------------------------------------------------------------------------- f'(x)
# The small typed constructors that the rules write with are in ``build`` (the operator
# records use them too); f'(x) of each elementwise function is in its record.

# name -> (formula, f'): a view of the records, read by the d-elementwise rule and the
# rule catalogue (a name without an entry: UnsupportedError naming it, never KeyError)
FUNC_DERIVATIVES = OperatorTable("differential rule", {
    r.name: (r.formula, r.derivative) for r in ELEMENTWISE_RECORDS})


# ---------------------------------------------------------------------------- the rules


def _const(e, d):
    return None


def _sym(e, d):
    return None  # the variable itself is handled in differentiate()


def _fill(e, d):
    (dv,) = d
    return E.Fill(dv, e.rows, e.cols)


def _sum_rule(e, d):
    return add(*d)


def _varying(d, what):
    n = sum(x is not None for x in d)
    if n > MAX_VARYING_FACTORS:
        raise UnsupportedError(f"the {what} rule over {n} factors that depend on the variable "
                               f"(more than {MAX_VARYING_FACTORS}) is not expanded")


def _product(e, d):
    _varying(d, "product")
    terms = []
    for i, di in enumerate(d):
        if di is not None:
            terms.append(E.Mul(e.items[:i] + (di,) + e.items[i + 1:]))
    return add(*terms)


def _hadamard(e, d):
    _varying(d, "Hadamard product")
    terms = []
    for i, di in enumerate(d):
        if di is not None:
            terms.append(E.Hadamard(e.items[:i] + (di,) + e.items[i + 1:]))
    return add(*terms)


def _kron(e, d):
    _varying(d, "Kronecker product")
    terms = []
    for i, di in enumerate(d):
        if di is not None:
            terms.append(E.Kron(e.items[:i] + (di,) + e.items[i + 1:]))
    return add(*terms)


def _transpose(e, d):
    return E.Transpose(d[0])


def _inverse(e, d):
    inv = e
    return E.Mul((E.MINUS_ONE, inv, d[0], inv))


def _det(e, d):
    x = e.arg
    if x.is_scalar:
        return d[0]
    return E.Mul((e, E.Trace(E.Mul((E.Inverse(x), d[0])))))


def _logdet(e, d):
    return E.Trace(E.Mul((E.Inverse(e.arg), d[0])))


def _trace(e, d):
    return E.Trace(d[0])


def _entry_sum(e, d):
    return E.Sum(d[0])


def _norm(e, d):
    x = e.arg
    inner = E.Mul((E.Transpose(x), d[0]))
    return E.Mul((E.Trace(inner), E.Pow(e, num(-1))))


def _spec_norm(e, d):
    return SPECNORM.differential(e, d[0])


def _spectral(e, d):
    """λ_max, λ_min, ‖X‖_*, ‖x‖₁ by their records' rules; the differential of a vector of
    a decomposition (eigvec_max, ...) would be a second derivative: UnsupportedError."""
    rec = SPECTRAL.get(e.name)
    if rec is None:
        raise UnsupportedError(f"the spectral function {e.name} has no differential rule: it is "
                               f"not declared in matcalc/operators/spectral.py")
    if rec.differential is None:
        raise UnsupportedError(rec.unsupported)
    return rec.differential(e, d[0])


def _vec(e, d):
    return E.Vec(d[0])


def _unvec(e, d):
    return E.Unvec(d[0], e.m, e.n)


def _diagmat(e, d):
    return E.DiagMat(d[0])


def _diagvec(e, d):
    return E.DiagVec(d[0])

# name -> (formula, differential builder) of the functions of a whole array (softmax,
# logsumexp): a view of their records
ARRAY_DERIVATIVES = OperatorTable("differential rule", {
    r.name: (r.formula, r.differential) for r in ARRAY_RECORDS})


# name -> the formula of the functions of a square matrix (expm, logm, sqrtm, powm): a
# view of their records (each one rule, d f(X) = L_f(X, dX))
MATRIX_DERIVATIVES = OperatorTable("differential rule", {r.name: r.formula for r in MATRIX_RECORDS})


def _array_func(e, d):
    _, rule = ARRAY_DERIVATIVES[e.name]
    return rule(e, d[0])


def _func(e, d):
    _, fprime = FUNC_DERIVATIVES[e.name]
    return times(fprime(e.arg), d[0])


def _matpow(e, d):
    x, k = e.arg, e.k
    if k == 0:
        return None
    if k > MAX_MATRIX_POWER:
        raise UnsupportedError(f"the differential of the matrix power X^{k}: powers above "
                               f"{MAX_MATRIX_POWER} are not expanded")

    def p(i):
        return None if i == 0 else (x if i == 1 else E.MatPow(x, i))

    terms = []
    for i in range(k):
        factors = tuple(f for f in (p(i), d[0], p(k - 1 - i)) if f is not None)
        terms.append(factors[0] if len(factors) == 1 else E.Mul(factors))
    return add(*terms)


def _pow(e, d):
    s, p = e.base, e.exp
    ds, dp = d
    terms = []
    if ds is not None:
        terms.append(E.Mul((p, E.Pow(s, E.Add((p, E.MINUS_ONE))), ds)))
    if dp is not None:
        terms.append(E.Mul((e, E.Func("log", s), dp)))
    return add(*terms)


def _elempow(e, d):
    x, p = e.base, e.exp
    dx, dp = d
    terms = []
    if dx is not None:
        terms.append(E.Mul((p, E.Hadamard((E.ElemPow(x, E.Add((p, E.MINUS_ONE))), dx)))))
    if dp is not None:
        terms.append(E.Mul((dp, E.Hadamard((e, E.Func("log", x))))))
    return add(*terms)


def _second_frechet(e, what):
    from .operators import matrix_function
    rec = matrix_function(e.name)
    return UnsupportedError(
        f"the second Fréchet derivative of {rec.spelled(e.p)}, needed for {what} where X itself "
        f"depends on the variable, is not supported: differentiate once (the gradient of a "
        f"scalar of {rec.spelled(e.p)}), or with respect to a variable that enters only "
        f"the direction E")


def _mat_func(e, d):
    return E.Frechet(e.name, e.arg, d[0], e.p)


def _frechet(e, d):
    dx, de = d
    if dx is not None:
        from .operators import matrix_function
        raise _second_frechet(e, f"the differential of {matrix_function(e.name).frechet}(X, E)")
    return E.Frechet(e.name, e.arg, de, e.p)


def _frechet_jac(e, d):
    raise _second_frechet(e, "the differential of its Jacobian matrix")


RULES = OperatorTable("differential rule (differential.RULES)", {
    E.Num: Rule("d-const", "d(a) = 0", _const),
    E.Identity: Rule("d-const", "d(I) = 0", _const),
    E.Zero: Rule("d-const", "d(0) = 0", _const),
    E.Commutation: Rule("d-const", "d(K) = 0", _const),
    E.Sym: Rule("d-var", "d(X) = dX", _sym),
    E.Fill: Rule("d-broadcast", "d(s 1) = ds 1", _fill),
    E.Add: Rule("d-sum", "d(X + Y) = dX + dY", _sum_rule),
    E.Mul: Rule("d-product", "d(XY) = dX Y + X dY", _product),
    E.Hadamard: Rule("d-hadamard", "d(X ∘ Y) = dX ∘ Y + X ∘ dY", _hadamard),
    E.Kron: Rule("d-kron", "d(X ⊗ Y) = dX ⊗ Y + X ⊗ dY", _kron),
    E.Transpose: Rule("d-transpose", "d(Xᵀ) = (dX)ᵀ", _transpose),
    E.Inverse: Rule("d-inv", "d(X⁻¹) = −X⁻¹ dX X⁻¹", _inverse),
    E.Det: Rule("d-det", "d|X| = |X| tr(X⁻¹ dX)", _det),
    E.LogDet: Rule("d-logdet", "d log|X| = tr(X⁻¹ dX)", _logdet),
    E.Trace: Rule("d-trace", "d tr(X) = tr(dX)", _trace),
    E.Sum: Rule("d-sum-entries", "d sum(X) = sum(dX)", _entry_sum),
    E.Norm: Rule("d-norm", "d‖X‖ = tr(Xᵀ dX) / ‖X‖", _norm),
    E.SpecNorm: Rule("d-spectral-norm", SPECNORM.formula, _spec_norm),
    E.Vec: Rule("d-vec", "d vec(X) = vec(dX)", _vec),
    E.Unvec: Rule("d-unvec", "d unvec(v) = unvec(dv)", _unvec),
    E.DiagMat: Rule("d-diag", "d diag(x) = diag(dx)", _diagmat),
    E.DiagVec: Rule("d-diag", "d diag(X) = diag(dX)", _diagvec),
    E.Func: Rule("d-elementwise", "d f(X) = f'(X) ∘ dX", _func),
    E.ArrayFunc: Rule("d-array-function", "d f(X) by f's own rule", _array_func),
    E.Spectral: Rule("d-spectral", "d f(X) by the spectral function's own rule", _spectral),
    E.SpectralVec: Rule("d-spectral", "d f(X) by the spectral function's own rule", _spectral),
    E.MatPow: Rule("d-matpow", "d(Xᵏ) = Σᵢ Xⁱ dX Xᵏ⁻¹⁻ⁱ", _matpow),
    E.Pow: Rule("d-power", "d(sᵖ) = p sᵖ⁻¹ ds + sᵖ log(s) dp", _pow),
    E.ElemPow: Rule("d-elementwise-power", "d(X.^p) = p X.^(p−1) ∘ dX + (X.^p ∘ log X) dp", _elempow),
    E.MatFunc: Rule("d-matrix-function", "d f(X) = L_f(X, dX), the Fréchet derivative", _mat_func),
    E.Frechet: Rule("d-frechet", "d L_f(X, E) = L_f(X, dE)  (linear in E; X constant)", _frechet),
    E.FrechetJac: Rule("d-frechet-jacobian", "d J_f(X): a second Fréchet derivative "
                       "(UnsupportedError)", _frechet_jac),
})


# One line of the steps where the engine applies two rules: d(‖X‖²) by d-power, then
# d‖X‖ by d-norm, compose to this (``matcalc rules`` lists it).
SQUARED_NORM = Rule("d-squared-norm", "d‖X‖² = 2 tr(Xᵀ dX)", None)


def rule_name(node):
    """The name of the rule for a node, with the function for elementwise ones."""
    r = RULES[type(node)]
    if isinstance(node, E.Func):
        return f"d-{node.name}", FUNC_DERIVATIVES[node.name][0]
    if isinstance(node, E.ArrayFunc):
        return f"d-{node.name}", ARRAY_DERIVATIVES[node.name][0]
    if isinstance(node, E.Spectral) and node.name in SPECTRAL:
        return f"d-{node.name}", SPECTRAL[node.name].formula
    if isinstance(node, E.MatFunc):
        return f"d-{node.name}", MATRIX_DERIVATIVES[node.name]
    return r.name, r.formula


def differentiate(f, var, trace=None):
    """df, linear in Diff(var), or None when f does not depend on var.

    trace: a list that receives (node, rule name, formula, d(node), ds) for each rule
    applied to a node that depends on var, children before parents; ds are the
    differentials of the node's children that the rule was given (None for a constant
    child), the very objects d(node) is built from, so the rule's own layer can be read
    back from d(node) (the derivation steps do)."""
    memo = {}
    dvar = E.Diff(var)
    count = RawCounter()             # the size budget: refuse a swell before building it

    def d(e):
        k = id(e)
        if k in memo:
            return memo[k][1]
        if isinstance(e, E.Sym):
            out = dvar if e.name == var.name else None
        elif isinstance(e, E.Diff):
            raise UnsupportedError("a differential inside the function")
        else:
            ds, some = [], False
            for a in e.args:
                da = d(a)
                ds.append(da)
                if da is not None:
                    some = True
                    count.add(da)
            if not some:
                out = None
            else:
                rule = RULES.get(type(e))
                if rule is None:
                    raise UnsupportedError(f"no differential rule for {type(e).__name__}",
                                           getattr(e, "span", None))
                try:
                    out = rule.apply(e, ds)
                except UnsupportedError as err:
                    if err.span is None:          # point at the operation in the input
                        err.span = getattr(e, "span", None)
                    raise
                if trace is not None and out is not None:
                    name, formula = rule_name(e)
                    trace.append((e, name, formula, out, ds))
        memo[k] = (e, out)
        return out

    return d(f)
