"""Render LaTeX with KaTeX from Python: every string in one node process.

    reason = unavailable()        # None, or why KaTeX cannot run here (and how to fix it)
    results = render(["x^{\\top}", ...])   # [{"ok": True, "warnings": []}, ...]

render.js (beside this file) calls ``katex.renderToString`` with ``throwOnError: true``
and reports, for each string, whether KaTeX accepted it and what its strict mode
warned about.  The ``katex`` npm package lives in node_modules beside it:

    npm ci --prefix tests/katex        # (or: npm install --prefix tests/katex)

Set MATCALC_REQUIRE_KATEX=1 (as CI does) to turn a missing node or katex into a test
failure instead of a skip.
"""
import json
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "render.js")
INSTALL = "npm ci --prefix tests/katex"


def required():
    return os.environ.get("MATCALC_REQUIRE_KATEX", "") not in ("", "0")


def node():
    return shutil.which("node") or shutil.which("nodejs")


def unavailable():
    """None when KaTeX can run; else the reason, with the command that fixes it."""
    if node() is None:
        return ("node is not installed, so the LaTeX is not rendered with KaTeX "
                f"(install Node.js, then run `{INSTALL}`)")
    if not os.path.isfile(os.path.join(HERE, "node_modules", "katex", "package.json")):
        return (f"the katex npm package is not installed in tests/katex/node_modules "
                f"(run `{INSTALL}`)")
    return None


def render(texs, display=True, timeout=300):
    """KaTeX's verdict on each string: {"ok": bool, "error": str, "warnings": [str]}."""
    items = [{"tex": t, "display": display} for t in texs]
    proc = subprocess.run([node(), SCRIPT], input=json.dumps(items), capture_output=True,
                          text=True, encoding="utf-8", timeout=timeout, cwd=HERE)
    if proc.returncode != 0:
        raise RuntimeError(f"node {SCRIPT} failed ({proc.returncode}): {proc.stderr.strip()}")
    out = json.loads(proc.stdout)
    if len(out) != len(items):
        raise RuntimeError(f"render.js answered {len(out)} results for {len(items)} strings")
    return out


class Katex:
    """The verdicts on a batch rendered once; strings outside it are rendered on demand
    (together, in one more process per call)."""

    def __init__(self, texs=()):
        self.results = {}
        self.add(texs)

    def add(self, texs):
        todo = list(dict.fromkeys(t for t in texs if t not in self.results))
        if todo:
            self.results.update(zip(todo, render(todo)))

    def result(self, tex):
        if tex not in self.results:
            self.add([tex])
        return self.results[tex]

    def problems(self, texs, warnings=True):
        """(tex, message) for each string KaTeX rejects (or, with warnings, warns about)."""
        self.add(texs)
        out = []
        for t in texs:
            r = self.results[t]
            if not r["ok"]:
                out.append((t, r["error"]))
            elif warnings and r["warnings"]:
                out.append((t, "; ".join(r["warnings"])))
        return out
