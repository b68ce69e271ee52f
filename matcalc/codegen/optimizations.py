"""The named optimisations: each one a rewrite that can be switched off.

``generate(d, target, optimizations={"solve": False})`` turns one off (a mapping of
names to booleans updates the defaults; an iterable of names is exactly the set that is
on).  Every one is on by default; with any of them off the generated code computes the
same values, only more slowly (tests/codegen/test_optimizations.py checks it).  The
lowering records which of them fired (``Options.fired``), so a test can switch off just
the ones that matter for a derivative.
"""
from ..errors import MatcalcError

OPTIMIZATIONS = {
    # rewrites of the lowering
    "solve": "an inverse that only multiplies becomes a solve",
    "spd": "Cholesky for spd matrices: solves, inverse with log-determinant, log-determinant",
    "trace_product": "tr(P Q) as a sum of elementwise products, never forming P Q",
    "elementwise_diagonal": "tr(f(X)) and diag(f(X)) of an elementwise f from X's diagonal only",
    "kron_apply": "(A ⊗ B) vec(X) = vec(B X Aᵀ): a Kronecker product that multiplies is never formed",
    "kron_mixed_product": "(A ⊗ B)(C ⊗ D) = AC ⊗ BD, and (x ⊗ B) M = x ⊗ BM: a product beside a Kronecker product taken inside it",
    "kron_sum": "a sum of Kronecker products written into one buffer, none formed on its own (NumPy)",
    "kron_blockdiag": "(A ⊗ I) M (C ⊗ I) with M block-diagonal (diag(vec U), I ⊗ B, their products and sums) as one product over M's stacked blocks, M never formed",
    "eigh_inverse": "f(S)⁻¹ of a symmetric S (sqrtm, a principal power) as S^(−p) from S's one eigh, never a solve with f(S)",
    "kron_identity": "A ⊗ I and I ⊗ A written into a zero matrix through a strided view",
    "commutation_reshape": "a commutation matrix that multiplies is a reshape",
    "perm_sum": "(c₁ I + c₂ K) X in one pass a block of rows at a time, a product's number folded into c₁, c₂ (NumPy)",
    "diag_broadcast": "diag(v) M as the broadcast v[:, None] * M",
    "ones_broadcast": "u 1ᵀ and 1 vᵀ in a matrix sum as the broadcasts u[:, None] and v[None, :], never formed",
    "sqnorm_dot": "||x||² and sum(A .* B) as one dot product",
    "log1p": "log(1 + u) as log1p(u)",
    "sigmoid_exp": "sigmoid(u) from exp(u) where that is computed anyway",
    "sigmoid_softplus": "sigmoid(u) as -expm1(-softplus(u)) where softplus(u) is computed anyway (NumPy: three ufunc calls for the kernel's seven)",
    "softmax_logsumexp": "softmax(z) and logsumexp(z) of one z, both needed, from one exp (NumPy)",
    "sum_rowcol": "sum(P Q) through row and column sums",
    "negation_reuse": "a product with one sum negated taken from the computed one (a negation)",
    "fold_constants": "a product's constant scalars folded into one number as the evaluator computes it",
    "chain_dp": "product chains associated by dynamic programming on estimated sizes",
    "row_blocks": "a large row-wise intermediate made and used a block of rows at a time (NumPy)",
    # passes over the IR
    "cse": "common subexpressions computed once",
    "inline": "an array temporary used once, by the next statement, folded into it (NumPy)",
    "fold_negations": "minus signs moved out of products and quotients, two cancelled, a negated term of a sum made a difference (exact)",
    "dead_stores": "statements whose values nobody reads removed",
    "free": "`del` of each matrix temporary after its last use",
}


class Options:
    """Which optimisations are on for one generation, and which of them fired."""

    def __init__(self, optimizations=None):
        on = set(OPTIMIZATIONS)
        if optimizations is not None:
            if isinstance(optimizations, dict):
                bad = [k for k in optimizations if k not in OPTIMIZATIONS]
                for k, v in optimizations.items():
                    (on.add if v else on.discard)(k)
            else:
                names = list(optimizations)
                bad = [k for k in names if k not in OPTIMIZATIONS]
                on = set(names)
            if bad:
                raise MatcalcError(f"unknown optimization {', '.join(map(repr, bad))}; "
                                   f"the optimizations are {', '.join(OPTIMIZATIONS)}")
        self.on = frozenset(on)
        self.fired = set()

    def __call__(self, name):
        """Whether name is on; a lowering that applies it calls this, so it is recorded."""
        if name in self.on:
            self.fired.add(name)
            return True
        return False

    def enabled(self, name):
        """Whether name is on, without recording it (for cost estimates)."""
        return name in self.on
