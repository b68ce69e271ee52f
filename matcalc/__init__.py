"""matcalc: symbolic matrix calculus, the way the textbooks do it by hand.

    >>> import matcalc
    >>> str(matcalc.diff("tr(X^T A X)", wrt="X"))
    '(A + A^T) X'
"""
from .errors import (EvaluationError, MatcalcError, MissingDependencyError, ParseError, ShapeError,
                     UnsupportedError)
from . import expr as _expr, printing as _printing

# The tree prints itself through the printers, which sit above it (they read the operator
# records): the two are wired here, at the package's top, before anything else is loaded.
_expr.install_printers(_printing.to_text, _printing.to_latex)

from .api import Derivative, compile, diff, evaluate, from_sympy, hessian, parse  # noqa: E402

__all__ = ["diff", "hessian", "parse", "evaluate", "compile", "from_sympy", "Derivative",
           "MatcalcError", "ParseError", "ShapeError", "UnsupportedError", "EvaluationError",
           "MissingDependencyError"]
__version__ = "0.1.0"
# No global side effects at import (no recursion limit is changed): the parser caps
# nesting at parse.MAX_DEPTH levels, and the passes fit in Python's default stack.
