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
# # Geometry of the X-SAM correction, and SAM / X-SAM on a quadratic
#
# This notebook walks through the figures `geometry` and `quadratic-2d` of `paper_figures/`,
# then shows where the quadratic picture's premise fails (claim F-TRAP).
# It calls the same functions as `xsam-theory figures` (`xsam_theory.figures.make_figure`), so
# what you see here is what the command writes. Set the environment variable
# `XSAM_FIGURES_QUICK=1` for the quick scale (what CI runs); by default the full scale is used.
#
# Notation (`docs/theory.md#T-notation`): $g_{adv} = \nabla L(w + \rho\hat g)$,
# $\hat u = u/\|u\|$, $v$ a unit estimate of the top Hessian eigenvector,
# $c = \langle \hat g_{adv}, v\rangle$. The X-SAM step direction is
#
# * paper rule (the authors' code): $d = \hat g_{adv} - \alpha\,\mathrm{sign}(c)\,c\,v
#   = \hat g_{adv} - \alpha|c|\,v$,
# * symmetric rule: $d = \hat g_{adv} - \alpha c\,v$ (unchanged under $v \to -v$).

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

from xsam_theory.figures import FIGURES, FigureContext, make_figure
from xsam_theory.optimizers import preset
from xsam_theory.problems import Quadratic
from xsam_theory.symbolic.xsam_1d import v2_cycle_trap
from xsam_theory.trajectory import run_trajectory

ctx = FigureContext.from_env()  # XSAM_FIGURES_QUICK=1 -> quick
OUT = Path(os.environ.get("XSAM_FIGURES_OUT", "notebook_figures"))
print(f"mode: {ctx.mode}; figures go to {OUT.resolve()}")

# %% [markdown]
# ## 1. The correction geometry (claims D-G1 … D-G4)
#
# Both $\hat g$ and $d$ lie in $\mathrm{span}(\hat g, v)$, so the geometry depends on
# $c = \cos\angle(\hat g, v)$ and $\alpha$ only. For the paper rule
# (`docs/theory.md#T-correction-identities`, `docs/theory.md#T-angle-monotone`):
#
# * G1 $\langle d, v\rangle = c - \alpha|c|$;
# * G2 $\|d\|^2 = 1 - c^2 + (c - \alpha|c|)^2$, so for $c > 0$, $\|d\| \le 1 \iff \alpha\in[0,2]$,
#   and for $c < 0$ the step gets *longer*: $\|d\|^2 = 1 + (2\alpha + \alpha^2)c^2$;
# * G3 $\angle(d, v) \ge \angle(\hat g, v)$ for every $\alpha \ge 0$;
# * G4 $\langle d, \hat g\rangle = 1 - \alpha c|c|$.
#
# The curves are the lambdified sympy derivations of `xsam_theory.symbolic.geometry`; the
# markers are the implementation `xsam_direction` on random pairs.

# %%
print(FIGURES["geometry"].summary)
geo = make_figure("geometry", ctx, OUT)
display(Image(filename=str(OUT / "geometry.png")))

# %% [markdown]
# The table behind the figure is what the CSV holds. The markers must sit on the curves: the
# largest gap between the implementation and G1–G4, over all sampled pairs, is a few ulps.

# %%
impl = geo.where(source="implementation", rule="paper")
c, a = impl.col("c"), impl.col("alpha")
d_par = c - a * np.abs(c)
gaps = {
    "G1 <d,v>": np.max(np.abs(impl.col("d_dot_v") - d_par)),
    "G2 ||d||": np.max(np.abs(impl.col("norm_d") - np.sqrt(1 - c**2 + d_par**2))),
    "G4 <d,g>": np.max(np.abs(impl.col("d_dot_g") - (1 - a * c * np.abs(c)))),
}
print({k: f"{v:.1e}" for k, v in gaps.items()})
print(
    "G3 holds at every sample:",
    bool(np.all(impl.col("angle_d_v_deg") >= impl.col("angle_g_v_deg") - 1e-9)),
)

# %% [markdown]
# ## 2. SAM and X-SAM on a 2-D ill-conditioned quadratic (L-SAM2, F-SIGN, F-WINDOW)
#
# On $L = \frac12(\lambda_1 w_1^2 + \lambda_2 w_2^2)$ normalized SAM settles into the 2-cycle
# $\pm c^* v_1$ with $c^* = \eta\rho\lambda_1/(2 - \eta\lambda_1)$ (Bartlett, Long and Bousquet;
# `docs/theory.md#T-sam-cycle`), which sits exactly on SAM's own stability edge.
#
# X-SAM's step is normalized. Once the transverse component has decayed,
# $x = \langle w, v\rangle$ follows $x' = x - \eta(\mathrm{sign}\,x - \alpha)$ for the paper rule,
# independent of $\lambda_1$ and $\rho$. For $0 \le \alpha < 1$ it stays in the window
# $(-\eta(1-\alpha), \eta(1+\alpha)]$: the width is $2\eta$ for every $\alpha$, so the oscillation
# is **shifted toward $+v$, not reduced**, and flipping the (arbitrary) orientation of $v$ mirrors
# it. The symmetric rule is normalized GD with step $\eta(1-\alpha)$ along $v$: its oscillation
# shrinks, whatever the orientation.

# %%
quad = make_figure("quadratic-2d", ctx, OUT)
display(Image(filename=str(OUT / "quadratic-2d.png")))

# %%
cyc = quad.where(source="closed_form", series="sam_two_cycle")
sam = quad.where(source="trajectory", series="sam")
print(f"closed-form c* = {cyc.col('x').max():.12f}")
print(f"SAM, last two iterates along v1: {sam.col('x')[-2:]}")
for series in ("xsam_paper", "xsam_paper_flipped", "xsam_symmetric"):
    w = quad.where(source="closed_form", series=f"{series}_window").rows[0]
    x = quad.where(source="trajectory", series=series).col("x")[-50:]
    print(
        f"{series:>19}: window [{w['lower']:+.3f}, {w['upper']:+.3f}], "
        f"last 50 iterates in [{x.min():+.3f}, {x.max():+.3f}]"
    )

# %% [markdown]
# ## 3. When the 1-D reduction fails: the trap on the $v_2$ cycle (F-TRAP)
#
# The window above assumes, with the 1-D reduction of `docs/theory.md#T-reduction-1d`, that the
# components transverse to $v$ decay.
# They need not. At $x = \langle w, v_1\rangle = 0$ the correction vanishes ($c = 0$) and every
# normalized form is normalized GD along $v_2$, with the 2-cycle $y = \pm\eta/2$. Linearizing
# about that cycle, $c = Kx + O(x^2)$ with
# $K = \lambda_1(\lambda_2|y| + \rho\lambda_1)/(\lambda_2^2|y|(|y| + \rho))$, so the paper rule
# multiplies $x$ by $m_+ = 1 - \eta(1-\alpha)K$ when $x > 0$ and by $m_- = 1 - \eta(1+\alpha)K$
# when $x < 0$ (`xsam_theory.symbolic.xsam_1d.v2_cycle_trap`, proved with sympy). As
# $\alpha \to 1$, $m_+ \to 1$ from below: the cycle *attracts* $x$, and X-SAM locks on a
# 2-cycle across $v_2$ with $\langle w, v_1\rangle \to 0$ instead of reaching its window.
# Below, runs of the implementation (exact $v$) on $\mathrm{diag}(10, 6, 3, 1)$ started on that
# cycle with $x_0 = 10^{-9}$, against the predicted two-step multiplier.

# %%
eta = rho = 0.05
lam = np.array([10.0, 6.0, 3.0, 1.0])
trap = v2_cycle_trap()
fig, ax = plt.subplots(figsize=(6, 3.2))
for alpha in (0.2, 0.5, 0.8, 0.9):
    K, m_plus, m_minus = (float(t) for t in trap.func(lam[0], lam[1], rho, eta, alpha, eta / 2))
    two_step = m_plus**2 if m_plus > 0 else m_plus * m_minus
    cfg = preset(
        "xsam_paper", lr=eta, rho=rho, alpha=alpha, eigvec_source="exact", refresh_every=2**62
    )
    w0 = np.array([1e-9, eta / 2, 0.0, 0.0])
    x = run_trajectory(Quadratic(np.diag(lam)), cfg, w0, ctx.pick(60, 120)).iterates[:, 0]
    print(
        f"alpha = {alpha}: predicted two-step multiplier {two_step:+.4f} "
        f"({'trap' if abs(two_step) < 1 else 'escape'}); measured x2/x0 = {x[2] / x[0]:+.4f}, "
        f"final |x| = {abs(x[-1]):.1e}"
    )
    ax.semilogy(np.abs(x) + 1e-300, label=f"alpha = {alpha}")
ax.set_ylim(1e-40, 1)
ax.set_xlabel("step")
ax.set_ylabel("|<w, v1>|")
ax.legend(fontsize=8)
plt.show()
