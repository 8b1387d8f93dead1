"""Every notebook in ``notebooks/`` (jupytext percent-format ``.py``) runs, in quick mode.

The notebooks call the same functions as ``xsam-theory figures``; here each is converted with
jupytext and executed in a fresh kernel by nbclient, with ``XSAM_FIGURES_QUICK=1`` (the quick
scale) and ``XSAM_FIGURES_OUT`` pointing at a temporary folder. A cell that raises fails the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.py"))


def test_there_is_a_notebook_per_figure_group():
    names = [p.stem for p in NOTEBOOKS]
    assert any("geometry" in n for n in names)
    assert any("dynamics" in n for n in names)
    assert any("angle" in n for n in names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_quick_mode(path, tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("XSAM_FIGURES_QUICK", "1")
    monkeypatch.setenv("XSAM_FIGURES_OUT", str(tmp_path / "figures"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = jupytext.read(path)
    assert (
        nb.metadata.get("jupytext", {}).get("text_representation", {}).get("format_name")
        == "percent"
    ), f"{path.name} is not in jupytext percent format"
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    written = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert any(n.endswith(".png") for n in written), written
