"""Sphinx configuration of the xsam-theory documentation site.

Build it (warnings are errors, as in the test suite) with::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The pages are MyST markdown; the API reference (``docs/api/``) is generated from the docstrings
by autodoc and napoleon (module pages written by ``docs/_ext/xsam_docs.py``, summary tables by
autosummary); the notebooks of ``notebooks/`` (jupytext percent-format
``.py`` files) are copied to ``docs/notebooks/`` when the build starts (``docs/_ext/xsam_docs.py``)
and executed by myst-nb at the quick scale, so the pages show their outputs. Nothing is fetched
from the internet at build time.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))

import xsam_theory  # noqa: E402  (after the path set-up above)

project = "xsam-theory"
author = "xsam-theory developers"
copyright = "xsam-theory developers"
release = xsam_theory.__version__
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "xsam_docs",
]

exclude_patterns = [
    "_build",
    # a committed run's raw report (claims.json rendered as markdown): the claim pages and
    # claims.md present its numbers
    "results",
    "_ext",
    "conf.py",
    "Thumbs.db",
    ".DS_Store",
    "**.ipynb_checkpoints",
]

# --- MyST -----------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
# headings up to level 4 get GitHub-style anchors, so [text](page.md#a-heading) links resolve
# (tests/test_references.py computes the same slugs)
myst_heading_anchors = 4

# --- notebooks (myst-nb) ----------------------------------------------------------------------
# the copies in docs/notebooks/ are jupytext percent-format .py files
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_in_temp = True
nb_merge_streams = True
# the notebooks read these: the quick scale (what CI runs), figures into a throw-away folder,
# matplotlib without a screen. An explicit setting in the environment wins (e.g.
# XSAM_FIGURES_QUICK=0 renders the notebooks at full scale).
os.environ.setdefault("XSAM_FIGURES_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
if "XSAM_FIGURES_OUT" not in os.environ:
    _figures = tempfile.mkdtemp(prefix="xsam-docs-figures-")
    os.environ["XSAM_FIGURES_OUT"] = _figures
    atexit.register(shutil.rmtree, _figures, ignore_errors=True)

# --- API reference ------------------------------------------------------------------------------
# the module pages are written by docs/_ext/xsam_docs.py (write_api_pages); autosummary draws
# their summary tables
autosummary_generate = False
autosummary_ignore_module_all = True
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    # a package's __init__ re-exports names documented in their own modules: document each
    # object once, where it is defined
    "ignore-module-all": True,
}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# types are added to the parameters a docstring documents, not as a second, undocumented list
autodoc_typehints_description_target = "documented"
autodoc_typehints_format = "short"
autoclass_content = "class"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

# --- HTML -----------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"xsam-theory {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
