r"""``angle``: the P-ANGLE evidence — the angle between the gradient and the top eigenvector along
SAM training, and how much :math:`\lambda_{\max}` changes per step in each angle bin.

The runs and the claim's statistics come from
:func:`xsam_theory.claims.p_angle.angle_evidence`, the function the claim P-ANGLE itself calls
(quick figures use the claim's quick scale, full figures its default scale), so the figure shows
exactly the evidence the ledger judges: full-batch SAM on teacher–student MLPs, per step the
Lanczos top eigenpair, :math:`\theta = \angle(g, v)` with :math:`v` in the package's canonical
orientation and the orientation-free :math:`\theta' = \arccos|\cos\theta|`. Intervals are 95 %
percentile-bootstrap intervals over seeds (whole runs are resampled).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from xsam_theory.claims.registry import ExperimentContext, verdict_from_interval
from xsam_theory.figures import FigureContext
from xsam_theory.figures.style import DOUBLE, OKABE_ITO, new_figure
from xsam_theory.figures.table import Table
from xsam_theory.stats import bootstrap_interval

ID = "angle"
TITLE = "P-ANGLE: angle(g, v) along SAM training and the change of lambda_max per angle bin"
SUMMARY = ("the P-ANGLE evidence: distribution of angle(g, v) along SAM training (oriented and "
           "orientation-free) and the mean per-step change of lambda_max per angle bin, with "
           "bootstrap intervals and the claim's bin difference")

N_BINS = 5      # equal-count bins of |cos θ|: along SAM the angles crowd near 90°
SIDES = {"le90": r"$\theta\leq 90°$ ($\cos\theta\geq 0$)",
         "gt90": r"$\theta>90°$ ($\cos\theta<0$)"}
COLORS = {"le90": OKABE_ITO["blue"], "gt90": OKABE_ITO["vermillion"],
          "theta": OKABE_ITO["blue"], "theta_free": OKABE_ITO["green"]}


def claim_context(ctx: FigureContext) -> ExperimentContext:
    """The claim scale behind the figure: ``quick`` for quick figures, ``default`` for full."""
    return ExperimentContext(scale=ctx.pick("quick", "default"), seed=ctx.seed)


def _abs_cos(theta_deg: np.ndarray) -> np.ndarray:
    return np.abs(np.cos(np.radians(theta_deg)))


def binned(runs: list[dict], edges: np.ndarray, side: str, seed: int) -> list[dict]:
    r"""Per bin of :math:`|\cos\theta|` (``edges``), over the steps on one ``side`` of 90°:
    the mean over runs of each run's mean :math:`\Delta\lambda` in the bin, with a bootstrap
    interval over runs (runs with no step in the bin are left out; an interval needs two)."""
    out = []
    last = len(edges) - 2
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        per_run, xs = [], []
        for r in runs:
            a = _abs_cos(r["theta"])
            on_side = (r["theta"] <= 90.0) if side == "le90" else (r["theta"] > 90.0)
            sel = on_side & (a >= lo) & ((a < hi) if k < last else (a <= hi))
            if sel.any():
                per_run.append(float(r["dlam"][sel].mean()))
                xs.append(a[sel])
        row = {"bin_low": float(lo), "bin_high": float(hi), "side": side, "runs": len(per_run),
               "steps": int(sum(x.size for x in xs)),
               "bin_mean_abs_cos": float(np.concatenate(xs).mean()) if xs else np.nan,
               "mean_dlam": float(np.mean(per_run)) if per_run else np.nan,
               "ci_low": np.nan, "ci_high": np.nan}
        if len(per_run) >= 2:
            iv = bootstrap_interval(per_run, seed=seed + k)
            row.update(ci_low=iv.low, ci_high=iv.high)
        out.append(row)
    return out


def data(ctx: FigureContext) -> Table:
    from xsam_theory.claims import load_all

    load_all()          # register the ledger in its order before importing one claim module
    from xsam_theory.claims.p_angle import angle_evidence

    cctx = claim_context(ctx)
    ev = angle_evidence(cctx)
    hp = ev["hyperparameters"]
    common = dict(claim_scale=cctx.scale, lr=hp["lr"], rho=hp["rho"],
                  widths="-".join(map(str, hp["widths"])), burn_in=hp["burn_in"])
    table = Table()
    for seed, r in zip(hp["seeds"], ev["runs"]):
        table.add_series({"step": np.arange(hp["burn_in"], hp["burn_in"] + r["dlam"].size),
                          "theta": r["theta"], "theta_free": r["theta_free"],
                          "cos_theta": np.cos(np.radians(r["theta"])), "dlam": r["dlam"]},
                         source="step", seed=seed, **common)
    pooled = np.concatenate([_abs_cos(r["theta"]) for r in ev["runs"]])
    edges = np.quantile(pooled, np.linspace(0.0, 1.0, N_BINS + 1))
    for side in SIDES:
        for row in binned(ev["runs"], edges, side, ctx.seed):
            table.add(source="bin", **row, **common)
    for key, d, iv, split in (("theta", ev["d_or"], ev["interval_or"], 90.0),
                              ("theta_free", ev["d_free"], ev["interval_free"],
                               ev["split_free"])):
        table.add(source="claim", angle=key, split_deg=split,
                  mean_diff_low_minus_high=float(np.mean(d)) if d.size else np.nan,
                  ci_low=iv[0], ci_high=iv[1], runs=int(d.size), **common)
    return table


def _scale(values: np.ndarray) -> int:
    """The power of ten that brings the largest finite |value| into [1, 10)."""
    m = np.nanmax(np.abs(values))
    return int(np.floor(np.log10(m))) if np.isfinite(m) and m > 0 else 0


def plot(table: Table, ctx: FigureContext) -> Figure:
    fig, (ah, ab, ac) = new_figure(DOUBLE, 2.8, ncols=3, width_ratios=(1.0, 1.2, 0.8))
    steps = table.where(source="step")
    r0 = steps.rows[0]
    c = steps.col("cos_theta")
    a = np.abs(c[c != 0])
    edges = np.linspace(np.floor(np.log10(a.min())), np.ceil(np.log10(a.max())), 31)
    for side, sel in (("le90", c >= 0), ("gt90", c < 0)):
        x = np.log10(np.abs(c[sel & (c != 0)]))
        ah.hist(x, bins=edges, histtype="stepfilled", alpha=0.35, color=COLORS[side],
                label=f"{SIDES[side]}: {int(sel.sum())} steps")
        ah.hist(x, bins=edges, histtype="step", lw=0.9, color=COLORS[side])
    ah.set_xlabel(r"$\log_{10}|\cos\angle(g, v)|$  ($0$: $g\parallel v$)")
    ah.set_ylabel("steps (all seeds)")
    ah.set_title(r"(a) alignment of $g$ with $v$", loc="left", fontweight="bold")
    ah.legend(loc="upper left", fontsize=5.8)

    bins = table.where(source="bin")
    e = _scale(np.concatenate([bins.col("ci_low"), bins.col("ci_high"), bins.col("mean_dlam")]))
    f = 10.0 ** -e
    for side, shift in (("le90", 0.97), ("gt90", 1.03)):
        b = bins.where(side=side)
        ok = np.isfinite(b.col("mean_dlam"))
        x = b.col("bin_mean_abs_cos")[ok] * shift
        m = b.col("mean_dlam")[ok] * f
        lo, hi = b.col("ci_low")[ok] * f, b.col("ci_high")[ok] * f
        ab.errorbar(x, m, yerr=np.vstack([m - lo, hi - m]), fmt="o", ms=3.5, capsize=2, lw=0.9,
                    color=COLORS[side], label=SIDES[side])
    ab.set_xscale("log")
    ab.axhline(0, color="0.4", lw=0.7)
    ab.set_xlabel(r"$|\cos\angle(g, v)|$ (bin means; equal-count bins)")
    ab.set_ylabel(rf"mean $\Delta\lambda_{{\max}}$ per step [$10^{{{e}}}$]")
    ab.set_title(r"(b) $\Delta\lambda_{\max}$ per step by bin, 95% CI", loc="left",
                 fontweight="bold")
    ab.legend(loc="best", fontsize=5.8)

    claim = table.where(source="claim")
    e = _scale(np.concatenate([claim.col("ci_low"), claim.col("ci_high")]))
    f = 10.0 ** -e
    labels = []
    for i, key in enumerate(("theta", "theta_free")):
        row = claim.where(angle=key).rows[0]
        m = row["mean_diff_low_minus_high"] * f
        ac.errorbar([i], [m], yerr=[[m - row["ci_low"] * f], [row["ci_high"] * f - m]],
                    fmt="s", ms=4, capsize=3, color=COLORS[key])
        verdict = verdict_from_interval(row["ci_low"], row["ci_high"], better_if="positive")
        ac.annotate(verdict.value, (i, row["ci_high"] * f), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=6,
                    color=COLORS[key])
        labels.append(r"$\theta\leq 90°$" "\nvs $>90°$" if key == "theta" else
                      "$\\theta'$ below\nvs above median")
    ac.axhline(0, color="0.4", lw=0.7)
    ac.set_xticks([0, 1])
    ac.set_xticklabels(labels, fontsize=6.5)
    ac.set_xlim(-0.7, 1.7)
    lo, hi = ac.get_ylim()
    ac.set_ylim(lo, hi + 0.08 * (hi - lo))
    ac.set_ylabel(rf"low $-$ high bin, mean $\Delta\lambda$ [$10^{{{e}}}$]")
    ac.set_title("(c) P-ANGLE statistic", loc="left", fontweight="bold")
    fig.suptitle(f"full-batch SAM ($\\eta={r0['lr']:g}$, $\\rho={r0['rho']:g}$), MLP "
                 f"{r0['widths']}, {len(steps.unique('seed'))} seeds (claim scale "
                 f"'{r0['claim_scale']}'); P-ANGLE predicts (c) > 0 for the oriented split",
                 fontsize=7.5)
    return fig
