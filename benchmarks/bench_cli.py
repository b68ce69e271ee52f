"""Command-line start-up: wall time of `matcalc diff "tr(X^T A X)" --wrt X` against a bare
`python -c "import lark"` (the floor: the interpreter and the one dependency).

    python benchmarks/bench_cli.py [--runs 40] [--command matcalc]

Both commands run --runs times, alternating (so that a busy moment hits both), each as
a fresh process; the figures are the medians and their ratio (target <= 1.5x).  By
default matcalc runs as `python -m matcalc` from this checkout; --command matcalc uses
the installed console script instead.  Also printed: the same for `matcalc hessian` and
`matcalc diff --check` (which loads NumPy), and python's own `-X importtime` breakdown of
the top imports of `matcalc diff`, to show where the start-up goes.

Bytecode: an installed matcalc (pip install) has its modules compiled to .pyc, like lark
in site-packages.  A checkout run with PYTHONDONTWRITEBYTECODE=1 (as on this machine)
compiles every matcalc module from source on every start (about 55 ms here), which no
installed copy does.  So the child processes run as installed: with
PYTHONDONTWRITEBYTECODE unset and PYTHONPYCACHEPREFIX pointing at a temporary folder
(the checkout stays clean; the warm-up run writes the bytecode).  --no-bytecode measures
the compile-every-time case as well.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(cmd, env):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.decode()[:300]}")
    return t, p.stdout.decode()


def median_times(cmds, runs, env):
    times = {name: [] for name in cmds}
    outs = {}
    for name, cmd in cmds.items():           # warm the file cache
        _, outs[name] = run(cmd, env)
    for _ in range(runs):
        for name, cmd in cmds.items():
            t, _ = run(cmd, env)
            times[name].append(t)
    return {name: statistics.median(ts) for name, ts in times.items()}, outs


def import_profile(base, env, top=8):
    """The slowest imports of `matcalc diff` by python -X importtime (cumulative us)."""
    cmd = [sys.executable, "-X", "importtime"] + base[1:] + ["diff", "tr(X^T A X)", "--wrt", "X"]
    p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    rows = []
    for line in p.stderr.decode().splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        parts = [x.strip() for x in line[len("import time:"):].split("|")]
        if len(parts) == 3 and parts[1].isdigit():
            rows.append((int(parts[1]), parts[2]))
    rows.sort(reverse=True)
    return rows[:top]


def child_env(bytecode):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if bytecode:
        import tempfile
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "matcalc-bench-pyc")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--command", default=None, help="the matcalc command (default: python -m matcalc)")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--no-bytecode", action="store_true",
                    help="also measure with every module compiled from source at each start")
    args = ap.parse_args(argv)
    env = child_env(bytecode=True)
    if args.command:
        exe = shutil.which(args.command)
        if exe is None:
            raise SystemExit(f"no {args.command!r} on PATH")
        base = [exe]
    else:
        base = [sys.executable, "-m", "matcalc"]
    cmds = {
        "import lark": [sys.executable, "-c", "import lark"],
        "matcalc diff": base + ["diff", "tr(X^T A X)", "--wrt", "X"],
        "matcalc hessian": base + ["hessian", "tr(X^T A X)", "--wrt", "X"],
        "matcalc diff --check": base + ["diff", "tr(X^T A X)", "--wrt", "X", "--check"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    med, outs = median_times(cmds, args.runs, env)
    floor = med["import lark"]
    print(f"{'command':<24} {'median ms':>10} {'vs import lark':>15}")
    for name in cmds:
        print(f"{name:<24} {1e3 * med[name]:>10.1f} {med[name] / floor:>14.2f}x")
    print(f"(matcalc diff printed: {outs['matcalc diff'].strip().splitlines()[0]!r})")
    if not args.no_profile:
        print("slowest imports of `matcalc diff` (python -X importtime, cumulative):")
        for us, mod in import_profile(base if not args.command else [sys.executable] + base, env):
            print(f"  {us / 1e3:8.1f} ms  {mod}")
    if args.no_bytecode:
        nb = {k: cmds[k] for k in ("import lark", "matcalc diff")}
        med2, _ = median_times(nb, args.runs, child_env(bytecode=False))
        print(f"without bytecode (PYTHONDONTWRITEBYTECODE=1): matcalc diff {1e3 * med2['matcalc diff']:.1f} ms, "
              f"import lark {1e3 * med2['import lark']:.1f} ms: {med2['matcalc diff'] / med2['import lark']:.2f}x")
    ratio = med["matcalc diff"] / floor
    print(f"cli: matcalc diff {1e3 * med['matcalc diff']:.1f} ms vs import lark {1e3 * floor:.1f} ms: "
          f"{ratio:.2f}x (target <= 1.5x: {'met' if ratio <= 1.5 else 'MISSED'}; {args.runs} runs each, medians)")


if __name__ == "__main__":
    main()
