"""A generated module for one or several derivatives of one f: its functions as IR,
through the passes, to an ir.Module that ``printer`` prints.

``Program(views, target, opts).module()`` builds ``f_and_grad`` (and ``hessian``,
``f_grad_hessian`` for a Hessian).  For NumPy, where a row loop pays
(``rowblocks.plan``), it also builds ``_<name>_in_blocks``, which the plain function
calls when the intermediate the loop keeps out of memory is large.
"""
import matcalc.codegen.ir as ir
import matcalc.codegen.passes as passes
import matcalc.codegen.rowblocks as rowblocks
from .backends import backend
from .lowering import Lowerer
from .names import Names, python_name
from .rowloop import dispatch, lower_row_loop
from .values import short


class Output:
    """One returned value: its tree, the name it gets, and how it reaches the user."""

    def __init__(self, tree, name, mode):
        self.tree, self.name, self.mode = tree, name, mode   # mode: "value" | "grad" | "user"


def user_code(B, v, mode):
    """A lowered value in the user's shapes (Derivative.evaluate's)."""
    r, c = v.shape
    if v.rep == "S":
        return B.to_float(v.code)
    if mode == "grad":
        return v.code
    if v.rep == "V" and r == 1:       # a row: 2-D (1, n), as evaluate returns it
        return ir.Method(v.code, "reshape", (ir.Const("1"), ir.Const("-1")))
    return v.code


class Program:
    """The pieces of a generated module for one or several derivatives (DerivativeViews)."""

    def __init__(self, views, target, opts, dtype=None):
        self.target = target
        self.B = backend(target, dtype)
        self.opts = opts
        self.views = views
        self.v0 = views[0]
        syms = self.v0.symbols
        wrts = [v.wrt for v in views]
        order = wrts + [n for n in syms if n not in set(wrts)]
        self.syms = {n: syms[n] for n in order}
        self.module_names = Names({"_sigmoid", "_logdet", "_commutation"})
        self.params = {n: self.module_names.take(python_name(n)) for n in self.syms}
        self.B.dtype_var = self.module_names.take("dtype")
        self.hessian = any(v.kind == "hessian" for v in views)
        self.extra_sizes = []

    # -- the trees
    def gradient_tree(self, v):
        """The derivative that f_and_grad returns for v (the projected gradient for a
        Hessian, as matcalc.diff gives it)."""
        from ..layout import in_variable_shape
        from ..simplify import tidy
        if v.kind != "hessian":
            return v.expr, ("grad" if in_variable_shape(v.kind, v.layout) else "user")
        if v.var.is_scalar:
            return tidy(v.gradient), "user"
        return tidy(v.projected_gradient), "grad"

    def value_tree(self):
        """f in the engine's canonical form, so that it shares its subexpressions with
        the derivatives (which are built from canonical pieces)."""
        from ..simplify import simplify, tidy
        return tidy(simplify(self.v0.f))

    # -- functions
    def function(self, fname, groups, doc):
        """ir.Functions for fname (groups: the returned values, a list of lists of
        Outputs; a group of several is returned as a tuple)."""
        outputs = [o for g in groups for o in g]
        if self.target == "numpy" and self.opts.enabled("row_blocks"):
            probe = Lowerer(self.B, self.syms, self.params, self.module_names.copy(), self.opts)
            plan = rowblocks.plan(probe.prepare([o.tree for o in outputs]))
            if plan is not None:
                blocks = f"_{fname}_in_blocks"
                rows, extra = self._function(blocks, groups, doc[:-1] + ", a block of rows at a time.",
                                             row_loop=plan)
                if not extra:
                    self.opts("row_blocks")
                    plain, extra = self._function(fname, groups, doc, dispatch_to=(plan, blocks))
                    return [rows, plain], extra
        fn, extra = self._function(fname, groups, doc)
        return [fn], extra

    def _function(self, fname, groups, doc, row_loop=None, dispatch_to=None):
        names = self.module_names.copy()
        low = Lowerer(self.B, self.syms, self.params, names, self.opts)
        outputs = [o for g in groups for o in g]
        trees = low.prepare([o.tree for o in outputs])
        arrays = []
        for n, p in self.params.items():
            scalar = self.syms[n].is_scalar
            conv = self.B.convert_in(p, scalar)
            if conv is not None:
                low.body.append(ir.Assign((p,), conv, ("P",)))
            if not scalar:
                arrays.append(p)
        if self.B.dtype is None:
            # the type the arrays the code creates get (a size: dropped where none is made)
            low.body.append(ir.Assign((self.B.dtype_var,), self.B.dtype_of(arrays), ("I",),
                                      "the type of the arrays given"))
            low.size_names.add(self.B.dtype_var)
            for n, p in self.params.items():
                conv = self.B.convert_scalar(p) if self.syms[n].is_scalar else None
                if conv is not None:
                    low.body.append(ir.Assign((p,), conv, ("P",)))
        if row_loop is not None:
            lower_row_loop(low, row_loop)
        if dispatch_to is not None:
            plan, blocks = dispatch_to
            low.body.append(dispatch(low, plan, blocks, list(self.params.values())))
        guards = self._guards(low, names)
        results = [(o, low.ev(t)) for o, t in zip(outputs, trees)]
        ret = {}
        renamed = {}
        for o, v in results:
            code = user_code(self.B, v, o.mode)
            held = v.code.id if isinstance(v.code, ir.Name) else None
            if held in renamed:                  # the same value returned twice
                code = ir.substitute(code, {held: ir.Name(renamed[held])})
            if code == v.code and held in low.temps and held not in renamed:
                # the temporary that holds this result takes the result's name
                new = names.take(o.name)
                _rename(low, held, new)
                renamed[held] = new
                ret[id(o)] = new
            else:
                name = names.take(o.name)
                low.body.append(ir.Assign((name,), code, (v.rep,)))
                ret[id(o)] = name
        items = []
        for g in groups:
            if len(g) == 1:
                items.append(ir.Name(ret[id(g[0])]))
            else:
                items.append(ir.Tuple_(tuple(ir.Name(ret[id(o)]) for o in g)))
        low.body.append(ir.Return(items[0] if len(items) == 1 else ir.Tuple_(tuple(items))))
        keep = frozenset(ret.values()) | frozenset(self.params.values()) | frozenset(guards)
        fn = ir.Function(fname, tuple(self.params.values()), tuple(n for _, n in low.extra_sizes),
                         doc, tuple(low.body), frozenset(low.temps), keep, frozenset(low.size_names))
        fn = passes.run(fn, self.opts, self.target)
        if self.B.dtype == "float32":
            check_float32(fn)
        return fn, low.extra_sizes

    def _guards(self, low, names):
        """Where f is not differentiable at the values (‖x‖₁ at a zero entry), the
        derivative's own kernels may not notice (sign(0) = 0): a call per node of f whose
        spectral record gives a code_guard, on its argument, raises there as
        Derivative.evaluate does.  Returns the names the calls are bound to."""
        from ..numeric import guarded_nodes
        from ..operators import record_of_guarded
        out = []
        for v in self.views:
            for node, _ in guarded_nodes(v.f, v.wrt):
                op = getattr(record_of_guarded(node), "code_guard", None)
                if op is None:
                    continue
                arg = low.ev(node.arg)
                call = self.B.guard(op, arg.code)
                if call is None:
                    continue
                name = names.take("_differentiable")
                low.body.append(ir.Assign((name,), call, (arg.rep,), f"{node} is differentiable here"))
                out.append(name)
        return out

    # -- the module
    def module(self):
        from ..shapes import kind_string
        v0 = self.v0
        p = self.params
        shapes = []
        for n, s in self.syms.items():
            shapes.append(f"    {p[n]}: {kind_string(s)}" + (f"   (the symbol {n})" if p[n] != n else ""))
        deriv_lines = []
        for v in self.views:
            g, _ = self.gradient_tree(v)
            label = {"gradient": "gradient", "derivative": "derivative", "jacobian": "Jacobian",
                     "hessian": "gradient"}[v.kind]
            deriv_lines.append(f"    d/d{v.wrt}: {label} = {g}")
            if v.kind == "hessian":
                deriv_lines.append(f"    Hessian in {v.wrt} = {v.expr}")
        many = len(self.views) > 1
        head = [
            '"""Generated by matcalc (matcalc.codegen) for the %s target.' % self.target,
            "",
            f"    f = {v0.text}",
            *deriv_lines,
            "",
            "Arguments (vectors as 1-D arrays, scalars as numbers):",
            *shapes,
            "",
            f"f_and_grad({', '.join(p.values())}) returns (f, " +
            ("(" + ", ".join(f"d/d{v.wrt}" for v in self.views) + ")" if many else f"d/d{v0.wrt}") + ")"
            + (f";\nhessian(...) returns the Hessian{'s' if many else ''} and f_grad_hessian(...) "
               "all three." if self.hessian else "."),
        ]
        if self.target == "jax":
            head.append("The functions are jit-friendly: jax.jit(f_and_grad).")
        head.append('"""')
        fns, extra = [], []
        fval = Output(self.value_tree(), "f", "value")
        gouts = [Output(g, _deriv_name(v, p), mode) for v, (g, mode) in
                 zip(self.views, [self.gradient_tree(v) for v in self.views])]
        text = short(v0.text)
        groups = [[fval], gouts] if many else [[fval], *[[g] for g in gouts]]
        got, ex = self.function("f_and_grad", groups, f"f = {text or 'f'} and its derivative{'s' if many else ''}.")
        fns += got
        extra += ex
        if self.hessian:
            houts = [Output(v.expr, "hess_" + p[v.wrt], "user") for v in self.views]
            got, ex = self.function("hessian", [[h] for h in houts], f"The Hessian of f = {text}.")
            fns += got
            extra += ex
            groups = [[fval], gouts, houts] if many else [[fval], [gouts[0]], [houts[0]]]
            got, ex = self.function("f_grad_hessian", groups, f"f = {text}, its gradient and its Hessian.")
            fns += got
            extra += ex
        self.extra_sizes = extra
        if self.B.dtype is None and not any(self.B.dtype_var in s.writes for f in fns for s in ir.walk_stmts(f.body)):
            self.B.helpers.pop("_float_dtype", None)      # the type was nowhere needed
        return ir.Module("\n".join(head), self.B.module_imports(), self.B.helper_sources(), tuple(fns))


FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_TINY = 1.401298464324817e-45       # the smallest subnormal float32


def check_float32(fn):
    """A MatcalcError where a constant of the code has no float32 value: past float32's
    range it would be inf, below its smallest number 0 (exp(100) x, 1e-50 x^T x)."""
    from ..errors import MatcalcError
    for s in ir.walk_stmts(fn.body):
        nodes = [getattr(s, f) for f in ("value", "cond") if getattr(s, f, None) is not None]
        while nodes:
            n = nodes.pop()
            nodes.extend(n.children())
            v = n.value if isinstance(n, ir.Const) else None
            if v is None or v == 0 or v != v:
                continue
            if abs(v) > FLOAT32_MAX or abs(v) < FLOAT32_TINY:
                where = f" (in {s.comment})" if s.comment else ""
                raise MatcalcError(
                    f"the constant {v!r}{where} is {'past' if abs(v) > FLOAT32_MAX else 'below'} the "
                    f"range of float32 ({'±3.4e38' if abs(v) > FLOAT32_MAX else 'its smallest number is 1.4e-45'}), "
                    f"so float32 code cannot compute it: generate the code in float64 (dtype=\"float64\"; "
                    f"--dtype float64 on the command line)")


def _rename(low, old, new):
    """The temporary old called new throughout the lowered body."""
    mapping = {old: new}
    low.body = [s.rename(mapping) for s in low.body]
    for k, v in list(low.memo.items()):
        if isinstance(v.code, ir.Name) and v.code.id == old:
            low.memo[k] = type(v)(ir.Name(new), v.rep, v.shape)
    low.temps.discard(old)
    low.names.used.discard(old)


def _deriv_name(v, params):
    return {"gradient": "grad_", "derivative": "deriv_", "jacobian": "jac_", "hessian": "grad_"}[v.kind] \
        + params[v.wrt]
