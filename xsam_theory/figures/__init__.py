"""The paper figures (docs/figures.md): one module per figure, one registry, one style.

Each figure module defines ``ID``, ``TITLE``, ``SUMMARY`` and two functions:

* ``data(ctx) -> Table``: runs the computation and returns the numbers the figure plots (one
  tidy table; it is written as the CSV beside the image, and the tests check it against the
  closed forms);
* ``plot(table, ctx) -> Figure``: draws the figure from that table alone.

:func:`make_figure` chains the two and writes ``ID.png``, ``ID.pdf`` and ``ID.csv`` together (the
three of one run, or the previous three if anything failed).
The command ``xsam-theory figures`` and the notebooks in ``notebooks/`` both call it, so there is
one source of truth for every figure.

>>> list(FIGURES)  # doctest: +NORMALIZE_WHITESPACE
['geometry', 'quadratic-2d', 'convergence', 'lambda-max', 'drift', 'angle', 'phase',
 'power-quality', 'generalization']
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from xsam_theory.figures.table import Table, read_csv

__all__ = [
    "FIGURES",
    "FigureContext",
    "FigureSpec",
    "Table",
    "figure_ids",
    "make_figure",
    "make_figures",
    "read_csv",
    "write_together",
]

#: the environment variable that puts :meth:`FigureContext.from_env` (the notebooks) in quick mode
QUICK_ENV = "XSAM_FIGURES_QUICK"


@dataclass(frozen=True)
class FigureContext:
    """How a figure is computed: ``quick`` or full mode, and the base seed.

    ``quick``: coarse grids, few steps and seeds (what CI and the tests run); full: what
    ``paper_figures/`` holds.
    """

    quick: bool = False
    seed: int = 0
    #: the scale of the claims' experiments a figure draws (``quick`` | ``default`` | ``full``);
    #: ``None``: ``quick`` for quick figures, ``default`` otherwise. ``xsam-theory verify`` sets
    #: it to its own scale, so that a figure draws the very evidence the claims judged.
    experiment_scale: str | None = None
    #: the generalization study's datasets (``None``: the scale's defaults)
    datasets: tuple[str, ...] | None = None

    def pick(self, quick: Any, full: Any) -> Any:
        """The value for the current mode."""
        return quick if self.quick else full

    def experiment_context(self) -> Any:
        """The experiment context of the experiments behind this figure.

        An :class:`~xsam_theory.experiments.context.ExperimentContext`, quiet: a figure draws no
        progress.
        """
        from xsam_theory.experiments.context import ExperimentContext

        scale = self.experiment_scale or self.pick("quick", "default")
        return ExperimentContext(
            scale=scale, seed=self.seed, progress=False, datasets=self.datasets
        )

    @property
    def mode(self) -> str:
        """``"quick"`` or ``"full"``."""
        return "quick" if self.quick else "full"

    @classmethod
    def from_env(cls, default_quick: bool = False) -> FigureContext:
        """Quick mode if ``$XSAM_FIGURES_QUICK`` is 1/true/yes/on, else ``default_quick``.

        CI runs the notebooks this way.
        """
        raw = os.environ.get(QUICK_ENV)
        if raw is None:
            return cls(quick=default_quick)
        return cls(quick=raw.strip().lower() in ("1", "true", "yes", "on"))


@dataclass(frozen=True)
class FigureSpec:
    """A registered figure: its id, title, one-line summary and its module's functions."""

    id: str
    module: str
    #: whether the figure draws a claim's experiment (:meth:`FigureContext.experiment_context`),
    #: so that ``verify`` must draw it in the process that ran the claim (to reuse the evidence)
    draws_claim_evidence: bool = False

    def _mod(self) -> ModuleType:
        return importlib.import_module(f"xsam_theory.figures.{self.module}")

    @property
    def summary(self) -> str:
        """The figure's one-line summary (its module's ``SUMMARY``)."""
        return self._mod().SUMMARY

    @property
    def data(self) -> Callable[[FigureContext], Table]:
        """The figure module's ``data`` function: context to data table."""
        return self._mod().data

    @property
    def plot(self) -> Callable[[Table, FigureContext], Any]:
        """The figure module's ``plot`` function: data table and context to a matplotlib figure."""
        return self._mod().plot


#: id -> figure, in the order the command makes them (ids are stable)
FIGURES: dict[str, FigureSpec] = {
    s.id: s
    for s in (
        FigureSpec("geometry", "geometry"),
        FigureSpec("quadratic-2d", "quadratic_2d"),
        FigureSpec("convergence", "convergence"),
        FigureSpec("lambda-max", "lambda_max", draws_claim_evidence=True),
        FigureSpec("drift", "drift"),
        FigureSpec("angle", "angle", draws_claim_evidence=True),
        FigureSpec("phase", "phase"),
        FigureSpec("power-quality", "power_quality", draws_claim_evidence=True),
        FigureSpec("generalization", "generalization", draws_claim_evidence=True),
    )
}


def figure_ids(only: Sequence[str] | None = None) -> list[str]:
    """The ids to make: all of them, or ``only`` (validated, in registry order)."""
    if not only:
        return list(FIGURES)
    unknown = [i for i in only if i not in FIGURES]
    if unknown:
        raise ValueError(
            f"unknown figure id(s) {', '.join(map(repr, unknown))}; known: {', '.join(FIGURES)}"
        )
    return [i for i in FIGURES if i in only]


def make_figure(
    id: str, ctx: FigureContext | None = None, out: str | os.PathLike[str] | None = "paper_figures"
) -> Table:
    """Compute figure ``id``, draw it, and write its PNG, PDF and CSV together; return the table.

    Unless ``out`` is None, ``out/ID.png``, ``out/ID.pdf`` and ``out/ID.csv`` are written together
    (:func:`write_together`). Returns the data table.
    """
    from xsam_theory.figures.style import figure_style

    spec = FIGURES[figure_ids([id])[0]]
    ctx = ctx or FigureContext()
    with figure_style():
        table = spec.data(ctx)
        fig = spec.plot(table, ctx)
    if out is not None:
        write_together(fig, table, out, spec.id, draft=ctx.quick)
    return table


def write_together(
    fig: Any, table: Table, out: str | os.PathLike[str], stem: str, *, draft: bool = False
) -> list[Path]:
    """Write ``out/STEM.png``, ``.pdf`` and ``.csv`` as one set; return the three paths.

    All three are written into a temporary folder inside ``out`` first and then renamed into place
    (:func:`xsam_theory.io.replace_together`). A failure while drawing or writing (an exception, a
    full disk) leaves the previous three files as they were and none of the new ones.
    """
    from xsam_theory.figures.style import write_figure
    from xsam_theory.io import remove_stale_temporaries, replace_together, temporary_path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out / stem)
    staging = temporary_path(out / stem)
    staging.mkdir()
    try:
        written = write_figure(fig, table, staging, stem, draft=draft)
        names = [p.name for p in written]
        replace_together(out, staging, names)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / name for name in names]


def make_figures(
    ids: Sequence[str] | None = None,
    ctx: FigureContext | None = None,
    out: str | os.PathLike[str] = "paper_figures",
    *,
    stream: TextIO | None = None,
    failures: dict[str, str] | None = None,
) -> dict[str, float]:
    """Make several figures (all by default); return the seconds each figure took.

    One progress line per figure is printed to ``stream`` (default stdout).

    A figure that fails (an exception while computing, drawing or writing it) raises, unless
    ``failures`` is given: then its error is stored there (``{id: "Type: message"}``), its
    previous files are left as they were, and the other figures are still made.
    """
    ctx = ctx or FigureContext()
    stream = sys.stdout if stream is None else stream
    todo = figure_ids(ids)
    seconds: dict[str, float] = {}
    t_all = time.perf_counter()
    for k, fid in enumerate(todo, 1):
        print(f"[{k}/{len(todo)}] {fid:<14} ...", end="", file=stream, flush=True)
        t0 = time.perf_counter()
        try:
            make_figure(fid, ctx, out)
        except Exception as e:
            if failures is None:
                print(" failed", file=stream, flush=True)
                raise
            failures[fid] = f"{type(e).__name__}: {e}"
            print(f" failed: {failures[fid]}", file=stream, flush=True)
            continue
        seconds[fid] = time.perf_counter() - t0
        print(
            f" {seconds[fid]:6.1f} s  -> {Path(out) / fid}.{{png,pdf,csv}}", file=stream, flush=True
        )
    print(
        f"{len(seconds)} figure(s), {ctx.mode} mode, {time.perf_counter() - t_all:.1f} s",
        file=stream,
        flush=True,
    )
    return seconds


def main(out: str, only: Sequence[str] | None, quick: bool, seed: int = 0) -> int:
    """The ``xsam-theory figures`` command; returns the exit status.

    Exit status: 0; 2 (``error: ...`` on stderr, before any figure is computed) if ``out`` is a
    file, lies under one or cannot be written; :data:`xsam_theory.io.OUTPUT_FAILED` (3) if a
    figure could not be made or written (each such figure is named; its previous PNG, PDF and CSV
    are left as they were, the other figures are made).
    """
    from xsam_theory.io import OUTPUT_FAILED, OutputPathError, prepare_output_folder

    try:
        prepare_output_folder(out)
    except OutputPathError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failures: dict[str, str] = {}
    make_figures(only, FigureContext(quick=quick, seed=seed), out, failures=failures)
    for fid, err in failures.items():
        print(
            f"error: figure {fid!r} could not be made or written ({err}); its previous "
            f"files in {out} are unchanged",
            file=sys.stderr,
        )
    return OUTPUT_FAILED if failures else 0
