r"""``angle``: the P-ANGLE and F-ORIENT evidence.

How aligned the gradient is with the top eigenvector along full-batch SAM training, whether
:math:`\lambda_{\max}` falls less per step when :math:`|\cos\angle(g, v)|` is larger, and what
the oriented statistic does when the sign convention of ``v`` is flipped.

The runs and per-run numbers come from :mod:`xsam_theory.experiments.angle`, the experiment both
claims judge (quick figures use its quick scale, full figures its default scale), so the figure
shows exactly the ledger's evidence. Intervals are 95 % Student-t intervals over runs (the
subclaims' unadjusted intervals; the verdicts, Holm-adjusted, are in the ledger).

The claims: docs/claims/P-ANGLE.md and docs/claims/F-ORIENT.md; the sign convention of ``v``:
docs/theory.md#T-orientation.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from xsam_theory.experiments.angle import (
    CONVENTIONS,
    LRS,
    abs_cos_quantiles,
    angle_runs,
    angle_setup,
    run_statistics,
    summary_interval,
)
from xsam_theory.figures import FigureContext
from xsam_theory.figures.style import DOUBLE, OKABE_ITO, new_figure
from xsam_theory.figures.table import Table

ID = "angle"
TITLE = (
    "P-ANGLE / F-ORIENT: |cos angle(g, v)| along SAM training, the change of lambda_max "
    "per step within 10-step windows, and the oriented statistic under four sign "
    "conventions"
)
SUMMARY = (
    "the P-ANGLE and F-ORIENT evidence: distribution of |cos angle(g, v)| per rate, "
    "per-run within-window effects and window-fixed-effect slopes of delta-lambda on "
    "log10|cos| with t intervals, and the oriented bin difference under the canonical, "
    "negated, reference and continuity conventions of v"
)

GROUPS = ("all", *(f"lr={lr:g}" for lr in LRS))
STATISTICS = ("within_window", "slope", *(f"oriented_{c}" for c in CONVENTIONS))
COLORS = {
    "all": "0.2",
    f"lr={LRS[0]:g}": OKABE_ITO["blue"],
    f"lr={LRS[1]:g}": OKABE_ITO["vermillion"],
}
CONVENTION_COLORS = {
    "canonical": OKABE_ITO["blue"],
    "negated": OKABE_ITO["vermillion"],
    "reference": OKABE_ITO["green"],
    "continuous": OKABE_ITO["orange"],
}


def _group(rows: list[dict], group: str) -> list[dict]:
    return rows if group == "all" else [r for r in rows if f"lr={r['lr']:g}" == group]


def data(ctx: FigureContext) -> Table:
    r"""The ``angle`` figure's table: per-run statistics, :math:`|\cos|` quantiles, summaries."""
    cctx = ctx.experiment_context()
    runs = angle_runs(cctx, reuse=True)
    setup = angle_setup(cctx)
    per_run = [run_statistics(r) for r in runs]
    common = dict(
        claim_scale=cctx.scale,
        rho=setup["rho"],
        widths="-".join(map(str, setup["widths"])),
        burn_in=setup["burn_in"],
        window=setup["window"],
    )
    table = Table()
    for r in runs:
        table.add_series(
            {
                "step": np.arange(setup["burn_in"], setup["burn_in"] + r.dlam.size),
                "cos": r.kept_cos,
                "abs_cos": r.abs_cos,
                "dlam": r.dlam,
            },
            source="step",
            seed=r.seed,
            lr=r.lr,
            **common,
        )
    for stats in per_run:
        table.add(source="run", **stats, **common)
    for group in GROUPS:
        sel = [r for r in runs if group == "all" or f"lr={r.lr:g}" == group]
        table.add(source="quantile", group=group, **abs_cos_quantiles(sel), **common)
        ok = [s for s in _group(per_run, group) if not s["diverged"]]
        for stat in STATISTICS:
            table.add(
                source="summary",
                group=group,
                statistic=stat,
                **summary_interval([s[stat] for s in ok]),
                **common,
            )
    return table


def _interval(ax, x: float, row: dict, color: str, marker: str = "s") -> None:
    m, lo, hi = row["estimate"], row["ci_low"], row["ci_high"]
    if np.isfinite(lo):
        ax.errorbar(
            [x],
            [m],
            yerr=[[m - lo], [hi - m]],
            fmt=marker,
            ms=4,
            capsize=3,
            color=color,
            lw=1.1,
            zorder=3,
        )
    else:
        ax.plot([x], [m], marker, ms=4, color=color, zorder=3)


def _strip(ax, table: Table, stat: str, ylabel: str, title: str) -> None:
    runs, summary = table.where(source="run"), table.where(source="summary", statistic=stat)
    rng = np.random.default_rng(0)
    for i, group in enumerate(GROUPS):
        if group != "all":
            y = runs.col(stat, lr=float(group.split("=")[1]))
            y = y[np.isfinite(y)]
            ax.plot(
                i + 0.18 * rng.uniform(-1, 1, y.size),
                y,
                "o",
                ms=2.3,
                alpha=0.45,
                color=COLORS[group],
                lw=0,
            )
        _interval(ax, i, summary.where(group=group).rows[0], COLORS[group])
    ax.axhline(0, color="0.4", lw=0.7)
    ax.set_xticks(range(len(GROUPS)))
    ax.set_xticklabels(["both rates", *(f"$\\eta={lr:g}$" for lr in LRS)], fontsize=6.5)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left", fontweight="bold")


def plot(table: Table, ctx: FigureContext) -> Figure:
    """Draw the ``angle`` figure from its table."""
    fig, ((ah, ao), (aw, asl)) = new_figure(DOUBLE, 4.8, nrows=2, ncols=2)
    steps = table.where(source="step")
    r0 = steps.rows[0]
    a = steps.col("abs_cos")
    a = a[a > 0]
    edges = np.linspace(np.floor(np.log10(a.min())), 0.0, 31)
    for lr in LRS:
        group = f"lr={lr:g}"
        x = steps.col("abs_cos", lr=lr)
        q = table.where(source="quantile", group=group).rows[0]
        ah.hist(
            np.log10(x[x > 0]),
            bins=edges,
            histtype="step",
            lw=1.0,
            color=COLORS[group],
            label=f"$\\eta={lr:g}$: median {q['median']:.1e}\n"
            f"(10-90%: {q['q10']:.0e}-{q['q90']:.0e})",
        )
        ah.axvline(np.log10(q["median"]), color=COLORS[group], lw=0.8, ls="--")
    ah.set_xlabel(r"$\log_{10}|\cos\angle(g, v)|$  ($0$: $g\parallel v$)")
    ah.set_ylabel("steps (all runs)")
    ah.set_title(r"(a) $|\cos\angle(g,v)|$", loc="left", fontweight="bold")
    ah.legend(loc="upper left", fontsize=5.5)

    _strip(
        aw,
        table,
        "within_window",
        r"$\Delta\lambda$: larger $-$ smaller $|\cos|$ [SD]",
        "(c) P-ANGLE: within-window split",
    )
    _strip(
        asl,
        table,
        "slope",
        r"$\Delta\lambda$ per decade of $|\cos|$ [SD]",
        "(d) P-ANGLE: window fixed-effect slope",
    )

    summary = table.where(source="summary", group="all")
    for i, c in enumerate(CONVENTIONS):
        _interval(ao, i, summary.where(statistic=f"oriented_{c}").rows[0], CONVENTION_COLORS[c])
    ao.axhline(0, color="0.4", lw=0.7)
    ao.set_xticks(range(len(CONVENTIONS)))
    ao.set_xticklabels(
        [
            "canonical $v$\n(largest entry > 0)",
            "negated $v$",
            "fixed random\nreference",
            "continuity\nalong the run",
        ],
        fontsize=6.0,
    )
    ao.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    ao.set_ylabel(r"mean $\Delta\lambda$: $\angle\leq 90°$ minus $> 90°$")
    ao.set_title("(b) F-ORIENT: oriented statistic by sign of $v$", loc="left", fontweight="bold")

    n_runs = len(table.where(source="run"))
    fig.suptitle(
        f"full-batch SAM ($\\rho={r0['rho']:g}$), MLP {r0['widths']}, {n_runs} runs "
        f"(scale '{r0['claim_scale']}'); P-ANGLE predicts (c), (d) > 0; "
        "95% t intervals over runs",
        fontsize=7.5,
    )
    return fig
