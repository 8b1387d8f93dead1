r"""``drift``: sharpness drift along a manifold of minimizers (L-DRIFT, F-CONFOUND).

See docs/theory.md#T-drift, docs/theory.md#T-flat-bias and docs/theory.md#T-confound.

(a, b) The factorization toy :math:`\tfrac12(xy - 1)^2` from the unbalanced start (3, 0.4): its
minimizers :math:`xy = 1` have :math:`\lambda_{\max} = x^2 + y^2 = \sqrt{D^2 + 4}`,
:math:`D = x^2 - y^2` (:func:`~xsam_theory.symbolic.drift.factorization_gd`), flattest at
(1, 1). GD nearly conserves :math:`D` (each step multiplies it by :math:`1 - \eta^2r^2`) and stops
at a sharp minimizer; SAM drifts toward the flattest one; the normalized forms (X-SAM paper and
symmetric rules, and their :math:`\alpha = 0` ablation NSAM), started with SAM's first step
length, drift faster in wall steps because their step length does not shrink with the gradient
(F-CONFOUND), and where they stop depends on the rule.
(c) The ravine :math:`\tfrac12\lambda_0(1 + y^2)x^2`: the valley coordinate :math:`y` of SAM and of
the projector form (exact :math:`v` at the iterate) against the closed-form per-step drift
(:func:`~xsam_theory.symbolic.drift.ravine_drift`, :func:`~xsam_theory.symbolic.drift.
ravine_drift_tilted`) iterated from the measured :math:`y` once the cycle across the valley has
settled; GD does not move along the valley.
"""

from __future__ import annotations

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from xsam_theory.figures import FigureContext
from xsam_theory.figures._common import matched_step_length
from xsam_theory.figures.style import DOUBLE, method_style, new_figure
from xsam_theory.figures.table import Table
from xsam_theory.optimizers import preset
from xsam_theory.problems import Factorization, Ravine
from xsam_theory.symbolic import drift as symd
from xsam_theory.trajectory import run_trajectory

ID = "drift"
TITLE = "Drift toward flat minimizers: factorization manifold and ravine"
SUMMARY = (
    "paths of GD, SAM, X-SAM (paper, symmetric) and NSAM on the factorization toy's "
    "minimizer manifold xy = 1 with lambda_max along them; SAM's ravine drift against "
    "its closed form"
)

W0 = (3.0, 0.4)
ETA, RHO, ALPHA = 0.05, 0.05, 0.5
FACT_METHODS = ("gd", "sam", "nsam", "xsam_paper", "xsam_symmetric")
RAVINE = dict(lam0=5.0, w0=(0.3, 1.0), eta=0.1, rho=0.02, alpha=0.5, settle=200)


def _kept(steps: int) -> np.ndarray:
    """Every iterate of the first 200 steps (GD's whole descent), then every 10th."""
    return np.unique(
        np.concatenate([np.arange(min(200, steps + 1)), np.arange(0, steps + 1, 10), [steps]])
    )


def ravine_prediction(method: str, y0: float, n: int) -> np.ndarray:
    r"""``y`` over ``n`` steps from ``y0``, iterating the closed-form per-step drift.

    The drift is SAM's :math:`-4\eta\lambda_0\rho^2y/(2-\eta\lambda_1)^2` (:math:`\alpha = 0`;
    docs/theory.md#T-drift), or the projector form's with the iterate's exact eigenvector (the
    tilted formula of docs/theory.md#T-confound).

    Raises:
        ValueError: For a method without a drift formula.
    """
    r = RAVINE
    if method == "sam":
        f, a = symd.ravine_drift().func, 0.0
    elif method == "xsam_projector":
        f, a = symd.ravine_drift_tilted().func, r["alpha"]
    else:
        raise ValueError(f"no drift formula for {method!r}")
    y = np.empty(n + 1)
    y[0] = y0
    for k in range(n):
        y[k + 1] = y[k] + float(f(r["eta"], r["rho"], r["lam0"], y[k], a))
    return y


def data(ctx: FigureContext) -> Table:
    """The ``drift`` figure's table: paths on the factorization and ravine toys, closed forms."""
    table = Table()
    problem = Factorization()
    w0 = np.array(W0)
    steps = ctx.pick(1000, 6000)
    step_len = matched_step_length(problem, w0, ETA, RHO)
    configs = {
        "gd": preset("gd", lr=ETA),
        "sam": preset("sam", lr=ETA, rho=RHO),
        "nsam": preset("nsam", lr=step_len, rho=RHO),
        "xsam_paper": preset(
            "xsam_paper", lr=step_len, rho=RHO, alpha=ALPHA, eigvec_source="exact"
        ),
        "xsam_symmetric": preset(
            "xsam_symmetric", lr=step_len, rho=RHO, alpha=ALPHA, eigvec_source="exact"
        ),
    }
    keep = _kept(steps)
    for name, cfg in configs.items():
        traj = run_trajectory(problem, cfg, w0, steps, seed=ctx.seed)
        W = traj.iterates[keep]
        x, y = W[:, 0], W[:, 1]
        lam = np.array([np.linalg.eigvalsh(problem.hessian(w))[-1] for w in W])
        D = x**2 - y**2
        table.add_series(
            {
                "step": keep,
                "x": x,
                "y": y,
                "r": x * y - 1.0,
                "D": D,
                "lambda_max": lam,
                "lambda_on_manifold": symd.factorization_gd().func(D),
            },
            source="trajectory",
            problem="factorization",
            series=name,
            lr=cfg.lr,
            rho=cfg.rho,
            alpha=cfg.alpha,
        )
    xs = np.geomspace(0.28, 3.6, 300)
    table.add_series(
        {"x": xs, "y": 1.0 / xs, "lambda_max": xs**2 + xs**-2},
        source="closed_form",
        problem="factorization",
        series="manifold",
    )

    r = RAVINE
    rav = Ravine(r["lam0"])
    r_steps = ctx.pick(1000, 6000)
    r_keep = np.arange(0, r_steps + 1, 10)
    for name, cfg in {
        "gd": preset("gd", lr=r["eta"]),
        "sam": preset("sam", lr=r["eta"], rho=r["rho"]),
        "xsam_projector": preset(
            "xsam_projector", lr=r["eta"], rho=r["rho"], alpha=r["alpha"], eigvec_source="exact"
        ),
    }.items():
        traj = run_trajectory(rav, cfg, np.array(r["w0"]), r_steps, seed=ctx.seed)
        W = traj.iterates
        table.add_series(
            {"step": r_keep, "x": W[r_keep, 0], "y": W[r_keep, 1]},
            source="trajectory",
            problem="ravine",
            series=name,
            lr=cfg.lr,
            rho=cfg.rho,
            alpha=cfg.alpha,
            lambda_0=r["lam0"],
        )
        if name != "gd":
            t0 = r["settle"]
            pred = ravine_prediction(name, float(W[t0, 1]), r_steps - t0)
            k = r_keep[r_keep >= t0]
            table.add_series(
                {"step": k, "y": pred[k - t0]},
                source="closed_form",
                problem="ravine",
                series=name,
                lr=cfg.lr,
                rho=cfg.rho,
                alpha=cfg.alpha,
                lambda_0=r["lam0"],
                settle=t0,
            )
    return table


def _hyper(r: dict, normalized: bool) -> str:
    s = ("step " if normalized else "") + rf"$\eta={r['lr']:.3g}$"
    if r.get("rho"):
        s += rf", $\rho={r['rho']:g}$"
    if r.get("alpha"):
        s += rf", $\alpha={r['alpha']:g}$"
    return s


def plot(table: Table, ctx: FigureContext) -> Figure:
    """Draw the ``drift`` figure from its table."""
    fig, (ax, ax_l, ax_r) = new_figure(DOUBLE, 3.6, ncols=3, width_ratios=(1.0, 1.1, 1.0))
    fact = table.where(problem="factorization")
    rav = table.where(problem="ravine")
    man = fact.where(series="manifold")
    pts = np.column_stack([man.col("x"), man.col("y")])
    segs = np.stack([pts[:-1], pts[1:]], axis=1)
    lc = LineCollection(
        segs,
        array=man.col("lambda_max")[:-1],
        cmap="viridis",
        norm=Normalize(2.0, 13.0),
        lw=4.0,
        alpha=0.55,
        zorder=0,
    )
    ax.add_collection(lc)
    cb = fig.colorbar(lc, ax=ax, location="top", shrink=0.8, pad=0.02, aspect=30)
    cb.set_label(r"$\lambda_{\max}=x^2+y^2$ on $xy=1$", fontsize=6.5)
    cb.ax.tick_params(labelsize=6)
    handles = []
    for name in (*FACT_METHODS, "xsam_projector"):
        st = method_style(name)
        t = fact.where(source="trajectory", series=name)
        rv = rav.where(source="trajectory", series=name)
        parts = []
        if len(t):
            normalized = name not in ("gd", "sam")
            parts.append(("(a, b) " if len(rv) else "") + _hyper(t.rows[0], normalized))
        if len(rv):
            parts.append("(c) " + _hyper(rv.rows[0], False))
        handles.append(
            Line2D(
                [],
                [],
                color=st["color"],
                ls=st["ls"],
                lw=1.2,
                label=f"{st['label']}: " + "; ".join(parts),
            )
        )
        if not len(t):
            continue
        ax.plot(
            t.col("x"),
            t.col("y"),
            color=st["color"],
            ls=st["ls"],
            lw=0.5,
            alpha=0.9,
            zorder=3 if name in ("gd", "sam") else 2,
        )
        ax.plot(
            t.col("x")[-1], t.col("y")[-1], marker=st["marker"], color=st["color"], ms=4.5, zorder=4
        )
        ax_l.semilogx(
            t.col("step") + 1,
            t.col("lambda_max"),
            color=st["color"],
            ls=st["ls"],
            lw=0.7 if name.startswith("xsam") or name == "nsam" else 1.2,
        )
    ax.plot([W0[0]], [W0[1]], "ko", ms=3.5)
    ax.annotate(r"$w_0$", W0, xytext=(3, -8), textcoords="offset points", fontsize=7)
    ax.plot([1], [1], marker="*", ms=9, mfc="white", mec="k", mew=0.8, zorder=6)
    ax.annotate(
        "flattest\n(1, 1), λ = 2",
        (1, 1),
        xytext=(1.25, 1.35),
        fontsize=6,
        arrowprops=dict(arrowstyle="-", lw=0.5),
    )
    ax.set_xlim(0.3, 3.3)
    ax.set_ylim(0.2, 1.9)
    ax.set_xlabel("$x$")
    ax.set_ylabel("$y$")
    ax.set_title(r"(a) paths, $L=\frac{1}{2}(xy-1)^2$", loc="left", fontweight="bold")

    gd = fact.where(source="trajectory", series="gd")
    ax_l.axhline(2.0, color="0.4", ls="--", lw=0.8)
    ax_l.text(1.2, 2.15, "flattest minimizer, λ = 2", fontsize=6, color="0.3")
    ax_l.axhline(gd.col("lambda_on_manifold")[-1], color="k", ls=":", lw=0.9)
    ax_l.text(
        1.2,
        gd.col("lambda_on_manifold")[-1] + 0.55,
        r"GD's closed form $\sqrt{D^2+4}$, $D=x^2-y^2$",
        fontsize=6,
    )
    ax_l.set_xlabel("step $t+1$")
    ax_l.set_ylabel(r"$\lambda_{\max}(\nabla^2L(w_t))$")
    ax_l.set_ylim(0, 11.5)
    ax_l.set_title(r"(b) $\lambda_{\max}$ along the paths", loc="left", fontweight="bold")

    for name in ("gd", "sam", "xsam_projector"):
        t = rav.where(source="trajectory", series=name)
        st = method_style(name)
        ax_r.plot(t.col("step"), t.col("y"), color=st["color"], ls="-", lw=1.3)
        p = rav.where(source="closed_form", series=name)
        if len(p):
            ax_r.plot(
                p.col("step")[::25],
                p.col("y")[::25],
                ls="none",
                marker="o",
                mfc="none",
                mew=0.8,
                ms=3.5,
                color=st["color"],
            )
    handles.append(
        Line2D(
            [],
            [],
            ls="none",
            marker="o",
            mfc="none",
            color="0.3",
            label="(c) closed-form drift per step, iterated",
        )
    )
    ax_r.set_xlabel("step $t$")
    ax_r.set_ylabel("valley coordinate $y$")
    ax_r.set_ylim(0, 1.05)
    ax_r.set_title(r"(c) ravine $\frac{1}{2}\lambda_0(1+y^2)x^2$", loc="left", fontweight="bold")
    ax_r.text(
        0.97,
        0.87,
        rf"$\lambda_0={rav.rows[0]['lambda_0']:g}$, $w_0=(0.3, 1)$",
        transform=ax_r.transAxes,
        ha="right",
        va="top",
        fontsize=6.5,
    )
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=6)
    return fig
