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
# This notebook walks through the figures `geometry` and `quadratic-2d` of `paper_figures/`.
# It calls the same functions as `xsam-theory figures` (`xsam_theory.figures.make_figure`), so
# what you see here is what the command writes. Set the environment variable
# `XSAM_FIGURES_QUICK=1` for the quick scale (what CI runs); by default the full scale is used.
#
# Notation (SPEC §2): $g_{adv} = \nabla L(w + \rho\hat g)$, $\hat u = u/\|u\|$, $v$ a unit
# estimate of the top Hessian eigenvector, $c = \langle \hat g_{adv}, v\rangle$. The X-SAM step
# direction is
#
# * paper rule (the authors' code): $d = \hat g_{adv} - \alpha\,\mathrm{sign}(c)\,c\,v
#   = \hat g_{adv} - \alpha|c|\,v$,
# * symmetric rule: $d = \hat g_{adv} - \alpha c\,v$ (unchanged under $v \to -v$).

# %%
import os
from pathlib import Path

import numpy as np
from IPython.display import Image, display

from xsam_theory.figures import FIGURES, FigureContext, make_figure

ctx = FigureContext.from_env()          # XSAM_FIGURES_QUICK=1 -> quick
OUT = Path(os.environ.get("XSAM_FIGURES_OUT", "notebook_figures"))
print(f"mode: {ctx.mode}; figures go to {OUT.resolve()}")

# %% [markdown]
# ## 1. The correction geometry (claims D-G1 … D-G4)
#
# Both $\hat g$ and $d$ lie in $\mathrm{span}(\hat g, v)$, so the geometry depends on
# $c = \cos\angle(\hat g, v)$ and $\alpha$ only. For the paper rule (theory-notes F6.1, F6.3):
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
print("G3 holds at every sample:",
      bool(np.all(impl.col("angle_d_v_deg") >= impl.col("angle_g_v_deg") - 1e-9)))

# %% [markdown]
# ## 2. SAM and X-SAM on a 2-D ill-conditioned quadratic (L-SAM2, F-SIGN, F-WINDOW)
#
# On $L = \frac12(\lambda_1 w_1^2 + \lambda_2 w_2^2)$ normalized SAM settles into the 2-cycle
# $\pm c^* v_1$ with $c^* = \eta\rho\lambda_1/(2 - \eta\lambda_1)$ (Bartlett, Long and Bousquet;
# theory-notes F3.2), which sits exactly on SAM's own stability edge.
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
    print(f"{series:>19}: window [{w['lower']:+.3f}, {w['upper']:+.3f}], "
          f"last 50 iterates in [{x.min():+.3f}, {x.max():+.3f}]")
