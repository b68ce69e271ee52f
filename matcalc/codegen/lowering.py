"""Lowering: typed trees to IR statements, one temporary per distinct node.

The trees of f and of its derivatives are hash-consed (``Interner``) and every distinct
node is lowered once (``Lowerer.memo``): f shares its subexpressions with the
derivative.  Each node type has one lowering in ``LOWERINGS`` (``lower_nodes``,
``lower_products``, ``lower_reductions``, ``lower_matfun``); a new operator adds one
entry there.  A lowering returns a :class:`V`: an IR expression (a name, a literal, a
transpose of a name), how the value is held (S, V, M) and its shape.
"""
from fractions import Fraction

import matcalc.codegen.ir as ir
from .names import RESERVED, python_name
from .values import ONE, Note, V, lit, product, rep_of, short
from .. import expr as E
from ..errors import UnsupportedError
from ..operators import OperatorTable
from ..simplify import transpose
from .lower_matfun import MATFUN_LOWERINGS
from .lower_nodes import NODE_LOWERINGS, record_lowering
from .lower_products import PRODUCT_LOWERINGS
from .lower_reductions import REDUCTION_LOWERINGS

# node type -> lowering(lowerer, node) -> V: one entry per node type
LOWERINGS = OperatorTable("code lowering (codegen LOWERINGS)",
                          {**NODE_LOWERINGS, **PRODUCT_LOWERINGS, **REDUCTION_LOWERINGS,
                           **MATFUN_LOWERINGS},
                          derive=record_lowering)

# ----------------------------------------------------------------------------- interning


class Interner:
    """Hash-consing: structurally equal nodes become one object."""

    def __init__(self):
        self.table = {}
        self.by_id = {}

    def __call__(self, e):
        k = id(e)
        hit = self.by_id.get(k)
        if hit is not None and hit[0] is e:
            return hit[1]
        args = e.args
        if args:
            new = tuple(self(a) for a in args)
            e2 = e.rebuild(new) if any(a is not b for a, b in zip(new, args)) else e
        else:
            e2 = e
        out = self.table.setdefault(e2, e2)
        self.by_id[k] = (e, out)
        return out


# ----------------------------------------------------------------------------- constants


def is_constant(e):
    """Whether the scalar e is a number computed from numbers only (exp(700), 2^-3, ...)."""
    stack = [e]
    while stack:
        n = stack.pop()
        if isinstance(n, E.Num):
            continue
        if not (n.is_scalar and isinstance(n, (E.Func, E.Pow, E.Mul, E.Add))):
            return False
        stack.extend(n.args)
    return True


# ----------------------------------------------------------------------------- the lowerer


class Memo(dict):
    """node -> V, which also keeps the ends of every product it holds (first factor,
    last factor, length): a chain asks that set before it builds the key of a
    sub-product, which takes time in the length of the sub-product."""

    def __init__(self):
        super().__init__()
        self.ends = set()
        self.by_first = {}      # first factor -> the lengths of the products it starts
        self.by_last = {}       # last factor -> the lengths of the products it ends

    def __setitem__(self, key, value):
        if type(key) is E.Mul:
            items = key.items
            n = len(items)
            self.ends.add((items[0], items[-1], n))
            self.by_first.setdefault(items[0], set()).add(n)
            self.by_last.setdefault(items[-1], set()).add(n)
        super().__setitem__(key, value)


class Lowerer:
    """Lowers typed trees to IR statements (``self.body``), one temporary per distinct
    node.  The node lowerings are the functions of ``LOWERINGS``; the product chains and
    the operators that multiply without being formed are in ``chains``."""

    def __init__(self, backend, syms, params, names, opts):
        self.B = backend
        self.opts = opts            # optimizations.Options
        self.syms = syms            # name -> typed Sym
        self.params = params        # name -> Python identifier
        self.names = names          # identifiers in use in this function
        self.body = []              # ir statements
        self.memo = Memo()          # node -> V
        self.sizes = {}             # size name -> IR expression
        self.extra_sizes = []       # (size name, identifier): sizes no argument fixes
        self.nodes = set()
        self.inv_mat = set()        # bases of inverses computed with inv()
        self.intern = Interner()
        self.neg_cache = {}
        self.temps = set()          # the temporaries made (the passes may rename them)
        self.size_names = set()     # the sizes read from the arguments' shapes
        self.ntemp = 0

    # -- analysis -------------------------------------------------------------

    def prepare(self, trees):
        """Intern the trees and decide which inverses are computed with inv (used on
        their own, or multiplying more than two right-hand sides)."""
        trees = [self.intern(t) for t in trees]
        standalone, chain_uses = set(), {}
        seen = set()
        stack = list(trees)
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            self.nodes.add(n)
            if isinstance(n, E.Mul):
                chain = [f for f in n.items if not f.is_scalar]
                for f in chain:
                    g = f.arg if isinstance(f, E.Transpose) else f
                    if isinstance(g, E.Inverse) and not g.is_scalar:
                        if len(chain) == 1:
                            standalone.add(self.inv_base(g))
                        else:
                            chain_uses.setdefault(self.inv_base(g), set()).add(n)
                        stack.append(g.arg)
                        continue
                    stack.append(f)
                stack.extend(f for f in n.items if f.is_scalar)
                continue
            for a in n.args:
                if isinstance(a, E.Inverse) and not a.is_scalar and not isinstance(n, E.Transpose):
                    standalone.add(self.inv_base(a))
                stack.append(a)
        for base, uses in chain_uses.items():
            if len(uses) > 2:
                standalone.add(base)
        self.inv_mat = standalone
        return trees

    def used_elsewhere(self, x):
        """Whether a node other than a norm or a power uses x (x itself is needed there)."""
        for n in self.nodes:
            if isinstance(n, (E.Norm, E.Pow)):
                continue
            if any(a is x for a in n.args):
                return True
        return False

    @staticmethod
    def inv_base(inv):
        a = inv.arg
        return a.arg if isinstance(a, E.Transpose) else a

    # -- emission -------------------------------------------------------------

    def temp(self):
        while True:
            self.ntemp += 1
            name = f"t{self.ntemp}"
            if name not in self.names.used and name not in RESERVED:
                self.names.used.add(name)
                self.temps.add(name)
                return name

    def emit(self, code, rep, shape, node=None, name=None, comment=None):
        """A statement target = code; the value as a V of the target."""
        if rep == "S":
            code = self.B.number(code)
        target = name or self.temp()
        if comment is None and node is not None:
            comment = Note(node)
        self.body.append(ir.Assign((target,), code, (rep,), comment))
        return V(ir.Name(target), rep, shape)

    def size(self, s):
        """An expression for a size (an int, a name bound from an argument's shape, a
        product)."""
        if isinstance(s, int):
            return ir.Const(str(s))
        if isinstance(s, E.SizeProd):
            parts = ([ir.Const(str(s[0]))] if s[0] != 1 else []) + [self.size(x) for x in s[1:]]
            return product(parts)
        hit = self.sizes.get(s)
        if hit is not None:
            return hit
        src = None
        for name, sym in self.syms.items():
            if sym.is_scalar:
                continue
            p = self.params[name]
            shape = ir.Attr(ir.Name(p), "shape") if isinstance(p, str) else ir.Attr(p, "shape")
            if sym.rows == s:
                src = ir.Index(shape, (ir.Const("0"),))
                break
            if sym.cols == s:
                src = ir.Index(shape, (ir.Const("0" if sym.rows == 1 else "1"),))
                break
        name = self.names.take(python_name(s))
        self.sizes[s] = ir.Name(name)
        if src is None:
            self.extra_sizes.append((s, name))
        else:
            self.size_names.add(name)
            self.body.append(ir.Assign((name,), src, ("I",), f"size {s}"))
        return ir.Name(name)

    def shape_code(self, shape):
        r, c = shape
        if rep_of(shape) == "V":
            return ir.Tuple_((self.size(c if r == 1 else r),))
        return ir.Tuple_((self.size(r), self.size(c)))

    def param(self, name):
        """The expression of a symbol's argument."""
        p = self.params[name]
        return ir.Name(p) if isinstance(p, str) else p

    def T(self, v):
        """The transpose of a lowered value (free: a view)."""
        shape = (v.shape[1], v.shape[0])
        if v.rep != "M":
            return V(v.code, v.rep, shape)
        if ir.is_transposed_name(v.code):
            return V(v.code.obj, v.rep, shape)
        return V(ir.Attr(v.code, "T"), v.rep, shape)

    # -- lookup ---------------------------------------------------------------

    def lookup(self, e, t=None):
        """The value of e, or of eᵀ transposed, if it is computed already (else None);
        t: eᵀ where the caller has it."""
        hit = self.memo.get(e)
        if hit is not None:
            return hit
        if not e.is_scalar:
            if t is None:
                t = transpose(e)
            if t is not e:
                hit = self.memo.get(t)
                if hit is not None:
                    v = self.T(hit)
                    self.memo[e] = v
                    return v
        return None

    def ev(self, e):
        """Lower e (once: the value is memoised)."""
        hit = self.lookup(e)
        if hit is not None:
            return hit
        if isinstance(e, E.Add) and not e.is_scalar:
            neg = self.lookup_negated((e,))
            if neg is not None:
                v = self.emit(ir.Neg(neg.code), neg.rep, e.shape, e)
                self.memo[e] = v
                return v
        fn = LOWERINGS.get(type(e))
        if fn is None and LOWERINGS.has(type(e)):        # derived from the node's record
            fn = LOWERINGS[type(e)]
        if fn is None:
            raise UnsupportedError(f"code generation has no lowering for {type(e).__name__} ({short(e)})")
        v = fn(self, e)
        self.memo[e] = v
        return v

    def negation(self, x):
        """-x in the canonical (tidied) form the derivatives use."""
        hit = self.neg_cache.get(x)
        if hit is None:
            from ..simplify import simplify, tidy
            hit = self.neg_cache[x] = self.intern(tidy(simplify(E.Mul((E.MINUS_ONE, x)))))
        return hit

    def lookup_negated(self, factors):
        """The product of factors from a computed product with one sum negated
        (S⁻¹ (mu - x) from S⁻¹ (x - mu)): a negation instead of a second product."""
        if not self.opts.enabled("negation_reuse"):
            return None
        for p, f in enumerate(factors):
            if not isinstance(f, E.Add):
                continue
            neg = self.negation(f)
            if neg == f:
                continue
            alt = list(factors)
            alt[p] = neg
            key = alt[0] if len(alt) == 1 else E.Mul(tuple(alt))
            hit = self.lookup(key)
            if hit is not None:
                self.opts("negation_reuse")
                return hit
        return None

    # -- numeric coefficients and scalar factors -------------------------------

    def split_scalars(self, scal):
        """(numeric coefficient, the other scalar factors)."""
        coef, rest, consts = Fraction(1), [], []
        for s in scal:
            if isinstance(s, E.Num):
                coef *= s.value
            elif self.opts.enabled("fold_constants") and is_constant(s):
                consts.append(s)
            else:
                rest.append(s)
        if consts:
            coef = self.fold_constants(coef, consts)
        return coef, rest

    def fold_constants(self, coef, consts):
        """coef times the constant scalars consts, as one number, computed at generation
        time by the evaluator (evaluation.evaluate_tree), whose products keep their exponent
        past the float range: exp(700)² exp(-700)² is 1 there, while the factors one by one
        give inf · 0 = nan in the generated code."""
        import math
        from ..evaluation import evaluate_tree
        self.opts("fold_constants")
        tree = E.Mul((E.Num(coef),) + tuple(consts))
        value = float(evaluate_tree(tree, {}, {}))
        return Fraction(value) if math.isfinite(value) else value

    def scale_code(self, coef, scal):
        """The product of a numeric coefficient and scalar factors (None for 1): it can
        stand before ``* x``."""
        num, den = [], []
        for s in scal:
            if isinstance(s, E.Pow) and isinstance(s.exp, E.Num) and s.exp.value < 0:
                p = -s.exp.value
                base = s.base if p == 1 else E.Pow(s.base, E.Num(p))
                den.append(self.ev(self.intern(base)).code)
            else:
                num.append(self.ev(s).code)
        factors = list(num)
        if abs(coef) != 1 or not num:
            factors.insert(0, lit(abs(coef)))
        code = product(factors)
        if den:
            code = ir.Bin("/", code, den[0] if len(den) == 1 else product(den))
        if coef < 0:
            code = ir.Neg(code)
        return None if code == ONE else code

    def scaled(self, scale, v, node):
        """scale * v as a new temporary (scale from scale_code)."""
        if scale == ir.Neg(ONE):
            code = ir.Neg(v.code)
        elif isinstance(scale, ir.Bin) and scale.op == "/" and scale.left == ONE:
            code = ir.Bin("/", v.code, scale.right)
        else:
            code = ir.Bin("*", scale, v.code)
        return self.emit(code, v.rep, v.shape, node)

