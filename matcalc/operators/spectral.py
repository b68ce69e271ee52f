"""The spectral functions, one record each (see ``records.SpectralFunction``): the
eigenvalues λ_max(S), λ_min(S) of a symmetric S, the nuclear norm ‖X‖_* and the entrywise
1-norm ‖x‖₁ (``expr.Spectral``), the vectors and the factor their gradients are written
with (``expr.SpectralVec``), and the spectral norm ‖X‖₂ (the node ``expr.SpecNorm``,
record ``SPECNORM``).  CONTRACT §5.1.

The differentials are the exact closed forms, written with the language's nodes so that
the canonical pass reads the gradients off them:
d λ_max(S) = vᵀ dS v with v = eigvec_max(S) (∇ = v vᵀ), d ‖X‖₂ = u₁ᵀ dX v₁ with
u₁ = svec_left(X), v₁ = svec_right(X) (∇ = u₁ v₁ᵀ), d ‖X‖_* = tr(polar(X)ᵀ dX)
(∇ = polar(X) = U Vᵀ) and d ‖x‖₁ = sum(sign(x) ∘ dx) (∇ = sign(x)).  They hold where the
function is differentiable: where the eigen- or singular value is simple, X has full rank,
no entry of x is zero; elsewhere each record's guard makes ``Derivative.evaluate`` raise
an EvaluationError that says so.  The values come from ``matcalc.spectral_values``,
imported on the first evaluation only.
"""
from .. import expr as E
from ..build import times
from .records import SpectralFunction


def _sv(name):
    """The function name of matcalc.spectral_values, imported when first called."""
    def call(*args):
        from .. import spectral_values
        return getattr(spectral_values, name)(*args)
    call.__name__ = name
    return call


def _eigen_d(which):
    def d(e, dS):
        v = E.SpectralVec(f"eigvec_{which}", e.arg)
        return E.Mul((E.Transpose(v), dS, v))
    return d


def _eigen(which):
    return lambda S: _sv("eigenvalue")(S, which)


def _eigen_guard(which):
    return lambda S: _sv("eigenvector")(S, which)


def _nuclear_d(e, dX):
    return E.Trace(E.Mul((E.Transpose(E.SpectralVec("polar", e.arg)), dX)))


def _norm1_d(e, dx):
    s = E.Func("sign", e.arg)
    out = times(s, dx)
    return out if e.arg.is_scalar else E.Sum(out)


def _specnorm_d(e, dX):
    return E.Mul((E.Transpose(E.SpectralVec("svec_left", e.arg)), dX,
                  E.SpectralVec("svec_right", e.arg)))


def _second(vec, of):
    return (f"the derivative of {vec} (a second derivative of {of}) is not supported: "
            f"{of} has no closed-form Hessian in this engine")


def _eigenvalue_record(which, word):
    """λ_max or λ_min (which "max" / "min") of a symmetric matrix."""
    return SpectralFunction(
        f"lambda_{which}", "Spectral", f"lambda_{which}({{}})",
        "\\lambda_{{\\" + which + "}}\\left({}\\right)",
        "n×n (symmetric) to 1×1", _eigen(which),
        f"d lambda_{which}(S) = vᵀ dS v, v = eigvec_{which}(S) (a simple eigenvalue)",
        differential=_eigen_d(which), guard=_eigen_guard(which), symmetric=True,
        sympy=f"SymPy has no matrix expression for the {word} eigenvalue", fuzz_weight=2)


def _eigenvector_record(which):
    """The unit eigenvector of λ_max or λ_min, as their gradients v vᵀ need it."""
    return SpectralFunction(
        f"eigvec_{which}", "SpectralVec", f"eigvec_{which}({{}})",
        "\\operatorname{{eigvec}}_{{\\" + which + "}}\\left({}\\right)",
        "n×n (symmetric) to n×1", _eigen_guard(which), f"d eigvec_{which}(S): not given",
        symmetric=True, unsupported=_second(f"eigvec_{which}", f"lambda_{which}"),
        sympy="SymPy has no matrix expression for an eigenvector")


SPECTRAL_RECORDS = (
    _eigenvalue_record("max", "largest"),
    _eigenvalue_record("min", "smallest"),
    SpectralFunction(
        "nuclear", "Spectral", "||{}||_*", "\\left\\|{}\\right\\|_{{*}}",
        "m×n to 1×1", _sv("nuclear_norm"),
        "d ‖X‖_* = tr(polar(X)ᵀ dX), polar(X) = U Vᵀ (X of full rank)",
        differential=_nuclear_d, guard=_sv("polar_factor"),
        sympy="SymPy has no matrix expression for the nuclear norm", fuzz_weight=2),
    SpectralFunction(
        "norm1", "Spectral", "||{}||_1", "\\left\\|{}\\right\\|_{{1}}",
        "m×n to 1×1 (entrywise)", _sv("entry_norm1"),
        "d ‖x‖_1 = sum(sign(x) ∘ dx) (no entry of x zero)",
        differential=_norm1_d, guard=_sv("sign_nonzero"), code_guard="sign_nonzero",
        sympy="SymPy has no matrix expression for the entrywise 1-norm", fuzz_weight=2),
    _eigenvector_record("max"),
    _eigenvector_record("min"),
    SpectralFunction(
        "svec_left", "SpectralVec", "svec_left({})", "\\operatorname{{svec}}_{{\\mathrm{{left}}}}\\left({}\\right)",
        "m×n to m×1", lambda X: _sv("top_singular_vectors")(X)[0], "d svec_left(X): not given",
        unsupported=_second("svec_left", "||X||_2"),
        sympy="SymPy has no matrix expression for a singular vector"),
    SpectralFunction(
        "svec_right", "SpectralVec", "svec_right({})", "\\operatorname{{svec}}_{{\\mathrm{{right}}}}\\left({}\\right)",
        "m×n to n×1", lambda X: _sv("top_singular_vectors")(X)[1], "d svec_right(X): not given",
        unsupported=_second("svec_right", "||X||_2"),
        sympy="SymPy has no matrix expression for a singular vector"),
    SpectralFunction(
        "polar", "SpectralVec", "polar({})", "\\operatorname{{polar}}\\left({}\\right)",
        "m×n to m×n", _sv("polar_factor"), "d polar(X): not given",
        unsupported=_second("polar", "||X||_*"),
        sympy="SymPy has no matrix expression for the polar factor"),
)
SPECTRAL = {r.name: r for r in SPECTRAL_RECORDS}           # lambda_max, ..., eigvec_max, ..., polar

# ‖X‖₂ of a matrix: the node SpecNorm (parsed from ||X||_2, printed by the printers' own
# p_SpecNorm); its record gives the differential, the formula and the guard
SPECNORM = SpectralFunction(
    "specnorm", "SpecNorm", "||{}||_2", "\\left\\|{}\\right\\|_{{2}}", "m×n to 1×1",
    _sv("spectral_norm"), "d ‖X‖₂ = u₁ᵀ dX v₁, u₁ = svec_left(X), v₁ = svec_right(X) (σ₁ simple)",
    differential=_specnorm_d, guard=_sv("top_singular_vectors"),
    sympy="SymPy has no matrix expression for the spectral norm")


def record_of_guarded(node):
    """The spectral record of a node that has a differentiability guard, or None."""
    if isinstance(node, E.SpecNorm):
        return SPECNORM
    if isinstance(node, E.Spectral):
        rec = SPECTRAL.get(node.name)
        return rec if rec is not None and rec.guard is not None else None
    return None


def guard_of(node):
    """The differentiability guard of a node (a function of its argument's value), or
    None: the Spectral nodes' and SpecNorm's."""
    rec = record_of_guarded(node)
    return rec.guard if rec is not None else None
