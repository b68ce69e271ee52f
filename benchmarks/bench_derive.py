"""Derivation time: matcalc against SymPy's MatrixSymbol.diff on the same expressions.

    python benchmarks/bench_derive.py [--repeat N]

For each expression of the corpus (the conformance gradient cases and the everyday
problems of benchmarks/corpus.py) both engines derive the gradient; the times are the
median of N runs each, measured in one process, alternating.  Prints a table and the
median over expressions of each engine's time and of the ratio SymPy / matcalc.
Expressions SymPy cannot build or differentiate, and those where SymPy answers a wrong
0 (its known bug on sums of traces and on vector variables), are listed and left out of
the ratio.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import matcalc  # noqa: E402
from matcalc.declarations import typed  # noqa: E402
from matcalc.interop import to_sympy  # noqa: E402


def corpus():
    out = []
    conf = os.path.join(os.path.dirname(HERE), "..", "shared", "conformance")
    if os.path.isdir(conf):
        sys.path.insert(0, conf)
        sys.dont_write_bytecode = True
        import cases  # noqa: E402
        for c in cases.CASES:
            if c["kind"] == "gradient" and c["layout"] == "gradient":
                out.append(dict(name=c["id"], expr=c["expr"], wrt=c["wrt"], symbols=c.get("symbols")))
    try:
        from corpus import CORPUS
        out.extend(CORPUS)
    except ImportError:
        pass
    return out


def median_time(fn, repeat):
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    import sympy as sp
    rows, skipped = [], []
    for c in corpus():
        call = lambda: matcalc.diff(c["expr"], wrt=c["wrt"], symbols=c.get("symbols"))  # noqa: E731
        try:
            call()
            f, syms = typed(c["expr"], c.get("symbols"), extra=(c["wrt"],))
            sf, ssyms = to_sympy(f)
            var = ssyms.get(c["wrt"])
            if var is None:
                raise ValueError("variable does not occur")
            answer = sf.diff(var)
        except Exception as e:  # noqa: BLE001
            skipped.append((c["name"], f"SymPy fails: {type(e).__name__}: {str(e)[:50]}"))
            continue
        mine = matcalc.diff(c["expr"], wrt=c["wrt"], symbols=c.get("symbols"))
        if (answer == 0 or getattr(answer, "is_ZeroMatrix", False)) and str(mine) != "0":
            skipped.append((c["name"], f"SymPy answers 0, wrongly (matcalc: {mine})"))
            continue
        t_mc = median_time(call, args.repeat)
        t_sp = median_time(lambda: sf.diff(var), max(3, args.repeat // 2))
        rows.append((c["name"], t_mc, t_sp))
    if not args.quiet:
        print(f"{'expression':<28} {'matcalc ms':>11} {'sympy ms':>10} {'ratio':>7}")
        for name, a, b in rows:
            print(f"{name[:28]:<28} {1e3 * a:>11.3f} {1e3 * b:>10.3f} {b / a:>7.1f}")
        for name, why in skipped:
            print(f"{name[:28]:<28} skipped: {why}")
    mc = statistics.median(r[1] for r in rows)
    spy = statistics.median(r[2] for r in rows)
    ratio = statistics.median(r[2] / r[1] for r in rows)
    print(f"derive: {len(rows)} expressions ({len(skipped)} skipped), matcalc median {1e3 * mc:.3f} ms, "
          f"sympy median {1e3 * spy:.2f} ms, median ratio sympy/matcalc {ratio:.1f}x")


if __name__ == "__main__":
    main()
