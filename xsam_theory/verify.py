"""``xsam-theory verify``: run the claims ledger, print the table, write claims.json and report.md.

It lives outside :mod:`xsam_theory.claims` (which states and judges claims) because it also
draws figures, which import :mod:`xsam_theory.experiments` only. What it writes and how to read
it: docs/claims.md#C-evidence; its exit statuses: docs/claims.md#C-exit-status.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import IO, Any

from xsam_theory._version import __version__
from xsam_theory.claims import CLAIMS, ClaimResult, ExperimentContext, load_all, run_claim
from xsam_theory.experiments.sweep import store_tally
from xsam_theory.figures import FIGURES
from xsam_theory.io import (
    OUTPUT_FAILED,
    OutputPathError,
    atomic_write,
    prepare_output_folder,
    remove_stale_temporaries,
    replace_together,
    temporary_path,
)
from xsam_theory.provenance import package_digest

__all__ = [
    "OUTPUTS",
    "OUTPUT_FAILED",
    "OutputError",
    "draw_figures",
    "exit_status",
    "render_report",
    "render_subclaims",
    "render_table",
    "run_ledger",
    "write_outputs",
]


def _select(only: Sequence[str] | None) -> list[str]:
    load_all()
    if not only:
        return list(CLAIMS)
    unknown = [i for i in only if i not in CLAIMS]
    if unknown:
        raise ValueError(f"unknown claim id(s) {unknown}; known: {', '.join(CLAIMS)}")
    return [i for i in CLAIMS if i in only]


def run_ledger(
    ctx: ExperimentContext, only: Sequence[str] | None = None, *, progress: IO[str] | None = None
) -> list[ClaimResult]:
    """Run the selected claims in ledger order, drawing a progress bar on ``progress``.

    A claim whose check ran sweeps gets ``evidence["cached_runs"] = {"cached": k, "runs": n}``:
    ``k`` of its ``n`` sweep runs were read from a run store (computed before this check
    started, by the same code: see :mod:`xsam_theory.experiments.sweep`), the rest computed.
    """
    ids = _select(only)
    results = []
    t0 = time.perf_counter()
    for i, cid in enumerate(ids):
        if progress is not None:
            _bar(progress, i, len(ids), cid, time.perf_counter() - t0)
        with store_tally() as use:
            result = run_claim(cid, ctx)
        if use.runs:
            result.evidence["cached_runs"] = {"cached": use.cached, "runs": use.runs}
        results.append(result)
    if progress is not None:
        _bar(progress, len(ids), len(ids), "done", time.perf_counter() - t0)
        progress.write("\n")
        progress.flush()
    return results


def _bar(out: IO[str], done: int, total: int, label: str, elapsed: float) -> None:
    width = 24
    filled = int(width * done / max(total, 1))
    out.write(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {elapsed:6.1f}s  {label:<14}"
    )
    out.flush()


def exit_status(results: Sequence[ClaimResult]) -> int:
    """1 if any D/L/F claim fails or errors; P verdicts never change it.

    Otherwise 0 (docs/claims.md#C-exit-status).
    """
    bad = [r for r in results if r.kind != "P" and r.verdict in ("fails", "error")]
    return 1 if bad else 0


KEY_WIDTH = 96  # the printed table cuts longer key numbers (report.md and claims.json keep them)


def render_table(results: Sequence[ClaimResult]) -> str:
    """The plain-text table: id, kind, verdict, key number, seconds, and the backends.

    The backend column names what each check ran its implementation on when that is not NumPy for
    all of them.
    """
    with_backend = any(r.backend != "numpy" for r in results)
    rows = [("id", "kind", "verdict", "key number", "s") + (("on",) if with_backend else ())]
    rows += [
        (r.id, r.kind, r.verdict, _short(r.key), f"{r.seconds:.1f}")
        + ((r.backend,) if with_backend else ())
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_report(results: Sequence[ClaimResult], meta: dict[str, Any]) -> str:
    """A readable markdown report: per claim its statement, method, evidence and verdict.

    A summary table, then per claim its text, the anchors it rests on, its figure, a P claim's
    headline and subclaims (:func:`render_subclaims`) and the evidence as JSON (cut at 6000
    characters; ``claims.json`` keeps all of it). Layout: docs/claims.md#C-evidence.
    """
    out = [
        "# xsam-theory verify report",
        "",
        f"package {meta['package_version']}"
        + (f" (source digest {meta['source_digest']})" if meta.get("source_digest") else "")
        + f", backend {meta['backend']}"
        f" ({meta['device'] or 'cpu'}, {meta['dtype']}), seed {meta['seed']}, "
        f"scale {meta['scale']}",
        "",
        "The implementation under test ran on the backend in the column *on*; every check's "
        "measurements are NumPy. A check that cannot run on the requested backend runs on NumPy.",
        "",
        "| id | kind | verdict | key number | seconds | on |",
        "|---|---|---|---|---|---|",
    ]
    out += [
        f"| {r.id} | {r.kind} | **{r.verdict}** | {_cell(r.key)} | {r.seconds:.1f} | {r.backend} |"
        for r in results
    ]
    for r in results:
        out += [
            "",
            f"## {r.id} ({r.kind}): {r.verdict}",
            "",
            f"**Statement.** {r.statement}",
            "",
            f"**Method.** {r.method}",
            "",
            f"**Tolerance.** {r.tolerance}",
            "",
        ]
        if r.facts:
            out += [f"**Rests on.** {', '.join(r.facts)}", ""]
        if r.figure:
            fid = Path(r.figure).stem
            out += [
                f"![{r.id}: figure {fid}]({r.figure})",
                "",
                f"*Figure `{fid}` (`xsam-theory figures --only {fid}`; its numbers are in "
                f"`{Path(r.figure).with_suffix('.csv')}`).*",
                "",
            ]
        out += render_subclaims(r.to_json()["evidence"])
        out += _cache_line(r.evidence.get("cached_runs"))
        evidence = {k: v for k, v in r.to_json()["evidence"].items() if k != "traceback"}
        out += [
            "**Evidence.**",
            "",
            "```json",
            json.dumps(evidence, indent=1, sort_keys=True)[:6000],
            "```",
        ]
        if "traceback" in r.evidence:
            out += ["", "```", str(r.evidence["traceback"])[-3000:], "```"]
    return "\n".join(out) + "\n"


def _cache_line(cached: dict[str, int] | None) -> list[str]:
    """The report's line on where a claim's sweep runs came from (none without sweeps)."""
    if not cached:
        return []
    k, n = cached["cached"], cached["runs"]
    if k == 0:
        return [f"**Runs.** All {n} sweep runs were computed by this run.", ""]
    return [
        f"**Runs.** {k} of {n} sweep runs were read from the run store (computed earlier "
        f"by the same code and configuration: the source digest is part of each run's "
        f"hash); {n - k} were computed by this run.",
        "",
    ]


def render_subclaims(evidence: dict[str, Any]) -> list[str]:
    """Markdown lines for a P claim's headline and its subclaims table.

    The headline gives the rule, verdict and attribution; the table the estimate, 95 % interval,
    n, Holm-adjusted p-value and verdict. Nothing for a claim without subclaims.
    """
    subs = evidence.get("subclaims")
    if not subs:
        return []
    out = []
    head = evidence.get("headline")
    if head:
        out += [
            f"**Headline: {head.get('verdict')}.** Rule: {head.get('rule')} "
            f"(subclaims: {', '.join(head.get('subclaims', []))}).",
            "",
        ]
        if head.get("attribution"):
            out += [f"**Attribution.** {head['attribution']}", ""]
    return [*out, *subclaims_table(subs), ""]


def subclaims_table(
    subclaims: list[dict[str, Any]], text: Callable[[Any], str] = lambda x: _cell(str(x))
) -> list[str]:
    """The markdown table of a P claim's judged subclaims, one row per subclaim.

    Columns: id, estimate, 95 % interval ``[lo, hi]``, n, diverged runs, Holm-adjusted p-value
    and verdict (docs/claims.md#C-p-protocol). Numbers are written with 3 significant digits;
    every other cell goes through ``text`` (by default: its pipes escaped).
    """

    def num(x: Any) -> str:
        return f"{x:.3g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else text(x)

    rows = [
        "| subclaim | estimate | 95 % interval | n | diverged | p (Holm) | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in subclaims:
        lo, hi = c.get("interval", ["nan", "nan"])
        rows.append(
            f"| {text(c['id'])} | {num(c.get('estimate'))} | [{num(lo)}, {num(hi)}] | "
            f"{text(c.get('n'))} | {text(c.get('n_diverged', 0))} | "
            f"{num(c.get('p_adjusted'))} | {text(c.get('verdict'))} |"
        )
    return rows


def _short(text: str) -> str:
    return text if len(text) <= KEY_WIDTH else text[: KEY_WIDTH - 3] + "..."


def _cell(text: str) -> str:
    """Escape the pipes of a markdown table cell."""
    return text.replace("|", "\\|")


#: verify's outputs in ``--out``, replaced together by each run, the index first (see
#: :func:`xsam_theory.io.replace_together`); every other entry (the run stores) is kept
OUTPUTS = ["report.md", "claims.json", "figures"]


def write_outputs(
    results: Sequence[ClaimResult], out_dir: str | Path, meta: dict[str, Any]
) -> tuple[Path, Path]:
    """Write ``claims.json`` and ``report.md`` atomically into ``out_dir``.

    ``claims.json`` holds the run's settings, ``source_digest`` (the digest of the code that ran)
    and every claim's record (the schema: docs/claims.md#C-evidence).
    """
    out_dir = Path(out_dir)
    doc = {
        "package_version": meta["package_version"],
        "source_digest": meta.get("source_digest"),
        "backend": meta["backend"],
        "device": meta["device"],
        "dtype": meta["dtype"],
        "seed": meta["seed"],
        "quick": meta["scale"] == "quick",
        "scale": meta["scale"],
        "claims": [r.to_json() for r in results],
    }
    text = json.dumps(doc, indent=1, sort_keys=False) + "\n"
    j = atomic_write(out_dir / "claims.json", lambda f: f.write(text.encode()))
    report = render_report(results, meta)
    m = atomic_write(out_dir / "report.md", lambda f: f.write(report.encode()))
    return j, m


def figures_of(ids: Sequence[str]) -> list[str]:
    """The figure ids the claims ``ids`` name, each once, in ledger order."""
    return list(dict.fromkeys(CLAIMS[i].figure for i in ids if CLAIMS[i].figure is not None))


def _figure_context(
    quick: bool, seed: int, experiment_scale: str | None, datasets: Sequence[str] | None
) -> Any:
    from xsam_theory.figures import FigureContext

    return FigureContext(
        quick=quick,
        seed=seed,
        experiment_scale=experiment_scale,
        datasets=None if datasets is None else tuple(datasets),
    )


def _draw_one(fid: str, fctx: Any, folder: Path) -> None:
    from xsam_theory.figures import make_figure

    make_figure(fid, fctx, folder)


def draw_figures(
    results: Sequence[ClaimResult],
    out_dir: str | Path,
    *,
    quick: bool,
    seed: int,
    progress: IO[str] | None = None,
    experiment_scale: str | None = None,
    datasets: Sequence[str] | None = None,
    drawn: dict[str, Future[None]] | None = None,
) -> dict[str, str]:
    """Draw each figure that the selected claims name and point each result at it.

    Figures named by ``@claim(figure=...)`` go to ``out_dir/figures/`` (PNG, PDF and the CSV of
    its numbers), and each result gets ``figure = "figures/ID.png"`` (relative to ``out_dir``).
    Quick claims get quick figures; with ``experiment_scale`` (verify's scale) a figure that draws
    a claim's experiment draws the evidence that claim's check measured in this process (no
    second run). ``drawn``: figures already being drawn elsewhere (futures); their results are
    collected here.

    Every figure is attempted. Returns ``{figure id: error}`` for the figures that could not be
    drawn or written (an exception, a full disk); their claims keep ``figure = None`` and their
    verdicts (a figure illustrates a claim, it does not judge it). :func:`main` turns any such
    error into exit status :data:`OUTPUT_FAILED`.
    """
    wanted: dict[str, list[ClaimResult]] = {}
    for r in results:
        fid = CLAIMS[r.id].figure
        if fid is not None:
            wanted.setdefault(fid, []).append(r)
    fctx = _figure_context(quick, seed, experiment_scale, datasets)
    drawn = drawn or {}
    errors: dict[str, str] = {}
    t0 = time.perf_counter()
    for i, (fid, rs) in enumerate(wanted.items()):
        if progress is not None:
            _bar(progress, i, len(wanted), f"figure {fid}", time.perf_counter() - t0)
        try:
            if fid in drawn:
                drawn[fid].result()
            else:
                _draw_one(fid, fctx, Path(out_dir) / "figures")
        except Exception as e:  # reported by the caller, with every other figure's error
            errors[fid] = f"{type(e).__name__}: {e}"
        if fid not in errors:
            for r in rs:
                r.figure = f"figures/{fid}.png"
    if progress is not None and wanted:
        _bar(progress, len(wanted), len(wanted), "figures done", time.perf_counter() - t0)
        progress.write("\n")
        progress.flush()
    return errors


class OutputError(RuntimeError):
    """verify's outputs could not be made or written; the previous outputs are unchanged."""


def main(
    scale: str,
    only: Sequence[str] | None,
    out: str,
    seed: int,
    backend: str,
    device: str | None,
    quiet: bool = False,
    figures: bool = True,
    datasets: Sequence[str] | None = None,
) -> int:
    """The command's body: returns the exit status.

    Status: 0, or 1 if any D/L/F claim fails or errors (P verdicts never change it); 2 if
    ``out`` cannot be an output folder (a file, under a file, not writable: checked before any
    check runs; ``error: ...`` on stderr); :data:`OUTPUT_FAILED` (3) if a figure or
    ``claims.json``/``report.md`` could not be drawn or written.

    Outputs: everything is written into a fresh temporary folder inside ``out`` and then
    replaces ``claims.json``, ``report.md`` and ``figures/`` of ``out`` as one set
    (:func:`xsam_theory.io.replace_together`): ``out`` never holds a report next to another
    run's figures, and a run that fails or is interrupted leaves the previous outputs as they
    were. The run stores (``out/sweeps.sqlite``, ``out/p_gen/``) stay in ``out`` throughout, so
    a run killed at any point resumes from them.
    """
    ids = _select(only)
    try:
        out_dir = prepare_output_folder(out)
        remove_stale_temporaries(out_dir / "verify")
        staging = temporary_path(out_dir / "verify")
        staging.mkdir()
    except (OutputPathError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        return _run_into(staging, ids, scale, out, seed, backend, device, quiet, figures, datasets)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _run_into(
    staging: Path,
    ids: Sequence[str],
    scale: str,
    out: str,
    seed: int,
    backend: str,
    device: str | None,
    quiet: bool,
    figures: bool,
    datasets: Sequence[str] | None,
) -> int:
    """Run the checks, write every output into ``staging``, then move them into ``out`` together.

    The checks keep their stores in ``out``. Returns the exit status.
    """
    ctx = ExperimentContext(
        scale=scale,
        seed=seed,
        backend=backend,
        device=device,
        out_dir=out,
        progress=not quiet,
        datasets=None if datasets is None else tuple(datasets),
    )
    errors: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        # figures that draw no claim's experiment are drawn by a second process while the
        # checks run; the others are drawn here afterwards, from the evidence just measured
        drawn: dict[str, Future[None]] = {}
        independent = [
            f for f in figures_of(ids) if figures and not FIGURES[f].draws_claim_evidence
        ]
        if independent:
            pool = stack.enter_context(
                ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            )
            fctx = _figure_context(scale == "quick", seed, scale, ctx.datasets)
            drawn = {f: pool.submit(_draw_one, f, fctx, staging / "figures") for f in independent}
        results = run_ledger(ctx, ids, progress=None if quiet else sys.stderr)
        if figures:
            errors = draw_figures(
                results,
                staging,
                quick=scale == "quick",
                seed=seed,
                progress=None if quiet else sys.stderr,
                experiment_scale=scale,
                datasets=ctx.datasets,
                drawn=drawn,
            )
    meta = {
        "package_version": __version__,
        "source_digest": package_digest(),
        "backend": backend,
        "device": device,
        "dtype": "float64",
        "seed": seed,
        "scale": scale,
    }
    print(render_table(results))
    for r in results:
        if "cached_runs" in r.evidence:
            c = r.evidence["cached_runs"]
            print(
                f"{r.id}: {c['cached']} of {c['runs']} sweep runs read from the run store "
                f"in {out} (computed earlier by this code); {c['runs'] - c['cached']} "
                "computed now"
            )
    try:
        if errors:
            raise OutputError(
                "; ".join(
                    f"figure {fid!r} could not be drawn or written ({e})"
                    for fid, e in errors.items()
                )
            )
        try:
            write_outputs(results, staging, meta)
            replace_together(out, staging, OUTPUTS)
        except OSError as e:
            raise OutputError(f"could not write the outputs: {e}") from None
    except OutputError as e:
        print(
            f"error: {e}; nothing in {out} was changed (claims.json, report.md and figures/ "
            f"are still those of the previous run; finished sweep runs are kept in its "
            f"stores): fix the cause (e.g. free disk space) and rerun",
            file=sys.stderr,
        )
        return OUTPUT_FAILED
    status = exit_status(results)
    print(
        f"\nwrote {Path(out) / 'claims.json'} and {Path(out) / 'report.md'}; exit status "
        f"{status} (1 if any D/L/F claim fails or errors; P verdicts never change it)"
    )
    return status
