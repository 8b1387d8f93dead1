"""Every notebook in ``notebooks/`` is a jupytext percent-format ``.py`` file the site can render.

The notebooks are executed once per test run, by the documentation build
(tests/test_docs_build.py: myst-nb runs each in a fresh kernel at the quick scale,
``XSAM_FIGURES_QUICK=1``, and a cell that raises fails the build). The tests here check what that
build relies on: the format, a title for the page, the environment variables that select the
quick scale and the output folder, and the docs page that lists the notebooks.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


def test_there_is_a_notebook_per_figure_group():
    names = [p.stem for p in NOTEBOOKS]
    assert any("geometry" in n for n in names)
    assert any("dynamics" in n for n in names)
    assert any("angle" in n for n in names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_percent_format_with_a_title(path):
    jupytext = pytest.importorskip("jupytext")
    nb = jupytext.read(path)
    assert (
        nb.metadata.get("jupytext", {}).get("text_representation", {}).get("format_name")
        == "percent"
    ), f"{path.name} is not in jupytext percent format"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", path.name
    first = nb.cells[0]
    assert first.cell_type == "markdown" and re.match(r"# \S", first.source), (
        f"{path.name} must open with a markdown cell whose first line is a '# ' title "
        "(the page title on the site)"
    )
    assert sum(c.cell_type == "code" for c in nb.cells) >= 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_reads_the_quick_scale_and_output_folder(path):
    """The docs build sets XSAM_FIGURES_QUICK=1 and XSAM_FIGURES_OUT: the notebook reads both."""
    text = path.read_text(encoding="utf-8")
    assert "FigureContext.from_env()" in text, f"{path.name} does not read XSAM_FIGURES_QUICK"
    assert "XSAM_FIGURES_OUT" in text, f"{path.name} does not read XSAM_FIGURES_OUT"


def test_the_site_renders_every_notebook():
    conf = (ROOT / "docs" / "conf.py").read_text(encoding="utf-8")
    assert "nb_execution_raise_on_error = True" in conf
    assert 'nb_execution_mode = "force"' in conf
    page = (ROOT / "docs" / "notebooks.md").read_text(encoding="utf-8")
    assert ":glob:" in page and "notebooks/*" in page
