"""The rule catalogue, generated from the rule tables themselves (so it cannot drift):
the differential rules of ``differential.RULES`` and ``differential.FUNC_DERIVATIVES``,
the trace identities of ``canon.IDENTITIES``, the vec identities of
``jacobian.VEC_IDENTITIES`` and the simplifier's named rules (``simplify.RULES`` and
``simplify.BUILDER_RULES``), grouped by the operation they rewrite.  Every rule the
derivation steps cite is listed here, by the name and with the formula the steps show."""
from .canon import IDENTITIES
from .expr import Norm
from .differential import ARRAY_DERIVATIVES, FUNC_DERIVATIVES, MATRIX_DERIVATIVES, RULES, SQUARED_NORM
from .jacobian import VEC_IDENTITIES
from .operators import SPECTRAL_RECORDS


def catalogue():
    """[(section, [(name, formula), ...]), ...] in the order a derivation uses them."""
    diff_rules, seen = [], set()
    for rule in RULES.values():
        if rule.name in ("d-elementwise", "d-array-function", "d-spectral", "d-matrix-function") \
                or (rule.name, rule.formula) in seen:
            continue
        if rule.name == "d-const":
            if "d-const" not in {n for n, _ in diff_rules}:
                diff_rules.append(("d-const", "d(a) = 0 for a constant (number, I, K, 0)"))
            continue
        seen.add((rule.name, rule.formula))
        diff_rules.append((rule.name, rule.formula))
        if rule is RULES.get(Norm):
            diff_rules.append((SQUARED_NORM.name, SQUARED_NORM.formula + "   (d-power, then d-norm)"))
    for name, (formula, _) in FUNC_DERIVATIVES.items():
        diff_rules.append((f"d-{name}", formula))
    for name, (formula, _) in ARRAY_DERIVATIVES.items():
        diff_rules.append((f"d-{name}", formula))
    for rec in SPECTRAL_RECORDS:            # λ_max, λ_min, ‖X‖_*, ‖x‖₁ (not the vectors)
        if rec.differential is not None:
            diff_rules.append((f"d-{rec.name}", rec.formula))
    for name, formula in MATRIX_DERIVATIVES.items():
        diff_rules.append((f"d-{name}", formula))
    trace = [(n, f) for n, f, _ in IDENTITIES.values()]
    vec = [(n, f) for n, f, _ in VEC_IDENTITIES.values()]
    dedup = lambda xs: list(dict.fromkeys(xs))  # noqa: E731
    from .steps import READ_OFF
    return [("differential rules (df from f)", dedup(diff_rules)),
            ("trace identities (df = tr(Gᵀ dX) for a scalar f)", dedup(trace)),
            ("vec identities (vec(dF) = J vec(dX) for a vector or matrix F)", dedup(vec)),
            ("reading off (the last lines of the steps)", dedup(list(READ_OFF.values())))] \
        + simplifier_sections()


# the simplifier's rules, grouped by the operation they rewrite (node type -> group)
_GROUPS = (
    ("sums", ("Add",)),
    ("products", ("Mul",)),
    ("transposes", ("Transpose",)),
    ("inverses and matrix powers", ("Inverse", "MatPow")),
    ("scalar powers", ("Pow",)),
    ("traces", ("Trace",)),
    ("determinants", ("Det", "LogDet")),
    ("norms", ("Norm", "SpecNorm")),
    ("spectral functions", ("Spectral", "SpectralVec")),
    ("sums of entries", ("Sum",)),
    ("elementwise functions and powers, Hadamard products", ("Func", "ElemPow", "Hadamard")),
    ("Kronecker products", ("Kron",)),
    ("vec, unvec and diag", ("Vec", "Unvec", "DiagVec", "DiagMat")),
    ("functions of a matrix (expm, logm, sqrtm, X^p) and their Fréchet derivatives",
     ("MatFunc", "Frechet", "FrechetJac")),
    ("constant arrays", ("Fill",)),
)


def simplifier_sections():
    """[(section, [(name, formula), ...]), ...]: the simplifier's rules (simplify.RULES,
    tried by node type, and BUILDER_RULES, the identities of the one-pass builders),
    one section per group of operations; a node type outside _GROUPS gets its own."""
    from .simplify import BUILDER_RULES, RULES as SIMPLIFY_RULES
    by_node = {}
    for r in list(BUILDER_RULES) + [r for rules in SIMPLIFY_RULES.values() for r in rules]:
        by_node.setdefault(r.node.__name__, []).append((r.name, r.formula))
    groups = list(_GROUPS) + [(n, (n,)) for n in by_node
                              if not any(n in nodes for _, nodes in _GROUPS)]
    out = []
    for label, nodes in groups:
        rows = list(dict.fromkeys(row for n in nodes for row in by_node.get(n, ())))
        if rows:
            out.append((f"simplifier: {label}", rows))
    return out


def render():
    lines = []
    for section, rows in catalogue():
        lines.append(section)
        width = max(len(n) for n, _ in rows)
        lines.extend(f"  {n:<{width}}  {f}" for n, f in rows)
        lines.append("")
    return "\n".join(lines).rstrip()
