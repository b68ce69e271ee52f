"""The record types (frozen) and the table type that the engine's views are."""
from contextlib import contextmanager
from typing import ClassVar
from types import MappingProxyType

from ..errors import UnsupportedError
from ..expr import ArrayFunc
from .frozen import Record, factory

TARGETS = ("numpy", "jax", "torch")       # the code targets a record spells itself for
_LIB = {"numpy": "np.", "jax": "jnp.", "torch": "torch."}


class OperatorTable(dict):
    """A view of the records, keyed by operator name: a name without an entry is an
    UnsupportedError naming the operator and the piece, never a KeyError."""

    def __init__(self, piece, *args, derive=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.piece = piece
        # key -> the entry its record gives (None: none), derived at each lookup and never
        # stored: a table is not written after import (no state on the derivation path)
        self.derive = derive

    def __missing__(self, key):
        if self.derive is not None:
            entry = self.derive(key)
            if entry is not None:
                return entry
        name = getattr(key, "__name__", key)       # a node table is keyed by the node class
        raise UnsupportedError(f"the operator {name} has no {self.piece}: declare it in its "
                               f"record in matcalc/operators")

    def has(self, key):
        """Whether key has an entry, given or derived from its record (``in`` and ``get``
        see only the given ones: they stay the dict's, fast on the derivation path)."""
        try:
            self[key]
        except UnsupportedError:
            return False
        return True


class Elementwise(Record):
    """An elementwise function f, applied entry by entry (the shape of f(X) is X's).

    name        the grammar keyword, the text spelling and the key of every table
    derivative  x -> f′(x), an expression of the argument (built with ``matcalc.build``)
    formula     the rule's text, as the steps and ``matcalc rules`` show it (rule d-<name>)
    latex       the LaTeX command applied as \\cmd\\left(x\\right) (None: \\operatorname{name})
    latex_form  a LaTeX template with {} where f is not written as a call (\\sqrt{x})
    sympy       (sympy, x) -> f(x) in SymPy
    sympy_class the SymPy function class that reads back as f (None: none, as log1p)
    sympy_match (sympy, e) -> the argument where SymPy's e is f of it, else None: for
                what SymPy writes with more arguments (Max(0, x), Heaviside(x, 0))
    numpy       the NumPy spelling, both the evaluator and the generated code's call:
                np.<f>, scipy.special.<f>, or _<f> for a kernel of ``kernels.py``
    first_args  numbers passed before the argument (np.logaddexp(0.0, x) is softplus(x))
    last_args   numbers passed after it (np.heaviside(x, 0.0) is step(x)); both go with the
                np. spelling to every target that reads it as its library's
    code        target -> spelling where it is not numpy's with np. read as the library's
    imports     target -> the import line the generated module needs for the spelling
    at          special points: {x: f(x)} with both exact numbers (the simplifier folds them)
    nonnegative f(x) ≥ 0 everywhere (|f(x)| = f(x))
    domain      where the fuzzer may evaluate it: "any" or "positive"
    singular_at_zero  not differentiable (or not defined) at 0 (the fuzzer keeps zeros away)
    fast_growing      the fuzzer keeps its argument shallow (exp of exp overflows)
    fuzz_weight how often the fuzzer's generator picks it (0: never, said in the test)
    """
    name: str
    derivative: object
    formula: str
    numpy: str
    sympy: object
    sympy_class: str = None
    sympy_match: object = None
    latex: str = None
    latex_form: str = None
    first_args: tuple = ()
    last_args: tuple = ()
    code: MappingProxyType = factory(dict)
    imports: MappingProxyType = factory(dict)
    at: MappingProxyType = factory(dict)
    nonnegative: bool = False
    domain: str = "any"
    singular_at_zero: bool = False
    fast_growing: bool = False
    fuzz_weight: int = 1

    arity: ClassVar[int] = 1          # one argument ...

    @staticmethod
    def shape(arg_shape):
        """... and the shape of its argument (expr.Func's shape rule)."""
        return arg_shape

    def __post_init__(self):
        for name in ("code", "imports", "at"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    @property
    def zero_at_zero(self):
        """f(0) = 0: f(D) = diag(f(diag(D))) for a diagonal D."""
        return self.at.get(0) == 0

    def spelling(self, target):
        """(function, numbers before the argument) in the generated code for target."""
        if target in self.code:
            return self.code[target], ()
        if self.numpy.startswith("np."):
            return _LIB[target] + self.numpy[3:], self.first_args
        if target == "numpy":
            return self.numpy, self.first_args
        return None, ()

    def last(self, target):
        """The numbers after the argument in the generated code for target."""
        return () if target in self.code else self.last_args

    def evaluator(self):
        """The NumPy function that evaluates f (imports NumPy; SciPy on first call)."""
        fn = resolve_numpy(self.numpy)
        if self.first_args or self.last_args:
            args = tuple(float(a) for a in self.first_args)
            last = tuple(float(a) for a in self.last_args)
            return lambda x, _f=fn: _f(*args, x, *last)
        return fn


def resolve_numpy(spelling):
    """The function a NumPy spelling names: np.<f>, a kernel _<f>, or scipy.<...>.<f>
    (SciPy imported at the first call, so that evaluating without it stays possible)."""
    if spelling.startswith("np."):
        import numpy as np
        fn = np
        for attr in spelling[3:].split("."):     # np.linalg.inv
            fn = getattr(fn, attr)
        return fn
    if spelling.startswith("_"):
        import matcalc.operators.kernels as kernels
        return getattr(kernels, spelling)
    if spelling.startswith("scipy."):
        module, _, attr = spelling.rpartition(".")

        def call(x):
            import importlib
            try:
                lib = importlib.import_module(module)
            except ImportError as err:
                from ..errors import MissingDependencyError
                raise MissingDependencyError(
                    f"evaluating {attr} needs SciPy: pip install scipy "
                    f"(or pip install \"matcalc[scipy]\")") from err
            return getattr(lib, attr)(x)
        call.__name__ = attr
        return call
    raise ValueError(f"not a NumPy spelling: {spelling}")


class ArrayFunction(Record):
    """A function of a whole array (softmax of a vector, logsumexp over all entries): the
    node ``expr.ArrayFunc(name, arg, rule)`` with rule = ``shape``, which ``node(arg)`` builds.

    name        the grammar keyword, the text spelling and the key of every table
    shape       the argument's shape -> the result's (expr.ArrayFunc's shape rule)
    check       (shape checker, typed argument) -> None: the type rule (a ShapeError
                through checker.error where the argument does not fit)
    differential (node, d argument) -> d(node), an expression linear in the d argument
    formula     the rule's text, as the steps and ``matcalc rules`` show it (d-<name>)
    numpy       a kernel of ``kernels.py`` (_<f>): the evaluator and the generated
                NumPy code's helper
    code        target -> the library function (jax, torch)
    torch_dim   torch's spelling takes dim=0 (torch.softmax(x, dim=0))
    flatten     it reduces over all entries: torch's operand is flattened first
    scalar      a -> the value at a scalar argument (softmax(t) = 1, logsumexp(t) = t)
    latex       the LaTeX operator (None: \\operatorname{name})
    expand      a -> the same function written with the language's other nodes
                (exp(x) / sum(exp(x))): what SymPy is given, as SymPy has no softmax
    fuzz_weight how often the fuzzer's generator picks it
    """
    name: str
    shape: object
    check: object
    differential: object
    formula: str
    numpy: str
    code: MappingProxyType = factory(dict)
    torch_dim: bool = False
    flatten: bool = False
    scalar: object = None
    latex: str = None
    expand: object = None
    fuzz_weight: int = 1

    arity: ClassVar[int] = 1

    def __post_init__(self):
        object.__setattr__(self, "code", MappingProxyType(dict(self.code)))

    def spelling(self, target):
        return self.numpy if target == "numpy" else self.code.get(target)

    def evaluator(self):
        return resolve_numpy(self.numpy)

    def node(self, arg):
        """The node of this function of arg, carrying the record's shape rule."""
        return ArrayFunc(self.name, arg, self.shape)


class SpectralFunction(Record):
    """A function of a matrix's spectrum (``expr.Spectral``: λ_max, λ_min, ‖X‖_*, ‖x‖₁) or
    a vector or factor of its decomposition (``expr.SpectralVec``: the top eigen- and
    singular vectors, the polar factor), which the gradients of the former are written
    with (CONTRACT §5.1).  The spectral norm ‖X‖₂ is the node ``expr.SpecNorm``; its
    record (``operators.spectral.SPECNORM``) gives its differential and its guard.

    name        the grammar keyword (a call) and the key of every table
    node        the node class's name: "Spectral" (a scalar) or "SpectralVec"
    text        the text template, {} the argument: "lambda_max({})", "||{}||_*"
    latex       the LaTeX template: "\\lambda_{{\\max}}\\left({}\\right)", ...
    shape       its shape rule in words (expr.<node>._compute_shape computes it)
    symmetric   its argument must be symmetric (by declaration or by form: shapes.py's
                type rule, ``simplify.is_symmetric``), else a ShapeError
    value       (NumPy array) -> its value, from ``matcalc.spectral_values`` (imported
                on the first call: ``matcalc diff`` imports no NumPy)
    differential (node, d argument) -> d(node), linear in d argument; None: the
                differential is an UnsupportedError whose message is ``unsupported``
    formula     the rule's text, as the steps and ``matcalc rules`` show it
    guard       (NumPy array) -> None, raising EvaluationError where the function is not
                differentiable at the argument's value (a repeated λ_max, a
                rank-deficient X, a zero entry): ``Derivative.evaluate`` calls it on the
                argument of every node of f that depends on the variable
    code_guard  the operation (codegen's backends table) that generated code calls on the
                argument for the same check, where the derivative's own kernels would not
                raise there (‖x‖₁: sign(x) is 0 at a zero entry; the eigen- and singular
                vectors and the polar factor raise by themselves)
    unsupported why the node's own differential is not given (a SpectralVec: it would be
                a second derivative of the spectral function)
    sympy       why SymPy has no counterpart (interop refuses with it)
    fuzz_weight how often the fuzzer's generator picks it
    """
    name: str
    node: str
    text: str
    latex: str
    shape: str
    value: object
    formula: str
    differential: object = None
    guard: object = None
    code_guard: str = None
    symmetric: bool = False
    unsupported: str = None
    sympy: str = None
    fuzz_weight: int = 1

    arity: ClassVar[int] = 1

    @property
    def called(self):
        """Written as a call name(arg) (lambda_max, polar, ...), not as a notation (‖X‖_*)."""
        return self.text == self.name + "({})"

    def spell(self, arg):
        return self.text.format(arg)

    def spell_latex(self, arg):
        return self.latex.format(arg)



class MatrixFunction(Record):
    """A function f of a square matrix, not elementwise (CONTRACT §5.1): the node
    ``expr.MatFunc(name, arg, p)``, its Fréchet derivative ``expr.Frechet(name, arg, dir, p)``
    = L_f(X, E) and the matrix of that linear map, ``expr.FrechetJac(name, arg, p)``
    (vec L_f(X, E) = J vec(E)).

    name        the node's name (and the key of every table): expm, logm, sqrtm, powm
    text        its call spelling (None: written as a power, X^p)
    frechet     the call spelling of L_f(X, E) (dexpm(X, E); dpowm(X, E, p) takes p last)
    jacobian    the call spelling of its Jacobian matrix (jexpm(X); jpowm(X, p))
    derivative  (X, p) -> f′(X), an expression of the language's nodes (the simplifier
                makes it canonical): L_f(X, E) = f′(X) E where E commutes with X, and
                tr L_f(X, E) = tr(f′(X) E) for every E
    scalar      (x, p) -> f(x) for a 1×1 x (or entry by entry on a vector: f(D) of a
                diagonal D), with the language's elementwise functions
    prime_formula f′ in words, part of the rule d-<name> that the steps cite
    values      the name spectral_values.py knows the function by ("power" for powm)
    principal   the principal branch: X may have no eigenvalue on the closed negative
                real axis (logm, sqrtm, X^p); the fuzzer and --check draw X near I
    at_identity f(I) as "I" or "0" (the simplifier folds it); at_zero f(0) likewise
    fast_growing the fuzzer and --check keep its argument small (expm overflows)
    fuzz_weight how often the fuzzer's generator picks it
    """
    name: str
    text: str
    frechet: str
    jacobian: str
    derivative: object
    scalar: object
    prime_formula: str
    values: str
    principal: bool = False
    at_identity: str = None
    at_zero: str = None
    fast_growing: bool = False
    fuzz_weight: int = 1

    arity: ClassVar[int] = 1

    @property
    def takes_p(self):
        return self.name == "powm"

    @property
    def formula(self):
        """The differential rule d-<name>, as the steps and ``matcalc rules`` show it."""
        f, args = ("Xᵖ", "X, dX, p") if self.text is None else (f"{self.text}(X)", "X, dX")
        return f"d {f} = {self.frechet}({args}), the Fréchet derivative L_f(X, dX), with {self.prime_formula}"

    def spelled(self, p=None):
        """The function as the messages name it: expm(X), X^(1/3)."""
        if self.text is not None:
            return f"{self.text}(X)"
        return f"X^({p})" if p is not None else "X^p"

    def value(self, X, p=None):
        """f(X) (NumPy and SciPy imported here, at the first evaluation)."""
        from .. import spectral_values as sv
        with self._spelled(p):
            return sv.value(self.values, X, _float(p))

    def check_domain(self, X, p=None):
        """EvaluationError where X is outside f's domain (an eigenvalue on the closed
        negative real axis under a principal branch), None inside it."""
        if not self.principal:
            return
        from .. import spectral_values as sv
        with self._spelled(p):
            sv.check_principal(self.values, X, _float(p))

    def frechet_value(self, X, E, p=None):
        """L_f(X, E)."""
        from .. import spectral_values as sv
        with self._spelled(p):
            return sv.frechet(self.values, X, E, _float(p))

    @contextmanager
    def _spelled(self, p):
        """The values' messages name X^p with its exact exponent (X^(1/3), not
        X^(0.3333333333333333))."""
        from ..errors import EvaluationError
        try:
            yield
        except EvaluationError as err:
            if p is None or _float(p) == p:
                raise
            raise EvaluationError(str(err).replace(f"X^({_float(p)!r})", f"X^({p})")) from None

    def jacobian_value(self, X, p=None):
        """The n²×n² J with vec L_f(X, E) = J vec(E) (matrix_kernels._frechet_jac: the
        closed form for a symmetric X, the eigenvector form or columns otherwise)."""
        from .. import spectral_values as sv
        with self._spelled(p):
            return sv.jacobian(self.values, X, _float(p))


def _float(p):
    return None if p is None else float(p)
