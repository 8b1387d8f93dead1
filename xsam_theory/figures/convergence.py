r"""``convergence``: gradient norm and loss against steps for GD, USAM, SAM and X-SAM.

The evidence of L-USAM, L-SAM2, F-WINDOW and P-CONV (derivations: docs/theory.md#T-usam,
docs/theory.md#T-sam-cycle, docs/theory.md#T-window, docs/theory.md#T-normalized-rate).

(a) On the quadratic :math:`\tfrac12 w^\top Hw`, :math:`H = Q\,\mathrm{diag}(10, 4, 1)Q^\top`,
GD and USAM are linear maps, so their whole gradient-norm curves are closed forms:
:math:`\|g_t\| = \big(\sum_i (r(\lambda_i)^t\langle g_0, q_i\rangle)^2\big)^{1/2}` with
:math:`r(\lambda) = 1 - \eta\lambda - \eta\rho\lambda^2` (:func:`~xsam_theory.symbolic.quadratic.
usam_factor`; :math:`\rho = 0` for GD) and linear rate :math:`\max_i|r(\lambda_i)|`. SAM stalls on
its 2-cycle, where :math:`\|g\| = \lambda_1c^*` (:func:`~xsam_theory.symbolic.quadratic.
sam_two_cycle`); X-SAM (paper rule, exact :math:`v`, constant step) stays in its window, so
:math:`\|g\| \lesssim \lambda_1\eta(1+\alpha)` (:func:`~xsam_theory.symbolic.xsam_1d.paper_window`).
(b) Training loss of the same methods on a teacher–student MLP (no closed form).
(c) P-CONV's cells, measured by :func:`xsam_theory.experiments.convergence.run_cell` (the same
function the claim uses): X-SAM with :math:`\eta_t = \eta_0/\sqrt{t+1}`, the best gradient norm
so far against :math:`T` (median over seeds, band from the smallest to the largest seed), its
mean per-seed least-squares slope on the grid :math:`T = 2^k`, and the derived slope with its
finite-:math:`T` allowance; the paper rule at :math:`\alpha = 1.5` (F-ESCAPE) with its diverged
seeds counted.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.ticker import NullFormatter

from xsam_theory.experiments.convergence import Cell, allowance, expected_slope, run_cell
from xsam_theory.figures import FigureContext
from xsam_theory.figures._common import matched_step_length
from xsam_theory.figures.style import DOUBLE, OKABE_ITO, method_style, new_columns, panel_legend
from xsam_theory.figures.table import Table
from xsam_theory.optimizers import preset
from xsam_theory.problems import MLP, Quadratic
from xsam_theory.symbolic import quadratic as symq
from xsam_theory.symbolic import xsam_1d
from xsam_theory.trajectory import run_trajectory

ID = "convergence"
TITLE = "Convergence: closed-form rates and the T^(-1/2) slope"
SUMMARY = (
    "gradient norm / loss against steps for GD, USAM, SAM, X-SAM on a quadratic (with the "
    "closed-form curves, rates, SAM cycle and X-SAM window) and an MLP; fitted T^-1/2 "
    "slope of X-SAM with a decaying step"
)

QUADRATIC_EIGENVALUES = (10.0, 4.0, 1.0)
QUAD = {
    "gd": dict(lr=0.1),
    "usam": dict(lr=0.1, rho=0.095),
    "sam": dict(lr=0.1, rho=0.05),
    "xsam_paper": dict(lr=0.05, rho=0.05, alpha=0.5, eigvec_source="exact"),
}
MLP_ETA, MLP_RHO, ALPHA = 0.5, 0.05, 0.5


def _quadratic(seed: int) -> tuple[Quadratic, np.ndarray]:
    q = Quadratic.from_spectrum(list(QUADRATIC_EIGENVALUES), seed=5000 + seed)
    return q, np.random.default_rng([seed, 5]).standard_normal(len(QUADRATIC_EIGENVALUES))


def _mlp(seed: int, widths: tuple[int, ...]) -> tuple[MLP, np.ndarray]:
    p = MLP.teacher_student(widths, 96, seed=6000 + seed)
    return p, p.init_params(7000 + seed)


def linear_closed_form(
    q: Quadratic, w0: np.ndarray, eta: float, rho: float, steps: int
) -> tuple[np.ndarray, float]:
    r"""GD (``rho=0``) / USAM on a quadratic: the exact gradient norms and the linear rate.

    The exact :math:`\|g_t\| = \big(\sum_i (r(\lambda_i)^t\langle g_0, q_i\rangle)^2\big)^{1/2}`,
    ``t = 0..steps``, with :math:`r(\lambda) = 1 - \eta\lambda - \eta\rho\lambda^2` (the sympy
    factor), and the linear rate :math:`\max_i|r(\lambda_i)|` (derivation:
    docs/theory.md#T-usam).

    Returns:
        ``(norms, rate)``: the gradient norms, shape ``(steps + 1,)``, and the linear rate.
    """
    lam, Q = np.asarray(q.eigenvalues), np.asarray(q.eigenvectors)
    r = np.asarray(symq.usam_factor().func(eta, rho, lam), dtype=float)
    a = Q.T @ (q.hessian_matrix @ w0)  # <g_0, q_i>
    t = np.arange(steps + 1)[:, None]
    return np.sqrt(np.sum((a * r**t) ** 2, axis=1)), float(np.max(np.abs(r)))


def data(ctx: FigureContext) -> Table:
    """The ``convergence`` figure's table: runs and closed forms on a quadratic and an MLP."""
    table = Table()
    seed = ctx.seed
    q, w0 = _quadratic(seed)
    steps = ctx.pick(150, 300)
    lam1 = QUADRATIC_EIGENVALUES[0]
    for name, opts in QUAD.items():
        traj = run_trajectory(q, preset(name, **opts), w0, steps, seed=seed, iterate_every=None)
        d = traj.diagnostics
        table.add_series(
            {"step": np.arange(steps), "loss": d["loss"], "grad_norm": d["grad_norm"]},
            source="trajectory",
            problem="quadratic",
            series=name,
            schedule="constant",
            lr=opts["lr"],
            rho=opts.get("rho", 0.0),
            alpha=opts.get("alpha", 0.0),
        )
        if name in ("gd", "usam"):
            curve, rate = linear_closed_form(q, w0, opts["lr"], opts.get("rho", 0.0), steps - 1)
            table.add_series(
                {"step": np.arange(steps), "grad_norm": curve},
                source="closed_form",
                problem="quadratic",
                series=name,
                quantity="linear_map",
                rate=rate,
                lr=opts["lr"],
                rho=opts.get("rho", 0.0),
            )
    c_star, _ = symq.sam_two_cycle().func(
        QUAD["sam"]["lr"], QUAD["sam"]["rho"], lam1, QUADRATIC_EIGENVALUES[1]
    )
    table.add(
        source="closed_form",
        problem="quadratic",
        series="sam",
        quantity="cycle_grad_norm",
        grad_norm=lam1 * float(c_star),
        lr=QUAD["sam"]["lr"],
        rho=QUAD["sam"]["rho"],
    )
    x = QUAD["xsam_paper"]
    lower, upper, _, _ = xsam_1d.paper_window().func(x["lr"], x["alpha"])
    table.add(
        source="closed_form",
        problem="quadratic",
        series="xsam_paper",
        quantity="window_grad_norm_bound",
        grad_norm=lam1 * max(abs(float(lower)), float(upper)),
        lr=x["lr"],
        rho=x["rho"],
        alpha=x["alpha"],
    )

    # (b) MLP, constant steps; X-SAM's lr is a step length matched to SAM's first step
    widths = ctx.pick((6, 12, 3), (8, 24, 4))
    p, m0 = _mlp(seed, widths)
    m_steps = ctx.pick(150, 500)
    step_len = matched_step_length(p, m0, MLP_ETA, MLP_RHO)
    eig = dict(eigvec_source="lanczos", refresh_every=5)
    mlp_cfg = {
        "gd": preset("gd", lr=MLP_ETA),
        "usam": preset("usam", lr=MLP_ETA, rho=MLP_RHO),
        "sam": preset("sam", lr=MLP_ETA, rho=MLP_RHO),
        "xsam_paper": preset("xsam_paper", lr=step_len, rho=MLP_RHO, alpha=ALPHA, **eig),
    }
    for name, cfg in mlp_cfg.items():
        traj = run_trajectory(p, cfg, m0, m_steps, seed=seed, iterate_every=None)
        d = traj.diagnostics
        table.add_series(
            {"step": np.arange(m_steps), "loss": d["loss"], "grad_norm": d["grad_norm"]},
            source="trajectory",
            problem="mlp",
            series=name,
            schedule="constant",
            lr=cfg.lr,
            rho=cfg.rho,
            alpha=cfg.alpha,
            widths="-".join(map(str, widths)),
        )

    # (c) P-CONV's cells: the claim's own measurement (run_cell)
    seeds = tuple(seed + k for k in range(ctx.pick(3, 5)))
    for cell, t_max in (
        (Cell("quadratic", "paper", ALPHA), ctx.pick(512, 2048)),
        (Cell("mlp", "paper", ALPHA), ctx.pick(256, 1024)),
        (Cell("mlp", "paper", ALPHA, "minibatch"), ctx.pick(256, 1024)),
        (Cell("quadratic", "paper", 1.5), ctx.pick(512, 2048)),
    ):
        r = run_cell(cell, seeds, t_max, widths=widths)
        finite = r.slopes[np.isfinite(r.slopes)]
        exp, allow = expected_slope(cell), allowance(cell, r.grid)
        common = dict(
            problem=cell.problem,
            series="xsam_paper",
            schedule="inv_sqrt",
            cell=cell.id,
            batch=cell.batch,
            lr=cell.eta0,
            rho=MLP_RHO,
            alpha=cell.alpha,
        )
        table.add_series(
            {
                "T": r.grid,
                "best_grad_norm": np.median(r.best, axis=0),
                "best_low": np.min(r.best, axis=0),
                "best_high": np.max(r.best, axis=0),
            },
            source="trajectory",
            **common,
        )
        table.add_series(
            {"T": r.grid, "best_grad_norm": np.median(r.best, axis=0)},
            source="fit",
            slope=float(np.mean(finite)) if finite.size else np.nan,
            slope_low=float(np.min(finite)) if finite.size else np.nan,
            slope_high=float(np.max(finite)) if finite.size else np.nan,
            expected_slope=exp,
            threshold=exp + allow,
            n_seeds=len(seeds),
            n_diverged=int(r.diverged.sum()),
            **common,
        )
    return table


def plot(table: Table, ctx: FigureContext) -> Figure:
    """Draw the ``convergence`` figure from its table."""
    fig, subs, (a1, a2, a3) = new_columns(DOUBLE, 3.75, 3)
    quad = table.where(problem="quadratic")
    handles, labels = [], []
    for name in ("gd", "usam", "sam", "xsam_paper"):
        st = method_style(name)
        t = quad.where(source="trajectory", series=name, schedule="constant")
        r = t.rows[0]
        step = "step " if name == "xsam_paper" else ""
        hyper = (
            step
            + rf"$\eta={r['lr']:g}$"
            + (rf", $\rho={r['rho']:g}$" if r["rho"] else "")
            + (rf", $\alpha={r['alpha']:g}$" if r["alpha"] else "")
        )
        (h_run,) = a1.semilogy(
            t.col("step"), t.col("grad_norm"), color=st["color"], ls=st["ls"], lw=1.1
        )
        cf = quad.where(source="closed_form", series=name)
        if name in ("gd", "usam"):
            (h_cf,) = a1.semilogy(
                cf.col("step")[::6],
                cf.col("grad_norm")[::6],
                ls="none",
                marker="o",
                mfc="none",
                ms=3.2,
                mew=0.7,
                color=st["color"],
            )
            what = rf"rate {cf.rows[0]['rate']:.3g}"
        else:
            h_cf = a1.axhline(cf.rows[0]["grad_norm"], color=st["color"], ls="--", lw=0.9)
            what = (
                r"2-cycle $\lambda_1c^*$" if name == "sam" else r"window $\lambda_1\eta(1+\alpha)$"
            )
        handles.append((h_run, h_cf))
        labels.append(f"{st['label'].replace(' rule', '')}: {hyper}\nclosed form: {what}")
    a1.set_xlabel("step $t$")
    a1.set_ylabel(r"$\|\nabla L(w_t)\|$")
    a1.set_ylim(1e-6, 50)
    a1.set_title(r"(a) quadratic, spectrum (10, 4, 1)", loc="left", fontweight="bold")
    subs[0].legend(
        handles,
        labels,
        loc="outside lower center",
        fontsize=5.8,
        handler_map={tuple: HandlerTuple(ndivide=None)},
        handlelength=3.0,
    )

    mlp = table.where(problem="mlp", source="trajectory", schedule="constant")
    for name in ("gd", "usam", "sam", "xsam_paper"):
        st = method_style(name)
        t = mlp.where(series=name)
        r = t.rows[0]
        step = "step " if name == "xsam_paper" else ""
        hyper = (
            step
            + rf"$\eta={r['lr']:.3g}$"
            + (rf", $\rho={r['rho']:g}$" if r["rho"] else "")
            + (rf", $\alpha={r['alpha']:g}$" if r["alpha"] else "")
        )
        a2.semilogy(
            t.col("step"),
            t.col("loss"),
            color=st["color"],
            ls=st["ls"],
            lw=2.0 if name == "gd" else 1.1,
            label=f"{st['label']} ({hyper})",
        )
    a2.set_xlabel("step $t$")
    a2.set_ylabel("training loss (cross-entropy)")
    a2.set_title(f"(b) MLP {mlp.rows[0]['widths']}, full batch", loc="left", fontweight="bold")
    a2.text(
        0.03,
        0.03,
        "GD, USAM and SAM\nnearly coincide here",
        transform=a2.transAxes,
        ha="left",
        va="bottom",
        fontsize=6,
        color="0.3",
    )
    panel_legend(subs[1], a2)

    colors = [OKABE_ITO["vermillion"], OKABE_ITO["blue"], OKABE_ITO["green"], "0.45"]
    fits = table.where(source="fit")
    for color, cell in zip(colors, fits.unique("cell")):
        t = table.where(source="trajectory", schedule="inv_sqrt", cell=cell)
        r = fits.where(cell=cell).rows[0]
        a3.fill_between(
            t.col("T"), t.col("best_low"), t.col("best_high"), color=color, alpha=0.15, lw=0
        )
        div = f", {r['n_diverged']}/{r['n_seeds']} diverged" if r["n_diverged"] else ""
        a3.loglog(
            t.col("T"),
            t.col("best_grad_norm"),
            color=color,
            lw=1.1,
            marker="o",
            ms=2.5,
            label=(
                f"{cell}: slope {r['slope']:.2f}\n"
                f"(seeds {r['slope_low']:.2f}..{r['slope_high']:.2f}{div})"
            ),
        )
    T = fits.col("T")
    r0 = fits.rows[0]
    ref = fits.where(cell=r0["cell"]).col("best_grad_norm")[0] * 3
    a3.loglog(
        [T.min(), T.max()],
        [ref, ref * (T.max() / T.min()) ** r0["expected_slope"]],
        color="0.4",
        ls="--",
        lw=0.9,
        label=(
            rf"derived slope ${r0['expected_slope']:g}$"
            "\n"
            rf"(threshold ${r0['threshold']:.2f}$ with finite-$T$ allowance)"
        ),
    )
    a3.set_xlabel("steps $T$")
    a3.set_ylabel(r"$\min_{t<T}\|\nabla L(w_t)\|$")
    a3.set_xscale("log", base=2)
    a3.xaxis.set_minor_formatter(NullFormatter())
    a3.set_title("(c) P-CONV cells", loc="left", fontweight="bold")
    panel_legend(
        subs[2],
        a3,
        title=(
            r"paper rule, $\eta_t=\eta_0/\sqrt{t+1}$;"
            "\n"
            "median, range over seeds"
        ),
        title_fontsize=6.0,
    )
    return fig
