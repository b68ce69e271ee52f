"""Hostile sizes: every input answers or refuses with a clear message within 5 s and 1 GB.

    python benchmarks/bench_hostile.py [--limit 5] [--memory 1024] [--only NAME]

Each case runs `python -m matcalc ...` as a fresh process (as a user runs it), and the
line printed is: the case, the exit status, the wall time, the peak memory of the child
(resident set, from getrusage), the length of the answer, and the first words of the
message.  A case fails when it takes more than --limit seconds or --memory MB, exits
with a status other than 0 or 2 (or 1, --check's verdict, under --check), or prints a traceback.  The last line counts the
failures (exit status 1 if any).

The families: the Hessian and gradient of tr(A1 X A2 X ... Ak X) (the product rule
writes k terms of 2k factors, the Hessian k² of them), k nested exp(... x^T x ...)
(every level repeats the ones inside), long sums and products, deep parentheses, and
inputs at the length limit.
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def chain(k):
    return "tr(" + " ".join(f"A{i} X" for i in range(1, k + 1)) + ")"


def nest(d, inner="x^T x", fn="exp"):
    s = inner
    for _ in range(d):
        s = f"{fn}({s})"
    return s


def inverses(d):
    return "tr(" + "(" * d + "X" + ")^-1" * d + ")"


def cases():
    out = []
    for k in (10, 20, 40, 100):
        out.append((f"hessian chain k={k}", ["hessian", chain(k), "--wrt", "X"]))
    for k in (64, 100):
        out.append((f"diff chain k={k}", ["diff", chain(k), "--wrt", "X"]))
    for d in (10, 20, 25, 30, 40, 50):
        out.append((f"hessian nested exp d={d}", ["hessian", nest(d), "--wrt", "x"]))
    for d in (50, 100, 190):
        out.append((f"diff nested exp d={d}", ["diff", nest(d), "--wrt", "x"]))
    out.append(("hessian nested sin d=60", ["hessian", "sum(" + nest(60, "x", "sin") + ")", "--wrt", "x"]))
    out.append(("diff nested sin d=190", ["diff", "sum(" + nest(190, "x", "sin") + ")", "--wrt", "x"]))
    out.append(("diff tr of 190 nested inverses", ["diff", inverses(190), "--wrt", "X"]))
    out.append(("diff sum of 2400 terms", ["diff", " + ".join(["a^T x"] * 2400), "--wrt", "x"]))
    out.append(("diff 6000 products", ["diff", " + ".join(f"x^T A{i} x" for i in range(1500)), "--wrt", "x"]))
    out.append(("hessian exp(1e309 x^T x)", ["hessian", "exp(1e309 x^T x)", "--wrt", "x"]))
    out.append(("diff X^1000000", ["diff", "tr(X^1000000)", "--wrt", "X"]))
    out.append(("diff --check huge sizes", ["diff", "tr(X)", "--wrt", "X", "--let", "X=matrix(100000,100000)",
                                            "--check"]))
    return out


def run(argv, limit):
    env = dict(os.environ, PYTHONPATH=ROOT)
    code = ("import resource, subprocess, sys\n"
            "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
            "mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
            "import json\n"
            "print(json.dumps([p.returncode, p.stdout, p.stderr, mb]))\n")
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "matcalc", *argv],
                           capture_output=True, text=True, cwd=ROOT, env=env, timeout=limit * 6)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - t0, 0.0, "", "timed out"
    t = time.perf_counter() - t0
    import json
    rc, out, err, mb = json.loads(p.stdout)
    return rc, t, mb, out, err


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=float, default=5.0, help="seconds per case")
    ap.add_argument("--memory", type=float, default=1024.0, help="MB per case")
    ap.add_argument("--only", default=None, help="run the cases whose name contains this")
    a = ap.parse_args()
    failures = 0
    for name, argv in cases():
        if a.only and a.only not in name:
            continue
        rc, t, mb, out, err = run(argv, a.limit)
        # exit 1 is --check's verdict (failed, or not run, e.g. at sizes too large to draw)
        allowed = (0, 1, 2) if "--check" in argv else (0, 2)
        bad = rc not in allowed or t > a.limit or mb > a.memory or "Traceback" in err
        failures += bad
        msg = (err.strip().splitlines() or [""])[0][:70]
        print(f"{'FAIL' if bad else 'ok  '} {name:32s} exit {rc}  {t:5.2f} s  {mb:6.0f} MB  "
              f"answer {len(out.strip()):6d} chars  {msg}", flush=True)
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
