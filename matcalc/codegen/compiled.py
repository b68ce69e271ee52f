"""Loading generated source, and the callable that ``matcalc.compile`` returns."""
from .adapter import check_values, view
from ..errors import MissingDependencyError


def load(source, name="matcalc_generated"):
    """The namespace of a generated module (exec of source we generated ourselves)."""
    ns = {"__name__": name}
    exec(compile(source, f"<{name}>", "exec"), ns)  # noqa: S102 - our own generated code
    return ns


def require(backend):
    """A MissingDependencyError (a MatcalcError and an ImportError) that says what to
    install when the target's library is missing."""
    import importlib.util
    try:
        found = importlib.util.find_spec(backend.module) is not None
    except (ImportError, ValueError):       # a module set to None in sys.modules, ...
        found = False
    if not found:
        raise MissingDependencyError(f"the {backend.name} target needs {backend.install}, "
                                     f"which is not installed")


class CompiledFunction:
    """A generated function, callable with the values positionally (in the order of
    ``params``), by keyword under the symbols' own names, or as one dict of values."""

    def __init__(self, fn, names, source, target, derivative, extra_sizes=(), dtype=None,
                 linalg_errors=()):
        self.fn = fn
        self.params = list(names)          # the symbols' names, in argument order
        self.source = source
        self.target = target
        self.derivative = derivative
        self.extra_sizes = [s for s, _ in extra_sizes]
        self._extra = list(extra_sizes)
        self.dtype = dtype                  # "float32", "float64" or None (the values' type)
        self._linalg_errors = tuple(linalg_errors)
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", "f_and_grad")

    def _convert(self, v):
        """A value for NumPy code: an array of the chosen type, or of its own floating
        type with dtype None (integers become float64); a number as a Python float."""
        if self.target == "numpy":
            import numpy as np
            a = np.asarray(v)
            if a.ndim == 0:
                return float(a)
            if self.dtype is not None:
                return a.astype(self.dtype, copy=False)
            return a if a.dtype.kind == "f" else a.astype(float)
        return v

    # positional-only self: a symbol may be called "self" (compile("self^T self", wrt="self"))
    def __call__(self, /, *args, **kwargs):
        if len(args) == 1 and isinstance(args[0], dict) and not kwargs:
            kwargs = dict(args[0])
            args = ()
        if len(args) > len(self.params):
            raise TypeError(f"{self.__name__}() takes {len(self.params)} values ({', '.join(self.params)}), "
                            f"got {len(args)}")
        values = dict(zip(self.params, args))
        sizes = {}
        extra = dict(self._extra)
        for k, v in kwargs.items():
            if k in self.extra_sizes and k not in self.params:
                sizes[extra[k]] = int(v)
                continue
            if k not in self.params:
                raise TypeError(f"{self.__name__}() got a value for {k!r}, which is not a symbol of "
                                f"the expression ({', '.join(self.params)})")
            if k in values:
                raise TypeError(f"{self.__name__}() got two values for {k!r}")
            values[k] = v
        missing = [n for n in self.params if n not in values]
        if missing:
            raise TypeError(f"{self.__name__}() needs a value for {', '.join(missing)}")
        missing = [s for s, _ in self._extra if extra[s] not in sizes]
        if missing:
            raise TypeError(f"{self.__name__}() needs the size {', '.join(missing)} (as a keyword)")
        self._check_shapes(values, sizes)
        args = [self._convert(values[n]) for n in self.params]
        try:
            return self.fn(*args, **sizes)
        except Exception as err:
            from ..errors import EvaluationError
            if getattr(err, "matcalc_domain", False):
                # a matrix or spectral function where it is not defined or not
                # differentiable (the helpers' _MatrixFunctionError names it)
                raise EvaluationError(f"{self.__name__}() has no value at these values: {err}") from None
            if isinstance(err, self._linalg_errors):
                # numpy's (and PyTorch's) LinAlgError: a singular matrix where an inverse is taken
                raise EvaluationError(f"{self.__name__}() has no value at these values: a matrix is "
                                      f"singular where its inverse, power or determinant is taken "
                                      f"({err})") from None
            raise

    def _check_shapes(self, values, sizes):
        """The values must have the shapes the derivation took (as Derivative.evaluate
        requires): the code itself would compute something else from others, e.g.
        tr(A) tr(B) for tr(A ⊗ B) taken with A and B square."""
        d = self.derivative[0] if isinstance(self.derivative, list) else self.derivative
        symbols = view(d).symbols
        syms = {n: symbols[n] for n in self.params if n in symbols}
        env = {n: self._entries_or_stand_in(values[n]) for n in syms}
        by_name = {name: s for s, name in self._extra}
        bound = {by_name[k]: v for k, v in sizes.items() if k in by_name}
        check_values(syms, env, bound)
        from ..shapes import check_value_sizes
        check_value_sizes([view(d).f, view(d).expr], bound)

    def _entries_or_stand_in(self, v):
        """v as the evaluator holds it; for JAX or PyTorch code, a value whose entries
        cannot be read here (a JAX tracer under jit, grad or vmap; a tensor that requires
        grad) is zeros of its shape: its shape is checked, its structure (symmetric,
        diagonal) cannot be."""
        from ..errors import ShapeError
        from ..numeric import internal
        try:
            return internal(v)
        except (ShapeError, RuntimeError):      # RuntimeError: PyTorch's, for a tensor in autograd
            shape = getattr(v, "shape", None)
            if self.target == "numpy" or shape is None or getattr(v, "dtype", None) is None:
                raise
            import numpy as np
            return internal(np.zeros(tuple(int(k) for k in shape)))

    def __repr__(self):
        return f"<matcalc compiled {self.__name__}({', '.join(self.params)}) [{self.target}]>"
