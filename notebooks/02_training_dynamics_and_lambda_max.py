# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Training dynamics: convergence, λ_max and the edges, drift to flat minima, the (ρ, α) phase
#
# This notebook walks through the figures `convergence`, `lambda-max`, `drift` and `phase` of
# `paper_figures/` by calling the same functions as `xsam-theory figures`. Set
# `XSAM_FIGURES_QUICK=1` for the quick scale (what CI runs); by default the full scale is used.

# %%
import os
from pathlib import Path

import numpy as np
from IPython.display import Image, display

from xsam_theory.figures import FigureContext, make_figure

ctx = FigureContext.from_env()  # XSAM_FIGURES_QUICK=1 -> quick
OUT = Path(os.environ.get("XSAM_FIGURES_OUT", "notebook_figures"))
print(f"mode: {ctx.mode}; figures go to {OUT.resolve()}")

# %% [markdown]
# ## 1. Convergence and the closed-form rates (L-USAM, L-SAM2, F-WINDOW, P-CONV)
#
# On a quadratic, GD and USAM are linear maps: USAM multiplies the $i$-th eigencomponent by
# $r(\lambda_i) = 1 - \eta\lambda_i - \eta\rho\lambda_i^2$ (GD: $\rho = 0$), so the whole
# gradient-norm curve is a closed form,
# $\|g_t\|^2 = \sum_i r(\lambda_i)^{2t}\langle g_0, q_i\rangle^2$, with linear rate
# $\max_i |r(\lambda_i)|$. Normalized SAM does not converge: it stalls on its 2-cycle, where
# $\|g\| = \lambda_1 c^*$. X-SAM's normalized step with a constant $\eta$ stays in an $O(\eta)$
# neighbourhood (its window gives $\|g\| \lesssim \lambda_1\eta(1+\alpha)$); with
# $\eta_t = \eta_0/\sqrt{t+1}$ the best gradient norm so far should decay like $T^{-1/2}$
# (P-CONV fits that slope on the grid $T = 2^k$ per seed, against the rate derived for the
# form's step plus a finite-$T$ allowance, and counts diverged seeds).

# %%
conv = make_figure("convergence", ctx, OUT)
display(Image(filename=str(OUT / "convergence.png")))

# %%
for name in ("gd", "usam"):
    measured = conv.where(source="trajectory", problem="quadratic", series=name).col("grad_norm")
    closed = conv.where(source="closed_form", problem="quadratic", series=name)
    rel = np.max(np.abs(measured - closed.col("grad_norm")) / closed.col("grad_norm"))
    print(
        f"{name}: rate {closed.rows[0]['rate']:.4f}, max relative gap to the closed form {rel:.1e}"
    )
for row in conv.where(source="fit"):
    if row["T"] == conv.where(source="fit", cell=row["cell"]).col("T")[0]:
        print(
            f"{row['cell']}: mean fitted slope {row['slope']:.2f} (seeds "
            f"{row['slope_low']:.2f}..{row['slope_high']:.2f}; "
            f"derived {row['expected_slope']:g}, threshold {row['threshold']:.2f}; "
            f"{row['n_diverged']}/{row['n_seeds']} diverged)"
        )

# %% [markdown]
# ## 2. λ_max during full-batch training, with the predicted edges (L-EDGE)
#
# GD on a quadratic is stable iff $\eta\lambda < 2$; in full-batch network training λ_max rises
# until it reaches $2/\eta$ and hovers there (Cohen et al. 2021, the *edge of stability*).
# Freezing $\|g\|$, normalized SAM is locally USAM with radius $\rho/\|g\|$, so its edge is
# $\lambda_{SAM}(\|g\|) = \frac{\|g\|}{2\rho}\big(\sqrt{1 + 8\rho/(\eta\|g\|)} - 1\big) < 2/\eta$
# (Long & Bartlett 2023; `docs/theory.md#T-sam-edge`). The figure evaluates it at SAM's own
# gradient norm along its run. X-SAM's `lr` is a step length, matched to SAM's first step.

# %%
lmax = make_figure("lambda-max", ctx, OUT)
display(Image(filename=str(OUT / "lambda-max.png")))

# %%
traj = lmax.where(source="trajectory")
edge = lmax.where(series="gd_edge").rows[0]["lambda_max"]
for name in ("gd", "sam", "eigen_sam", "xsam_paper"):
    lam = traj.where(series=name).col("lambda_max")
    print(f"{name:>10}: lambda_max {lam[0]:.2f} -> {lam[-1]:.2f}   (2/eta = {edge:.2f})")
sam = traj.where(series="sam")
ok = np.isfinite(sam.col("sam_edge"))
print(
    "SAM: mean lambda_max / lambda_SAM(||g||) over the run:",
    f"{np.mean(sam.col('lambda_max')[ok] / sam.col('sam_edge')[ok]):.3f}",
)

# %% [markdown]
# ## 3. Drift toward flat minimizers (L-DRIFT, F-CONFOUND)
#
# On $\frac12(xy - 1)^2$ the minimizers $xy = 1$ have $\lambda_{\max} = x^2 + y^2 =
# \sqrt{D^2 + 4}$ with $D = x^2 - y^2$; the flattest is $(1, 1)$ with $\lambda = 2$. Gradient
# flow conserves $D$, and one GD step multiplies it by $1 - \eta^2 r^2$ ($r = xy - 1$), so GD
# stops at a sharp minimizer. SAM, bouncing across the valley in its 2-cycle, drifts along it
# with per-step speed $\eta\cdot 2\rho^2/(2 - \eta\lambda_1)^2\cdot|\nabla\lambda_1|$
# (`docs/theory.md#T-drift`),
# checked in panel (c) on the ravine $\frac12\lambda_0(1 + y^2)x^2$. The normalized forms drift
# faster in wall steps only because their step length is $\eta$ rather than $\eta\|g_{adv}\|$
# (F-CONFOUND).

# %%
drift = make_figure("drift", ctx, OUT)
display(Image(filename=str(OUT / "drift.png")))

# %%
gd = drift.where(source="trajectory", problem="factorization", series="gd")
D, r, step = gd.col("D"), gd.col("r"), gd.col("step")
consecutive = np.diff(step) == 1
ratio = D[1:][consecutive] / D[:-1][consecutive]
eta = gd.rows[0]["lr"]
print(
    "GD: max |D_{t+1}/D_t - (1 - eta^2 r_t^2)| =",
    f"{np.max(np.abs(ratio - (1 - eta**2 * r[:-1][consecutive] ** 2))):.1e}",
)
for name in ("sam", "xsam_projector"):
    meas = drift.where(source="trajectory", problem="ravine", series=name)
    pred = drift.where(source="closed_form", problem="ravine", series=name)
    y = dict(zip(meas.col("step"), meas.col("y")))
    gap = max(abs(y[s] - p) / abs(p) for s, p in zip(pred.col("step"), pred.col("y")))
    print(f"ravine, {name}: max relative gap to the iterated drift formula {gap:.1e}")

# %% [markdown]
# ## 4. The (ρ, α) phase diagram
#
# Final λ_max of X-SAM's paper rule over a grid of $(\rho, \alpha)$ on the vector factorization
# toy, run through the sweep runner (`xsam_theory.sweeps.run_sweep`). For $\alpha > 1$ the paper
# rule leaves the minimum (F-ESCAPE: with $c > 0$ its step has a component $-\eta(1-\alpha)v$
# that now points *away* from the minimum).

# %%
phase = make_figure("phase", ctx, OUT)
display(Image(filename=str(OUT / "phase.png")))
for row in phase.where(source="median"):
    if row["rho"] == max(phase.col("rho")):
        print(
            f"rho={row['rho']:g}, alpha={row['alpha']:g}: final lambda_max "
            f"{row['final_lambda_max']:.3g}, final loss {row['final_loss']:.1e}"
        )
