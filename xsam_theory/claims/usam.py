r"""L-USAM: unnormalized SAM on a quadratic.

Derivation: docs/theory.md#T-usam.

Symbolic: :func:`xsam_theory.symbolic.quadratic.usam_factor` (the map
:math:`w \mapsto (I - \eta H - \eta\rho H^2)w` per eigendirection and the stable set
:math:`0 < \eta\lambda(1+\rho\lambda) < 2`) and
:func:`~xsam_theory.symbolic.quadratic.usam_threshold` (:math:`\lambda_U`,
:math:`\lambda_U < 2/\eta`).

Numerical, through the implementation (:func:`~xsam_theory.trajectory.run_trajectory` with the
``usam`` preset) on quadratics :math:`H = Q\,\mathrm{diag}(\lambda)Q^\top`:

1. *Map equality*: every step satisfies :math:`Q^\top w_{t+1} = r(\lambda)\odot Q^\top w_t` with
   the lambdified :math:`r`. Tolerance :math:`10^{-12}` relative to
   :math:`\|w_t\|\max(1, \max_i|r_i|)`:
   one step is two products with :math:`H` (dimension :math:`\le 16`), a few tens of ulps.
2. *Rate*: the slope of :math:`\log\|w_t\|` over the second half of :math:`T = 400` steps, fitted by
   least squares, against :math:`\log\max_i|r(\lambda_i)|`. Spectra are drawn (mixed signs, with
   attracted negative directions :math:`\lambda < -1/\rho` included) so that the rate-setting
   direction dominates every other by a factor :math:`\le 0.85`; the transient then contributes
   :math:`\lesssim (a_2/a_1)^2\,0.85^{400} < 10^{-20}` to the slope, and rounding
   :math:`O(T\varepsilon)` over the window. Tolerance :math:`10^{-9}` relative on the rate.
3. *Threshold*: with the top eigenvalue at :math:`0.99\lambda_U` the iterates decay, at
   :math:`1.01\lambda_U` they grow (fitted rate :math:`> 1`), and in both cases the fitted rate
   matches :math:`|r(\lambda_1)|` to the same :math:`10^{-9}`; likewise an eigenvalue in
   :math:`(-1/\rho, 0)` escapes (:math:`r > 1`; placed at :math:`-\min(1/(2\rho), 0.2/\eta)` so
   that :math:`r \le 1.2` and the 400 steps stay finite).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xsam_theory.claims.registry import ExperimentContext, Outcome, Verdict, claim
from xsam_theory.experiments.loops import trajectory
from xsam_theory.optimizers import preset
from xsam_theory.problems import Quadratic
from xsam_theory.symbolic import quadratic as sym

MAP_TOL = 1e-12
RATE_TOL = 1e-9
STEPS = 400
SEPARATION = 0.85


def fitted_rate(iterates: np.ndarray) -> float:
    r""":math:`\exp` of the least-squares slope of :math:`\log\|w_t\|` over the second half."""
    norms = np.linalg.norm(iterates, axis=1)
    t = np.arange(norms.size)
    half = norms.size // 2
    slope = np.polyfit(t[half:], np.log(norms[half:]), 1)[0]
    return float(np.exp(slope))


def _draw_spectrum(
    rng: np.random.Generator, eta: float, rho: float, lam_u: float, r_of: Any
) -> np.ndarray:
    """Eigenvalues (dim 3–16) whose rate-setting |r| in [0.6, 0.97] dominates the rest.

    The dominance margin is SEPARATION; some draws include an attracted negative eigenvalue
    (|lambda| > 1/rho, |r| < 1).
    """
    while True:
        dim = int(rng.integers(3, 17))
        lam = rng.uniform(0.02 * lam_u, 0.98 * lam_u, dim)
        if rng.random() < 0.5:  # attracted negative direction: -lambda_neg in (1/rho, ...)
            lo = 1.0 / rho
            hi = (1 + np.sqrt(1 + 8 * rho / eta)) / (2 * rho)  # eta rho l^2 - eta l < 2
            lam[-1] = -rng.uniform(lo * 1.05, hi * 0.95)
        r = np.abs(r_of(eta, rho, lam))
        order = np.sort(r)[::-1]
        if 0.6 <= order[0] <= 0.97 and order[1] <= SEPARATION * order[0]:
            return lam


def _run(
    lam: np.ndarray, eta: float, rho: float, seed: int, ctx: ExperimentContext
) -> dict[str, Any]:
    q = Quadratic.from_spectrum(lam, seed=seed)
    Q, lam_sorted = q.eigenvectors, q.eigenvalues
    w0 = np.random.default_rng([seed, 1]).standard_normal(lam.size)
    with np.errstate(over="ignore", invalid="ignore"):
        traj = trajectory(
            q, preset("usam", lr=eta, rho=rho), w0, STEPS, ctx=ctx, on_nonfinite="stop"
        )
    r = sym.usam_factor().func(eta, rho, lam_sorted)
    z = traj.iterates @ Q  # eigencomponents, row t = Q^T w_t
    scale = np.linalg.norm(traj.iterates[:-1], axis=1) * max(1.0, float(np.max(np.abs(r))))
    map_res = float(np.max(np.linalg.norm(z[1:] - r * z[:-1], axis=1) / scale))
    return {
        "rate_fit": fitted_rate(traj.iterates),
        "rate_closed": float(np.max(np.abs(r))),
        "map_residual": map_res,
        "status": traj.status,
        "norm_ratio": float(np.linalg.norm(traj.iterates[-1]) / np.linalg.norm(w0)),
    }


@claim(
    "L-USAM",
    "L",
    "On L = w^T H w / 2, USAM multiplies the i-th eigencomponent by "
    "1 - eta lambda_i - eta rho lambda_i^2; it is stable iff 0 < eta lambda_i (1 + rho "
    "lambda_i) < 2 for all i, and its observed linear rate is max_i |1 - eta lambda_i "
    "(1 + rho lambda_i)|.",
    method="sympy: USAM map on lambda w^2/2, threshold lambda_U solved, lambda_U < 2/eta; "
    "usam trajectories on random quadratics (mixed-sign spectra): per-step map "
    "equality, rate fitted from log||w|| vs closed form, decay at 0.99 lambda_U, "
    "growth at 1.01 lambda_U and for lambda in (-1/rho, 0)",
    tolerance="map 1e-12 relative per step; fitted rate 1e-9 relative",
    facts=("T-usam",),
    backends=("numpy", "torch"),
    figure="convergence",
)
def check_usam(ctx: ExperimentContext) -> Outcome:
    """Check L-USAM: USAM's per-eigencomponent factor 1 − ηλ_i − ηρλ_i², its edge and its rate.

    Rests on docs/theory.md#T-usam. The claim's page: docs/claims/L-USAM.md.
    """
    factor, thr = sym.usam_factor(), sym.usam_threshold()
    rng = ctx.rng(21)
    n_problems = ctx.pick(4, 10, 40)
    runs, failures = [], []
    for _ in range(n_problems):
        eta = float(rng.uniform(0.01, 0.2))
        rho = float(rng.uniform(0.01, 0.3))
        lam_u = float(thr.func(eta, rho))
        lam = _draw_spectrum(rng, eta, rho, lam_u, factor.func)
        res = _run(lam, eta, rho, int(rng.integers(2**31)), ctx)
        res.update(kind="random", eta=eta, rho=rho, dim=int(lam.size))
        runs.append(res)
    # thresholds: top eigenvalue at 0.99 / 1.01 lambda_U, the others at s lambda_U with
    # s in [0.45, 0.8], where eta lam (1 + rho lam) lies in [2 s^2, 2 s] within [0.4, 1.6], so
    # |r| <= 0.6; and an escaping negative direction lambda in (-1/rho, 0)
    for _ in range(ctx.pick(2, 4, 10)):
        eta = float(rng.uniform(0.01, 0.2))
        rho = float(rng.uniform(0.01, 0.3))
        lam_u = float(thr.func(eta, rho))
        rest = rng.uniform(0.45, 0.8, 4) * lam_u
        for kind, lam1 in (
            ("0.99 lambda_U", 0.99 * lam_u),
            ("1.01 lambda_U", 1.01 * lam_u),
            ("escape lambda in (-1/rho, 0)", -min(0.5 / rho, 0.2 / eta)),
        ):
            lam = np.concatenate([[lam1], rest])
            res = _run(lam, eta, rho, int(rng.integers(2**31)), ctx)
            res.update(
                kind=kind,
                eta=eta,
                rho=rho,
                lambda_U=lam_u,
                lambda_probe=float(lam1),
                eta_lam_1_plus_rho_lam=float(eta * lam1 * (1 + rho * lam1)),
            )
            runs.append(res)
    for k, res in enumerate(runs):
        rel = abs(res["rate_fit"] - res["rate_closed"]) / res["rate_closed"]
        res["rate_rel_error"] = rel
        grows = res["rate_fit"] > 1.0
        expect_growth = res["kind"] != "random" and res["kind"] != "0.99 lambda_U"
        if (
            res["status"] != "completed"
            or res["map_residual"] > MAP_TOL
            or rel > RATE_TOL
            or grows != expect_growth
        ):
            failures.append(k)
    proved = {**factor.proved, **{f"threshold: {k}": v for k, v in thr.proved.items()}}
    ok = factor.all_proved and thr.all_proved and not failures
    worst_rate = max(r["rate_rel_error"] for r in runs)
    worst_map = max(r["map_residual"] for r in runs)
    return Outcome(
        Verdict.HOLDS if ok else Verdict.FAILS,
        f"max rel. rate error {worst_rate:.1e} over {len(runs)} runs",
        {
            "symbolic": proved,
            "assumptions": factor.assumptions,
            "max_rate_rel_error": worst_rate,
            "max_map_residual": worst_map,
            "failed_runs": failures,
            "steps": STEPS,
            "separation": SEPARATION,
            "runs": [
                {k: (float(f"{v:.12g}") if isinstance(v, float) else v) for k, v in r.items()}
                for r in runs
            ],
            "seed": ctx.seed,
        },
    )
