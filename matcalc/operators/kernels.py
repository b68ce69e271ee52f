"""NumPy kernels of the elementwise functions that are more than one library call.

Each is both the evaluator (``numeric.FUNCS``) and, by its source, the helper that
generated NumPy code defines (``codegen.backends``): one implementation.  Write them
with ``np`` only, as a generated module sees it.
"""
import numpy as np


def _sigmoid(z):
    """The logistic function 1 / (1 + exp(-z)), without overflow: exp(min(z, 0)) / (1 +
    exp(-|z|)), which is 1 / (1 + exp(-z)) for z ≥ 0 and exp(z) / (1 + exp(z)) below
    (no np.where: fewer calls, which is most of its time on small arrays)."""
    return np.exp(np.minimum(z, 0.0)) / (1.0 + np.exp(-np.abs(z)))


def _softmax(z):
    """exp(z) / sum(exp(z)) over a vector (axis 0), with the maximum subtracted first."""
    z = np.asarray(z)
    if not np.issubdtype(z.dtype, np.floating):         # (its type: float32 stays float32)
        z = z.astype(float)
    if z.ndim == 0 or z.size == 1:
        return np.ones_like(z)
    e = np.exp(z - np.max(z, axis=0))
    return e / np.sum(e, axis=0)


def _logsumexp(z):
    """log(sum(exp(z))) over all entries, with the maximum subtracted first."""
    z = np.asarray(z)
    if not np.issubdtype(z.dtype, np.floating):         # (its type: float32 stays float32)
        z = z.astype(float)
    m = np.max(z)
    if not np.isfinite(m):
        return float(np.log(np.sum(np.exp(z)))) if np.isnan(m) else float(m)
    return float(m + np.log(np.sum(np.exp(z - m))))
