"""The example notebook runs, and shows what it says.

examples/matcalc.ipynb is executed here with nbclient (a real IPython kernel), once per
test session; the tests read its outputs by cell tag and check the answers, the
rendered forms (text/latex for expressions and derivatives, text/markdown for the
steps), and that KaTeX accepts every bit of LaTeX in them.  The notebook is stored
with its outputs, so that it reads well on its own; a test checks that they are the
ones it produces now.  To refresh them after a change to matcalc's output:

    python tests/test_notebook.py --update

Needs nbclient, nbformat and ipykernel (the project's test extra); without them the
tests skip and say so.
"""
import os
import re
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NOTEBOOK = os.path.join(ROOT, "examples", "matcalc.ipynb")
INSTALL = "pip install nbclient nbformat ipykernel   (or: pip install -e '.[test]')"

# cells whose outputs depend on another library's printing (SymPy's LaTeX), not compared
# with the stored outputs
NOT_COMPARED = {"to-sympy"}


def _missing():
    for mod in ("nbclient", "nbformat", "ipykernel"):
        try:
            __import__(mod)
        except ImportError:
            return mod
    return None


def execute(nb, timeout=300):
    """Run every cell of the notebook (in place) in a fresh kernel started in the
    repository root, with the checkout first on the kernel's path."""
    from nbclient import NotebookClient
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = ROOT + (os.pathsep + old if old else "")
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": ROOT}})
        client.execute()
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    return nb


def read():
    import nbformat
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.fixture(scope="module")
def executed():
    missing = _missing()
    if missing:
        pytest.skip(f"{missing} is not installed, so the notebook is not run ({INSTALL})")
    return execute(read())


def cell(nb, tag):
    found = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(found) == 1, f"{len(found)} cells tagged {tag!r}"
    return found[0]


def stdout(nb, tag):
    return "".join(o.get("text", "") for o in cell(nb, tag).outputs
                   if o.output_type == "stream" and o.name == "stdout")


def result(nb, tag):
    """The data of the cell's execute_result."""
    outs = [o for o in cell(nb, tag).outputs if o.output_type == "execute_result"]
    assert len(outs) == 1, f"cell {tag!r} has {len(outs)} results"
    return outs[0].data


def _math(latex_output):
    """The LaTeX inside a text/latex output ($...$, $$...$$, $\\displaystyle ...$)."""
    s = latex_output.strip()
    for d in ("$$", "$"):
        if s.startswith(d) and s.endswith(d):
            s = s[len(d):-len(d)].strip()
            break
    else:
        raise AssertionError(f"text/latex output is not $...$ math: {latex_output!r}")
    return s


# ---------------------------------------------------------------------------- the outputs


def test_no_errors(executed):
    for c in executed.cells:
        if c.cell_type == "code":
            assert not [o for o in c.outputs if o.output_type == "error"], c.source
            assert not [o for o in c.outputs if o.output_type == "stream" and o.name == "stderr"], \
                (c.source, [o.text for o in c.outputs if o.output_type == "stream"])


def test_expression_displays_as_math(executed):
    import matcalc
    data = result(executed, "expression")
    assert data["text/latex"] == "$" + matcalc.parse("tr(X^T A X)").latex() + "$"
    assert _math(data["text/latex"]) == r"\operatorname{tr}\left(X^{\top} A X\right)"


def test_gradient(executed):
    data = result(executed, "gradient")
    assert _math(data["text/latex"]) == r"\left(A + A^{\top}\right) X"
    assert "(A + A^T) X" in data["text/plain"]
    out = stdout(executed, "gradient-text").splitlines()
    assert out[0] == "(A + A^T) X"
    assert out[1] == "{'X': 'matrix(m,n)', 'A': 'matrix(m,m)'}"


def test_steps(executed):
    md = result(executed, "steps")["text/markdown"]
    assert md.count("$$") == 2
    block = md.split("$$")[1]
    assert "\\begin{aligned}" in block and "\\end{aligned}" in block
    assert "\\operatorname{tr}\\left(X^{\\top} A X\\right)" in block          # f
    assert "\\mathrm{d}X" in block                                             # the differential
    assert r"\left(A + A^{\top}\right) X" in block.split("\\\\")[-1]           # the answer, last
    text = stdout(executed, "steps-text")
    assert text.splitlines()[0].strip() == "f = tr(X^T A X)"
    assert text.rstrip().splitlines()[-1].split("=", 1)[1].strip().startswith("(A + A^T) X")


def test_jacobian(executed):
    assert _math(result(executed, "jacobian")["text/latex"]) == r"B^{\top} \otimes A"
    assert stdout(executed, "jacobian-text").strip() == "B^T ⊗ A"


def test_hessian(executed):
    assert _math(result(executed, "hessian")["text/latex"]) == r"2 A"
    assert stdout(executed, "hessian-text").strip() == "2 A"


def test_evaluation_and_finite_differences(executed):
    assert stdout(executed, "evaluate").splitlines() == ["(4, 3)", "equals (A + A^T) X: True"]
    fd = stdout(executed, "finite-differences").splitlines()
    assert re.fullmatch(r"central difference -?\d+\.\d{4}, tr\(G\^T V\) -?\d+\.\d{4}", fd[0]), fd
    a, b = re.findall(r"-?\d+\.\d{4}", fd[0])
    assert a == b
    assert fd[1] == "gradient agrees: True"
    assert stdout(executed, "finite-differences-jacobian").splitlines() == ["(10, 12)", "Jacobian agrees: True"]
    assert stdout(executed, "check").strip() == "True True True"


def test_sympy(executed):
    data = result(executed, "to-sympy")
    assert "(A + A.T)*X" in data["text/plain"]
    assert stdout(executed, "from-sympy").strip() == "tr(S^-1 S^T) + logdet(S)"


def test_latex_renders_in_katex(executed):
    sys.path.insert(0, os.path.join(HERE, "katex"))
    try:
        import katex_runner
    finally:
        sys.path.pop(0)
    reason = katex_runner.unavailable()
    if reason:
        if katex_runner.required():
            pytest.fail(reason)
        pytest.skip(reason)
    texs = []
    for c in executed.cells:
        if c.cell_type == "markdown":
            texs += [m.strip() for m in re.findall(r"\$\$(.+?)\$\$", c.source, re.S)]
            texs += [m.strip() for m in re.findall(r"(?<!\$)\$([^$]+)\$(?!\$)", c.source)]
            continue
        for o in c.outputs:
            data = o.get("data", {})
            if "text/latex" in data:
                texs.append(_math(data["text/latex"]))
            if "text/markdown" in data:
                texs += [m.strip() for m in data["text/markdown"].split("$$")[1::2]]
    assert len(texs) >= 10
    bad = katex_runner.Katex(texs).problems(texs)
    assert not bad, "KaTeX rejects:\n" + "\n".join(f"  {t}\n    -> {m}" for t, m in bad)


# ---------------------------------------------------------------------------- stored outputs


def _outputs(nb):
    """The comparable outputs of each tagged code cell: streams and the text forms of
    results and displays."""
    out = {}
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        tag = (c.metadata.get("tags") or ["?"])[0]
        if tag in NOT_COMPARED:
            continue
        items = []
        for o in c.outputs:
            if o.output_type == "stream":
                items.append((o.name, o.text))
            elif o.output_type in ("execute_result", "display_data"):
                items.append(tuple(sorted((k, v) for k, v in o.data.items() if k.startswith("text/"))))
            else:
                items.append((o.output_type,))
        out[tag] = items
    return out


def test_stored_outputs_are_current(executed):
    stored = _outputs(read())
    fresh = _outputs(executed)
    stale = [tag for tag in fresh if stored.get(tag) != fresh[tag]]
    assert not stale, (f"the outputs stored in examples/matcalc.ipynb are stale in cells {stale}; "
                       f"refresh them with: python tests/test_notebook.py --update")


def test_cells_are_tagged_and_sources_clean():
    import nbformat
    nb = read()
    nbformat.validate(nb)
    tags = [(c.metadata.get("tags") or [None])[0] for c in nb.cells if c.cell_type == "code"]
    assert None not in tags and len(set(tags)) == len(tags)


def update():
    """Execute the notebook and store it with its fresh outputs."""
    import nbformat
    nb = execute(read())
    for c in nb.cells:
        c.metadata.pop("execution", None)
    nbformat.write(nb, NOTEBOOK)
    print(f"wrote {NOTEBOOK}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--update"]:
        update()
    else:
        print(__doc__)
