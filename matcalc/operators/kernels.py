"""NumPy kernels of the elementwise functions that are more than one library call.

Each is both the evaluator (``numeric.FUNCS``) and, by its source, the helper that
generated NumPy code defines (``codegen.backends``): one implementation.  Write them
with ``np`` only, as a generated module sees it.
"""
import numpy as np


def _sigmoid(z):
    """The logistic function 1 / (1 + exp(-z)), without overflow."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, e) / (1.0 + e)
