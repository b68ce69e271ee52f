"""The simplifier's named rules, one test row each (issue 11 part 6): the input, the form
the rule gives, and a numeric check that both sides agree at random values.  Every rule
of ``simplify.RULES`` and ``simplify.BUILDER_RULES`` must have a row."""
import numpy as np
import pytest

import matcalc
from helpers import draw, rel_err
from matcalc import simplify as S

M = "matrix(3,3)"
DECL = {"A": M, "B": M, "C": M, "D": M, "X": M, "s": "scalar", "t": "scalar", "u": "vector(3)",
        "v": "vector(3)", "S": "symmetric(3)",
        "P": "matrix(3,2)", "Q": "matrix(2,4)"}

# (rule name, input, its canonical form)
ROWS = [
    ('tr-scalar', 'tr(s)', 's'),
    ('tr-zero', 'tr(0 A)', '0'),
    ('tr-transpose', 'tr(A^T)', 'tr(A)'),
    ('tr-diag', 'tr(diag(u))', 'sum(u)'),
    ('tr-kron', 'tr(kron(A, B))', 'tr(A) tr(B)'),
    ('tr-scalars-out', 'tr(s A)', 's tr(A)'),
    ('tr-cyclic-scalar', 'tr(A u v^T)', 'v^T A u'),
    ('sum-scalar', 'sum(s)', 's'),
    ('sum-row', 'sum(u^T A)', 'sum(A^T u)'),
    ('sum-zero', 'sum(0 A)', '0'),
    ('sum-transpose', 'sum(A^T) + sum(vec(B))', 'sum(A) + sum(B)'),
    ('sum-diag', 'sum(diag(u))', 'sum(u)'),
    ('sum-scalars-out', 'sum(s A)', 's sum(A)'),
    ('det-scalar', 'det(s)', 's'),
    ('det-zero', 'det(0 A)', '0'),
    ('det-transpose', 'det(A^T)', 'det(A)'),
    ('det-inverse', 'det(inv(A))', 'det(A)^-1'),
    ('det-identity', 'det(I(3))', '1'),
    ('logdet-transpose', 'log(det(A^T))', 'logdet(A)'),
    ('logdet-inverse', 'logdet(inv(A))', '-logdet(A)'),
    ('logdet-identity', 'logdet(I(3))', '0'),
    ('inv-scalar', 'inv(s)', 's^-1'),
    ('inv-inverse', 'inv(inv(A))', 'A'),
    ('inv-power', 'inv(A^2)', 'A^-2'),
    ('inv-diag', 'inv(diag(u))', 'diag(u .^ -1)'),
    ('inv-identity', 'inv(I(3))', 'I(3)'),
    ('inv-scalars-out', 'inv(s A)', 'A^-1 / s'),
    ('matpow-zero', 'A^0', 'I(3)'),
    ('matpow-one', 'A^1', 'A'),
    ('matpow-diag', 'diag(u)^3', 'diag(u .^ 3)'),
    ('matpow-power', '(A^2)^3', 'A^6'),
    ('matpow-identity', 'I(3)^4', 'I(3)'),
    ('pow-zero', 's^0', '1'),
    ('pow-one', 's^1', 's'),
    ('pow-number', '2^3 s', '8 s'),
    ('pow-power', '(s^2)^3', 's^6'),
    ('pow-product', '(s t)^2', 's^2 t^2'),
    ('pow-of-one', '1^s', '1'),
    ('f-vec', 'exp(vec(A))', 'vec(exp(A))'),
    ('f-zero-array', 'exp(0 A)', 'ones(3,3)'),
    ('f-diagonal', 'sin(diag(u))', 'diag(sin(u))'),
    ('f-at-number', 'exp(0) + cos(0) s', '1 + s'),
    ('log-exp', 'log(exp(s))', 's'),
    # functions of a square matrix and their Fréchet derivatives (CONTRACT §5.1)
    ('mf-scalar', 'expm(s) + logm(t) + sqrtm(s)', 'exp(s) + log(t) + sqrt(s)'),
    ('mf-at-identity', 'sqrtm(I(3)) + logm(I(3)) + expm(0 A)', '2 I(3)'),
    ('mf-diagonal', 'expm(diag(u)) + diag(v)^(1/3)', 'diag(exp(u)) + diag(v .^ (1 / 3))'),
    ('expm-logm', 'expm(logm(A))', 'A'),
    ('logm-expm', 'logm(expm(S)) + logm(expm(A))', 'S + logm(expm(A))'),
    ('frechet-zero', 'dexpm(A, 0 B)', 'zeros(3,3)'),
    ('frechet-scalars-out', 'dlogm(A, s B)', 's dlogm(A, B)'),
    ('frechet-commuting', 'dexpm(A, A^2) + dpowm(A, I(3), 1/3)', 'A^(-2/3) / 3 + expm(A) A^2'),
    ('frechet-sum', 'dsqrtm(A, B + A)', 'dsqrtm(A, B) + 0.5 sqrtm(A)^-1 A'),
    ('jfrechet-scalar', 'jexpm(s)', 'exp(s)'),
    ('tr-frechet', 'tr(dexpm(A, B))', 'tr(expm(A) B)'),
    ('tr-logm', 'tr(logm(A))', 'logdet(A)'),
    ('logdet-expm', 'logdet(expm(A))', 'tr(A)'),
    ('det-expm', 'det(expm(A))', 'exp(tr(A))'),
    ('matpow-of-power', 'sqrtm(A)^2 + (A^(1/3))^3 + (A^(1/3))^2', '2 A + A^(2/3)'),
    ('add-frechet', '2 dexpm(A, B) + s dexpm(A, C) + dlogm(A, B)', 'dexpm(A, 2 B + s C) + dlogm(A, B)'),
    ('t-matrix-function', 'expm(A)^T + dlogm(A, B)^T', 'expm(A^T) + dlogm(A^T, B^T)'),
    ('abs-nonnegative', 'abs(exp(u))', 'exp(u)'),
    ('f-fill', 'exp(s ones(3,3))', 'exp(s) ones(3,3)'),
    ('epow-vec', 'vec(A) .^ 2', 'vec(A .^ 2)'),
    ('epow-zero', '(0 A) .^ 2', 'zeros(3,3)'),
    ('epow-diagonal', 'diag(u) .^ 3', 'diag(u .^ 3)'),
    ('epow-one', 'A .^ 1', 'A'),
    ('epow-zero-exponent', 'A .^ 0', 'ones(3,3)'),
    ('epow-power', '(A .^ 2) .^ 3', 'A .^ 6'),
    ('epow-fill', '(s ones(3,3)) .^ 2', 's^2 ones(3,3)'),
    ('fill-zero', '0 ones(3,3)', 'zeros(3,3)'),
    ('fill-scalar', 's ones(1,1)', 's'),
    ('vec-zero', 'vec(0 A)', 'zeros(9)'),
    ('vec-column', 'vec(u)', 'u'),
    ('vec-row', 'vec(u^T)', 'u'),
    ('vec-unvec', 'vec(unvec(vec(A) + vec(B), 3))', 'vec(A) + vec(B)'),
    ('vec-scalars-out', 'vec(s A)', 's vec(A)'),
    ('unvec-zero', 'unvec(0 vec(A), 3)', 'zeros(3,3)'),
    ('unvec-column', 'unvec(u, 3)', 'u'),
    ('unvec-row', 'unvec(u, 1)', 'u^T'),
    ('unvec-vec', 'unvec(vec(A), 3)', 'A'),
    ('unvec-fill', 'unvec(s ones(9), 3)', 's ones(3,3)'),
    ('unvec-scalars-out', 'unvec(s (vec(A) + vec(B)), 3)', 's unvec(vec(A) + vec(B), 3)'),
    ('diag-zero', 'diag(0 u)', 'zeros(3,3)'),
    ('diag-fill', 'diag(s ones(3))', 's I(3)'),
    ('diag-scalars-out', 'diag(s u)', 's diag(u)'),
    ('diagvec-zero', 'diag(0 A)', 'zeros(3)'),
    ('diagvec-fill', 'diag(s ones(3,3))', 's ones(3)'),
    ('diagvec-identity', 'diag(I(3))', 'ones(3)'),
    ('diagvec-outer', 'diag(s u v^T)', 's (u .* v)'),
    ('diagvec-diag', 'diag(diag(u))', 'u'),
    ('diagvec-transpose', 'diag(A^T)', 'diag(A)'),
    ('diagvec-scalars-out', 'diag(s A)', 's diag(A)'),
    ('norm-zero', 'norm(0 A)', '0'),
    ('norm-transpose', 'norm(A^T)', '||A||_F'),
    ('norm-kron', 'norm(kron(A, B))', '||A||_F ||B||_F'),
    ('norm-coefficient', 'norm(-3 A)', '3 ||A||_F'),
    ('norm-scalar', 'norm(s)', 'abs(s)'),
    ('specnorm-transpose', '||A^T||_2', '||A||_2'),
    ('spectral-scalar', 'lambda_max(s) + lambda_min(t)', 's + t'),
    ('spectral-transpose', '||A^T||_* + ||B^T||_1 + lambda_max(S^T)',
     'lambda_max(S) + ||B||_1 + ||A||_*'),
    ('t-product', '(A B)^T C', 'B^T A^T C'),
    ('t-sum', '(A + B)^T + C', 'C + A^T + B^T'),
    ('t-inverse', 'inv(A)^T', 'A^-T'),
    ('t-symmetric', 'S^T', 'S'),
    ('t-elementwise', 'exp(A)^T', 'exp(A^T)'),
    ('mul-coefficient', '2 A 3', '6 A'),
    ('mul-scalar-powers', 's s^-1 A + t t^2 B', 'A + t^3 B'),
    ('mul-symbolic-powers', 's^t s^(1 - t) + det(A)^(1/t - 1) det(A)', 's + det(A)^(1/t)'),
    ('log-softplus', 'log(1 + exp(s)) + sum(log(1 + exp(u)))', 'softplus(s) + sum(softplus(u))'),
    ('pow-sigmoid', '(1 + exp(-s))^-2', 'sigmoid(s)^2'),
    ('epow-sigmoid', '(1 + exp(-u)) .^ -1', 'sigmoid(u)'),
    ('mul-sigmoid-complement', 'exp(-s) / (1 + exp(-s))^3', 'sigmoid(s)^2 (1 - sigmoid(s))'),
    ('had-sigmoid-complement', 'exp(-u) .* (1 ./ (1 + exp(-u)))', 'sigmoid(-u)'),
    ('add-commutation', 'kron(P, Q) + kron(Q, P) K(4,2)', '(I(6) + K(2,3)) (P ⊗ Q)'),
    ('mul-identity', 'A I(3)', 'A'),
    ('mul-zero', 'A (0 B)', 'zeros(3,3)'),
    ('mul-inverse', 'A inv(A) B', 'B'),
    ('mul-powers', 'A^2 A^3', 'A^5'),
    ('mul-into-inverse', 'inv(A B) A', 'B^-1'),
    ('mul-kron-mixed', 'kron(A, B) kron(C, D)', 'A C ⊗ (B D)'),
    ('mul-diag', 'diag(u) diag(v)', 'diag(u .* v)'),
    ('mul-commutation', 'K(3,2) K(2,3)', 'I(6)'),
    ('mul-symmetriser', '(I(9) + K(3,3)) (I(9) + K(3,3)) kron(A, B) (I(9) + K(3,3))', '2 (I(9) + K(3,3)) (A ⊗ B) (I(9) + K(3,3))'),
    ('mul-sigmoid', 'exp(s) / (1 + exp(s))', 'sigmoid(s)'),
    ('mul-ones', 'u^T (s ones(3))', 's sum(u)'),
    ('add-collect', 'A + 2 A', '3 A'),
    ('add-equal-traces', 'tr(A B) + tr(B A) + tr(A^T B^T)', '3 tr(A B)'),
    ('add-factor-right', 'A X + B X', '(A + B) X'),
    ('add-factor-left', 'X A + X B', 'X (A + B)'),
    ('add-common-coefficient', '2 A + 2 B', '2 (A + B)'),
    ('add-zero', 'A + 0 B', 'A'),
    ('had-scalars', '(s A) .* B', 's (A .* B)'),
    ('had-powers', 'A .* A + B .* B ./ B', 'B + A .^ 2'),
    ('had-identity', 'I(3) .* diag(u)', 'diag(u)'),
    ('kron-identities', 'kron(I(3), I(2))', 'I(6)'),
    ('kron-scalars', 'kron(s A, B)', 's (A ⊗ B)'),
]


def _declared(text):
    names = {str(n) for n in _symbols(matcalc.parse(text, DECL))}
    return {k: v for k, v in DECL.items() if k in names}


def _symbols(e):
    from matcalc import expr as E
    if isinstance(e, E.Sym):
        yield e.name
    for a in e.args:
        yield from _symbols(a)


@pytest.mark.parametrize("name,text,want", ROWS, ids=[r[0] for r in ROWS])
def test_rule_row(name, text, want):
    got = S.simplify(matcalc.parse(text, DECL))
    assert str(got) == want
    # both sides agree in value at random values (the canonical form read back as text)
    decl = _declared(text)
    rng = np.random.default_rng(7)
    for _ in range(2):
        vals = draw(decl, rng, dom="pos")
        lhs = matcalc.evaluate(text, vals, symbols=decl)
        rhs = matcalc.evaluate(want, vals, symbols=decl)
        assert np.shape(np.squeeze(lhs)) == np.shape(np.squeeze(rhs)), (text, want)
        assert rel_err(np.squeeze(rhs), np.squeeze(lhs)) < 1e-10, (name, text, want)


def test_every_rule_has_a_row():
    named = [r.name for rules in S.RULES.values() for r in rules] + [r.name for r in S.BUILDER_RULES]
    assert len(named) == len(set(named)), "two rules share a name"
    assert sorted(named) == sorted(r[0] for r in ROWS)


def test_rules_are_found_by_node_type():
    for node, rules in S.RULES.items():
        assert all(r.node is node and r.formula and callable(r.fn) for r in rules)
    # the builders of these nodes are their rules
    for name in ("trace", "entry_sum", "det", "logdet", "inverse", "matpow", "power", "func",
                 "elempow", "fill", "vec", "unvec", "diagmat", "diagvec", "norm", "spec_norm"):
        assert getattr(S, name).__code__.co_names.count("rewrite") == 1, name
