"""Where an experiment keeps the runs it sends through the sweep runner.

With ``ctx.out_dir`` set (``verify --out DIR``) the runs are kept in an SQLite store under
``DIR`` and a rerun resumes: finished runs are read back instead of recomputed (run hashes
include the full configuration and the package version). Without ``out_dir`` the store is a
temporary one, removed when the experiment ends.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path

from xsam_theory.experiments.context import ExperimentContext

__all__ = ["run_store"]


def run_store(ctx: ExperimentContext, stack: ExitStack,
              relative: str = "sweeps.sqlite") -> tuple[Path, bool]:
    """``(path, temporary)``: ``ctx.out_dir/relative`` (its folder created), or a store in a
    temporary folder that ``stack`` removes on exit (``temporary=True``)."""
    if ctx.out_dir is not None:
        store = Path(ctx.out_dir) / relative
        store.parent.mkdir(parents=True, exist_ok=True)
        return store, False
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="xsam-runs-"))
    return Path(folder) / Path(relative).name, True
