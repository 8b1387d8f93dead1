r"""``lambda-max``: the top Hessian eigenvalue during training and at matched training loss.

Along full-batch MLP training (L-EDGE) and at matched training loss (P-LMAX). The edges:
docs/theory.md#T-gd-edge and docs/theory.md#T-sam-edge.

Bottom row (P-LMAX): the runs of :func:`xsam_theory.experiments.lambda_max.lambda_max_evidence`
(quick figures use the claim's quick scale, full figures its default scale). Per problem,
:math:`\lambda_{\max}` against the training loss at which it was measured, for GD, SAM, X-SAM
(α = 0.2, 0.5) and the α = 0 ablation: light points per seed, the line through the medians over
seeds at the early, mid and late matched levels and at the end of the budget (square); dotted
verticals mark the median matched levels.

Top row (L-EDGE):
GD, SAM, Eigen-SAM and X-SAM (paper rule) from one initialization of a tanh MLP with squared loss
on teacher–student data; :math:`\lambda_{\max}` by Lanczos on exact R-operator HVPs every few
steps. Drawn with the predicted edges: GD's :math:`2/\eta` (Cohen et al. 2021) and SAM's own edge
:math:`\lambda_{SAM}(\|g_t\|) = \frac{\|g_t\|}{2\rho}(\sqrt{1 + 8\rho/(\eta\|g_t\|)} - 1)`
(Long & Bartlett 2023; :func:`~xsam_theory.symbolic.quadratic.sam_edge`, evaluated at SAM's own
gradient norm along its run; both from :func:`~xsam_theory.symbolic.quadratic.stability_edges`).
X-SAM's step is normalized, so its ``lr`` is a step length: it is set to SAM's first step length
:math:`\eta\|g_{adv}(w_0)\|`.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from xsam_theory.experiments.lambda_max import LEVELS, lambda_max_evidence
from xsam_theory.figures import FigureContext
from xsam_theory.figures._common import matched_step_length
from xsam_theory.figures.style import DOUBLE, method_style, new_figure
from xsam_theory.figures.table import Table
from xsam_theory.optimizers import preset
from xsam_theory.problems import MLP
from xsam_theory.symbolic import quadratic as symq
from xsam_theory.trajectory import SpectralMonitor, run_trajectory

ID = "lambda-max"
TITLE = (
    "lambda_max during full-batch MLP training with the GD and SAM edges, and at matched "
    "training loss (P-LMAX)"
)
SUMMARY = (
    "lambda_max along full-batch MLP training for GD, SAM, Eigen-SAM, X-SAM with GD's 2/eta "
    "and SAM's gradient-dependent edge; P-LMAX: lambda_max against training loss per "
    "method at the matched loss levels and the end of the budget"
)
#: P-LMAX methods drawn, with the figure style each borrows
PLMAX_METHODS = {
    "gd": "gd",
    "sam": "sam",
    "xsam0.2": "xsam_paper",
    "xsam0.5": "xsam_symmetric",
    "nsam": "nsam",
}

ETA, RHO, ALPHA = 0.5, 0.05, 0.5
METHODS = ("gd", "sam", "eigen_sam", "xsam_paper")


def gd_edge(eta: float) -> float:
    r"""GD's stability edge :math:`2/\eta`, from the sympy stability edges.

    Derivation: docs/theory.md#T-gd-edge.
    """
    return float(symq.stability_edges().func(eta, 1.0, 1.0, 0.0)[0])


def sam_edge(eta: float, rho: float, grad_norm: np.ndarray) -> np.ndarray:
    r"""SAM's edge :math:`\lambda_{SAM}(\|g\|)` at the gradient norms ``grad_norm``.

    :math:`\lambda_{SAM}(\|g\|) = \frac{\|g\|}{2\rho}(\sqrt{1 + 8\rho/(\eta\|g\|)} - 1)`,
    evaluated elementwise at the gradient norms ``grad_norm`` from the sympy derivation
    (derivation: docs/theory.md#T-sam-edge).
    """
    return np.asarray(symq.sam_edge().func(eta, rho, np.asarray(grad_norm)), dtype=float)


def data(ctx: FigureContext) -> Table:
    """The ``lambda-max`` figure's table: λ_max along MLP training, edges, matched-loss records."""
    widths = ctx.pick((8, 16, 16, 4), (8, 32, 32, 4))
    steps = ctx.pick(200, 1000)
    every = 20
    problem = MLP.teacher_student(widths, 128, loss="squared", seed=1 + ctx.seed)
    w0 = problem.init_params(2 + ctx.seed)
    eig = dict(eigvec_source="lanczos", refresh_every=10, eigen_tol=1e-8)
    configs = {
        "gd": preset("gd", lr=ETA),
        "sam": preset("sam", lr=ETA, rho=RHO),
        "eigen_sam": preset("eigen_sam", lr=ETA, rho=RHO, alpha=ALPHA, **eig),
        "xsam_paper": preset(
            "xsam_paper", lr=matched_step_length(problem, w0, ETA, RHO), rho=RHO, alpha=ALPHA, **eig
        ),
    }
    table = Table()
    arch = "-".join(map(str, widths))
    for name, cfg in configs.items():
        traj = run_trajectory(
            problem,
            cfg,
            w0,
            steps,
            seed=ctx.seed,
            iterate_every=None,
            monitors=[SpectralMonitor(every=every, tol=1e-10)],
        )
        mon = traj.monitors["spectral"]
        at = mon["step"].astype(int)
        d = traj.diagnostics
        # the gradient norm at the monitored iterate (the last one has no step after it)
        g_at = np.array([d["grad_norm"][t] if t < steps else np.nan for t in at])
        loss_at = np.array([d["loss"][t] if t < steps else np.nan for t in at])
        cols = {"step": at, "lambda_max": mon["lambda_max"], "grad_norm": g_at, "loss": loss_at}
        if name == "sam":
            cols["sam_edge"] = sam_edge(ETA, RHO, np.where(np.isfinite(g_at), g_at, 1.0))
            cols["sam_edge"][~np.isfinite(g_at)] = np.nan
        table.add_series(
            cols,
            source="trajectory",
            series=name,
            lr=cfg.lr,
            rho=cfg.rho,
            alpha=cfg.alpha,
            widths=arch,
            loss_fn="squared",
        )
    table.add(source="closed_form", series="gd_edge", lambda_max=gd_edge(ETA), lr=ETA)
    _add_matched(table, ctx)
    return table


def _add_matched(table: Table, ctx: FigureContext) -> None:
    """One row per problem × seed × method × level (``source="matched"``)."""
    cctx = ctx.experiment_context()
    ev = lambda_max_evidence(cctx, reuse=True)
    for problem, study in ev["problems"].items():
        for rec in study["per_seed"]:
            for method, row in rec["methods"].items():
                for level in LEVELS:
                    table.add(
                        source="matched",
                        claim_scale=cctx.scale,
                        problem=problem,
                        seed=rec["seed"],
                        series=method,
                        level=level,
                        level_loss=rec["levels"].get(level, np.nan),
                        loss=row["loss_at"][level],
                        lambda_max=row["lambda"][level],
                        step=row["step"][level],
                        diverged=row["diverged"],
                    )


def plot(table: Table, ctx: FigureContext) -> Figure:
    """Draw the ``lambda-max`` figure from its table."""
    fig = new_figure(DOUBLE, 6.2)[0]
    fig.clear()
    grid = fig.add_gridspec(2, 6, height_ratios=(1.0, 0.9), hspace=0.75, wspace=1.4)
    ax, ax_l = fig.add_subplot(grid[0, :4]), fig.add_subplot(grid[0, 4:])
    _plot_edges(table, ax, ax_l)
    matched = table.where(source="matched")
    problems = list(dict.fromkeys(matched.col("problem")))
    for k, problem in enumerate(problems):
        _plot_matched(
            matched.where(problem=problem),
            fig.add_subplot(grid[1, 2 * k : 2 * k + 2]),
            problem,
            "cde"[k],
            legend=k == 0,
        )
    return fig


def _plot_matched(t: Table, ax, problem: str, letter: str, legend: bool) -> None:
    for method, style_name in PLMAX_METHODS.items():
        m = t.where(series=method)
        st = method_style(style_name)
        loss, lam = m.col("loss"), m.col("lambda_max")
        ok = np.isfinite(loss) & np.isfinite(lam) & (loss > 0)
        ax.scatter(loss[ok], lam[ok], s=3, color=st["color"], alpha=0.25, lw=0)
        med = []
        for level in LEVELS:
            lv = m.where(level=level)
            x, y = lv.col("loss"), lv.col("lambda_max")
            keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
            med.append((np.median(x[keep]), np.median(y[keep])) if keep.any() else (np.nan, np.nan))
        xs, ys = np.array(med).T
        ax.plot(xs, ys, color=st["color"], ls=st["ls"], lw=1.0, marker="o", ms=2.5, label=method)
        ax.plot(xs[-1:], ys[-1:], color=st["color"], marker="s", ms=4, ls="none")
    for level in LEVELS[:-1]:
        v = t.where(level=level).col("level_loss")
        v = v[np.isfinite(v) & (v > 0)]
        if v.size:
            ax.axvline(np.median(v), color="0.6", ls=":", lw=0.8)
            ax.text(
                np.median(v),
                0.02,
                level,
                transform=ax.get_xaxis_transform(),
                fontsize=5,
                ha="right",
                va="bottom",
                color="0.4",
                rotation=90,
            )
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("training loss")
    ax.set_ylabel(r"$\lambda_{\max}$")
    ax.set_title(f"({letter}) P-LMAX: {problem}", loc="left", fontweight="bold", fontsize=7, pad=9)
    if legend:
        ax.legend(fontsize=5, loc="best", title="square: end of budget", title_fontsize=5)


def _plot_edges(table: Table, ax, ax_l) -> None:
    traj = table.where(source="trajectory")
    for name in METHODS:
        t = traj.where(series=name)
        r = t.rows[0]
        st = method_style(name)
        step = "step " if name == "xsam_paper" else ""
        hyper = (
            step
            + rf"$\eta={r['lr']:.3g}$"
            + (rf", $\rho={r['rho']:g}$" if r["rho"] else "")
            + (rf", $\alpha={r['alpha']:g}$" if r["alpha"] else "")
        )
        lab = f"{st['label']} ({hyper})"
        ax.plot(
            t.col("step"), t.col("lambda_max"), color=st["color"], ls=st["ls"], lw=1.2, label=lab
        )
        ax_l.semilogy(
            t.col("step"), t.col("loss"), color=st["color"], ls=st["ls"], lw=1.2, label=lab
        )
    edge = table.where(series="gd_edge").rows[0]
    ax.axhline(edge["lambda_max"], color="k", ls=":", lw=1.0, label=r"GD edge $2/\eta$")
    sam = traj.where(series="sam")
    ax.plot(
        sam.col("step"),
        sam.col("sam_edge"),
        color=method_style("sam")["color"],
        ls=":",
        lw=1.1,
        label=r"SAM edge $\lambda_{SAM}(\|g_t\|)$, SAM's $g_t$",
    )
    top = max(np.nanmax(traj.col("lambda_max")), edge["lambda_max"])
    ax.set_ylim(0, top * 1.15)
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"$\lambda_{\max}(\nabla^2 L(w_t))$")
    ax.set_title(
        f"(a) MLP {traj.rows[0]['widths']}, squared loss, full batch", loc="left", fontweight="bold"
    )
    ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, fontsize=5.9, columnspacing=1.0
    )
    ax_l.set_xlabel("step $t$")
    ax_l.set_ylabel("training loss (squared)")
    ax_l.set_title("(b) training loss", loc="left", fontweight="bold")
    # below panel (b)'s axis label, right-aligned: clear of the legend under panel (a)
    ax_l.text(
        1.0,
        -0.24,
        "X-SAM's normalized step has a\nfixed length: with a constant "
        r"$\eta$"
        "\n"
        r"it stays in an $O(\eta)$ neighbourhood",
        transform=ax_l.transAxes,
        ha="right",
        va="top",
        fontsize=5.5,
        color="0.3",
    )
