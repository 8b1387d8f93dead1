r"""``power-quality``: F-POWER — how good is the reference loop's power-iteration ``v``?

The runs come from :func:`xsam_theory.experiments.power_quality.power_evidence`, the runs the
claim F-POWER judges (quick figures use the claim's quick scale, full figures its default
scale). X-SAM under the authors' reference loop (5 warm-started power steps on the minibatch
Hessian every 5 steps, minibatches of 16, momentum, weight decay, cosine learning rate) on small
teacher–student MLPs. At every refresh the new ``v`` is compared with the algebraic top
eigenvector (dense ``eigh`` / Lanczos) of (i) the same minibatch Hessian — the eigensolver's own
error — and (ii) the full-batch Hessian — what "the top eigenvector" means in the paper's
argument. (c, d) The dominant-negative quadratic (top 5, dominant −7): with 5 power steps per
refresh the estimate converges to −7, not to the algebraic top 5, and ``v`` flips sign at every
refresh (:func:`xsam_theory.symbolic.power_flip.dominant_negative_flip`); with 4 it does not.

The reference loop: docs/algorithms.md#A-schedule and docs/algorithms.md#A-eigenvector-sources;
the rate and the flip: docs/theory.md#T-power-rate and docs/theory.md#T-dominant-negative.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from xsam_theory.experiments.power_quality import power_evidence
from xsam_theory.figures import FigureContext
from xsam_theory.figures.style import DOUBLE, OKABE_ITO, new_figure
from xsam_theory.figures.table import Table

ID = "power-quality"
TITLE = "F-POWER: the reference power-iteration eigenvector against the algebraic top"
SUMMARY = (
    "F-POWER: angle and eigenvalue error of the reference power-iteration v against the "
    "exact top eigenvector (same minibatch, full batch) along X-SAM training; the "
    "sign flip at every refresh with a dominant negative eigenvalue"
)

COLORS = {
    "batch": OKABE_ITO["blue"],
    "full": OKABE_ITO["vermillion"],
    5: OKABE_ITO["vermillion"],
    4: OKABE_ITO["blue"],
}


def data(ctx: FigureContext) -> Table:
    """The ``power-quality`` figure's table: MLP refresh records and dominant-negative runs."""
    cctx = ctx.experiment_context()
    ev = power_evidence(cctx, reuse=True)
    table = Table()
    keys = (
        "seed",
        "step",
        "angle_batch_top",
        "angle_full_top",
        "rayleigh",
        "lambda_max_batch",
        "lambda_max_full",
        "reference_eigenvalue",
        "rel_error",
        "dominant_negative",
    )
    for r in ev["rows"]:
        table.add(
            source="mlp_refresh",
            claim_scale=cctx.scale,
            **{k: (float(r[k]) if isinstance(r[k], (float, np.floating)) else r[k]) for k in keys},
        )
    for f in ev["flips"]:
        est, ov = f["eigenvalue_estimates"], f["overlaps"]
        for j, e in enumerate(est):
            table.add(
                source="dominant_negative",
                claim_scale=cctx.scale,
                dim=f["dim"],
                seed=f["seed"],
                power_steps=f["power_steps"],
                refresh=j,
                reference_eigenvalue=e,
                overlap_with_previous=ov[j - 1] if j else None,
                algebraic_top=f["algebraic_top"],
                dominant=f["dominant"],
                converged_from_refresh=f["converged_from_refresh"],
            )
    return table


def plot(table: Table, ctx: FigureContext) -> Figure:
    """Draw the ``power-quality`` figure from its table."""
    fig, axes = new_figure(DOUBLE, 4.4, nrows=2, ncols=2)
    (a_ang, a_err), (a_eig, a_flip) = axes
    mlp = table.where(source="mlp_refresh")
    step = mlp.col("step")
    floor = 1e-3
    for key, name, c in (
        ("angle_batch_top", "same minibatch Hessian", COLORS["batch"]),
        ("angle_full_top", "full-batch Hessian", COLORS["full"]),
    ):
        a_ang.semilogy(
            step,
            np.maximum(mlp.col(key), floor),
            ls="none",
            marker="o",
            ms=2.6,
            alpha=0.7,
            color=c,
            label=f"vs top eigenvector of the {name}",
        )
        med = np.nanmedian(mlp.col(key))
        a_ang.axhline(med, color=c, lw=0.8, ls="--")
    a_ang.set_ylim(floor * 0.7, 9e3)  # room above 90° for the legend
    a_ang.set_yticks([1e-3, 1e-2, 1e-1, 1, 10, 90], ["0.001", "0.01", "0.1", "1", "10", "90"])
    a_ang.set_xlabel("training step (refreshes at 5, 10, … per epoch)")
    a_ang.set_ylabel(r"$\angle(v, v_{\rm top})$ [deg], orientation-free")
    a_ang.set_title(
        "(a) angle of the reference $v$ (dashed: medians)", loc="left", fontweight="bold"
    )
    a_ang.legend(loc="upper left", fontsize=5.8, ncols=1)

    neg = np.array([bool(x) for x in mlp.col("dominant_negative")])
    err = np.maximum(mlp.col("rel_error"), 1e-12)
    a_err.semilogy(
        step[~neg],
        err[~neg],
        ls="none",
        marker="o",
        ms=2.6,
        alpha=0.7,
        color=COLORS["batch"],
        label=r"dominant eigenvalue of $H_B$ positive",
    )
    if neg.any():
        a_err.semilogy(
            step[neg],
            err[neg],
            ls="none",
            marker="x",
            ms=4,
            color=OKABE_ITO["black"],
            label=r"dominant eigenvalue of $H_B$ negative",
        )
    a_err.set_xlabel("training step")
    a_err.set_ylabel(r"$|v^\top H_Bv-\lambda_{\max}(H_B)|\,/\,|\lambda_{\max}(H_B)|$")
    a_err.set_title("(b) relative eigenvalue error, same $H_B$", loc="left", fontweight="bold")
    a_err.set_ylim(err.min() * 0.3, err.max() * 3e3)
    a_err.legend(loc="upper left", fontsize=5.8)

    dn = table.where(source="dominant_negative")
    first = dn.rows[0]
    for k in (5, 4):
        for run in {(r["dim"], r["seed"]) for r in dn.where(power_steps=k)}:
            t = dn.where(power_steps=k, dim=run[0], seed=run[1])
            a_eig.plot(
                t.col("refresh"),
                t.col("reference_eigenvalue"),
                color=COLORS[k],
                lw=0.9,
                marker="o",
                ms=2.5,
                alpha=0.8,
            )
            a_flip.plot(
                t.col("refresh")[1:],
                t.col("overlap_with_previous")[1:],
                color=COLORS[k],
                lw=0.9,
                marker="o",
                ms=2.5,
                alpha=0.8,
            )
    for ax in (a_eig,):
        ax.axhline(first["algebraic_top"], color="k", ls=":", lw=0.9)
        ax.axhline(first["dominant"], color="k", ls="--", lw=0.9)
        ax.text(
            0.2,
            first["algebraic_top"] + 0.3,
            f"algebraic top {first['algebraic_top']:g}",
            fontsize=6,
        )
        ax.text(0.2, first["dominant"] + 0.3, f"dominant {first['dominant']:g}", fontsize=6)
    a_eig.set_ylim(first["dominant"] - 1.5, first["algebraic_top"] + 2)
    a_eig.set_xlabel("refresh $j$")
    a_eig.set_ylabel("reference eigenvalue estimate")
    a_eig.set_title("(c) dominant-negative quadratic: estimate", loc="left", fontweight="bold")
    a_flip.axhline(0, color="0.4", lw=0.7)
    a_flip.set_ylim(-1.15, 1.15)
    a_flip.set_xlabel("refresh $j$")
    a_flip.set_ylabel(r"$\langle v_j, v_{j-1}\rangle$")
    a_flip.set_title("(d) sign flips between refreshes", loc="left", fontweight="bold")
    handles = [
        Line2D(
            [],
            [],
            color=COLORS[k],
            marker="o",
            ms=2.5,
            label=f"{k} power steps per refresh" + (" (reference)" if k == 5 else " (control)"),
        )
        for k in (5, 4)
    ]
    a_flip.legend(handles=handles, loc="center right", fontsize=5.8)
    for ax in (a_eig, a_flip):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    a_eig.legend(handles=handles, loc="center right", fontsize=5.8)
    return fig
