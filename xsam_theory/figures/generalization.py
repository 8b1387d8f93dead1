r"""``generalization``: the P-GEN evidence — test loss, test accuracy and :math:`\lambda_{\max}`
at the end of training per method, with 95 % intervals over seeds, on teacher–student MLPs and
on the digits data.

The runs and the statistics come from :func:`xsam_theory.claims.p_gen.generalization_evidence`,
the function the claim P-GEN itself calls (quick figures use the claim's quick scale on both
datasets, full figures its default scale), so the figure shows exactly the evidence the ledger
judges: each method at the learning rate it chose on validation data, per-seed values as dots,
the mean with its 95 % t interval as an error bar, and in the title of each row the claim's
statistic — the paired X-SAM − SAM test-loss difference with its interval and the verdict it
gives. Without scikit-learn the digits row is left out.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from xsam_theory.claims.registry import ExperimentContext
from xsam_theory.figures import FigureContext
from xsam_theory.figures.style import DOUBLE, method_style
from xsam_theory.figures.table import Table

ID = "generalization"
TITLE = "P-GEN: test loss, test accuracy and lambda_max per method on two datasets"
SUMMARY = ("the P-GEN evidence: test loss, test accuracy and final lambda_max per method (SGD, "
           "SAM, Eigen-SAM, X-SAM paper and symmetric rules, alpha = 0 ablation) with 95% "
           "intervals over seeds, teacher-student MLPs and the digits data")

METRICS = {"test_loss": "test loss", "test_accuracy": "test accuracy",
           "lambda_max": r"$\lambda_{\max}$ (training loss)"}
LABELS = {"sgd": "SGD", "sam": "SAM", "eigen_sam": "Eigen-SAM", "xsam_paper": "X-SAM",
          "xsam_symmetric": "X-SAM sym.", "nsam": "α=0 (NSAM)"}
DATASET_TITLES = {"teacher_student": "teacher–student MLP (20% label noise)",
                  "digits": "digits (load_digits)"}


def claim_context(ctx: FigureContext) -> ExperimentContext:
    """The claim scale behind the figure: ``quick`` for quick figures, ``default`` for full."""
    return ExperimentContext(scale=ctx.pick("quick", "default"), seed=ctx.seed)


def data(ctx: FigureContext) -> Table:
    from xsam_theory.claims import load_all

    load_all()          # register the ledger in its order before importing one claim module
    from xsam_theory.claims.p_gen import METHODS, VERDICT_PAIR, generalization_evidence
    from xsam_theory.data import has_digits

    cctx = claim_context(ctx)
    datasets = ["teacher_student"] + (["digits"] if has_digits() else [])
    ev = generalization_evidence(cctx, datasets=datasets, progress=None)
    pair = " - ".join(VERDICT_PAIR)
    table = Table()
    for name, d in ev["datasets"].items():
        lrs = d["tuning"]["selected_lr"]
        for m in METHODS:
            per_seed = d["per_seed"][m]
            table.add_series({"seed": np.array(d["seeds"]),
                              **{q: np.array(per_seed[q]) for q in METRICS}},
                             source="seed", claim_scale=cctx.scale, dataset=name, method=m,
                             lr=lrs[m])
        for m in METHODS:
            for q in METRICS:
                s = d["per_method"][m][q]
                table.add(source="method", claim_scale=cctx.scale, dataset=name, method=m,
                          lr=lrs[m], metric=q, mean=s["mean"], sd=s["sd"], ci_low=s["ci95"][0],
                          ci_high=s["ci95"][1], n=s["n"])
        for q in METRICS:
            p = d["paired"][pair][q]
            table.add(source="paired", claim_scale=cctx.scale, dataset=name, pair=pair,
                      metric=q, mean=p["mean"], sd=p["sd"], ci_low=p["ci95"][0],
                      ci_high=p["ci95"][1], n=p["n"],
                      verdict=d["verdict"] if q == "test_loss" else "")
    return table


def plot(table: Table, ctx: FigureContext) -> Figure:
    from xsam_theory.claims.p_gen import METHODS

    datasets = table.unique("dataset")
    fig = Figure(figsize=(DOUBLE, 2.5 * len(datasets) + 0.25), layout="constrained")
    FigureCanvasAgg(fig)
    subs = np.atleast_1d(fig.subfigures(len(datasets), 1, hspace=0.02))
    methods = list(METHODS)
    x = np.arange(len(methods))
    for sub, name in zip(subs, datasets):
        row = np.atleast_1d(sub.subplots(1, len(METRICS)))
        for ax, (q, label) in zip(row, METRICS.items()):
            for i, m in enumerate(methods):
                style = method_style("gd" if m == "sgd" else m)
                seeds = table.col(q, source="seed", dataset=name, method=m)
                jitter = np.linspace(-0.2, 0.2, max(seeds.size, 1))[:seeds.size]
                ax.plot(i + jitter, seeds, ls="none", marker=style["marker"], ms=2.2,
                        alpha=0.35, color=style["color"])
                s = table.where(source="method", dataset=name, method=m, metric=q).rows[0]
                ax.errorbar([i], [s["mean"]], yerr=[[s["mean"] - s["ci_low"]],
                                                    [s["ci_high"] - s["mean"]]],
                            fmt=style["marker"], ms=4.5, capsize=3, lw=1.1,
                            color=style["color"], mec="black", mew=0.4)
            ax.set_xticks(x)
            ax.set_xticklabels([LABELS[m] for m in methods], fontsize=6, rotation=35,
                               ha="right", rotation_mode="anchor")
            ax.set_xlim(-0.6, len(methods) - 0.4)
            ax.set_ylabel(label)
        p = table.where(source="paired", dataset=name, metric="test_loss").rows[0]
        lrs = ", ".join(f"{LABELS[m]} {_lr(table, name, m):g}" for m in methods)
        sub.suptitle(
            f"{DATASET_TITLES.get(name, name)} — X-SAM − SAM test loss {p['mean']:+.3g} "
            f"[{p['ci_low']:+.3g}, {p['ci_high']:+.3g}] (paired 95% t interval, n = {p['n']})"
            f" → {p['verdict']}\nlearning rates chosen on validation: {lrs}",
            fontsize=7)
    scale = table.rows[0]["claim_scale"]
    fig.suptitle(f"P-GEN (claim scale '{scale}'): dots = seeds, bars = mean with 95% t "
                 "interval", fontsize=7.5, fontweight="bold")
    return fig


def _lr(table: Table, dataset: str, method: str) -> float:
    return float(table.where(source="method", dataset=dataset, method=method).rows[0]["lr"])
