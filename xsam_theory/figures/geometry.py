r"""``geometry``: the X-SAM correction geometry, D-G1…G4.

Derivations: docs/theory.md#T-correction-identities and docs/theory.md#T-angle-monotone.

For unit :math:`\hat g` and :math:`v` with :math:`c = \langle\hat g, v\rangle = \cos\theta`, the
paper rule :math:`d = \hat g - \alpha|c|v` and the symmetric rule :math:`d = \hat g - \alpha cv`:
:math:`\angle(d, v)` and :math:`\|d\|` against :math:`\theta = \angle(\hat g, v)`, for
:math:`\alpha \in \{0, 0.5, 1, 1.5, 2\}`.

Curves: the lambdified sympy closed forms of :mod:`xsam_theory.symbolic.geometry` (G1
:math:`\langle d,v\rangle`, G2 :math:`\|d\|^2`, G3 :math:`\cos\angle(d,v)`, G4
:math:`\langle d,\hat g\rangle`). They are derived for the paper rule; the symmetric rule is the
paper rule with :math:`v` replaced by :math:`\mathrm{sign}(c)\,v` (for :math:`c < 0`,
:math:`\hat g - \alpha c v = \hat g - \alpha|c|(-v)`), so its values are the paper rule's at
:math:`|c|`, with :math:`\langle d, v\rangle` and :math:`\cos\angle(d,v)` multiplied by
:math:`\mathrm{sign}(c)`. Markers: :func:`~xsam_theory.optimizers.xsam_direction` (the
implementation) on random pairs in dimension 8 with gradients of random scale.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from xsam_theory.figures import FigureContext
from xsam_theory.figures.style import DOUBLE, alpha_colors, new_figure
from xsam_theory.figures.table import Table
from xsam_theory.optimizers import xsam_direction
from xsam_theory.symbolic import geometry as sym
from xsam_theory.vectors import angle_deg

ID = "geometry"
TITLE = "X-SAM correction geometry (D-G1…G4)"
SUMMARY = (
    "angle(d, v) and ||d|| against angle(g_hat, v) for alpha in {0, 0.5, 1, 1.5, 2}, paper "
    "and symmetric rules: sympy closed forms (curves) and the implementation (markers)"
)

ALPHAS = (0.0, 0.5, 1.0, 1.5, 2.0)
RULES = ("paper", "symmetric")


def closed_form(rule: str, c: np.ndarray, alpha: float) -> dict[str, np.ndarray]:
    r"""G1–G4 at :math:`c = \cos\angle(\hat g, v)` for ``rule``, from the sympy derivations.

    The columns are ``d_dot_v`` (G1, :math:`c - \alpha|c|`), ``norm_d`` (G2,
    :math:`\sqrt{1 - c^2 + (c - \alpha|c|)^2}`), ``cos_d_v`` (G3) and ``d_dot_g`` (G4,
    :math:`1 - \alpha c|c|`), lambdified; the symmetric rule is the paper rule at :math:`|c|`
    with G1 and G3 multiplied by :math:`\mathrm{sign}(c)` (derivations:
    docs/theory.md#T-correction-identities, docs/theory.md#T-angle-monotone).

    Raises:
        ValueError: For a rule other than ``"paper"`` and ``"symmetric"``.
    """
    c = np.asarray(c, dtype=float)
    if rule == "paper":
        s, cc = np.ones_like(c), c
    elif rule == "symmetric":  # the paper rule with v -> sign(c) v
        s, cc = np.where(c < 0, -1.0, 1.0), np.abs(c)
    else:
        raise ValueError(f"rule must be 'paper' or 'symmetric', got {rule!r}")

    def f(der: sym.Derivation) -> np.ndarray:
        return np.broadcast_to(np.asarray(der.func(cc, alpha), dtype=float), c.shape)

    return {
        "d_dot_v": s * f(sym.parallel_component()),
        "norm_d": np.sqrt(f(sym.direction_norm())),
        "cos_d_v": s * f(sym.angle_monotonicity()),
        "d_dot_g": f(sym.descent_inner_product()),
    }


def data(ctx: FigureContext) -> Table:
    """The ``geometry`` figure's table: sympy closed forms and the implementation's values."""
    table = Table()
    # open grid: at theta = 0 and alpha = 1, d = 0 and the angle is undefined
    theta = np.linspace(0.25, 179.75, 719)
    c = np.cos(np.radians(theta))
    n_samples = ctx.pick(12, 40)
    rng = np.random.default_rng([ctx.seed, 1])
    dim = 8
    for rule in RULES:
        for a in ALPHAS:
            cf = closed_form(rule, c, a)
            table.add_series(
                {
                    "angle_g_v_deg": theta,
                    "c": c,
                    "angle_d_v_deg": np.degrees(np.arccos(np.clip(cf["cos_d_v"], -1, 1))),
                    "norm_d": cf["norm_d"],
                    "d_dot_v": cf["d_dot_v"],
                    "d_dot_g": cf["d_dot_g"],
                },
                source="closed_form",
                rule=rule,
                alpha=a,
            )
            for _ in range(n_samples):
                v = rng.standard_normal(dim)
                v /= np.linalg.norm(v)
                u = rng.standard_normal(dim)
                u -= (u @ v) * v
                u /= np.linalg.norm(u)
                th = rng.uniform(1.0, 179.0)
                g = (np.cos(np.radians(th)) * v + np.sin(np.radians(th)) * u) * 10.0 ** rng.uniform(
                    -3, 3
                )
                d, cc = xsam_direction(g, v, a, sign_rule=rule)
                gh = g / np.linalg.norm(g)
                table.add(
                    source="implementation",
                    rule=rule,
                    alpha=a,
                    angle_g_v_deg=angle_deg(g, v),
                    c=float(cc),
                    angle_d_v_deg=angle_deg(d, v),
                    norm_d=float(np.linalg.norm(d)),
                    d_dot_v=float(d @ v),
                    d_dot_g=float(d @ gh),
                )
    return table


def plot(table: Table, ctx: FigureContext) -> Figure:
    """Draw the ``geometry`` figure from its table."""
    fig, axes = new_figure(DOUBLE, 4.3, nrows=2, ncols=2, sharex=True)
    colors = alpha_colors(list(ALPHAS))
    names = {
        "paper": r"paper rule $d=\hat g-\alpha|c|\,v$",
        "symmetric": r"symmetric rule $d=\hat g-\alpha c\,v$",
    }
    for i, rule in enumerate(RULES):
        ax_a, ax_n = axes[i]
        for a in ALPHAS:
            cf = table.where(source="closed_form", rule=rule, alpha=a)
            im = table.where(source="implementation", rule=rule, alpha=a)
            for ax, key in ((ax_a, "angle_d_v_deg"), (ax_n, "norm_d")):
                ax.plot(
                    cf.col("angle_g_v_deg"),
                    cf.col(key),
                    color=colors[a],
                    lw=1.3,
                    label=rf"$\alpha={a:g}$",
                )
                ax.plot(
                    im.col("angle_g_v_deg"),
                    im.col(key),
                    ls="none",
                    marker="o",
                    ms=3.2,
                    mfc="none",
                    mew=0.8,
                    color=colors[a],
                )
        ax_a.axhline(90, color="0.7", lw=0.6, zorder=0)
        ax_n.axhline(1, color="0.7", lw=0.6, zorder=0)
        note = (
            "G3: every curve lies on or above\n"
            r"$\alpha=0$, i.e. $\angle(d,v)\geq\angle(\hat g,v)$"
            if rule == "paper"
            else "no G3: a mirror\nimage about 90°"
        )
        ax_a.text(
            *((178, 8, note) if rule == "paper" else (94, 6, note)),
            fontsize=6.5,
            color="0.25",
            ha="right" if rule == "paper" else "left",
            va="bottom",
        )
        ax_n.text(
            2,
            2.95,
            (
                "G2: $\\|d\\|\\leq 1$ for $c>0$ iff $\\alpha\\leq 2$;\n"
                "$\\|d\\| > 1$ for $c<0$, $\\alpha>0$"
                if rule == "paper"
                else "$\\|d\\|\\leq 1$ for every $c$ when $\\alpha\\leq 2$"
            ),
            fontsize=6.5,
            color="0.25",
            ha="left",
            va="top",
        )
        ax_a.set_ylabel(r"$\angle(d, v)$ [deg]")
        ax_n.set_ylabel(r"$\|d\|$  ($\|\hat g\| = 1$)")
        ax_a.set_ylim(-3, 183)
        ax_a.set_yticks([0, 45, 90, 135, 180])
        ax_n.set_ylim(-0.05, 3.1)
        ax_a.set_title(f"({'a' if i == 0 else 'c'}) {names[rule]}", loc="left", fontweight="bold")
        ax_n.set_title(f"({'b' if i == 0 else 'd'}) {names[rule]}", loc="left", fontweight="bold")
    for ax in axes[1]:
        ax.set_xlabel(r"$\angle(\hat g, v)$ [deg]")
        ax.set_xticks([0, 45, 90, 135, 180])
        ax.set_xlim(0, 180)
    handles = [Line2D([], [], color=colors[a], lw=1.3, label=rf"$\alpha={a:g}$") for a in ALPHAS]
    handles += [
        Line2D([], [], color="0.2", lw=1.3, label="sympy closed form (G1–G3)"),
        Line2D(
            [],
            [],
            color="0.2",
            ls="none",
            marker="o",
            mfc="none",
            mew=0.8,
            label="xsam_direction (implementation)",
        ),
    ]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=7,
        fontsize=6.2,
        columnspacing=1.2,
        handlelength=1.5,
    )
    return fig
