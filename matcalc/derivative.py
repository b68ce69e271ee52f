"""The Derivative the API returns: the answer with what it was derived from, read-only.

What other modules read of it is public: ``text``, ``f``, ``wrt``, ``var``, ``expr``,
``kind``, ``layout``, ``notes``, ``symbols`` (kinds as text), ``typed_symbols`` (name ->
typed Sym, read-only), ``symmetric`` (the convention asked for), ``declarations`` (the
symbols= given), ``gradient`` and ``projected_gradient`` (for a Hessian: the gradient it
is the Jacobian of, unprojected and as ``matcalc.diff`` returns it).  Assigning to a
field raises; ``replace(expr=...)`` makes a changed copy (the checks' tests use it to
make a wrong derivative).
"""
from types import MappingProxyType

from . import expr as E
from . import shapes as S
from .binding import check_result_shape, check_values, gradient_value, values_dict
from .conventions import project_gradient
from .errors import EvaluationError, ShapeError
from .layout import in_variable_shape
from .printing import to_latex, to_text

_FIELDS = ("text", "f", "var", "typed_symbols", "expr", "kind", "layout", "symmetric",
           "declarations", "gradient", "notes")


class Derivative:
    """The derivative of f with respect to one variable, as the API returns it."""

    def __init__(self, text, f, var, symbols, expr, kind, layout, symmetric=None,
                 declarations=None, gradient=None, notes=()):
        put = object.__setattr__
        put(self, "text", text)                   # the input
        put(self, "f", f)                         # typed tree of f
        put(self, "wrt", var.name)
        put(self, "var", var)                     # typed symbol of the variable
        put(self, "_symbols", dict(symbols))     # name -> typed Sym (typed_symbols)
        put(self, "expr", expr)                   # the answer, simplified and tidied
        put(self, "kind", kind)     # "gradient" | "derivative" (wrt a scalar) | "jacobian" | "hessian"
        put(self, "layout", layout)
        put(self, "symmetric", symmetric)         # None | "sym" | "cookbook"
        put(self, "declarations", declarations)   # the symbols= given
        put(self, "gradient", gradient)           # a Hessian's unprojected gradient, else None
        put(self, "notes", list(notes))           # what the reader should know
        put(self, "_steps", None)
        put(self, "_guards", None)                # numeric.guarded_nodes, on first evaluate

    def __setattr__(self, name, value):
        raise AttributeError(f"a Derivative is read-only (cannot set {name}); "
                             f"use d.replace({name}=...) for a changed copy")

    def __delattr__(self, name):
        raise AttributeError(f"a Derivative is read-only (cannot delete {name})")

    def replace(self, **changes):
        """A copy with the given fields changed (``expr``, ``gradient``, ...)."""
        unknown = set(changes) - set(_FIELDS)
        if unknown:
            raise TypeError(f"Derivative has no field {', '.join(sorted(unknown))}")
        now = {k: getattr(self, k) for k in _FIELDS}
        now.update(changes)
        symbols = now.pop("typed_symbols")
        return Derivative(now.pop("text"), now.pop("f"), now.pop("var"), symbols, now.pop("expr"),
                          now.pop("kind"), now.pop("layout"), **now)

    # printed forms
    def __str__(self):
        return to_text(self.expr)

    def __repr__(self):
        return f"<Derivative d/d{self.wrt} {self.text!r}: {self}>"

    def latex(self, abbreviate=False):
        """The answer in LaTeX; abbreviate=True names its long repeated subexpressions
        ("… \\text{where } W = …", ``matcalc.abbreviate``) where that is markedly shorter."""
        if abbreviate:
            from .abbreviate import of_derivative
            ab = of_derivative(self)
            if ab:
                return ab.latex()
        return to_latex(self.expr)

    def _repr_latex_(self):             # the notebook shows the abbreviated form
        return "$" + self.latex(abbreviate=True) + "$"

    @property
    def typed_symbols(self):
        """name -> typed Sym of every symbol, in order of appearance (read-only)."""
        return MappingProxyType(self._symbols)

    @property
    def symbols(self):
        """Every symbol's kind with its size names, e.g. {"X": "matrix(m,n)"}."""
        return {n: S.kind_string(s) for n, s in self.typed_symbols.items()}

    @property
    def projected_gradient(self):
        """For a Hessian: its gradient along the variable's own space, as matcalc.diff
        returns it (CONTRACT §2); None for other derivatives."""
        if self.gradient is None:
            return None
        return project_gradient(self.gradient, self.var, self.symmetric)

    @property
    def steps(self):
        if self._steps is None:
            from .steps import derivation
            object.__setattr__(self, "_steps", derivation(self))
        return self._steps

    @property
    def shape(self):
        return self.expr.shape

    def evaluate(self, values):
        """The NumPy value of the derivative at the given values (CONTRACT §3 shapes)."""
        from .evaluation import evaluate_for_user
        from .numeric import check_guards, guarded_nodes, internal, to_user
        values = values_dict(values)
        env, sizes = {}, {}
        for n in self.typed_symbols:
            if n in values:
                env[n] = internal(values[n], n)
        used = E.symbols_of(self.expr)
        missing = [n for n in used if n not in values]
        if missing:
            raise ShapeError(f"no value given for {', '.join(missing)}")
        check_values(self.expr, {n: self.typed_symbols[n] for n in env}, env, sizes)
        S.check_value_sizes([self.f, self.expr], sizes)
        if self._guards is None:
            object.__setattr__(self, "_guards", guarded_nodes(self.f, self.wrt))
        check_guards(self._guards, env, sizes)     # f differentiable at the point, or an error
        out = evaluate_for_user(self.expr, env, sizes)
        self._no_nan(out, env, sizes)
        check_result_shape(self.expr, out, env, sizes, "the derivative")
        if in_variable_shape(self.kind, self.layout) and self.wrt in env:
            return gradient_value(self.wrt, out, env[self.wrt], values[self.wrt])
        return to_user(self.expr.shape, out)

    def _no_nan(self, out, env, sizes):
        """A derivative is never NaN at finite values: where the answer's value is (0/0 in
        r / ||r|| at r = 0, x ./ |x| at x = 0), an EvaluationError that names the part
        with no value, for f may not be differentiable there, or its derivative there is a
        limit the closed form does not take (||relu(u)|| where u < 0 around the point)."""
        import numpy as np
        if not np.any(np.isnan(out)) or not all(np.all(np.isfinite(v)) for v in env.values()):
            return
        from .evaluation import no_value_cause
        where = no_value_cause(self.expr, env, sizes)
        part = f": {where} has no finite value there" if where else ""
        raise EvaluationError(
            f"the derivative is not a number at these values{part}. f is not differentiable "
            f"at this point, or its derivative there is a limit that the answer's closed "
            f"form does not take; evaluate it at a point nearby")

    def to_sympy(self):
        """The SymPy matrix expression of the answer (MatrixSymbol, Trace, Inverse, ...)."""
        from .interop import to_sympy
        return to_sympy(self.expr)[0]

    def to_code(self, target="numpy", dtype=None):
        """Python source of f_and_grad(...) (and hessian(...) for a Hessian) for the
        target "numpy", "jax" or "torch", computing in dtype "float32" or "float64"
        (None: the type of the values given)."""
        from .codegen import generate
        return generate(self, target=target, dtype=dtype)

    def check(self, **kw):
        """This derivative against finite differences of f at random points where f is
        defined (``matcalc.check.check``): a CheckResult with ok, error, tolerance,
        points, status and note.  Never ok where the answer is NaN, infinite or of the
        wrong shape; status "no valid point" or "not run" (sizes too large) is not ok
        either.  Keywords: trials, seed, tol, values (a first point), max_tries,
        time_limit."""
        from .check import check
        return check(self, **kw)
