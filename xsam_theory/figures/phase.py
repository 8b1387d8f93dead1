r"""``phase``: final :math:`\lambda_{\max}` of X-SAM (paper rule) over a :math:`(\rho,\alpha)` grid.

The vector factorization toy :math:`\tfrac12(x^\top y - 1)^2`, :math:`x, y \in \mathbb R^4`, from
standard normal starts (one per seed), X-SAM's paper rule with the exact top eigenvector and a
constant step length; at the end of the budget the exact :math:`\lambda_{\max}` (on the minimizer
manifold :math:`\|x\|^2 + \|y\|^2 \geq 2`) and the loss, median over seeds. :math:`\alpha = 0` is
normalized SAM; F-ESCAPE predicts that for :math:`\alpha > 1` the paper rule leaves the minimum
(the loss column shows where; derivation: docs/theory.md#T-escape). The grid runs through the
sweep runner (:func:`xsam_theory.sweeps.run_sweep`: content-hashed runs, a SQLite store in a
temporary folder, the local process pool in full mode); quick mode uses a coarse grid, one seed
and fewer steps.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from xsam_theory.figures import FigureContext
from xsam_theory.figures.style import DOUBLE, new_figure
from xsam_theory.figures.table import Table

ID = "phase"
TITLE = "Phase diagram: final lambda_max of X-SAM over (rho, alpha)"
SUMMARY = (
    "final lambda_max (and final loss) of X-SAM's paper rule over a (rho, alpha) grid on "
    "the vector factorization toy, median over seeds, run through the sweep runner"
)

LR = 0.05
LOSS_CONVERGED = 0.1  # above it a run has left the minimum (F-ESCAPE: alpha > 1)


def sweep_spec(ctx: FigureContext) -> dict[str, Any]:
    """The grid as a sweep specification (:class:`xsam_theory.sweeps.SweepSpec` dict form)."""
    steps = ctx.pick(200, 600)
    return {
        "name": f"figure-phase-{ctx.mode}",
        "description": "final lambda_max of X-SAM (paper rule, exact v) over (rho, alpha); "
        "factorization n=4",
        "problem": {"name": "factorization", "n": 4, "depth": 2},
        "init": {"kind": "normal", "scale": 1.0},
        "optimizers": [
            {
                "preset": "xsam_paper",
                "lr": LR,
                "eigvec_source": "exact",
                "grid": {
                    "rho": ctx.pick([0.0, 0.05, 0.2], [0.0, 0.02, 0.05, 0.1, 0.2]),
                    "alpha": ctx.pick([0.0, 0.5, 1.5], [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]),
                },
            }
        ],
        "seeds": [ctx.seed + s for s in range(ctx.pick(1, 3))],
        "steps": steps,
        "monitors": [{"type": "spectral", "every": steps, "method": "exact"}],
        "results": {"final_lambda_max": "spectral.lambda_max:last", "final_loss": "final_loss"},
        "store_trajectory": False,
    }


def run_grid(ctx: FigureContext) -> list[dict[str, Any]]:
    """Run the grid with :func:`~xsam_theory.sweeps.run_sweep` and return its rows.

    One process in quick mode, the available cores in full mode.
    """
    from xsam_theory.sweeps import run_sweep

    with tempfile.TemporaryDirectory(prefix="xsam-phase-") as tmp:
        result = run_sweep(sweep_spec(ctx), Path(tmp) / "phase.sqlite", workers=ctx.pick(1, None))
        if not result.ok:
            raise RuntimeError(
                f"phase sweep: {len(result.failed)} run(s) failed: "
                f"{[r.message for r in result.failed][:3]}"
            )
        return result.table(columns="all")


def data(ctx: FigureContext) -> Table:
    """The ``phase`` figure's table: final λ_max and loss per run and the median per (ρ, α) cell."""
    rows = run_grid(ctx)
    spec = sweep_spec(ctx)
    table = Table()
    for r in sorted(rows, key=lambda r: (r["optimizer.rho"], r["optimizer.alpha"], r["seed"])):
        table.add(
            source="run",
            rho=r["optimizer.rho"],
            alpha=r["optimizer.alpha"],
            seed=r["seed"],
            final_lambda_max=r["final_lambda_max"],
            final_loss=r["final_loss"],
            outcome=r["outcome"],
            lr=LR,
            steps=spec["steps"],
            run_hash=r["hash"],
        )
    runs = table.where(source="run")
    for rho in sorted(set(runs.col("rho"))):
        for alpha in sorted(set(runs.col("alpha"))):
            cell = runs.where(rho=rho, alpha=alpha)
            table.add(
                source="median",
                rho=rho,
                alpha=alpha,
                seeds=len(cell),
                final_lambda_max=float(np.median(cell.col("final_lambda_max"))),
                final_loss=float(np.median(cell.col("final_loss"))),
                lr=LR,
                steps=spec["steps"],
            )
    return table


def _fmt(v: float) -> str:
    return f"{v:.2g}" if abs(v) < 100 else f"{v:.0f}"


def plot(table: Table, ctx: FigureContext) -> Figure:
    """Draw the ``phase`` figure from its table."""
    fig, (ax, ax_l) = new_figure(DOUBLE, 2.9, ncols=2)
    med = table.where(source="median")
    rhos = sorted(set(med.col("rho")))
    alphas = sorted(set(med.col("alpha")))
    lam = np.full((len(rhos), len(alphas)), np.nan)
    loss = np.full_like(lam, np.nan)
    for r in med:
        i, j = rhos.index(r["rho"]), alphas.index(r["alpha"])
        lam[i, j], loss[i, j] = r["final_lambda_max"], r["final_loss"]
    left = loss > LOSS_CONVERGED
    r0 = med.rows[0]
    panels = (
        (
            ax,
            np.where(left, np.nan, lam),
            lam,
            r"(a) final $\lambda_{\max}$",
            r"$\lambda_{\max}$ at the minimum",
        ),
        (ax_l, loss, loss, "(b) final loss", "loss"),
    )
    for a, z, shown, title, unit in panels:
        pos = z[np.isfinite(z) & (z > 0)]
        norm = LogNorm(pos.min(), pos.max()) if pos.size and pos.max() > pos.min() else None
        im = a.imshow(
            np.where(z > 0, z, np.nan), origin="lower", aspect="auto", norm=norm, cmap="viridis"
        )
        cb = fig.colorbar(im, ax=a, shrink=0.9, pad=0.02)
        cb.set_label(f"{unit}, median over seeds (log)", fontsize=6.5)
        cb.ax.tick_params(labelsize=6)
        if a is ax:
            cb.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            cb.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            cb.ax.yaxis.set_minor_formatter(NullFormatter())
        for i in range(len(rhos)):
            for j in range(len(alphas)):
                v = shown[i, j]
                if not np.isfinite(v):
                    continue
                if a is ax and left[i, j]:
                    a.add_patch(
                        Rectangle(
                            (j - 0.5, i - 0.5), 1, 1, fc="0.88", ec="0.6", hatch="////", lw=0.4
                        )
                    )
                    a.text(j, i, f"{_fmt(v)}\nleft", ha="center", va="center", fontsize=5.3)
                    continue
                light = norm is not None and norm(v) < 0.55
                a.text(
                    j,
                    i,
                    _fmt(v) if a is ax else f"{v:.0e}",
                    ha="center",
                    va="center",
                    fontsize=5.5,
                    color="white" if light else "black",
                )
        a.set_xticks(range(len(alphas)))
        a.set_xticklabels([f"{x:g}" for x in alphas])
        a.set_yticks(range(len(rhos)))
        a.set_yticklabels([f"{x:g}" for x in rhos])
        a.set_xlabel(r"correction strength $\alpha$")
        a.set_ylabel(r"SAM radius $\rho$")
        a.grid(False)
        a.set_title(title, loc="left", fontweight="bold")
    fig.suptitle(
        rf"X-SAM paper rule, exact $v$, step $\eta={r0['lr']:g}$, {r0['steps']} steps, "
        rf"factorization $\frac{{1}}{{2}}(x^\top y-1)^2$, $x,y\in\mathbb{{R}}^4$, "
        f"{r0['seeds']} seed(s).\nHatched: the run left the minimum "
        f"(final loss > {LOSS_CONVERGED:g}); flattest minimum: $\\lambda_{{\\max}}=2$",
        fontsize=7,
    )
    return fig
