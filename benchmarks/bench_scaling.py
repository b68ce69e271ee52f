"""Scaling: the gradient of tr(A1 X A2 X ... Ak X) with respect to X, for k = 1 ... 64.

    python benchmarks/bench_scaling.py [--ks 1 2 4 8 16 32 48 64] [--sympy-limit 20] [--repeat 3]
    python benchmarks/bench_scaling.py --to-code [--ks 10 20 30 64]

With --to-code it times the code generator instead: d.to_code() for the same gradients
(median of --repeat runs, wall and CPU time, the generated lines), against the targets
of 1 s at k = 30 and 2 s at k = 64.

For each k: matcalc.diff's time (median of --repeat runs), the size of its answer (the
number of tokens of str(d), counted as the conformance judge counts them), and, until
one derivation takes more than --sympy-limit seconds, SymPy's MatrixSymbol.diff on the
same expression (matcalc.interop.to_sympy of the typed tree, as bench_derive.py does)
with the size of SymPy's answer (its string, tokens counted the same way).  The answer
is checked numerically against central differences at k <= 8.  The last line is the
summary: matcalc's time at the largest k against the 1 s target, and the ratio to SymPy
at the largest k both ran.
"""
import argparse
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import matcalc  # noqa: E402
from matcalc.declarations import typed  # noqa: E402

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\d+(?:\.\d+)?|\^T|\^-1|\*\*|[-+*/@^⊗∘']|\.\*")


def tokens(text):
    """Symbols, numbers, function names and operators; juxtaposition counts as one product."""
    toks = _TOKEN.findall(text)
    count = len(toks)
    # juxtaposed operands ("A X", "X) (") count one implicit product each
    count += len(re.findall(r"(?:[A-Za-z0-9_)]|\^T|\^-1)\s+(?=[A-Za-z_(])", text))
    return count


def expression(k):
    return "tr(" + " ".join(f"A{i} X" for i in range(1, k + 1)) + ")"


def check(d, k, seed=0):
    """The gradient against finite differences of f at random points (small k): the
    package's one numeric check (matcalc.check: its sampler and Ridders differences)."""
    return d.check(trials=2, seed=seed).ok


DEFAULT_KS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]
TO_CODE_TARGETS = {30: 1.0, 64: 2.0}


def to_code(ks, repeat):
    """The code generator's time for the gradient of tr(A1 X ... Ak X)."""
    print(f"{'k':>3} {'to_code ms':>11} {'cpu ms':>9} {'lines':>6}")
    rows = []
    for k in ks:
        d = matcalc.diff(expression(k), wrt="X")
        wall, cpu = [], []
        for _ in range(repeat):
            c0, t0 = time.process_time(), time.perf_counter()
            src = d.to_code()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        t, c = statistics.median(wall), statistics.median(cpu)
        rows.append((k, t))
        print(f"{k:>3} {1e3 * t:>11.1f} {1e3 * c:>9.1f} {len(src.splitlines()):>6}", flush=True)
    parts = []
    for k, t in rows:
        goal = TO_CODE_TARGETS.get(k)
        parts.append(f"k={k} {1e3 * t:.0f} ms" + (f" (target < {goal:g} s: {'met' if t < goal else 'MISSED'})"
                                                     if goal else ""))
    print("to_code: " + ", ".join(parts))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ks", type=int, nargs="+", default=DEFAULT_KS)
    ap.add_argument("--sympy-limit", type=float, default=20.0,
                    help="stop running SymPy after one derivation takes longer (seconds)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-sympy", action="store_true")
    ap.add_argument("--to-code", action="store_true", help="time d.to_code() instead of the derivation")
    args = ap.parse_args(argv)
    if args.to_code:
        return to_code(args.ks if args.ks != DEFAULT_KS else [10, 20, 30, 64], args.repeat)
    sp_ok = not args.no_sympy
    if sp_ok:
        try:
            import sympy  # noqa: F401
            from matcalc.interop import to_sympy
        except ImportError:
            sp_ok = False
    print(f"{'k':>3} {'matcalc ms':>11} {'tokens':>7} {'sympy ms':>10} {'sympy tokens':>13} {'ratio':>7}  check")
    last, both = None, None
    for k in args.ks:
        expr = expression(k)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            d = matcalc.diff(expr, wrt="X")
            times.append(time.perf_counter() - t0)
        t_mc = statistics.median(times)
        tok = tokens(str(d))
        ok = check(d, k) if k <= 8 else None
        t_sp, sp_tok = None, None
        if sp_ok:
            f, _ = typed(expr, None, extra=("X",))
            sf, ssyms = to_sympy(f)
            X = ssyms["X"]
            t0 = time.perf_counter()
            ans = sf.diff(X)
            t_sp = time.perf_counter() - t0
            sp_tok = tokens(str(ans))
            if t_sp > args.sympy_limit:
                sp_ok = False
        ratio = (t_sp / t_mc) if t_sp else None
        print(f"{k:>3} {1e3 * t_mc:>11.2f} {tok:>7} "
              + (f"{1e3 * t_sp:>10.1f} {sp_tok:>13} {ratio:>7.1f}" if t_sp else f"{'-':>10} {'-':>13} {'-':>7}")
              + f"  {'' if ok is None else ('ok' if ok else 'FAILED')}", flush=True)
        last = (k, t_mc, tok)
        if t_sp:
            both = (k, t_mc, t_sp)
    k, t, tok = last
    line = f"scaling: k={k} gradient in {1e3 * t:.1f} ms ({tok} tokens; target < 1000 ms: " \
           f"{'met' if t < 1.0 else 'MISSED'})"
    if both:
        line += f"; at k={both[0]} sympy {both[2]:.2f} s vs matcalc {1e3 * both[1]:.1f} ms ({both[2] / both[1]:.0f}x)"
    print(line)


if __name__ == "__main__":
    main()
