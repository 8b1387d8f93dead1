"""The documentation site builds with warnings as errors, notebooks executed.

Runs ``python -m sphinx -W --keep-going -b html docs OUT`` in a subprocess, as a reader would
(``docs/conf.py``): the MyST pages, the API reference generated from the docstrings (autodoc,
napoleon, autosummary) and the notebooks of ``notebooks/``, which myst-nb executes at the quick
scale (``XSAM_FIGURES_QUICK=1``, figures into a temporary folder). This is the only place the
test suite executes the notebooks (tests/test_notebooks.py checks their format). Any warning,
a broken link or anchor, invalid reStructuredText in a docstring or a cell that raises fails
the build. The build takes about two minutes of CPU time on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: generous: the notebooks run at the quick scale, but a shared machine can be slow
TIMEOUT_S = 1500


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple[list[str], subprocess.CompletedProcess, Path]:
    """Build the site once for this module's tests: the command, its result, the HTML folder."""
    tmp = tmp_path_factory.mktemp("site")
    out = tmp / "html"
    env = dict(os.environ)
    env.update(
        XSAM_FIGURES_QUICK="1",
        XSAM_FIGURES_OUT=str(tmp / "figures"),
        MPLBACKEND="Agg",
    )
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-q",
        "-j",
        "auto",
        "-b",
        "html",
        "-d",
        str(tmp / "doctrees"),
        "docs",
        str(out),
    ]
    try:
        proc = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the docs build took more than {TIMEOUT_S} s: {exc}")
    return command, proc, out


@pytest.fixture(scope="module")
def site(build) -> Path:
    """The HTML folder (with --keep-going it is written even when there are warnings)."""
    out = build[2]
    if not (out / "index.html").is_file():
        pytest.fail(f"the docs build wrote no site:\n{build[1].stderr[-5000:]}")
    return out


def test_site_builds_without_warnings(build):
    command, proc, _ = build
    assert proc.returncode == 0, (
        f"{' '.join(command)} exited {proc.returncode}:\n{proc.stderr[-20000:]}"
    )


def test_site_has_the_main_pages(site):
    for page in [
        "index.html",
        "theory.html",
        "algorithms.html",
        "claims.html",
        "performance.html",
        "figures.html",
        "notebooks.html",
        "api/index.html",
    ]:
        assert (site / page).is_file(), page
    assert list((site / "claims").glob("*.html")), "no claim page"


def test_api_reference_documents_the_package(site):
    pages = {p.name for p in (site / "api" / "generated").glob("*.html")}
    for module in ["xsam_theory", "xsam_theory.optimizers.step", "xsam_theory.spectral.lanczos"]:
        assert f"{module}.html" in pages, module
    step = (site / "api" / "generated" / "xsam_theory.optimizers.step.html").read_text()
    assert 'id="xsam_theory.optimizers.step.step"' in step


def test_notebooks_are_rendered_with_their_outputs(site):
    notebooks = sorted((ROOT / "notebooks").glob("*.py"))
    assert notebooks
    for notebook in notebooks:
        page = site / "notebooks" / f"{notebook.stem}.html"
        assert page.is_file(), page
        html = page.read_text()
        assert "cell_output" in html, f"{page.name} shows no executed output"
        assert "<img" in html and "_images/" in html, f"{page.name} shows no figure"


def test_figures_page_shows_every_paper_figure(site):
    html = (site / "figures.html").read_text()
    for png in sorted((ROOT / "paper_figures").glob("*.png")):
        assert png.name in html, png.name
        assert (site / "_images" / png.name).is_file(), png.name


def test_the_dev_extra_installs_everything_the_docs_extra_does():
    """CI installs ``.[dev,torch]`` and builds the site: dev must list every docs requirement."""
    tomllib = pytest.importorskip("tomllib")
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    assert extras["docs"], "the docs extra is empty"
    missing = sorted(set(extras["docs"]) - set(extras["dev"]))
    assert not missing, f"in the docs extra but not in dev: {missing}"
