"""Every named optimisation can be switched off, and the code computes the same values
without it: for each derivative of the corpus (the conformance cases and the benchmark
problems), the code with one optimisation off agrees with the code with all on and with
Derivative.evaluate.  Each optimisation is tried on the derivatives where it applied
(the lowering records that), and each applies to at least one of them."""
import copy
import warnings

import numpy as np
import pytest

import matcalc
from cgtools import close
from matcalc import codegen
from matcalc.codegen import OPTIMIZATIONS
from test_generated import CASES, S, _args, _derive

# the benchmark problems (benchmarks/bench_eval.py) and a few that reach the rest
EXTRA = [
    ("||A x - b||^2", "x", None, "gradient"),
    ("sum(log(1 + exp(-y .* (A w))))", "w", None, "hessian"),
    ("logdet(S) + (x - mu)^T S^-1 (x - mu)", "S", {"S": "spd"}, "hessian"),
    ("logdet(S) + (x - mu)^T S^-1 (x - mu)", "mu", {"S": "spd"}, "gradient"),
    ("||X - U V^T||_F^2", "U", None, "hessian"),
    ("x^T A x", "x", None, "hessian"),
    ("logdet(S) + tr(S^-1 (X - mu ones(n)^T) (X - mu ones(n)^T)^T)", "mu",
     {"S": "spd(n)", "X": "matrix(n,n)"}, "gradient"),
    ("logdet(S) + tr(S^-1 (X - mu ones(n)^T) (X - mu ones(n)^T)^T)", "S",
     {"S": "spd(n)", "X": "matrix(n,n)"}, "hessian"),
    ("||W2 tanh(W1 X + b1 ones(n)^T) + b2 ones(n)^T - Y||_F^2", "W1",
     {"W1": "matrix(n,n)", "X": "matrix(n,n)"}, "hessian"),
    ("logsumexp(W x) - y^T W x", "W", None, "hessian"),
    ("x^T (A ⊗ B) x", "x", None, "gradient"),
    ("sum(A X B)", "X", None, "gradient"),
    ("sum(sigmoid(A x) .* exp(A x))", "x", None, "gradient"),
    ("||tanh(X W) - Y||_F^2", "W", None, "gradient"),
    ("exp(3) exp(-1) x^T A x + sqrt(2) sum(x)", "x", None, "gradient"),
    ("tr(exp(X) .* A) + tr(X .^ 2) + sum(diag(tanh(X)))", "X", None, "gradient"),
    ("tr((S1^(1/2) S2 S1^(1/2))^(1/2))", "S1", {"S1": "spd", "S2": "spd"}, "gradient"),
]

def _extra_values(d, rng):
    from helpers import draw, fitting_sizes
    return draw(d.symbols, rng, sizes=fitting_sizes(d, rng))


def _corpus():
    out = []
    for case in CASES:
        out.append(("conformance/" + case["id"], lambda case=case: _derive(case),
                    lambda d, case=case: S.sample(case, 0)[0]))
    for expr, wrt, symbols, kind in EXTRA:
        fn = matcalc.hessian if kind == "hessian" else matcalc.diff
        out.append((f"{kind}/{expr}/d{wrt}", lambda fn=fn, e=expr, w=wrt, s=symbols: fn(e, wrt=w, symbols=s),
                    lambda d: _extra_values(d, np.random.default_rng(3))))
    return out


CORPUS = _corpus()


@pytest.fixture(scope="module")
def fired():
    """name -> [(label, derivative, values, outputs with everything on)] where it applied."""
    out = {name: [] for name in OPTIMIZATIONS}
    for label, derive, values_of in CORPUS:
        try:
            d = derive()
        except matcalc.MatcalcError:
            continue
        _, prog = codegen.program(d)
        values = values_of(d)
        base = _run(codegen.generate(d), d, values)
        for name in prog.opts.fired:
            out[name].append((label, d, values, base))
        for name in ("cse", "dead_stores", "free", "inline", "fold_negations"):   # the passes: always
            out[name].append((label, d, values, base))
    return out


def _run(src, d, values):
    ns = codegen.load(src)
    args = _args(d, values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = list(ns["f_and_grad"](*copy.deepcopy(args)))
        if "hessian" in ns:
            out.append(ns["hessian"](*copy.deepcopy(args)))
    return out


@pytest.mark.parametrize("name", sorted(OPTIMIZATIONS))
def test_switched_off_computes_the_same(name, fired):
    cases = fired[name]
    assert cases, f"the optimisation {name} applies to no derivative of the corpus"
    for label, d, values, base in cases:
        got = _run(codegen.generate(d, optimizations={name: False}), d, values)
        for a, b in zip(got, base):
            if np.all(np.isfinite(np.asarray(b, dtype=float))):
                assert close(a, b, 1e-7), f"{label} with {name} off"
        want = d.evaluate(copy.deepcopy(values))
        if np.all(np.isfinite(np.asarray(want, dtype=float))):
            assert close(np.reshape(got[-1], np.shape(want)), want, 1e-7), f"{label} with {name} off"


def test_all_off_computes_the_same(fired):
    seen = set()
    for cases in fired.values():
        for label, d, values, base in cases:
            if label in seen:
                continue
            seen.add(label)
            got = _run(codegen.generate(d, optimizations=()), d, values)
            for a, b in zip(got, base):
                if np.all(np.isfinite(np.asarray(b, dtype=float))):
                    assert close(a, b, 1e-7), f"{label} with every optimisation off"


def test_switching_off_changes_the_code():
    d = matcalc.diff("y^T (K + lambda I)^-1 y", wrt="y", symbols={"K": "spd", "lambda": "scalar"})
    on, off = codegen.generate(d), codegen.generate(d, optimizations={"solve": False})
    assert "np.linalg.solve(" in on and "np.linalg.inv(" in off


def test_unknown_optimization():
    d = matcalc.diff("x^T x", wrt="x")
    with pytest.raises(matcalc.MatcalcError, match="unknown optimization 'fast'"):
        codegen.generate(d, optimizations={"fast": False})
