"""The targets: how each operation is spelt in NumPy, JAX and PyTorch.

``Backend._kf`` is the table, keyed by operation (as SymPy's ``NumPyPrinter._kf``):
the function that computes it in the target library.  A spelling that starts with an
underscore is a helper of the generated module, whose source is in ``HELPERS``; the
module defines the helpers it uses.  A target is a subclass that overrides entries of
the table and the few operations that are more than a call (``kron`` on transposed
operands, ``vdot`` of vectors, numbers as tensors for torch).

What each target does about the floating-point type is in one place per class, the
``dtype`` section.  ``dtype`` is "float32", "float64" or None (the inputs' type: the
code computes in ``result_type`` of its array arguments, at least float32): the
arguments are converted on entry to a chosen type, and arrays the code creates (eye,
zeros, ...) get the type.  Nothing global changes when a module is imported: JAX code
runs under the user's own ``jax_enable_x64`` (float64 code checks that it is on).
"""
import functools
import inspect

import matcalc.codegen.ir as ir
from .matfun_helpers import HELPERS as _MATFUN_HELPERS
from .values import lit
from ..errors import MatcalcError, UnsupportedError
from ..operators import ARRAY_FUNCTIONS, ARRAY_RECORDS, ELEMENTWISE_RECORDS


def _functions(target):
    """The elementwise functions' entries for target, from the operator records:
    ({name: spelling}, {name: numbers before the argument}, {name: import line})."""
    spell, first, imports = {}, {}, {}
    for r in ELEMENTWISE_RECORDS:
        fn, args = r.spelling(target)
        if fn is None:
            continue
        spell[r.name] = fn
        if args:
            first[r.name] = args
        if target in r.imports:
            imports[r.name] = r.imports[target]
    for r in ARRAY_RECORDS:                  # softmax, logsumexp
        if r.spelling(target):
            spell[r.name] = r.spelling(target)
    return spell, first, imports

DTYPES = ("float32", "float64")


def dtype_name(dtype):
    """"float32", "float64" or None from a name or a NumPy type (np.float32); a
    MatcalcError for another."""
    if dtype is None:
        return None
    name = dtype if isinstance(dtype, str) else getattr(dtype, "__name__", str(dtype))
    if name not in DTYPES:
        raise MatcalcError(f"unknown dtype {dtype!r}; use \"float32\", \"float64\" or None "
                           f"(None: the type of the values given)")
    return name


def _last_args(target):
    """{name: numbers after the argument} of the elementwise functions for target."""
    return {r.name: r.last(target) for r in ELEMENTWISE_RECORDS if r.last(target)}


def C(text):
    return ir.Const(str(text))


class Backend:
    name = "numpy"
    lib = "np"
    module = "numpy"             # what must be importable to run the code
    install = "numpy"            # what to install when it is not
    float_out = True             # scalars returned as Python floats

    # operation -> function (an underscore: a helper of the generated module)
    _kf = {
        "log1p": "np.log1p",
        "eye": "np.eye", "zeros": "np.zeros", "full": "np.full", "empty": "np.empty",
        "solve": "np.linalg.solve", "inv": "np.linalg.inv", "det": "np.linalg.det",
        "cholesky": "np.linalg.cholesky", "matrix_power": "np.linalg.matrix_power",
        "norm": "np.linalg.norm", "spec_norm": "np.linalg.norm",
        "outer": "_outer", "kron": "np.kron", "trace": "np.trace", "diagonal": "np.diagonal",
        "diag": "np.diag", "sum": "np.sum", "einsum": "np.einsum", "vdot": "np.vdot",
        "swapaxes": "np.swapaxes", "power": "np.power",
        "logdet": "_logdet", "commutation": "_commutation", "kron_identity": "_kron_identity",
        "spd_inv_logdet": "_spd_inv_logdet", "spd_solve": "_spd_solve", "kron_sum": "_kron_sum",
        "perm_sum": "_perm_sum",
        # matrix functions (CONTRACT §5.1): helpers that take the function's name (expm,
        # logm, sqrtm, powm), the kernels of operators/matrix_kernels.py; of a general
        # square X, and (_eig) of a symmetric X from its one eigh
        "matfunc": "_matfunc", "frechet": "_frechet", "frechet_jac": "_frechet_jac",
        "eigh_sym": "_eigh_sym", "matfunc_eig": "_matfunc_eig", "frechet_eig": "_frechet_eig",
        "frechet_jac_eig": "_frechet_jac_eig", "trace_eig": "_trace_eig",
        "expm_and_frechet": "_expm_and_frechet",
        # spectral functions and the vectors their gradients are written with
        "eigenvalue": "_eigenvalue", "nuclear": "_nuclear", "eigvec_eig": "_eigvec_eig", "svec": "_svec",
        "polar": "_polar", "sign_nonzero": "_sign_nonzero",
        "softmax_logsumexp": "_softmax_logsumexp",
    }
    # the elementwise functions, from their records
    _fn, _first_args, _fn_imports = _functions("numpy")
    _kf = {**_kf, **_fn}
    unspelt = {}
    # "expm", "dexpm", "jexpm" in a target's table: its own general algorithm for the
    # exponential, its Fréchet derivative, its Jacobian (JAX, PyTorch)
    # import lines that operations of the table need (beside the elementwise functions')
    _op_imports = {}
    # the helpers that need PRELUDE (LAPACK and BLAS through SciPy)
    _needs_prelude = ("_spd_inv_logdet", "_spd_solve", "_outer")

    def __init__(self, dtype=None):
        self.helpers = {}
        self.dtype = dtype_name(dtype)
        self.dtype_var = "dtype"     # where the code keeps the inputs' type (dtype None)
        self.extra_imports = {}      # import lines that the spellings used need

    # -- dtype: everything the target does about the floating-point type -----------

    imports = ("import numpy as np",)
    default_float64 = True       # creation functions make float64 unless told

    def dtype_lib(self):
        """The library's object for the chosen type (np.float32)."""
        return ir.Lib(f"{self.lib}.{self.dtype}")

    def dtype_kwargs(self):
        """Keyword arguments that creation functions get (eye, zeros, ...)."""
        if self.dtype is None:
            return (("dtype", ir.Name(self.dtype_var)),)
        if self.dtype == "float64" and self.default_float64:
            return ()
        return (("dtype", self.dtype_lib()),)

    def dtype_of(self, arrays):
        """The type the code computes in when dtype is None: that of its array arguments
        (at least float32; float64 with none)."""
        if not arrays:
            return ir.Call(f"{self.lib}.result_type", (ir.Lib("float"),))
        return ir.Call(f"{self.lib}.result_type",
                       tuple(ir.Name(a) for a in arrays) + (ir.Lib(f"{self.lib}.float32"),))

    def convert_in(self, name, scalar=False):
        """The expression that converts an argument on entry (None: none)."""
        if self.dtype is None:
            return None
        if scalar:
            return ir.Call(f"{self.lib}.{self.dtype}", (ir.Name(name),))
        return ir.Call(f"{self.lib}.asarray", (ir.Name(name),), (("dtype", self.dtype_lib()),))

    def convert_scalar(self, name):
        """With dtype None, the conversion of a number argument to the arrays' type
        (NumPy's np.sin(0.5) is a float64 that would upcast float32 arrays), or None."""
        return ir.Method(ir.Name(self.dtype_var), "type", (ir.Name(name),))

    def linalg_errors(self):
        """The exceptions the target's linear algebra raises at a singular matrix."""
        import numpy as np
        return (np.linalg.LinAlgError,)

    def number(self, node):
        """A number-only expression where the target wants an array (torch: a tensor)."""
        return node

    # -- the table ----------------------------------------------------------------

    def spells(self, op):
        """Whether the target has a spelling (or a helper) of its own for op."""
        return op in self._kf

    def spelling(self, op):
        fn = self._kf.get(op)
        if fn is None:
            raise MatcalcError(f"the {self.name} target has no spelling for the operation {op!r}")
        imp = self._fn_imports.get(op) or self._op_imports.get(op)
        if imp:
            self.extra_imports[imp] = True
        if fn.startswith("_"):
            self.add_helper(fn)
        return fn

    def add_helper(self, fn):
        """Define the helper fn in the generated module, and the helpers its source calls."""
        todo = [fn]
        while todo:
            name = todo.pop()
            if name in self.helpers:
                continue
            src = HELPERS[self.name].get(name) or _kernel_source(self.name, name)
            if src is None:
                raise MatcalcError(f"the {self.name} target has no helper {name}")
            self.helpers[name] = src
            todo.extend(n for n in _helper_names(src) if n != name and n not in self.helpers
                        and (n in HELPERS[self.name] or _matrix_kernel_names(self.name, n)))

    def call(self, op, *args, **kwargs):
        return ir.Call(self.spelling(op), tuple(args), tuple(kwargs.items()))

    def create(self, op, *args):
        return ir.Call(self.spelling(op), tuple(args), self.dtype_kwargs())

    # -- creation
    def eye(self, n):
        return self.create("eye", n)

    def zeros(self, shape):
        return self.create("zeros", shape)

    def empty(self, shape):
        return self.create("empty", shape)

    def full(self, shape, v):
        return self.create("full", shape, v)

    def to_float(self, x):
        return ir.Call("float", (x,)) if self.float_out else x

    # -- linear algebra and reductions
    def solve(self, a, b):
        return self.call("solve", a, b)

    def spd_solve(self, a, b):
        return self.call("spd_solve", a, b)

    def spd_inv_logdet(self, a):
        """(inverse, log det) of an spd matrix from one Cholesky factorisation, or None
        where the target has nothing better than inv."""
        return self.call("spd_inv_logdet", a)

    def spec_norm(self, a):
        return self.call("spec_norm", a, C(2))

    def kron(self, a, b):
        # np.kron is several times slower on a transposed (Fortran-ordered) operand
        a = ir.Call("np.ascontiguousarray", (a,)) if _is_T(a) else a
        b = ir.Call("np.ascontiguousarray", (b,)) if _is_T(b) else b
        return self.call("kron", a, b)

    def kron_identity(self, a, n, identity_first):
        """a ⊗ I(n), or I(n) ⊗ a when identity_first, for a matrix a (strided writes)."""
        return self.call("kron_identity", a, n, C(identity_first))

    def kron_sum(self, terms):
        """Σ c·(A ⊗ B) written into one buffer (terms: (coefficient, A, B) of IR), or None
        where the target has no such helper."""
        if not self.spells("kron_sum"):
            return None
        return self.call("kron_sum", ir.Tuple_(tuple(ir.Tuple_(t) for t in terms)))

    def perm_sum(self, x, a, b, m, n, right=False):
        """a x + b K(m,n) x (right: a x + b x K(m,n)) for a matrix x, in one pass (a, b:
        IR of numbers), or None where the target has no such helper."""
        if not self.spells("perm_sum"):
            return None
        return self.call("perm_sum", x, a, b, m, n, **({"right": C("True")} if right else {}))

    def softmax_logsumexp(self, a):
        """(softmax(a), logsumexp(a)) of a vector from one exp, or None where the target
        has no such helper."""
        if not self.spells("softmax_logsumexp"):
            return None
        return self.call("softmax_logsumexp", a)

    def kron_identity_formed(self, a, n, identity_first):
        eye = self.eye(n)
        return self.kron(eye, a) if identity_first else self.kron(a, eye)

    def diagonal(self, a):
        return ir.Method(self.call("diagonal", a), "copy")

    def sum_axis(self, a, axis):
        return ir.Method(a, "sum", (C(axis),))

    def einsum(self, spec, *args):
        return self.call("einsum", C(repr(spec)), *args)

    def vdot(self, a, b, rep):
        if rep == "V":
            return ir.Bin("@", a, b)
        return self.call("vdot", a, b)

    # _first_args (from the records): numbers before the operand (np.logaddexp(0.0, u))

    def func(self, name, a):
        a = self.number(a)
        last = (self.number(C(x)) for x in _last_args(self.name).get(name, ()))
        return self.call(name, *(C(x) for x in self._first_args.get(name, ())), a, *last)

    def array_func(self, name, a):
        """softmax / logsumexp of an array (1-D or 2-D); torch's take dim=0, and a
        reduction over all entries flattens its operand first."""
        return self.call(name, a)

    def power(self, a, p):
        return self.call("power", self.number(a), p)

    def chol_logdet(self, a):
        """log det of an spd a from its Cholesky factor: 2 sum(log(diag(L)))."""
        lib = self.lib
        return ir.Bin("*", C("2.0"), ir.Call(f"{lib}.sum", (ir.Call(f"{lib}.log", (
            ir.Call(f"{lib}.diagonal", (self.call("cholesky", a),)),)),)))

    # -- matrix and spectral functions (CONTRACT §5.1)

    def matrix_function(self, kind, name, args, p=None):
        """The call computing a MatFunc (kind "matfunc": f(X)), a Frechet ("frechet":
        L_f(X, E)) or a FrechetJac ("frechet_jac") of a general square X, f = name with
        exponent p, args the lowered X (and E): the target's own algorithm for the
        exponential where it has one, else the helper where the target has one (NumPy:
        SciPy's algorithms), else an UnsupportedError naming the function, the target and
        what to do instead."""
        own = {"matfunc": "", "frechet": "d", "frechet_jac": "j"}[kind] + name
        if self.spells(own):
            return self.call(own, *args)
        if self.spells(kind):
            return self.call(kind, C(repr(name)), *args, **self._p_kwarg(p))
        what = {"matfunc": f"{name}(X)", "frechet": f"the Fréchet derivative of {name}(X) (d{name})",
                "frechet_jac": f"the Jacobian of {name}(X) (j{name})"}[kind]
        raise UnsupportedError(
            f"{what} of a matrix that is not symmetric: {self.install.split(' ')[0]} has no general "
            f"algorithm for it, and the {self.name} target computes it from eigh, of a symmetric "
            f"argument only; generate the code for the numpy target (SciPy's), or make the "
            f"argument symmetric by declaration (symmetric, spd) or by form (X^T X)")

    def matrix_function_eig(self, kind, name, lam, U, args=(), p=None):
        """The same for a symmetric X from its eigh (lam, U: ``eigh_sym``), args the lowered
        E of a Frechet."""
        return self.call(kind + "_eig", C(repr(name)), lam, U, *args, **self._p_kwarg(p))

    @staticmethod
    def _p_kwarg(p):
        """The exponent of a power as a keyword argument (none for the other functions)."""
        return {} if p is None else {"p": lit(p)}

    def spectral(self, name, a):
        """λ_max, λ_min, ‖a‖_* or ‖a‖₁ of the 2-D a."""
        if name == "norm1":
            return self.call("sum", self.func("abs", a))
        if name == "nuclear":
            return self.call("nuclear", a)
        return self.call("eigenvalue", a, C(repr(name.split("_")[1])))

    def spectral_vector(self, name, a):
        """svec_left/right (m×1, n×1) or polar (m×n) of the 2-D a: a 2-D result (the
        eigenvectors come from eigh: ``eigvec``)."""
        if name == "polar":
            return self.call("polar", a)
        return self.call("svec", a, C(repr(name.split("_")[1])))

    def guard(self, op, a):
        """The call that raises where f is not differentiable at a (a spectral record's
        code_guard), or None where the target cannot raise on a value (JAX under jit)."""
        return self.call(op, a)

    def eigvec(self, which, lam, U):
        """The eigenvector (n×1) of the largest / smallest of lam (which "max" / "min")."""
        return self.call("eigvec_eig", lam, U, C(repr(which)))

    PRELUDE = """try:  # LAPACK's Cholesky routines and BLAS's gemm and ger, where SciPy is installed
    from scipy.linalg import blas as _blas, lapack as _lapack
except ImportError:  # pragma: no cover  (NumPy alone: LU and np.outer)
    _blas = _lapack = None"""

    def module_imports(self):
        out = list(self.imports) + [i for i in self.extra_imports if i not in self.imports]
        out += [i for i in self.dtype_imports() if i not in out]
        if self.PRELUDE and any(h in self.helpers for h in self._needs_prelude):
            out += ["", self.PRELUDE]
        return tuple(out)

    def dtype_imports(self):
        """Module lines after the imports that the type needs (none: nothing global)."""
        return ()

    def helper_sources(self):
        return tuple(self.helpers[k] for k in sorted(self.helpers) if self.helpers[k])


def _is_T(n):
    return ir.is_transposed_name(n) or (isinstance(n, ir.Attr) and n.attr == "T")


def _table(base, lib, drop, **over):
    """NumPy's table with np. read as lib, less the operations in drop, with over."""
    out = {k: (lib + v[3:] if v.startswith("np.") else v) for k, v in base.items() if k not in drop}
    out.update(over)
    return out


# JAX and PyTorch have no general logm, sqrtm, X^p: only the symmetric case, from eigh
_MATRIX_EIGH_ONLY = {op: "of a symmetric argument only, from its eigh (matfunc_eig, ...); expm by "
                         "the library's own (expm, dexpm, jexpm)"
                     for op in ("matfunc", "frechet", "frechet_jac")}


class JaxBackend(Backend):
    name = "jax"
    lib = "jnp"
    module = "jax"
    install = "jax (pip install jax)"
    float_out = False
    # operations that this target does without a spelling of its own (and how)
    unspelt = {"kron_identity": "formed with kron(eye, a)", "spd_solve": "solve",
               "spd_inv_logdet": "inv (no Cholesky inverse in jax.numpy)",
               "kron_sum": "term by term (XLA fuses the sum)",
               "perm_sum": "the two terms apart (XLA fuses the sum)",
               "sign_nonzero": "never called: jitted code cannot raise on a value (guard)",
               "softmax_logsumexp": "softmax and logsumexp apart (XLA fuses them)",
               **_MATRIX_EIGH_ONLY}
    _fn, _first_args, _fn_imports = _functions("jax")
    _kf = {**_table(Backend._kf, "jnp.", unspelt, outer="jnp.outer", expm="jax.scipy.linalg.expm",
                    dexpm="_expm_frechet", jexpm="_expm_frechet_jac",
                    expm_and_frechet="jax.scipy.linalg.expm_frechet"), **_fn}
    _needs_prelude = ()
    PRELUDE = None
    _op_imports = {op: "import jax.scipy.linalg" for op in ("expm", "dexpm", "jexpm", "expm_and_frechet")}

    # -- dtype: the user's own jax_enable_x64 decides what float64 means; never set here
    imports = ("import numpy as np", "import jax", "import jax.numpy as jnp")
    default_float64 = False

    def guard(self, op, a):
        return None         # jitted code cannot raise on a value (its kernels give nan)

    def convert_in(self, name, scalar=False):
        if self.dtype is None:
            return ir.Call("jnp.asarray", (ir.Name(name),))
        return ir.Call("jnp.asarray", (ir.Name(name),), (("dtype", self.dtype_lib()),))

    def dtype_imports(self):
        if self.dtype != "float64":
            return ()
        return ("", "if not jax.config.jax_enable_x64:  # float64 needs JAX's x64 mode, which is the user's to set",
                "    raise ImportError(\"this code computes in float64: call jax.config.update('jax_enable_x64', \"",
                "                      \"True) before importing it, or generate it with dtype='float32' or None\")")

    def convert_scalar(self, name):
        return None

    def linalg_errors(self):
        return ()

    def spd_inv_logdet(self, a):
        return None

    def spd_solve(self, a, b):
        return self.solve(a, b)

    def kron(self, a, b):
        return self.call("kron", a, b)

    def kron_identity(self, a, n, identity_first):
        return self.kron_identity_formed(a, n, identity_first)

    def diagonal(self, a):
        return self.call("diagonal", a)



class TorchBackend(Backend):
    name = "torch"
    lib = "torch"
    module = "torch"
    install = "PyTorch (pip install torch)"
    float_out = False
    unspelt = {"kron_identity": "formed with kron(eye, a)", "spd_solve": "solve",
               "kron_sum": "term by term", "perm_sum": "the two terms apart",
               "softmax_logsumexp": "softmax and logsumexp apart",
               **_MATRIX_EIGH_ONLY}
    _fn, _first_args, _fn_imports = _functions("torch")
    _kf = {**_table(Backend._kf, "torch.", unspelt, outer="torch.outer", spec_norm="torch.linalg.matrix_norm",
                    vdot="torch.dot", power="torch.pow", expm="torch.linalg.matrix_exp",
                    dexpm="_expm_frechet", jexpm="_expm_frechet_jac",
                    expm_and_frechet="_expm_and_frechet"), **_fn}
    _needs_prelude = ()
    PRELUDE = None

    # -- dtype: the inputs' type (None) or the chosen one; never an upcast of its own
    imports = ("import torch",)
    default_float64 = False

    def dtype_of(self, arrays):
        self.helpers["_float_dtype"] = HELPERS["torch"]["_float_dtype"]
        return ir.Call("_float_dtype", tuple(ir.Name(a) for a in arrays))

    def convert_in(self, name, scalar=False):
        if self.dtype is None:
            # a number or an integer array computes in float64, as NumPy does (torch's
            # as_tensor would make a Python float float32)
            self.helpers["_tensor"] = HELPERS["torch"]["_tensor"]
            return ir.Call("_tensor", (ir.Name(name),))
        return ir.Call("torch.as_tensor", (ir.Name(name),), (("dtype", self.dtype_lib()),))

    def convert_scalar(self, name):
        return None

    def linalg_errors(self):
        import torch
        err = getattr(torch.linalg, "LinAlgError", None)
        return (err,) if err is not None else ()

    def number(self, node):
        # torch's functions take no Python floats (torch.sqrt(1.5)): numbers as tensors
        if ir.is_number(node):
            return ir.Call("torch.tensor", (node,), self.dtype_kwargs())
        return node

    def full(self, shape, v):
        return ir.Bin("*", v, self.create("ones", shape))

    def spelling(self, op):
        if op == "ones":
            return "torch.ones"
        return super().spelling(op)

    def spd_solve(self, a, b):
        return self.solve(a, b)

    def array_func(self, name, a):
        rec = ARRAY_FUNCTIONS[name]
        if rec.flatten:
            a = ir.Method(a, "reshape", (C("-1"),))
        return self.call(name, a, **({"dim": C(0)} if rec.torch_dim else {}))

    def spec_norm(self, a):
        return self.call("spec_norm", a, C(2))

    def kron(self, a, b):
        # torch.kron fails on some strided views (transposes, inv's results)
        return self.call("kron", ir.Method(a, "contiguous"), ir.Method(b, "contiguous"))

    def kron_identity(self, a, n, identity_first):
        return self.kron_identity_formed(a, n, identity_first)

    def diagonal(self, a):
        return ir.Method(self.call("diagonal", a), "clone")

    def vdot(self, a, b, rep):
        if rep == "V":
            return self.call("vdot", a, b)
        return ir.Call("torch.sum", (ir.Bin("*", a, b),))


BACKENDS = {"numpy": Backend, "jax": JaxBackend, "torch": TorchBackend}
TARGETS = tuple(BACKENDS)


def backend(target, dtype=None):
    """A fresh backend for target and dtype (a MatcalcError naming the targets for another)."""
    cls = BACKENDS.get(target)
    if cls is None:
        raise MatcalcError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
    return cls(dtype)


# ----------------------------------------------------------------------------- helpers

_NP_HELPERS = {
    "_kron_sum": '''def _kron_sum(terms):
    """The sum of c (A ⊗ B) over terms (c, A, B) of one shape, written into one buffer.
    Entry (i r, j s) is the sum of c A[i, j] B[r, s]: with the A's as the columns of U and
    the B's as the rows of V, a product of rank len(terms) whose (i j, r s) layout is
    moved to (i r, j s) a block of A's rows at a time (512 KiB of temporary, in the cache):
    one product and one copy, where the terms one by one took a pass each with NumPy's
    short inner loops (0.21-0.38x of that at n = 20-60 for the Gaussian Hessian's three)."""
    p, q = terms[0][1].shape
    r, s = terms[0][2].shape
    dtype = np.result_type(*[x for t in terms for x in t])     # (the c's: Python numbers, weak)
    U = np.empty((p * q, len(terms)), dtype=dtype)
    V = np.empty((len(terms), r * s), dtype=dtype)
    for k, (c, a, b) in enumerate(terms):
        U[:, k] = (c * a).reshape(-1)
        V[k] = b.reshape(-1)
    out = np.empty((p, r, q, s), dtype=dtype)
    step = max(1, (1 << 16) // max(1, q * r * s))
    for i in range(0, p, step):
        j = min(p, i + step)
        out[i:j] = (U[i * q:j * q] @ V).reshape(j - i, q, r, s).transpose(0, 2, 1, 3)
    return out.reshape(p * r, q * s)
''',
    "_perm_sum": '''def _perm_sum(x, a, b, m, n, right=False):
    """a x + b K(m,n) x for a matrix x of m n rows, or (right) a x + b x K(m,n) for one of
    m n columns (K(m,n) vec(X) = vec(Xᵀ) for an m×n X: row i n + j of K x is row j m + i
    of x), in one pass a block of 512 KiB at a time, so that the sum and its scale stay
    in the cache (the two terms apart were three passes over x's size: a strided copy,
    the sum, the scale)."""
    if right:
        k = x.shape[0]
        xs, ts = x.reshape(k, n, m), x.reshape(k, m, n).swapaxes(1, 2)   # x, x K by (row, j, i)
    else:
        k = x.shape[1]
        xs, ts = x.reshape(m, n, k), x.reshape(n, m, k).swapaxes(0, 1)   # x, K x by (i, j, column)
    out = np.empty(xs.shape, dtype=np.result_type(x, a, b))
    step = max(1, (1 << 16) // max(1, xs.shape[1] * xs.shape[2]))
    for i in range(0, len(out), step):
        o = out[i:i + step]
        if a == b:
            np.add(xs[i:i + step], ts[i:i + step], out=o)
            if a != 1:
                o *= a
        else:
            np.multiply(ts[i:i + step], b, out=o)
            o += a * xs[i:i + step]
    return out.reshape(x.shape)
''',
    "_spd_inv_logdet": '''def _spd_inv_logdet(a):
    """(inverse, log det) of a symmetric positive definite a from one Cholesky
    factorisation (half the work of inv); LU where that is not at hand or a is not PD."""
    if _lapack is not None:
        potrf, potri = _lapack.get_lapack_funcs(("potrf", "potri"), (a,))
        c, info = potrf(a, lower=False, clean=True)
        if info == 0:
            inv, info = potri(c, lower=False)
            if info == 0:
                inv = inv + np.triu(inv, 1).T       # LAPACK's layout: .T is C-ordered
                return inv.T, 2.0 * np.sum(np.log(np.diagonal(c)))
    sign, value = np.linalg.slogdet(a)
    return np.linalg.inv(a), (value if sign > 0 else float("nan"))
''',
    "_softmax_logsumexp": '''def _softmax_logsumexp(z):
    """(softmax(z), logsumexp(z)) of a vector z from one exp(z - max z), as _softmax and
    _logsumexp give them apart (an infinite or nan maximum as they treat it)."""
    m = z.max()                 # (the methods: half the call overhead of np.max at n = 100)
    e = np.exp(z - m)
    s = e.sum()
    if not np.isfinite(m):
        return e / s, (float(np.log(np.sum(np.exp(z)))) if np.isnan(m) else float(m))
    return e / s, float(m + np.log(s))
''',
    "_outer": '''def _outer(a, b):
    """The outer product a b^T of two vectors with BLAS where SciPy is installed (np.outer's
    broadcast multiply ran 1.3-2x slower at every size measured), else np.outer.  Timed
    after a matrix-vector product of the same size, as a gradient computes it: up to 4 MiB
    gemm with k = 1 and beta = 0 into an empty matrix (written, not read); up to 8 MiB
    ger into np.zeros; up to 32 MiB that gemm a block of rows (128 KiB) at a time, so
    that its passes stay in the cache (0.78-0.96x of ger from 9 to 32 MiB); beyond, ger
    into np.zeros, whose pages come fresh from the system, already zero."""
    if not (_blas is not None and a.dtype == b.dtype and a.dtype in (np.float64, np.float32)
            and a.ndim == 1 and b.ndim == 1 and a.size and b.size):
        return np.outer(a, b)
    f64 = a.dtype == np.float64
    n, m = a.size, b.size
    size = n * m * a.itemsize
    gemm, col = (_blas.dgemm if f64 else _blas.sgemm), b[:, None]
    if size <= 1 << 22:
        c = np.empty((m, n), dtype=a.dtype, order="F")
        return gemm(1.0, col, a[None, :], beta=0.0, c=c, overwrite_c=True).T
    if size <= 1 << 23 or size > 1 << 25:
        ger = _blas.dger if f64 else _blas.sger
        return ger(1.0, b, a, a=np.zeros((m, n), dtype=a.dtype, order="F"), overwrite_a=True).T
    out = np.empty((n, m), dtype=a.dtype)
    step = max(1, 16384 // m)
    for i in range(0, n, step):
        c = out[i:i + step].T           # F-ordered: gemm writes it in place
        r = gemm(1.0, col, a[None, i:i + step], beta=0.0, c=c, overwrite_c=True)
        if r is not c:                  # pragma: no cover  (a copy: put it in place)
            out[i:i + step] = r.T
    return out
''',
    "_spd_solve": '''def _spd_solve(a, b):
    """a^-1 b for a symmetric positive definite a, by Cholesky (LU where that fails)."""
    if _lapack is not None:
        posv, = _lapack.get_lapack_funcs(("posv",), (a, b))
        _, x, info = posv(a, b, lower=False)
        if info == 0:
            return x
    return np.linalg.solve(a, b)
''',
    "_logdet": '''def _logdet(a):
    """log det(a): nan where the determinant is not positive (as log would give)."""
    sign, value = np.linalg.slogdet(a)
    return value if sign > 0 else float("nan")
''',
    "_kron_identity": '''def _kron_identity(a, n, identity_first):
    """a ⊗ I(n), or I(n) ⊗ a, without multiplying out its zeros: a zero matrix (calloc'd
    pages) whose nonzero diagonals are written through a strided view."""
    p, q = a.shape
    if identity_first:               # I(n) ⊗ a: a on the n diagonal blocks
        out = np.zeros((n, p, n, q), dtype=a.dtype)
        np.einsum("jajb->jab", out)[...] = a
    else:                            # a ⊗ I(n): a[i, k] times I(n) in block (i, k)
        out = np.zeros((p, n, q, n), dtype=a.dtype)
        np.einsum("ajbj->jab", out)[...] = a
    return out.reshape(n * p, n * q)
''',
    "_commutation": '''def _commutation(m, n, dtype=None):
    """K(m,n), with K @ vec(X) == vec(X.T) for an m-by-n X (vec stacks columns)."""
    return np.eye(m * n, dtype=dtype)[np.arange(m * n).reshape(n, m).T.reshape(-1)]
''',
}

def _kernel_source(target, fn):
    """The source of a NumPy kernel of the records (operators/kernels.py) or of the matrix
    functions (operators/matrix_kernels.py) as a helper of the generated module: it runs
    the very function that Derivative.evaluate runs."""
    if target != "numpy":
        return None
    if _matrix_kernel_names(target, fn):
        from ..operators import matrix_kernels
        return inspect.getsource(getattr(matrix_kernels, fn))
    if not any(r.numpy == fn for r in ELEMENTWISE_RECORDS + ARRAY_RECORDS):
        return None
    from ..operators import kernels
    return inspect.getsource(getattr(kernels, fn))


def _matrix_kernel_names(target, fn):
    """Whether fn is a kernel of operators/matrix_kernels.py (NumPy code only)."""
    return target == "numpy" and fn in _matrix_kernels()


@functools.lru_cache(maxsize=None)
def _matrix_kernels():
    """The names of the kernels of operators/matrix_kernels.py, read from its source (so
    that asking imports no NumPy)."""
    import ast
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "operators" / "matrix_kernels.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)))


def _helper_names(src):
    """The helper names (_name) a helper's source mentions."""
    import re
    return set(re.findall(r"\b(_[A-Za-z]\w*)\b", src))


HELPERS = {
    "numpy": _NP_HELPERS,
    "jax": {
        "_logdet": '''def _logdet(a):
    """log det(a): nan where the determinant is not positive (as log would give)."""
    sign, value = jnp.linalg.slogdet(a)
    return jnp.where(sign > 0, value, jnp.nan)
''',
        "_commutation": '''def _commutation(m, n, dtype=None):
    """K(m,n), with K @ vec(X) == vec(X.T) for an m-by-n X (vec stacks columns)."""
    return jnp.eye(m * n, dtype=dtype)[np.arange(m * n).reshape(n, m).T.reshape(-1)]
''',
        **_MATFUN_HELPERS["jax"],
    },
    "torch": {
        "_spd_inv_logdet": '''def _spd_inv_logdet(a):
    """(inverse, log det) of a symmetric positive definite a from one Cholesky factorisation."""
    L, info = torch.linalg.cholesky_ex(a)
    if int(info) == 0:
        return torch.cholesky_inverse(L), 2.0 * torch.sum(torch.log(torch.diagonal(L)))
    sign, value = torch.linalg.slogdet(a)
    return torch.linalg.inv(a), torch.where(sign > 0, value, torch.nan)
''',
        "_logdet": '''def _logdet(a):
    """log det(a): nan where the determinant is not positive (as log would give)."""
    sign, value = torch.linalg.slogdet(a)
    return torch.where(sign > 0, value, torch.nan)
''',
        "_commutation": '''def _commutation(m, n, dtype=None):
    """K(m,n), with K @ vec(X) == vec(X.T) for an m-by-n X (vec stacks columns)."""
    return torch.eye(m * n, dtype=dtype)[torch.arange(m * n).reshape(n, m).T.reshape(-1)]
''',
        "_tensor": '''def _tensor(x):
    """x as a tensor in its own type: a tensor as it is, a floating NumPy array in its
    type; a Python number, or integers, in float64 (NumPy's type for them)."""
    if isinstance(x, torch.Tensor):
        return x
    if not hasattr(x, "dtype"):                 # made in float64, not rounded through float32
        return torch.as_tensor(x, dtype=torch.float64)
    t = torch.as_tensor(x)
    return t if t.is_floating_point() else t.to(torch.float64)
''',
        "_float_dtype": '''def _float_dtype(*xs):
    """The floating type of the tensors xs (PyTorch's default where none is floating)."""
    out = None
    for x in xs:
        if x.is_floating_point():
            out = x.dtype if out is None else torch.promote_types(out, x.dtype)
    return torch.get_default_dtype() if out is None else out
''',
        **_MATFUN_HELPERS["torch"],
    },
}
