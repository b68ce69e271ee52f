"""The functions of a whole array (not entry by entry), one record each (see
``records.ArrayFunction``): softmax of a vector and logsumexp over all entries
(CONTRACT §5.2).  The engine's node is ``expr.ArrayFunc``, built by ``record.node(arg)``.

Each differential is written with the typed builders and the nodes the language has,
so that the canonical pass, the Jacobians and the printers need nothing new:
d softmax(x) = (diag(s) − s sᵀ) dx with s = softmax(x), whose adjoint is
⟨w, (diag(s) − s sᵀ) dx⟩ = ⟨s ∘ w − s (sᵀ w), dx⟩ (the trace identities find it), and
d logsumexp(X) = sum(exp(X − logsumexp(X) 1) ∘ dX), which for a vector x is
softmax(x)ᵀ dx.
"""
from .. import expr as E
from ..build import neg
from .records import ArrayFunction


def _same_shape(shape):
    return shape


def _scalar_shape(shape):
    return E.SCALAR


# (the shape rules are module-level functions, not lambdas: a node carries its rule, and
# a tree must still pickle)


def _softmax_shape(checker, a):
    """softmax takes a vector (a column): a scalar is a vector of length 1."""
    r, c = checker.resolve_shape(a.shape)
    if r == 1 and c == 1:
        return
    checker.unify(c, 1, lambda: checker.error(
        f"softmax of {checker.shown(a)}: softmax takes a (column) vector; for the softmax "
        f"over all entries of a matrix X write exp(X - logsumexp(X))", a))


def _softmax_d(e, dx):
    x = e.arg
    if x.is_scalar:                       # softmax(t) = 1
        return E.Mul((E.ZERO, dx))
    s = e
    return E.Mul((E.Add((E.DiagMat(s), neg(E.Mul((s, E.Transpose(s)))))), dx))


def _lse_d(e, dx):
    x = e.arg
    if x.is_scalar:                       # logsumexp(t) = t
        return dx
    r, c = x.shape
    if c == 1:                            # a column: softmax(x)ᵀ dx
        softmax = next(rec for rec in ARRAY_RECORDS if rec.name == "softmax")
        return E.Mul((E.Transpose(softmax.node(x)), dx))
    p = E.Func("exp", E.Add((x, neg(E.Fill(e, r, c)))))
    return E.Sum(E.Hadamard((p, dx)))


ARRAY_RECORDS = (
    ArrayFunction(
        "softmax", _same_shape, _softmax_shape, _softmax_d,
        "d softmax(x) = (diag(s) − s sᵀ) dx, s = softmax(x)",
        numpy="_softmax", code={"jax": "jax.nn.softmax", "torch": "torch.softmax"},
        torch_dim=True, scalar=lambda a: E.ONE, fuzz_weight=3,
        expand=lambda x: E.Mul((E.Pow(E.Sum(E.Func("exp", x)), E.MINUS_ONE), E.Func("exp", x)))),
    ArrayFunction(
        "logsumexp", _scalar_shape, lambda checker, a: None, _lse_d,
        "d logsumexp(X) = sum(exp(X − logsumexp(X) 1) ∘ dX) (= softmax(x)ᵀ dx for a vector)",
        numpy="_logsumexp", code={"jax": "jax.nn.logsumexp", "torch": "torch.logsumexp"},
        torch_dim=True, flatten=True, scalar=lambda a: a, fuzz_weight=3,
        expand=lambda x: E.Func("log", E.Sum(E.Func("exp", x)))),
)
