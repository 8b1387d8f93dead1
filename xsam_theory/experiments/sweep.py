"""Where an experiment keeps the runs it sends through the sweep runner, and what it reused.

With ``ctx.out_dir`` set (``verify --out DIR``) the runs are kept in an SQLite store under
``DIR`` (``DIR/sweeps.sqlite``; P-GEN's in ``DIR/p_gen/runs.sqlite``) and a rerun resumes:
finished runs are read back instead of recomputed. The store stays in ``DIR`` for the whole
command (``verify`` replaces only its outputs, ``claims.json``, ``report.md`` and
``figures/``, never the stores), so a run killed at any point resumes from it. Without
``out_dir`` the store is a temporary one, removed when the experiment ends.

A run is reused only when it was computed by the same code: its hash covers its full
configuration, the package version and the digest of the package's source
(:func:`xsam_theory.provenance.source_digest`). :func:`run_experiment_sweep` names each sweep
after its runs, so a code change makes a new sweep in the same store (computed afresh) instead
of colliding with the old one; ``xsam-theory results DIR/sweeps.sqlite`` lists both, each under
its own name (delete the store file to drop earlier code's runs). :func:`store_tally` counts, for
``verify``'s report, how many of a check's runs came from the store rather than being computed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xsam_theory.experiments.context import ExperimentContext

__all__ = ["StoreUse", "run_experiment_sweep", "run_store", "store_tally", "sweep_name"]


def run_store(
    ctx: ExperimentContext, stack: ExitStack, relative: str = "sweeps.sqlite"
) -> tuple[Path, bool]:
    """``(path, temporary)``: ``ctx.out_dir/relative``, or a store in a temporary folder.

    ``ctx.out_dir/relative`` has its folder created; a temporary folder is removed by ``stack`` on
    exit (``temporary=True``).
    """
    if ctx.out_dir is not None:
        store = Path(ctx.out_dir) / relative
        store.parent.mkdir(parents=True, exist_ok=True)
        return store, False
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="xsam-runs-"))
    return Path(folder) / Path(relative).name, True


@dataclass
class StoreUse:
    """Runs that experiments read from their stores while a :func:`store_tally` was open.

    Attributes:
        since: when the tally opened (Unix time).
        runs: runs of the sweeps run meanwhile (each sweep's runs, counted per sweep).
        cached: those of them that were finished before ``since``: computed earlier (by the
            same code and configuration, since the hash covers both) and read back.
    """

    since: float
    runs: int = 0
    cached: int = 0


_TALLIES: list[StoreUse] = []


@contextlib.contextmanager
def store_tally() -> Iterator[StoreUse]:
    """Count the runs that :func:`run_experiment_sweep` reads or computes inside the block.

    Tallies nest: every open one counts.
    """
    use = StoreUse(since=time.time())
    _TALLIES.append(use)
    try:
        yield use
    finally:
        _TALLIES.remove(use)


def sweep_name(base: str, spec: Any) -> str:
    """``BASE-DIGEST``: 12 hex digits of the SHA-256 of the sorted run hashes of ``spec``.

    ``spec`` is a :class:`~xsam_theory.sweeps.SweepSpec`. Other code or another configuration gives
    other hashes, hence another name.
    """
    digest = hashlib.sha256("".join(sorted(r.hash for r in spec.runs())).encode())
    return f"{base}-{digest.hexdigest()[:12]}"


def run_experiment_sweep(spec: Mapping[str, Any] | Any, store: str | Path, **options: Any) -> Any:
    """Run ``spec`` into ``store`` as the sweep :func:`sweep_name` names, resuming it if present.

    ``spec`` is a sweep spec or its dict form; its ``name`` is the base name. The sweep is resumed
    when the store holds it, and its runs are counted in the open :func:`store_tally` blocks.
    ``options`` go to :func:`~xsam_theory.sweeps.run_sweep`. Returns its
    :class:`~xsam_theory.sweeps.SweepResult`.
    """
    from xsam_theory.sweeps import SweepSpec, run_sweep

    spec = SweepSpec.from_dict(dict(spec)) if isinstance(spec, Mapping) else spec
    named = dataclasses.replace(spec, name=sweep_name(spec.name, spec))
    result = run_sweep(named, store, resume=True, **options)
    for use in _TALLIES:
        use.runs += len(result.records)
        use.cached += sum(
            1
            for r in result.records
            if r.status == "done" and r.finished is not None and r.finished < use.since
        )
    return result
