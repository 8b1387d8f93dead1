r"""F-SIGN: the paper rule depends on the orientation of ``v``; the symmetric rule does not
(theory-notes F1.5(d), F1.7, F6.2).

Symbolic part (:func:`xsam_theory.symbolic.invariance.orientation_difference`):
:math:`d(v) - d(-v) = -2\alpha|c|v` for the paper rule, 0 for the symmetric and projector forms,
and the mirror symmetry :math:`d_{paper}(Rg; -v) = R\,d_{paper}(g; v)` with
:math:`R = I - 2vv^\top`.

Numerical part:

1. the implementation's :func:`~xsam_theory.optimizers.xsam_direction` on random pairs
   ``(g, v)`` against the closed-form difference, all four forms (1e-12 absolute: O(1)
   quantities, a few ulps of rounding);
2. quadratics with exact ``v`` (three spectra × seeds, α ∈ {0.2, 0.5}, η = ρ = 0.05):

   * mirror: the run with ``eigvec_sign=-1`` from :math:`Rw_0` equals :math:`R` times the run
     with ``+1`` from :math:`w_0`. In the eigenbasis (diagonal ``H``, ``u = e_1``) ``R`` only
     negates a coordinate, which is exact in floating point, so the runs must agree to 1e-15
     relative (0 expected). In the random basis ``R`` is rounded and the normalized map amplifies
     rounding where ``||g||`` is small (its derivative is ~ηλ/||g||), so there the first 50 steps
     are compared at 1e-9 relative;
   * long-run mean of :math:`\langle w, u\rangle` (``u`` the canonical eigenvector) from the same
     :math:`w_0` with ``eigvec_sign = ±1``: in the 1-D regime the window map is a rotation by
     :math:`(1-\alpha)/2 = p/q` of a circle of length :math:`2\eta`, so over whole periods the
     mean is :math:`\sigma\eta\alpha` up to :math:`\eta/q`, exactly inside
     :math:`\sigma(\eta\alpha - \eta/q, \eta\alpha + \eta/q]` (and :math:`\eta\alpha - \eta/q
     \ge 0` for every rational α > 0): the sign is :math:`\sigma` — it flips with ``v``;
   * the symmetric rule with ``eigvec_sign = ±1`` from the same start: identical iterates
     (tolerance 1e-12 relative; negating ``v`` twice is exact in floating point, so 0 is
     expected).

The sign of the mean is compared in every pair where neither run is trapped on a cycle across a
lower eigendirection with ``<w, v> → 0`` (see F-WINDOW); the exact interval is checked on every
run whose transverse components have decayed below 1e-6·η (the 1-D regime), and each α needs at
least one such run.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from xsam_theory.claims.registry import ExperimentContext, Outcome, Verdict, claim
from xsam_theory.experiments.loops import SPECTRA, exact_v, quadratic_case, run_steps
from xsam_theory.optimizers import xsam_direction
from xsam_theory.problems import Quadratic
from xsam_theory.symbolic import invariance, xsam_1d

ETA = 0.05
RHO = 0.05
ALPHAS = (0.2, 0.5)
TOL_DIR = 1e-12
TOL_MIRROR = 1e-9
TOL_MIRROR_EXACT = 1e-15
MIRROR_STEPS = 50
TOL_SYM = 1e-12
REDUCED = 1e-6


def _direction_draws(ctx: ExperimentContext) -> dict[str, float]:
    """Max deviation of d(v) - d(-v) from the closed form, per form, on random pairs."""
    rng = ctx.rng(11)
    worst = {"paper": 0.0, "raw_projection": 0.0, "symmetric": 0.0, "projector": 0.0}
    for i in range(ctx.pick(300, 2000, 10000)):
        dim = int(rng.integers(2, 33))
        v = rng.standard_normal(dim)
        v /= np.linalg.norm(v)
        g = rng.standard_normal(dim) * 10.0 ** rng.uniform(-3, 3)
        if i % 5 == 0:
            g = g - (g @ v) * v      # c = 0 exactly (up to rounding)
        a = float(rng.uniform(0, 2))
        gh = g / np.linalg.norm(g)
        c, craw = gh @ v, g @ v
        forms = {
            "paper": (dict(sign_rule="paper"), -2 * a * abs(c) * v),
            "raw_projection": (dict(sign_rule="paper", coefficient="raw"),
                               -2 * a * abs(craw) * v),
            "symmetric": (dict(sign_rule="symmetric"), 0 * v),
            "projector": (dict(sign_rule="symmetric", normalize=False, coefficient="raw"),
                          0 * v),
        }
        for name, (kw, expected) in forms.items():
            dp, _ = xsam_direction(g, v, a, **kw)
            dm, _ = xsam_direction(g, -v, a, **kw)
            scale = max(1.0, abs(craw)) if name in ("raw_projection", "projector") else 1.0
            worst[name] = max(worst[name], float(np.max(np.abs(dp - dm - expected))) / scale)
    return worst


def _mean_bounds(alpha: float, sign: int) -> tuple[float, float, int]:
    q = Fraction((1.0 - alpha) / 2.0).limit_denominator(1000).denominator
    lo, hi = ETA * alpha - ETA / q, ETA * alpha + ETA / q
    return (lo, hi, q) if sign > 0 else (-hi, -lo, q)


def _pair(spec: str, seed: int, alpha: float, burn: int, tail: int, ctx: ExperimentContext
          ) -> dict[str, Any]:
    q, U = quadratic_case(spec, seed)
    u = U[:, 0]
    R = np.eye(q.dim) - 2 * np.outer(u, u)
    w0 = ctx.rng(700 + seed).standard_normal(q.dim)
    steps = burn + tail

    def run(sign: int, start: np.ndarray, n: int = steps) -> np.ndarray:
        cfg = exact_v("xsam_paper", lr=ETA, rho=RHO, alpha=alpha, eigvec_sign=sign)
        return run_steps(q, cfg, start, n, ctx=ctx).iterates

    A, B, C = run(1, w0), run(-1, R @ w0, MIRROR_STEPS), run(-1, w0)
    err = np.linalg.norm(B - A[: MIRROR_STEPS + 1] @ R.T, axis=1) / np.max(
        np.linalg.norm(A, axis=1))
    mirror = float(np.max(err))
    # the same pair in the eigenbasis (diagonal H, u = e_1): R is exact in floating point
    qd = Quadratic.diagonal_from(q.eigenvalues)
    Rd = np.ones(q.dim)
    Rd[0] = -1.0
    wd = U.T @ w0
    runs_d = [run_steps(qd, exact_v("xsam_paper", lr=ETA, rho=RHO, alpha=alpha,
                                    eigvec_sign=sg), start, steps, ctx=ctx).iterates
              for sg, start in ((1, wd), (-1, Rd * wd))]
    mirror_d = float(np.max(np.abs(runs_d[1] - runs_d[0] * Rd)) / np.max(np.abs(runs_d[0])))
    rec: dict[str, Any] = {"spectrum": spec, "seed": seed, "alpha": alpha,
                           "mirror_rel_error_eigenbasis": mirror_d,
                           f"mirror_rel_error_first_{MIRROR_STEPS}_steps": mirror}
    for name, W, sign in (("v=+u", A, 1), ("v=-u", C, -1)):
        x = W @ u
        perp = np.linalg.norm(W - np.outer(x, u), axis=1)
        xt = x[burn:burn + tail]
        mean = float(np.mean(xt))
        lo, hi, per = _mean_bounds(alpha, sign)
        reduced = bool(perp[burn:].max() <= REDUCED * ETA)
        rec[name] = {"reduced": reduced,
                     "trapped": bool(np.max(np.abs(xt[tail // 2:])) <= REDUCED * ETA),
                     "mean<w,u>": mean, "pred_interval": [lo, hi], "period": per,
                     "in_interval": bool(lo - 1e-9 * ETA < mean <= hi + 1e-9 * ETA)}
    plus, minus = rec["v=+u"], rec["v=-u"]
    rec["sign_flips"] = bool(plus["mean<w,u>"] > 0 > minus["mean<w,u>"])
    rec["compared"] = not (plus["trapped"] or minus["trapped"])
    rec["mirror_ok"] = bool(mirror_d <= TOL_MIRROR_EXACT and mirror <= TOL_MIRROR)
    rec["ok"] = bool(rec["mirror_ok"] and (not rec["compared"] or rec["sign_flips"])
                     and all(r["in_interval"] for r in (plus, minus) if r["reduced"]))
    return rec


def _symmetric_pair(spec: str, seed: int, alpha: float, steps: int, ctx: ExperimentContext
                    ) -> dict[str, Any]:
    q, _ = quadratic_case(spec, seed)
    w0 = ctx.rng(700 + seed).standard_normal(q.dim)
    runs = [run_steps(q, exact_v("xsam_symmetric", lr=ETA, rho=RHO, alpha=alpha,
                                 eigvec_sign=sign), w0, steps, ctx=ctx).iterates
            for sign in (1, -1)]
    diff = float(np.max(np.abs(runs[0] - runs[1])) / np.max(np.abs(runs[0])))
    return {"spectrum": spec, "seed": seed, "alpha": alpha, "max_rel_difference": diff,
            "ok": diff <= TOL_SYM}


@claim("F-SIGN", "F",
       "The paper rule is not invariant under v -> -v (d(v) - d(-v) = -2 alpha|c| v); on a "
       "quadratic with exact v the long-run mean of <w, v> flips sign with the orientation of v "
       "(the whole run mirrors); the symmetric rule is invariant.",
       method="sympy identities (four forms, mirror symmetry); xsam_direction on random pairs; "
              "X-SAM runs with exact v, eigvec_sign = +-1, on three spectra x seeds x alpha in "
              "{.2, .5}, eta = rho = .05",
       tolerance="directions 1e-12; mirror 1e-9 relative; means in the exact interval "
                 "sigma(eta alpha -+ eta/q); symmetric rule 1e-12 relative",
       facts=("F1.5", "F1.7", "F6.2", "F7.1"),
       backends=("numpy", "torch"),
       figure="quadratic-2d")
def check_sign(ctx: ExperimentContext) -> Outcome:
    der = invariance.orientation_difference()
    win = xsam_1d.paper_window()
    seeds = [ctx.seed + i for i in range(ctx.pick(1, 2, 5))]
    burn, tail = ctx.pick(200, 300, 800), ctx.pick(200, 300, 800)   # tails: multiples of 20
    draws = _direction_draws(ctx)
    pairs = [_pair(spec, s, a, burn, tail, ctx) for spec in SPECTRA for s in seeds for a in ALPHAS]
    symm = [_symmetric_pair(spec, s, 0.5, burn + tail, ctx) for spec in SPECTRA
            for s in seeds[:1]]
    compared = [p for p in pairs if p["compared"]]
    reduced = {a: sum(p[k]["reduced"] for p in pairs if p["alpha"] == a
                      for k in ("v=+u", "v=-u")) for a in ALPHAS}
    ok = (der.all_proved and win.all_proved and max(draws.values()) <= TOL_DIR
          and all(p["ok"] for p in pairs) and all(s["ok"] for s in symm)
          and all(any(p["alpha"] == a for p in compared) for a in ALPHAS)
          and all(reduced.values()))
    means = {a: [round(p[k]["mean<w,u>"] / ETA, 3) for p in compared if p["alpha"] == a
                 for k in ("v=+u", "v=-u")] for a in ALPHAS}
    evidence = {
        "symbolic": {der.name: der.proved, win.name: win.proved},
        "eta": ETA, "rho": RHO, "seeds": seeds, "burn_in": burn, "window_steps": tail,
        "direction_max_abs_error": draws,
        "pairs": pairs, "pairs_compared (neither run trapped)": f"{len(compared)}/{len(pairs)}",
        "runs_in_1d_regime_by_alpha (interval checked)": reduced,
        "means_over_eta_by_alpha (v=+u, v=-u)": means,
        "predicted_mean_over_eta": {a: f"+-{a} (within 1/q)" for a in ALPHAS},
        "symmetric_runs": symm,
        "max_mirror_rel_error_eigenbasis": max(p["mirror_rel_error_eigenbasis"] for p in pairs),
        f"max_mirror_rel_error_first_{MIRROR_STEPS}_steps": max(
            p[f"mirror_rel_error_first_{MIRROR_STEPS}_steps"] for p in pairs),
        "max_symmetric_rel_difference": max(s["max_rel_difference"] for s in symm),
    }
    a0 = ALPHAS[-1]
    m = [p for p in compared if p["alpha"] == a0]
    key = (f"mean<w,u>/eta at a={a0}: {m[0]['v=+u']['mean<w,u>'] / ETA:+.2f} vs "
           f"{m[0]['v=-u']['mean<w,u>'] / ETA:+.2f}; mirror exact "
           f"({evidence['max_mirror_rel_error_eigenbasis']:.0e})"
           if m else "no run in the 1-D regime")
    return Outcome(Verdict.HOLDS if ok else Verdict.FAILS, key, evidence)
