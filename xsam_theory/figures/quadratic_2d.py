r"""``quadratic-2d``: SAM and X-SAM on a 2-D ill-conditioned quadratic (L-SAM2, F-SIGN, F-WINDOW).

:math:`L(w) = \tfrac12(\lambda_1 w_1^2 + \lambda_2 w_2^2)` with the exact top eigenvector
:math:`v_1 = e_1`. SAM settles into the 2-cycle :math:`\pm c^* v_1`,
:math:`c^* = \eta\rho\lambda_1/(2 - \eta\lambda_1)` (Bartlett–Long–Bousquet; the lambdified
:func:`xsam_theory.symbolic.quadratic.sam_two_cycle`). X-SAM's normalized step reduces along
:math:`v` to a 1-D map independent of :math:`\lambda_1` and :math:`\rho`
(:mod:`xsam_theory.symbolic.xsam_1d`): the paper rule stays in the window
:math:`(-\eta(1-\alpha), \eta(1+\alpha)]` along the *oriented* :math:`v` — shifted, not narrowed —
so it flips with :math:`v \to -v`, while the symmetric rule oscillates in
:math:`[-\eta(1-\alpha), \eta(1-\alpha)]` whatever the orientation.

Derivations: docs/theory.md#T-sam-cycle, docs/theory.md#T-reduction-1d, docs/theory.md#T-window
and docs/theory.md#T-orientation.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from xsam_theory.figures import FigureContext
from xsam_theory.figures.style import DOUBLE, method_style, new_figure
from xsam_theory.figures.table import Table
from xsam_theory.optimizers import preset
from xsam_theory.problems import Quadratic
from xsam_theory.symbolic import quadratic as symq
from xsam_theory.symbolic import xsam_1d
from xsam_theory.trajectory import run_trajectory

ID = "quadratic-2d"
TITLE = "SAM and X-SAM on a 2-D ill-conditioned quadratic"
SUMMARY = (
    "paths of SAM, X-SAM paper rule (v and -v) and symmetric rule on a 2-D quadratic with "
    "contours; the closed-form SAM 2-cycle and X-SAM windows marked"
)

LAMBDAS = (10.0, 0.5)
W0 = (1.0, 1.6)
SAM = dict(lr=0.15, rho=0.1)
XSAM = dict(lr=0.08, rho=0.1, alpha=0.5, eigvec_source="exact")

#: (series, preset, options); "xsam_paper_flipped" is the paper rule with v -> -v
RUNS = (
    ("sam", "sam", SAM),
    ("xsam_paper", "xsam_paper", {**XSAM, "eigvec_sign": 1}),
    ("xsam_paper_flipped", "xsam_paper", {**XSAM, "eigvec_sign": -1}),
    ("xsam_symmetric", "xsam_symmetric", {**XSAM, "eigvec_sign": 1}),
)


def window(series: str, eta: float, alpha: float) -> tuple[float, float]:
    r"""The closed-form long-run range of :math:`x = \langle w, e_1\rangle`.

    The paper rule's :math:`(-\eta(1-\alpha), \eta(1+\alpha)]` along the oriented :math:`v`
    (mirrored for :math:`-v`), the symmetric rule's :math:`[-\eta(1-\alpha), \eta(1-\alpha)]`
    (derivation: docs/theory.md#T-window).

    Args:
        series: ``"xsam_paper"``, ``"xsam_paper_flipped"`` (the paper rule with :math:`-v`) or
            ``"xsam_symmetric"``.
        eta: The step length.
        alpha: The correction strength.

    Returns:
        The window's ``(lower, upper)`` ends.
    """
    if series == "xsam_symmetric":
        h = float(xsam_1d.symmetric_window().func(eta, alpha))
        return -h, h
    lower, upper, _, _ = (float(x) for x in xsam_1d.paper_window().func(eta, alpha))
    return (lower, upper) if series == "xsam_paper" else (-upper, -lower)


def data(ctx: FigureContext) -> Table:
    """The ``quadratic-2d`` figure's table: SAM and X-SAM paths, the 2-cycle and the windows."""
    problem = Quadratic.diagonal_from(list(LAMBDAS))
    w0 = np.array(W0)
    steps = ctx.pick(200, 300)
    l1, l2 = LAMBDAS
    table = Table()
    for series, name, opts in RUNS:
        traj = run_trajectory(problem, preset(name, **opts), w0, steps, seed=ctx.seed)
        w = traj.iterates
        loss = 0.5 * (l1 * w[:, 0] ** 2 + l2 * w[:, 1] ** 2)
        table.add_series(
            {"step": traj.iterate_steps, "x": w[:, 0], "y": w[:, 1], "loss": loss},
            source="trajectory",
            series=series,
            lr=opts["lr"],
            rho=opts["rho"],
            alpha=opts.get("alpha", 0.0),
            eigvec_sign=opts.get("eigvec_sign", 0),
            lambda_1=l1,
            lambda_2=l2,
        )
    c_star, _ = symq.sam_two_cycle().func(SAM["lr"], SAM["rho"], l1, l2)
    for sgn in (1.0, -1.0):
        table.add(
            source="closed_form",
            series="sam_two_cycle",
            x=sgn * float(c_star),
            y=0.0,
            lr=SAM["lr"],
            rho=SAM["rho"],
            alpha=0.0,
            lambda_1=l1,
            lambda_2=l2,
        )
    for series, _, opts in RUNS[1:]:
        lo, hi = window(series, opts["lr"], opts["alpha"])
        table.add(
            source="closed_form",
            series=f"{series}_window",
            lower=lo,
            upper=hi,
            lr=opts["lr"],
            rho=opts["rho"],
            alpha=opts["alpha"],
            eigvec_sign=opts["eigvec_sign"],
            lambda_1=l1,
            lambda_2=l2,
        )
    return table


def _label(series: str, row: dict) -> str:
    if series == "sam":
        return rf"SAM $\eta={row['lr']:g}$, $\rho={row['rho']:g}$"
    base = {
        "xsam_paper": r"X-SAM paper, $+v$",
        "xsam_paper_flipped": r"X-SAM paper, $-v$",
        "xsam_symmetric": "X-SAM symmetric",
    }[series]
    return base + rf" (step $\eta={row['lr']:g}$, $\alpha={row['alpha']:g}$)"


def plot(table: Table, ctx: FigureContext) -> Figure:
    """Draw the ``quadratic-2d`` figure from its table."""
    fig, (ax, ax_x) = new_figure(DOUBLE, 2.9, ncols=2, width_ratios=(1.0, 1.15))
    traj = table.where(source="trajectory")
    l1, l2 = traj.rows[0]["lambda_1"], traj.rows[0]["lambda_2"]
    # (a) the plane, contours of L
    xs = np.linspace(-1.2, 1.2, 241)
    ys = np.linspace(-0.4, 1.8, 221)
    X, Y = np.meshgrid(xs, ys)
    Z = 0.5 * (l1 * X**2 + l2 * Y**2)
    ax.contour(
        X,
        Y,
        Z,
        levels=[0.02, 0.1, 0.3, 0.6, 1.0, 1.6, 2.4, 3.4, 4.6, 6.0],
        colors="0.6",
        linewidths=0.5,
        zorder=0,
    )
    handles = []
    for series in traj.unique("series"):
        t = traj.where(series=series)
        st = method_style(series)
        lab = _label(series, t.rows[0])
        ax.plot(
            t.col("x"),
            t.col("y"),
            color=st["color"],
            ls=st["ls"],
            lw=0.7,
            marker=".",
            ms=2.5,
            alpha=0.85,
            label=lab,
        )
        handles.append(
            Line2D(
                [], [], color=st["color"], ls=st["ls"], marker=st["marker"], ms=3, lw=0.9, label=lab
            )
        )
    cyc = table.where(source="closed_form", series="sam_two_cycle")
    ax.plot(
        cyc.col("x"),
        cyc.col("y"),
        ls="none",
        marker="*",
        ms=9,
        mfc="white",
        mec=method_style("sam")["color"],
        mew=1.2,
        zorder=5,
    )
    ax.plot([W0[0]], [W0[1]], marker="o", color="k", ms=4, zorder=5)
    ax.annotate(r"$w_0$", W0, xytext=(4, 2), textcoords="offset points", fontsize=7)
    ax.annotate(
        r"closed-form 2-cycle $\pm c^*v_1$",
        (cyc.col("x")[0], 0.0),
        xytext=(0.25, -0.3),
        textcoords="data",
        fontsize=6.5,
        arrowprops=dict(arrowstyle="-", lw=0.5, color="0.3"),
    )
    ax.set_xlabel(rf"$w_1 = \langle w, v_1\rangle$  ($\lambda_1={l1:g}$)")
    ax.set_ylabel(rf"$w_2$  ($\lambda_2={l2:g}$)")
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_aspect("equal")
    ax.set_title(
        r"(a) paths on $L=\frac{1}{2}(\lambda_1 w_1^2+\lambda_2 w_2^2)$",
        loc="left",
        fontweight="bold",
    )

    # (b) the coordinate along v1 over the last steps, with the closed-form ranges
    last = 40
    steps = traj.col("step")
    t_end = steps.max()
    for k, series in enumerate(traj.unique("series")):
        t = traj.where(series=series)
        st = method_style(series)
        s = t.col("step")
        keep = s > t_end - last
        ax_x.plot(
            s[keep],
            t.col("x")[keep],
            color=st["color"],
            ls="-",
            lw=0.6,
            marker=st["marker"],
            ms=2.6,
            zorder=3 + k,
        )
        if series != "sam":
            w = table.where(source="closed_form", series=f"{series}_window").rows[0]
            ax_x.axhspan(
                w["lower"],
                w["upper"],
                xmin=0,
                xmax=1,
                color=st["color"],
                alpha=0.13,
                lw=0,
                zorder=0,
            )
            for b in (w["lower"], w["upper"]):
                ax_x.axhline(b, color=st["color"], lw=0.6, ls=st["ls"], zorder=1)
    for c in cyc.col("x"):
        ax_x.axhline(c, color=method_style("sam")["color"], lw=1.0, ls="--", zorder=1)
    ax_x.text(
        t_end - last + 1,
        cyc.col("x").max() * 1.04,
        r"SAM 2-cycle $\pm c^*$, "
        r"$c^*=\eta\rho\lambda_1/(2-\eta\lambda_1)$",
        fontsize=6.5,
        va="bottom",
    )
    ax_x.set_xlabel("step $t$")
    ax_x.set_ylabel(r"$\langle w_t, v_1\rangle$")
    ax_x.set_xlim(t_end - last, t_end + 0.5)
    ax_x.set_title("(b) along $v_1$; lines, shading: closed forms", loc="left", fontweight="bold")
    ax_x.set_ylim(-0.36, 0.42)
    handles.append(
        Line2D(
            [],
            [],
            ls="none",
            marker="*",
            ms=8,
            mfc="white",
            mec=method_style("sam")["color"],
            label=r"closed-form $\pm c^*v_1$",
        )
    )
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=6.5)
    return fig
