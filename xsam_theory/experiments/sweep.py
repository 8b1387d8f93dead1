"""Run a claim's grid of (method, hyperparameters, seed) runs through the sweep runner (SPEC §9).

With ``ctx.out_dir`` set (``verify --out DIR``) the runs are kept in ``DIR/sweeps.sqlite`` and a
rerun resumes: finished runs are read back instead of recomputed. Run hashes include the full
configuration and the package version. Without ``out_dir`` a temporary store is used.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from xsam_theory.experiments.context import ExperimentContext
from xsam_theory.sweeps import RunRecord, run_sweep
from xsam_theory.trajectory import Trajectory

__all__ = ["sweep_runs"]


def sweep_runs(ctx: ExperimentContext, spec: dict[str, Any]) -> list[tuple[RunRecord, Trajectory]]:
    """Every run of ``spec`` (a :class:`~xsam_theory.sweeps.SweepSpec` dict) with its trajectory,
    in the sweep's run order. The sweep is named after the spec, the scale and the base seed."""
    spec = {**spec, "name": f"{spec['name']}-{ctx.scale}-seed{ctx.seed}"}
    if ctx.out_dir is not None:
        return _collect(spec, Path(ctx.out_dir) / "sweeps.sqlite")
    with tempfile.TemporaryDirectory(prefix="xsam-claim-") as d:
        return _collect(spec, Path(d) / "sweeps.sqlite")


def _collect(spec: dict[str, Any], store: Path) -> list[tuple[RunRecord, Trajectory]]:
    store.parent.mkdir(parents=True, exist_ok=True)
    result = run_sweep(spec, store, workers=1, resume=True)
    if not result.ok:
        bad = [r for r in result.records if r.status != "done"]
        raise RuntimeError(f"{len(bad)} run(s) of {spec['name']} failed: {bad[0].message}")
    return [(rec, result.trajectory(rec)) for rec in result.records]
