"""Two checkouts of matcalc compared on one machine, in one session: derivation speed
and the code generator (issue 11's "how it is checked"; figures in REDESIGN.md).

    python benchmarks/bench_redesign.py BEFORE_ROOT AFTER_ROOT [--rounds 5] [--repeat 3]
        [--ks 10 20 30 64] [--to-code-timeout 120]

Derivation: every expression of bench_derive's corpus (the conformance gradient cases
and benchmarks/corpus.py) is derived by each checkout in a fresh process (the median of
--repeat calls of matcalc.diff after one warm-up call), the two checkouts alternating
round by round (before, after; after, before; ...), so that a busy machine slows both
alike.  Per round, the ratio after/before of each expression both derive; the figure is
the median over expressions of each round's ratio and the median over rounds of that,
with the ratio of the total times.  Expressions only one checkout derives are counted.

Code generator: d.to_code() of the gradient of tr(A1 X ... Ak X) in each checkout (one
process per k, stopped after --to-code-timeout seconds), and for every corpus expression
whether the NumPy code generated is the same text in both, and its number of lines.

Generated code's speed: the f_and_grad each checkout generates for the PROBLEMS below
(n = --n), called on the same values (the median of --calls calls), the checkouts
alternating round by round; per problem the median over rounds of the ratio after/before.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

_DERIVE = r"""
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import matcalc
cases, repeat, out = json.loads(sys.stdin.read()), int(sys.argv[2]), {}
for c in cases:
    call = lambda: matcalc.diff(c["expr"], wrt=c["wrt"], symbols=c.get("symbols"))
    try:
        call()
    except Exception:
        out[c["name"]] = None
        continue
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        ts.append(time.perf_counter() - t0)
    out[c["name"]] = statistics.median(ts)
print(json.dumps(out))
"""

_CODE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import matcalc
out = {}
for c in json.loads(sys.stdin.read()):
    try:
        out[c["name"]] = matcalc.diff(c["expr"], wrt=c["wrt"], symbols=c.get("symbols")).to_code()
    except Exception as e:
        out[c["name"]] = None
print(json.dumps(out))
"""

# (name, expression, variable, {symbol: shape as (rows, cols) in n, or "spd"}): everyday
# problems both checkouts derive (bench_eval's five, and more)
PROBLEMS = [
    ("least_squares", "||A x - b||^2", "x", {"A": "nn", "x": "n1", "b": "n1"}),
    ("logistic", "sum(log(1 + exp(-y .* (A w))))", "w", {"A": "nn", "w": "n1", "y": "n1"}),
    ("gaussian_cov", "logdet(S) + (x - mu)^T S^-1 (x - mu)", "S", {"S": "spd", "x": "n1", "mu": "n1"}),
    ("factorisation", "||X - U V^T||_F^2", "U", {"X": "nn", "U": "nk", "V": "nk"}),
    ("xAx", "x^T A x", "x", {"A": "nn", "x": "n1"}),
    ("trace_quadratic", "tr(X^T A X B)", "X", {"X": "nn", "A": "nn", "B": "nn"}),
    ("ridge", "||A x - b||^2 + 0.1 ||x||^2", "x", {"A": "nn", "x": "n1", "b": "n1"}),
    ("mlp_layer", "sum(tanh(W x + b))", "W", {"W": "nn", "x": "n1", "b": "n1"}),
    ("inverse_trace", "tr(A X^-1 B)", "X", {"X": "spd", "A": "nn", "B": "nn"}),
]

_EVAL = r"""
import inspect, json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import matcalc
from matcalc import codegen
n, calls, out = int(sys.argv[2]), int(sys.argv[3]), {}
for name, text, wrt, shapes in json.loads(sys.stdin.read()):
    rng = np.random.default_rng(0)
    dims = {"n": n, "k": 10, "1": 1}
    vals = {}
    for s, shape in shapes.items():
        if shape == "spd":
            M = rng.standard_normal((n, n))
            vals[s] = M @ M.T / n + np.eye(n)
        elif shape[1] == "1":
            vals[s] = rng.standard_normal(dims[shape[0]])
        else:
            vals[s] = rng.standard_normal((dims[shape[0]], dims[shape[1]]))
    symbols = {s: "spd" for s, shape in shapes.items() if shape == "spd"} or None
    ns = codegen.load(matcalc.diff(text, wrt=wrt, symbols=symbols).to_code())
    fn = ns["f_and_grad"]
    args = [vals[p] for p in inspect.signature(fn).parameters]
    fn(*args)
    ts = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn(*args)
        ts.append(time.perf_counter() - t0)
    out[name] = statistics.median(ts)
print(json.dumps(out))
"""

_TO_CODE = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import matcalc
k = int(sys.argv[2])
d = matcalc.diff("tr(" + " ".join(f"A{i} X" for i in range(1, k + 1)) + ")", wrt="X")
t0 = time.perf_counter()
src = d.to_code()
print(time.perf_counter() - t0, len(src.splitlines()))
"""


# one BLAS thread in every child: a busy machine's cores are not shared among a library's threads
ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def child(script, root, args, stdin="", timeout=None):
    p = subprocess.run([sys.executable, "-c", script, root, *map(str, args)], input=stdin,
                       capture_output=True, text=True, timeout=timeout, cwd=root,
                       env=dict(os.environ, PYTHONPATH=root, **ONE_THREAD))
    if p.returncode:
        raise RuntimeError(f"{root}: {p.stderr[-2000:]}")
    return p.stdout.strip().splitlines()[-1]


def derive(before, after, cases, rounds, repeat):
    per_round, totals, only = [], [], set()
    payload = json.dumps(cases)
    for r in range(rounds):
        order = [("before", before), ("after", after)]
        if r % 2:
            order.reverse()
        got = {label: json.loads(child(_DERIVE, root, [repeat], payload)) for label, root in order}
        both = [n for n in got["after"] if got["after"][n] is not None and got["before"].get(n) is not None]
        only |= {n for n in got["after"] if (got["after"][n] is None) != (got["before"].get(n) is None)}
        ratios = [got["after"][n] / got["before"][n] for n in both]
        per_round.append(statistics.median(ratios))
        tb, ta = (sum(got[x][n] for n in both) for x in ("before", "after"))
        totals.append(ta / tb)
        mb = statistics.median(got["before"][n] for n in both)
        ma = statistics.median(got["after"][n] for n in both)
        print(f"round {r + 1} ({order[0][0]} first): {len(both)} expressions, median before "
              f"{1e3 * mb:.3f} ms, after {1e3 * ma:.3f} ms; median ratio after/before "
              f"{per_round[-1]:.3f}, total {1e3 * tb:.0f} ms -> {1e3 * ta:.0f} ms ({totals[-1]:.3f})",
              flush=True)
    print(f"derive: median over rounds of the median per-expression ratio after/before "
          f"{statistics.median(per_round):.3f} (rounds: {', '.join(f'{x:.3f}' for x in per_round)}); "
          f"total-time ratio {statistics.median(totals):.3f}; derived by one checkout only: {len(only)}")


def code(before, after, cases, ks, timeout):
    payload = json.dumps(cases)
    src = {label: json.loads(child(_CODE, root, [], payload)) for label, root in
           (("before", before), ("after", after))}
    both = [n for n in src["after"] if src["after"][n] and src["before"].get(n)]
    same = [n for n in both if src["after"][n] == src["before"][n]]
    lines = {x: sum(len(src[x][n].splitlines()) for n in both) for x in src}
    print(f"generated NumPy code: {len(both)} expressions both generate, {len(same)} identical "
          f"texts; lines before {lines['before']}, after {lines['after']}")
    for k in ks:
        row = []
        for label, root in (("before", before), ("after", after)):
            try:
                t, n = child(_TO_CODE, root, [k], timeout=timeout).split()
                row.append(f"{label} {float(t):.2f} s ({n} lines)")
            except subprocess.TimeoutExpired:
                row.append(f"{label} > {timeout:g} s (stopped)")
        print(f"to_code k={k}: " + ", ".join(row), flush=True)


def evaluate(before, after, rounds, n, calls):
    payload = json.dumps(PROBLEMS)
    ratios = {}
    for r in range(rounds):
        order = [("before", before), ("after", after)]
        if r % 2:
            order.reverse()
        got = {label: json.loads(child(_EVAL, root, [n, calls], payload)) for label, root in order}
        for name in got["after"]:
            ratios.setdefault(name, []).append((got["after"][name] / got["before"][name],
                                                got["before"][name], got["after"][name]))
    print(f"generated f_and_grad at n = {n} (median of {calls} calls, {rounds} rounds): "
          f"after/before per problem, median over rounds")
    meds = []
    for name, rows in ratios.items():
        med = statistics.median(x[0] for x in rows)
        meds.append(med)
        tb = statistics.median(x[1] for x in rows)
        ta = statistics.median(x[2] for x in rows)
        print(f"  {name:<16} before {1e6 * tb:>9.1f} us  after {1e6 * ta:>9.1f} us  ratio {med:.3f}")
    print(f"generated code: median ratio after/before over problems {statistics.median(meds):.3f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ks", type=int, nargs="+", default=[10, 20, 30, 64])
    ap.add_argument("--to-code-timeout", type=float, default=120.0)
    ap.add_argument("--no-code", action="store_true")
    ap.add_argument("--no-derive", action="store_true")
    ap.add_argument("--eval", action="store_true", help="also time the generated code (needs NumPy)")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--calls", type=int, default=30)
    args = ap.parse_args(argv)
    from bench_derive import corpus
    cases = corpus()
    before, after = os.path.abspath(args.before), os.path.abspath(args.after)
    if not args.no_derive:
        derive(before, after, cases, args.rounds, args.repeat)
    if not args.no_code:
        code(before, after, cases, args.ks, args.to_code_timeout)
    if args.eval:
        evaluate(before, after, args.rounds, args.n, args.calls)


if __name__ == "__main__":
    main()
