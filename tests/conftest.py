"""Make the checkout importable (tests run against this checkout's matcalc, not an
installed copy) and the helpers importable as `helpers`."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
for p in (ROOT, HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(autouse=True, scope="session")
def _jax_x64():
    """The tests compare JAX results with float64 references, so they run JAX as a user
    who wants float64 does: with jax_enable_x64 on.  Generated code never sets it (it
    computes under the user's own setting; tests/codegen/test_dtype.py checks that, and
    float32)."""
    try:
        import jax
    except ImportError:
        yield
        return
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)
