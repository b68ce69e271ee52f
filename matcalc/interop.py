"""SymPy interop: ``to_sympy(e)`` gives the SymPy matrix expression of a typed tree
(MatrixSymbol, Trace, Inverse, Determinant, HadamardProduct, KroneckerProduct, ...),
with the sizes as SymPy symbols.  SymPy is imported here only, never on the path of
``matcalc diff``."""
from . import expr as E
from .errors import UnsupportedError


def to_sympy(e, sizes=None):
    import sympy as sp
    from sympy import matrices as M
    sizes = {} if sizes is None else sizes
    syms = {}

    def size(s):
        if isinstance(s, int):
            return sp.Integer(s)
        if isinstance(s, E.SizeProd):
            out = sp.Integer(s[0])
            for f in s[1:]:
                out = out * size(f)
            return out
        if s not in sizes:
            sizes[s] = sp.Symbol(s, integer=True, positive=True)
        return sizes[s]

    funcs = {"exp": sp.exp, "log": sp.log, "sin": sp.sin, "cos": sp.cos, "tanh": sp.tanh,
             "sqrt": sp.sqrt, "abs": sp.Abs,
             "sigmoid": lambda x: 1 / (1 + sp.exp(-x)), "softplus": lambda x: sp.log(1 + sp.exp(x))}

    def go(x):
        t = type(x)
        if t is E.Num:
            return sp.Rational(x.value.numerator, x.value.denominator)
        if t is E.Sym:
            if x.name not in syms:
                syms[x.name] = (sp.Symbol(x.name) if x.is_scalar
                                else M.MatrixSymbol(x.name, size(x.rows), size(x.cols)))
            return syms[x.name]
        if t is E.Identity:
            return M.Identity(size(x.n))
        if t is E.Zero:
            return M.ZeroMatrix(size(x.rows), size(x.cols))
        if t is E.Fill:
            return go(x.value) * M.OneMatrix(size(x.rows), size(x.cols))
        if t is E.Add:
            return sp.Add(*[go(a) for a in x.items]) if x.is_scalar else M.MatAdd(*[go(a) for a in x.items]).doit()
        if t is E.Mul:
            parts = [go(a) for a in x.items]
            if x.is_scalar and all(a.is_scalar for a in x.items):
                return sp.Mul(*parts)
            if x.is_scalar:
                # a 1×1 product used as a scalar: SymPy's Trace of the 1×1 matrix
                scal = [p for a, p in zip(x.items, parts) if a.is_scalar]
                chain = [p for a, p in zip(x.items, parts) if not a.is_scalar]
                return sp.Mul(*scal) * M.Trace(M.MatMul(*chain))
            return M.MatMul(*parts).doit()
        if t is E.Hadamard:
            return M.HadamardProduct(*[go(a) for a in x.items])
        if t is E.Kron:
            from sympy.matrices.expressions.kronecker import KroneckerProduct
            return KroneckerProduct(*[go(a) for a in x.items])
        if t is E.Transpose:
            a = go(x.arg)
            return a if x.arg.is_scalar else M.Transpose(a)
        if t is E.Inverse:
            return M.Inverse(go(x.arg))
        if t is E.Det:
            return M.Determinant(go(x.arg))
        if t is E.LogDet:
            return sp.log(M.Determinant(go(x.arg)))
        if t is E.Trace:
            a = go(x.arg)
            return a if x.arg.is_scalar else M.Trace(a)
        if t is E.MatPow:
            return M.MatPow(go(x.arg), x.k)
        if t is E.Pow:
            return sp.Pow(go(x.base), go(x.exp))
        if t is E.ElemPow:
            return M.HadamardPower(go(x.base), go(x.exp))
        if t is E.Func:
            a = go(x.arg)
            if x.arg.is_scalar:
                return funcs[x.name](a)
            return a.applyfunc(funcs[x.name])
        if t is E.Sum:
            a = go(x.arg)
            return (M.OneMatrix(1, a.shape[0]) * a * M.OneMatrix(a.shape[1], 1))[0, 0]
        if t is E.Norm:
            a = go(x.arg)
            return sp.sqrt(M.Trace(M.Transpose(a) * a)) if not x.arg.is_scalar else sp.Abs(a)
        if t is E.DiagMat:
            return M.DiagMatrix(go(x.arg))
        if t is E.DiagVec:
            return M.DiagonalOf(go(x.arg))
        raise UnsupportedError(f"no SymPy counterpart for {t.__name__}")

    return go(e), syms
