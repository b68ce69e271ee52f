"""The lowering of a matrix product: scalars gathered into one coefficient (which
scales the thinnest factor), the chain of the other factors associated by cost
(``chains.Chain``)."""
from .blockdiag import sandwich
from .chains import Chain, factor_kind, flatten_chain, perm_sum_terms
from .values import ONE, ZERO, est, rep_of, scalar
from .. import expr as E
from ..simplify import with_coef


def lower_mul(low, e):
    scal = []
    chain = flatten_chain(low, e.items, scal)
    coef, rest = low.split_scalars(scal)
    if coef != 0 and len(chain) == 3:
        # the whole product one (A ⊗ I) M (C ⊗ I): its scale on the thin factor inside
        v = sandwich(low, chain, low.scale_code(coef, rest), e)
        if v is not None:
            return v
    if coef == 0:
        return low.ev(E.Zero(*e.shape)) if not e.is_scalar else scalar(ZERO)
    chain = sandwich(low, chain)
    if not chain:
        if e.shape != E.SCALAR:           # a product of identities: I
            chain = [low.intern(E.Identity(e.shape[0]))]
        else:
            code = low.scale_code(coef, rest)
            if code is None:
                return scalar(ONE)
            if len(rest) == 1 and coef == 1 and code == low.ev(rest[0]).code:
                return low.ev(rest[0])
            return low.emit(code, "S", E.SCALAR, e)
    scale = low.scale_code(coef, rest)
    if scale is not None and not rest and len(chain) > 1 and rep_of(e.shape) == "M":
        # c (c₁ I + c₂ K) X: the number into the one pass that applies c₁ I + c₂ K
        folded = _fold_into_perm_sum(low, chain[0], coef)
        if folded is not None:
            chain = [folded] + chain[1:]
            scale = None
    if scale is not None and len(chain) > 1:
        # scale a thin factor rather than a wide result (2 x yᵀ: scale x)
        out_size = est(e.shape[0]) * est(e.shape[1])
        sizes = [(est(f.shape[0]) * est(f.shape[1]), i) for i, f in enumerate(chain)
                 if factor_kind(low, f) == "dense"]
        if sizes:
            small, i = min(sizes)
            if small < out_size:
                scaled = low.intern(E.Mul(tuple(scal) + (chain[i],)))
                chain = chain[:i] + [scaled] + chain[i + 1:]
                scale = None
    if scale is not None and len(chain) == 1 and isinstance(chain[0], E.Kron) and rep_of(e.shape) == "M":
        # c (A ⊗ B): scale the smaller item, not the product
        items = list(chain[0].items)
        sizes = [(est(t.shape[0]) * est(t.shape[1]), i) for i, t in enumerate(items)]
        i = min(sizes)[1]
        items[i] = low.intern(E.Mul(tuple(scal) + (items[i],)))
        return low.ev(low.intern(E.Kron(tuple(items))))
    v = low.ev(chain[0]) if len(chain) == 1 else Chain(low, chain).value()
    if scale is None:
        return v
    return low.scaled(scale, v, e)


def _fold_into_perm_sum(low, f, coef):
    """c₁ I + c₂ K with the number coef taken in (c coef₁ I + coef c₂ K), where f is such
    a sum and the target applies it in one pass (``perm_sum``); else None."""
    terms = perm_sum_terms(low, f)
    if terms is None or factor_kind(low, f) != "opsum":
        return None
    c1, c2, K = terms
    return low.intern(E.Add((with_coef(coef * c1, E.Identity(f.shape[0]), f.shape),
                             with_coef(coef * c2, K, f.shape))))


PRODUCT_LOWERINGS = {E.Mul: lower_mul}
