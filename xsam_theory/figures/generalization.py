r"""``generalization``: the P-GEN evidence.

Per dataset, test loss and test accuracy of every method at its tuned learning rate (per-seed
dots, mean with 95 % t interval), the rate sensitivity (test loss at the tuned rate and at the
grid rates next to it, beside the tuning curve of mean validation loss), and the judged paired
differences with their 95 % t intervals.

The runs come from :func:`xsam_theory.experiments.generalization.generalization_evidence`, the
function the claim P-GEN calls (quick figures use the ``quick`` scale, full figures
``default``); drawn after the claim in one process, the figure reuses its evidence. The figure
shows estimates and intervals only; the Holm-adjusted verdicts are in ``claims.json``.

The claim and its protocol: docs/claims/P-GEN.md, docs/claims.md#C-p-protocol and
docs/statistics.md.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from xsam_theory.experiments.generalization import (
    COMPARISONS,
    METHODS,
    generalization_evidence,
)
from xsam_theory.figures import FigureContext
from xsam_theory.figures.style import DOUBLE, method_style
from xsam_theory.figures.table import Table
from xsam_theory.stats import t_interval

ID = "generalization"
TITLE = "P-GEN: test loss and accuracy per method, rate sensitivity and paired differences"
SUMMARY = (
    "the P-GEN evidence: test loss and accuracy per method (SGD, SAM, Eigen-SAM, X-SAM "
    "paper rule at alpha 0.2 and 0.5, symmetric rule, alpha = 0 ablation) at tuned "
    "rates with 95% intervals over seeds, test loss at neighbouring rates, and the judged "
    "paired differences, per dataset"
)

LABELS = {
    "sgd": "SGD",
    "sam": "SAM",
    "eigen_sam": "Eigen-SAM",
    "xsam_paper": "X-SAM",
    "xsam_paper_alpha0.5": "X-SAM α=0.5",
    "xsam_symmetric": "X-SAM sym.",
    "nsam": "α=0 (NSAM)",
}
PANEL_METRICS = {"test_loss": "test loss", "test_accuracy": "test accuracy"}


def _style(method: str) -> dict:
    if method == "xsam_paper_alpha0.5":
        s = dict(method_style("xsam_paper"))
        s.update(marker="v", color="#882255")
        return s
    return dict(method_style("gd" if method == "sgd" else method))


def data(ctx: FigureContext) -> Table:
    """The ``generalization`` figure's table: methods, tuning curves, rates and comparisons."""
    cctx = ctx.experiment_context()
    ev = generalization_evidence(cctx, reuse=True)
    table = Table()
    for name, d in ev["datasets"].items():
        lrs = d["tuning"]["selected_lr"]
        for m in METHODS:
            table.add_series(
                {
                    "seed": np.array(ev["eval_seeds"]),
                    **{q: np.asarray(d["per_seed"][m][q], dtype=float) for q in PANEL_METRICS},
                },
                source="seed",
                claim_scale=cctx.scale,
                dataset=name,
                method=m,
                lr=lrs[m],
            )
            for q in PANEL_METRICS:
                s = d["per_method"][m][q]
                table.add(
                    source="method",
                    claim_scale=cctx.scale,
                    dataset=name,
                    method=m,
                    lr=lrs[m],
                    metric=q,
                    mean=s["mean"],
                    sd=s["sd"],
                    ci_low=s["ci95"][0],
                    ci_high=s["ci95"][1],
                    n=s["n"],
                    n_diverged=d["n_diverged"][m],
                )
            for lr, v in d["tuning"]["mean_val_loss"][m].items():
                table.add(
                    source="tuning",
                    claim_scale=cctx.scale,
                    dataset=name,
                    method=m,
                    lr=float(lr),
                    mean_val_loss=v if isinstance(v, float) else math.inf,
                    selected=float(lr) == lrs[m],
                )
        for row in d["rate_table"]:
            if row["metric"] in PANEL_METRICS:
                table.add(
                    source="rate",
                    claim_scale=cctx.scale,
                    dataset=name,
                    method=row["method"],
                    lr=row["lr"],
                    role=row["role"],
                    metric=row["metric"],
                    mean=row["mean"],
                    ci_low=row["ci95"][0],
                    ci_high=row["ci95"][1],
                    n=row["n"],
                    n_diverged=row["n_diverged"],
                )
        for cid, a, b in COMPARISONS:
            vals = d["comparisons"][cid]["values"]
            x = np.asarray(vals["a"]["test_loss"], float) - np.asarray(
                vals["b"]["test_loss"], float
            )
            x = x[np.isfinite(x)]
            iv = t_interval(x) if x.size >= 2 else None
            table.add(
                source="comparison",
                claim_scale=cctx.scale,
                dataset=name,
                comparison=cid,
                a=a,
                b=b,
                metric="test_loss",
                estimate=float(x.mean()) if x.size else math.nan,
                ci_low=iv.low if iv else math.nan,
                ci_high=iv.high if iv else math.nan,
                n=int(x.size),
            )
    return table


def _method_panel(ax, table: Table, name: str, q: str) -> None:
    methods = list(METHODS)
    for i, m in enumerate(methods):
        st = _style(m)
        seeds = table.col(q, source="seed", dataset=name, method=m)
        jitter = np.linspace(-0.2, 0.2, max(seeds.size, 1))[: seeds.size]
        ax.plot(
            i + jitter, seeds, ls="none", marker=st["marker"], ms=2.0, alpha=0.35, color=st["color"]
        )
        s = table.where(source="method", dataset=name, method=m, metric=q).rows[0]
        if np.isfinite(s["ci_low"]):
            ax.errorbar(
                [i],
                [s["mean"]],
                yerr=[[s["mean"] - s["ci_low"]], [s["ci_high"] - s["mean"]]],
                fmt=st["marker"],
                ms=4,
                capsize=2.5,
                lw=1.0,
                color=st["color"],
                mec="black",
                mew=0.4,
            )
    ax.set_xticks(np.arange(len(methods)))
    ax.set_xticklabels(
        [LABELS[m] for m in methods], fontsize=5.5, rotation=40, ha="right", rotation_mode="anchor"
    )
    ax.set_ylabel(PANEL_METRICS[q], fontsize=7)


def _rate_panel(ax, table: Table, name: str) -> None:
    compared = list(dict.fromkeys(m for _, a, b in COMPARISONS for m in (a, b)))
    for m in compared:
        st = _style(m)
        rows = sorted(
            table.where(source="rate", dataset=name, method=m, metric="test_loss").rows,
            key=lambda r: r["lr"],
        )
        lr = np.array([r["lr"] for r in rows])
        mean = np.array([r["mean"] for r in rows])
        lo = np.array([r["ci_low"] for r in rows])
        hi = np.array([r["ci_high"] for r in rows])
        ax.plot(lr, mean, color=st["color"], marker=st["marker"], ms=3, lw=1.0, label=LABELS[m])
        ok = np.isfinite(lo)
        ax.fill_between(lr[ok], lo[ok], hi[ok], color=st["color"], alpha=0.12, lw=0)
        sel = [r for r in rows if r["role"] == "selected"]
        if sel:
            ax.plot(
                [sel[0]["lr"]],
                [sel[0]["mean"]],
                marker="o",
                ms=6,
                mfc="none",
                color="black",
                mew=0.7,
            )
        tune = sorted(
            table.where(source="tuning", dataset=name, method=m).rows, key=lambda r: r["lr"]
        )
        tl = np.array([r["lr"] for r in tune])
        tv = np.array([r["mean_val_loss"] for r in tune])
        ok = np.isfinite(tv)
        ax2 = getattr(ax, "_tuning_twin", None)
        if ax2 is None:
            ax2 = ax.twinx()
            ax._tuning_twin = ax2
            ax2.set_ylabel("tuning: mean val. loss (dashed)", fontsize=6)
            ax2.tick_params(labelsize=5.5)
        ax2.plot(tl[ok], tv[ok], color=st["color"], ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (ring: tuned)", fontsize=7)
    ax.set_ylabel("test loss (eval seeds)", fontsize=7)
    ax.legend(fontsize=5, loc="best", frameon=False)


def _comparison_panel(ax, table: Table, name: str) -> None:
    rows = table.where(source="comparison", dataset=name).rows
    y = np.arange(len(rows))[::-1]
    for yy, r in zip(y, rows):
        ok = np.isfinite(r["ci_low"])
        ax.errorbar(
            [r["estimate"]],
            [yy],
            xerr=[[r["estimate"] - r["ci_low"]], [r["ci_high"] - r["estimate"]]] if ok else None,
            fmt="o",
            ms=3.5,
            capsize=2.5,
            color="black",
            lw=1.0,
        )
    ax.axvline(0.0, color="grey", lw=0.7, ls="--")
    ax.set_yticks(y)
    ax.set_yticklabels([r["comparison"] for r in rows], fontsize=5.5)
    ax.set_xlabel("test loss a - b, 95% t\n(< 0: X-SAM better)", fontsize=6.5)


def plot(table: Table, ctx: FigureContext) -> Figure:
    """Draw the ``generalization`` figure from its table."""
    datasets = table.unique("dataset")
    fig = Figure(figsize=(DOUBLE, 2.45 * len(datasets) + 0.3), layout="constrained")
    FigureCanvasAgg(fig)
    subs = np.atleast_1d(fig.subfigures(len(datasets), 1, hspace=0.02))
    for sub, name in zip(subs, datasets):
        axes = np.atleast_1d(sub.subplots(1, 4, width_ratios=[1, 1, 1.25, 1.05]))
        for ax, q in zip(axes[:2], PANEL_METRICS):
            _method_panel(ax, table, name, q)
        _rate_panel(axes[2], table, name)
        _comparison_panel(axes[3], table, name)
        for ax in axes:
            ax.tick_params(labelsize=6)
        lrs = ", ".join(f"{LABELS[m]} {_lr(table, name, m):g}" for m in METHODS)
        sub.suptitle(f"{name} — tuned learning rates: {lrs}", fontsize=6.5)
    scale = table.rows[0]["claim_scale"]
    fig.suptitle(
        f"P-GEN (scale '{scale}'): dots = evaluation seeds, bars = mean with 95% t "
        "interval; verdicts (Holm) in claims.json",
        fontsize=7.5,
        fontweight="bold",
    )
    return fig


def _lr(table: Table, dataset: str, method: str) -> float:
    return float(table.where(source="method", dataset=dataset, method=method).rows[0]["lr"])
