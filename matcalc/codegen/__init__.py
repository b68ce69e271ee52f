"""Code generation: a derivative as a readable Python module for NumPy, JAX or PyTorch.

    d = matcalc.diff("tr(X^T A X)", wrt="X")
    print(d.to_code())                      # source of f_and_grad(X, A)
    fn = matcalc.compile("tr(X^T A X)", wrt="X")
    value, grad = fn(X, A)                  # or fn(X=X, A=A), or fn({"X": X, "A": A})

The module defines ``f_and_grad(<symbols>)`` returning (value of f, derivative), and for
a Hessian also ``hessian(<symbols>)`` and ``f_grad_hessian(<symbols>)``.  The variable
comes first among the parameters, the other symbols follow in order of appearance.
Values are what ``Derivative.evaluate`` takes and returns: floats for scalars, 1-D
arrays for vectors, 2-D arrays for matrices; a gradient has the variable's shape.

How the code is made: typed trees are lowered to a structured IR (``ir``: statements
that know what they read and write), one lowering per node type (``lowering.LOWERINGS``),
then small passes rewrite it (``passes``) and ``printer`` prints it.  Each optimisation
below is a named rewrite that ``generate(d, target, optimizations={name: False})`` can
switch off (``optimizations.OPTIMIZATIONS`` lists them):

* the trees of f and of its derivatives are hash-consed, and every distinct node is
  computed once into a temporary: f shares its subexpressions with the derivative;
* a product chain is associated by dynamic programming on estimated sizes (vectors
  first), and a sub-product already computed, or its transpose, costs nothing; a long
  chain (tr(A1 X … A64 X)) takes the longest product at hand at either end and folds
  the rest from beside it, so a sum of its rotations makes O(k) products;
* a product's constant scalars are one number, computed as the evaluator computes it
  (``fold_constants``: exp(700)² exp(-700)² is 1, not inf · 0);
* an inverse that only multiplies becomes ``solve``; one that is needed on its own (or
  multiplies more than two right-hand sides) is computed once with ``inv``;
* ``diag(v) M`` is the broadcast ``v[:, None] * M``, a commutation matrix is a
  reshape, a Kronecker product that multiplies a vector or matrix is applied as
  (A ⊗ B) vec(X) = vec(B X Aᵀ), never formed;
* ``tr(P Q)`` is a sum of elementwise products (the cyclic rotation and the split are
  chosen by cost), ``sum(P Q)`` goes through row and column sums, ``||e||²`` is one dot
  product, ``log(1 + u)`` is ``log1p(u)`` and ``sigmoid(u)`` reuses ``exp(u)``;
* ``A ⊗ I`` and ``I ⊗ A`` are written into a zero matrix through a strided view, never
  multiplied out, and a sum of Kronecker products into one buffer (``kron_sum``); a
  product beside a Kronecker product is taken inside it, (x ⊗ I) M (xᵀ ⊗ I) = x xᵀ ⊗ M
  (``kron_mixed_product``); (A ⊗ I) M (C ⊗ I) with a block-diagonal M (diag(vec U),
  I ⊗ B, their products and sums: the Hessian of a layer f(W X) in W) is one product over
  M's stacked blocks, M never formed (``kron_blockdiag``);
* ``sigmoid(u)`` is ``-expm1(-softplus(u))`` where softplus(u) is computed anyway
  (``sigmoid_softplus``), and minus signs move out of products and cancel
  (``fold_negations``, a pass; exact);
* a bias ``b 1ᵀ`` in a matrix sum is the broadcast ``b[:, None]`` (``ones_broadcast``),
  ``softmax(z)`` and ``logsumexp(z)`` of one z share one exp (``softmax_logsumexp``), and
  the NumPy code writes an outer product in one pass with BLAS (gemm with beta = 0,
  blocks of rows beyond 8 MiB) where SciPy is installed;
* ``tr(f(X))`` and ``diag(f(X))`` of an elementwise f take f of X's diagonal only
  (``elementwise_diagonal``);
* a matrix function of a symmetric argument (expm, logm, sqrtm, X^p, λ_max, its
  eigenvector) takes one ``eigh`` of it, shared by f(S), L_f(S, ·) and its Jacobian, and
  tr f(S) is the sum of f of its eigenvalues; expm(X) and L_exp(X, E) needed together come
  from one ``expm_frechet`` (``lower_matfun``; these are how the lowering works, not
  switches);
* where an intermediate matrix is made and used row by row (U Vᵀ - X in the factorisation
  gradient: its norm, and 2 (U Vᵀ - X) V), the NumPy code also has
  ``_f_and_grad_in_blocks``, which makes and uses it a block of rows at a time, each
  block staying in the cache (the fusion XLA does under jit; see ``rowblocks`` and
  ``rowloop``), and
  ``f_and_grad`` calls it when that intermediate is over about 512 KiB.

``dtype`` ("float32", "float64", or None for the type of the values given) is the type
the code computes in (``backends``: the arguments converted on entry, the arrays it makes
typed); importing the module changes nothing global.

Symbol names are made safe Python identifiers: keywords, builtins and library names
(``lambda``, ``sum``, ``np``) get a trailing underscore, other characters are NFKC-
normalised (as Python does) or replaced.  The source is generated from the parsed tree,
never from user text, so ``compile_function`` may exec it.
"""

from . import printer
from .adapter import view
from .backends import BACKENDS, TARGETS, backend
from .compiled import CompiledFunction, load, require
from .names import RESERVED, Names, python_name
from .optimizations import OPTIMIZATIONS, Options
from .program import Program
from ..errors import MatcalcError

__all__ = ["generate", "compile_function", "load", "CompiledFunction", "TARGETS",
           "BACKENDS", "OPTIMIZATIONS", "program", "python_name", "Names", "RESERVED"]


def _views(d):
    derivs = list(d) if isinstance(d, (list, tuple)) else [d]
    if not derivs:
        raise MatcalcError("nothing to generate: no derivative given")
    views = [view(x) for x in derivs]
    if len({v.text for v in views}) > 1:
        raise MatcalcError("the derivatives given to generate() are of different functions")
    return views


def program(d, target="numpy", optimizations=None, dtype=None):
    """The generated module as IR (an ir.Module) and the Program that made it (its
    ``opts.fired`` names the optimisations that applied)."""
    prog = Program(_views(d), target, Options(optimizations), dtype)
    return prog.module(), prog


def generate(d, target="numpy", optimizations=None, dtype=None):
    """Python source of a module defining f_and_grad(...) (and hessian(...),
    f_grad_hessian(...) for a Hessian) for the Derivative d, or a list of them (several
    variables of one f: f_and_grad returns (f, (d1, d2, ...))).  ``optimizations``
    switches named optimisations off ({"solve": False}; see OPTIMIZATIONS).  ``dtype``:
    "float32", "float64", or None for the type of the values given (see backends)."""
    module, _ = program(d, target, optimizations, dtype)
    return printer.module(module)


def compile_function(d, target="numpy", optimizations=None, dtype=None):
    """The generated f_and_grad of the Derivative d (or a list of them) as a callable
    (for a Hessian, f_grad_hessian: returning value, gradient and Hessian), computing in
    dtype (see ``generate``).  For JAX the function is jitted.  (``matcalc.compile``
    derives d from text.)"""
    B = backend(target, dtype)
    require(B)
    derivs = d if isinstance(d, list) else [d]
    hessian = any(x.kind == "hessian" for x in derivs)
    prog = Program(_views(derivs), target, Options(optimizations), dtype)
    source = printer.module(prog.module())
    ns = load(source)
    fn = ns["f_grad_hessian" if hessian else "f_and_grad"]
    if target == "jax" and not prog.extra_sizes:
        import jax
        jitted = jax.jit(fn)
        jitted.__doc__ = fn.__doc__
        fn = jitted
    return CompiledFunction(fn, list(prog.syms), source, target, d, prog.extra_sizes, B.dtype,
                            B.linalg_errors())
