"""matcalc: symbolic matrix calculus, the way the textbooks do it by hand.

    >>> import matcalc
    >>> str(matcalc.diff("tr(X^T A X)", wrt="X"))
    '(A + A^T) X'
"""
import sys as _sys

from .errors import EvaluationError, MatcalcError, ParseError, ShapeError, UnsupportedError
from .api import Derivative, compile, diff, evaluate, from_sympy, hessian, parse

__all__ = ["diff", "hessian", "parse", "evaluate", "compile", "from_sympy", "Derivative",
           "MatcalcError", "ParseError", "ShapeError", "UnsupportedError", "EvaluationError"]
__version__ = "0.1.0"

# the passes recurse over the tree; the parser caps nesting at 200 levels
if _sys.getrecursionlimit() < 10000:
    _sys.setrecursionlimit(10000)
