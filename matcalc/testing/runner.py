"""The run: N examples checked in worker processes, failures grouped and shrunk, the
figure printed (``python -m matcalc.fuzz N``)."""
import argparse
import collections
import json
import os
import re
import sys
import time
import traceback

from .oracle import FAILURES, run_seed
from .shrinker import shrink


# ============================================================================ the run


def _work(args):
    i, seed, depth = args
    s = (seed, i)
    try:
        ex, out, skipped = run_seed(s, depth)
    except Exception as e:  # the harness itself must never die
        return i, "crashed", "harness:" + type(e).__name__, traceback.format_exc(), None, 0
    return i, out.status, out.sig, out.detail, ex.describe(), skipped


def _shrink_work(args):
    i, seed, depth = args
    try:
        ex, out, _ = run_seed((seed, i), depth)
        sx, so = shrink(ex, out)
        return i, dict(sx.describe(), detail=so.detail)
    except Exception:
        return i, {"error": traceback.format_exc()}


SHRINK_PER_CLASS = 2    # failures shrunk per (status, failure class): the rest are alike


def run(n, seed=0, depth=4, jobs=None, shrink_failures=True, progress=None):
    """Check n examples; returns (counts, failures, unsupported causes).  The first
    SHRINK_PER_CLASS failures of each class are shrunk."""
    jobs = jobs or min(os.cpu_count() or 1, 8)
    counts = collections.Counter()
    failures = []
    unsupported = collections.Counter()
    skipped = 0
    tasks = [(i, seed, depth) for i in range(n)]
    pool = None
    if jobs > 1 and n > 20:
        import multiprocessing as mp
        pool = mp.get_context("fork").Pool(jobs)
    try:
        if pool is not None:
            results = list(_consume(pool.imap_unordered(_work, tasks, chunksize=8), n, progress))
        else:
            results = list(_consume(map(_work, tasks), n, progress))
        for i, status, sig, detail, info, sk in sorted(results, key=lambda r: r[0]):
            skipped += sk
            counts[status] += 1
            if status == "unsupported":
                unsupported[sig] += 1
            elif status in FAILURES:
                failures.append({"index": i, "status": status, "sig": sig, "detail": detail,
                                 "example": info, "shrunk": None})
        if shrink_failures and failures:
            per = collections.Counter()
            pick = []
            for f in failures:
                per[f["status"], f["sig"]] += 1
                if per[f["status"], f["sig"]] <= SHRINK_PER_CLASS:
                    pick.append((f["index"], seed, depth))
            shrunk = dict((pool.imap_unordered if pool is not None and len(pick) > 1 else map)(
                _shrink_work, pick))
            for f in failures:
                f["shrunk"] = shrunk.get(f["index"])
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    counts["skipped"] = skipped
    return counts, failures, unsupported


def _consume(it, n, progress):
    t0 = time.time()
    for k, r in enumerate(it, 1):
        if progress and (k % 500 == 0 or k == n):
            progress.write(f"  {k}/{n} in {time.time() - t0:.0f} s\n")
            progress.flush()
        yield r


def _group_key(f):
    detail = (f.get("shrunk") or {}).get("detail") or f["detail"]
    detail = re.sub(r"array\(.*", "", detail, flags=re.S)
    detail = re.sub(r"'[^']*'|[-+]?\d[\d.e+-]*", "#", detail)
    return f["status"], f["sig"], detail[:60]


def _print_failure(f):
    ex = f["example"]
    print(f"{f['status'].upper()} #{f['index']} [{f['sig']}] {ex['op']} wrt {ex['wrt']}: {ex['expr']}")
    print(f"    symbols {ex['symbols']}  needs {ex['needs']}")
    print(f"    {f['detail']}")
    sh = f.get("shrunk")
    if sh and "expr" in sh:
        print(f"    shrunk: {sh['op']} wrt {sh['wrt']}: {sh['expr']}   symbols {sh['symbols']}"
              f"  needs {sh['needs']}")
        print(f"            {sh['detail']}")


def figure(n, counts):
    return (f"fuzz {n}: correct {counts['correct']}, unsupported {counts['unsupported']}, "
            f"wrong {counts['wrong']}, crashed {counts['crashed']}, rejected {counts['rejected']}, "
            f"read-back failures {counts['readback']}")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m matcalc.fuzz",
                                 description="Fuzz matcalc's derivatives against finite differences.")
    ap.add_argument("n", type=int, nargs="?", default=1000, help="number of examples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    ap.add_argument("--no-shrink", action="store_true", help="do not shrink failures")
    ap.add_argument("--save", help="write the failures (and their shrunk forms) as JSON")
    ap.add_argument("--show", type=int, default=None, metavar="I",
                    help="print example I of this seed and its outcome, and exit")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    if a.show is not None:
        ex, out, _ = run_seed((a.seed, a.show), a.depth)
        print(json.dumps(ex.describe(), ensure_ascii=False))
        print(out)
        return 0
    t0 = time.time()
    counts, failures, unsupported = run(a.n, a.seed, a.depth, a.jobs, not a.no_shrink,
                                        progress=sys.stderr if a.verbose else None)
    if a.save:
        with open(a.save, "w", encoding="utf-8") as fh:
            json.dump({"n": a.n, "seed": a.seed, "depth": a.depth, "counts": dict(counts),
                       "failures": failures, "unsupported": dict(unsupported)}, fh,
                      ensure_ascii=False, indent=1)
    if a.verbose:
        for f in failures:
            _print_failure(f)
    else:
        # one line group per kind of failure, with its smallest shrunk example
        groups = collections.OrderedDict()
        for f in failures:
            groups.setdefault(_group_key(f), []).append(f)
        for key, fs in groups.items():
            best = min(fs, key=lambda f: len((f.get("shrunk") or {}).get("expr") or f["example"]["expr"]))
            print(f"{len(fs)} x", end=" ")
            _print_failure(best)
    if unsupported:
        print("unsupported causes:")
        for msg, c in unsupported.most_common():
            print(f"  {c:5d}  {msg}")
    if a.verbose:
        print(f"regenerated (f not finite at any point): {counts['skipped']}; "
              f"{time.time() - t0:.1f} s")
    print(figure(a.n, counts))
    return 0 if not any(counts[s] for s in FAILURES) else 1


if __name__ == "__main__":
    sys.exit(main())
