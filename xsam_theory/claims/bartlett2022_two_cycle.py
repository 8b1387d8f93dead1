r"""L-SAM2: normalized SAM's 2-cycle on a quadratic.

After Bartlett, Long & Bousquet 2022. Derivations: docs/theory.md#T-sam-cycle and
docs/theory.md#T-sam-edge.

Symbolic: :func:`xsam_theory.symbolic.quadratic.sam_two_cycle` solves the two-step fixed-point
equation for :math:`c^* = \eta\rho\lambda_1/(2 - \eta\lambda_1)`, linearizes the map at
:math:`\pm c^* v_1` (factor :math:`1 - \eta\lambda_1` along :math:`v_1`, :math:`\tau_i` across),
shows :math:`\tau_i \in (-1, 1)` and the edge identity :math:`\lambda_{SAM}(\lambda_1 c^*) =
\lambda_1`.

Numerical, through the implementation (:func:`~xsam_theory.trajectory.run_trajectory`, ``sam``
preset: :math:`w^+ = w - \eta\nabla L(w + \rho\hat g)`) on
:math:`H = Q\,\mathrm{diag}(\lambda)Q^\top` with a simple top eigenvalue,
:math:`\eta\lambda_1 \in [0.3, 1.9]` and
:math:`\lambda_i/\lambda_1 \in [0.15, 0.95]`:

1. *Amplitude* from random starts: after :math:`N` steps, with :math:`N` set from the closed-form
   contraction :math:`m = \max(|1 - \eta\lambda_1|, \max_i|\tau_i|)` so that :math:`m^N < 10^{-14}`,
   :math:`|\langle w_N, v_1\rangle|` equals :math:`c^*` and the sign alternates, the transverse
   part is gone, and :math:`\lambda_{SAM}(\|g\|)` with the measured :math:`\|g\|` equals
   :math:`\lambda_1`. Tolerance :math:`10^{-10}` relative (to :math:`c^*`, resp. :math:`\lambda_1`):
   the residual transient is :math:`< 10^{-14}` and rounding of a contracting map stays at a few
   ulps of :math:`\|w\|`.
2. *Transverse factors*: from :math:`w_0 = c^*v_1 + \delta c^*\sum_{i>1} s_iv_i` (random signs
   :math:`s_i`, :math:`\delta = 10^{-5}`), the measured one-step factors
   :math:`\langle w_1, v_i\rangle/\langle w_0, v_i\rangle` and two-step factors against
   :math:`\tau_i` and :math:`\tau_i^2`. Tolerance :math:`10^{-7}` absolute: the neglected terms are
   :math:`O(d\,\delta^2) \approx 10^{-9}` (:math:`\|g\|` changes at second order in the
   transverse part) and rounding contributes a few :math:`\varepsilon/\delta \approx 10^{-10}`.
3. *Divergence*: with :math:`\eta\lambda_1 = 2.1` the :math:`v_1` component grows (factor
   :math:`> 10^3` over 200 steps; the 1-D map gives :math:`|x^+| = 1.1|x| + 2.1\rho`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xsam_theory.claims.registry import ExperimentContext, Outcome, Verdict, claim
from xsam_theory.experiments.loops import trajectory
from xsam_theory.optimizers import preset
from xsam_theory.problems import Quadratic
from xsam_theory.symbolic import quadratic as sym

AMP_RTOL = 1e-10
FACTOR_ATOL = 1e-7
DELTA = 1e-5


def _problem(rng: np.random.Generator) -> tuple[Quadratic, float, float]:
    dim = int(rng.integers(3, 13))
    lam1 = float(rng.uniform(1.0, 20.0))
    rest = lam1 * rng.uniform(0.15, 0.95, dim - 1)
    q = Quadratic.from_spectrum(np.concatenate([[lam1], rest]), seed=int(rng.integers(2**31)))
    eta = float(rng.uniform(0.3, 1.9)) / lam1
    rho = float(10.0 ** rng.uniform(-3, 0))
    return q, eta, rho


def _closed(q: Quadratic, eta: float, rho: float) -> tuple[float, np.ndarray]:
    lam = q.eigenvalues
    c_star, tau = sym.sam_two_cycle().func(eta, rho, lam[0], lam[1:])
    return float(c_star), np.asarray(tau, dtype=float)


def _amplitude_run(
    q: Quadratic, eta: float, rho: float, seed: int, ctx: ExperimentContext
) -> dict[str, Any]:
    lam, V = q.eigenvalues, q.eigenvectors
    c_star, tau = _closed(q, eta, rho)
    m = max(abs(1 - eta * lam[0]), float(np.max(np.abs(tau))))
    steps = min(4000, math.ceil(math.log(1e-14) / math.log(m)) + 50)
    steps += steps % 2
    w0 = np.random.default_rng([seed, 2]).standard_normal(q.dim)
    traj = trajectory(q, preset("sam", lr=eta, rho=rho), w0, steps, ctx=ctx)
    z_last, z_prev = traj.iterates[-1] @ V, traj.iterates[-2] @ V
    g_norm = float(traj.diagnostics["grad_norm"][-1])
    lam_sam = float(sym.sam_edge().func(eta, rho, g_norm))
    return {
        "eta_lambda_1": float(eta * lam[0]),
        "rho": rho,
        "dim": q.dim,
        "steps": steps,
        "c_star": c_star,
        "amplitude": float(abs(z_last[0])),
        "amplitude_rel_error": float(abs(abs(z_last[0]) - c_star) / c_star),
        "alternation_rel_error": float(abs(z_last[0] + z_prev[0]) / c_star),
        "transverse_rel": float(np.linalg.norm(z_last[1:]) / c_star),
        "grad_norm": g_norm,
        "lambda_1": float(lam[0]),
        "lambda_SAM(grad_norm)": lam_sam,
        "edge_rel_error": float(abs(lam_sam - lam[0]) / lam[0]),
    }


def _factor_run(
    q: Quadratic, eta: float, rho: float, seed: int, ctx: ExperimentContext
) -> dict[str, Any]:
    lam, V = q.eigenvalues, q.eigenvectors
    c_star, tau = _closed(q, eta, rho)
    signs = np.random.default_rng([seed, 3]).choice([-1.0, 1.0], q.dim - 1)
    w0 = V @ np.concatenate([[c_star], DELTA * c_star * signs])
    traj = trajectory(q, preset("sam", lr=eta, rho=rho), w0, 2, ctx=ctx)
    z = traj.iterates @ V
    one = z[1, 1:] / z[0, 1:]
    two = z[2, 1:] / z[0, 1:]
    return {
        "eta_lambda_1": float(eta * lam[0]),
        "rho": rho,
        "lambda_ratio": (lam[1:] / lam[0]).round(6).tolist(),
        "tau": tau.round(9).tolist(),
        "measured_1_step": one.round(9).tolist(),
        "tau_squared": (tau**2).round(9).tolist(),
        "measured_2_step": two.round(9).tolist(),
        "max_abs_error_1_step": float(np.max(np.abs(one - tau))),
        "max_abs_error_2_step": float(np.max(np.abs(two - tau**2))),
    }


@claim(
    "L-SAM2",
    "L",
    "On a quadratic with 0 < eta lambda_1 < 2, normalized SAM settles into the "
    "2-cycle +-c* v_1 with c* = eta rho lambda_1 / (2 - eta lambda_1); transverse components "
    "are multiplied per step by tau_i = 1 - eta lambda_i - (2 - eta lambda_1)(lambda_i / "
    "lambda_1)^2; the cycle sits exactly on the SAM edge lambda_SAM(||g||) = lambda_1.",
    method="sympy: two-step fixed-point equation, linearization at the cycle, edge identity; "
    "sam trajectories on random quadratics and seeds: amplitude, alternation, "
    "measured ||g|| on the edge, measured 1- and 2-step transverse factors; "
    "divergence at eta lambda_1 = 2.1",
    tolerance="amplitude and edge 1e-10 relative; transverse factors 1e-7 absolute",
    facts=("T-sam-cycle", "T-sam-edge"),
    backends=("numpy", "torch"),
    figure="quadratic-2d",
)
def check_two_cycle(ctx: ExperimentContext) -> Outcome:
    """Check L-SAM2: normalized SAM's 2-cycle ±c* v_1, c* = ηρλ_1/(2 − ηλ_1), on random quadratics.

    Measures the amplitude, the alternation, the gradient norm on the SAM edge and the 1- and
    2-step transverse factors against the closed forms, and divergence at ηλ_1 = 2.1.

    Rests on docs/theory.md#T-sam-cycle, docs/theory.md#T-sam-edge. The claim's page:
    docs/claims/L-SAM2.md.
    """
    der = sym.sam_two_cycle()
    rng = ctx.rng(31)
    n_problems = ctx.pick(3, 8, 30)
    seeds_per = ctx.pick(2, 3, 5)
    amp, fac, div = [], [], []
    for _ in range(n_problems):
        q, eta, rho = _problem(rng)
        for _ in range(seeds_per):
            amp.append(_amplitude_run(q, eta, rho, int(rng.integers(2**31)), ctx))
        fac.append(_factor_run(q, eta, rho, int(rng.integers(2**31)), ctx))
        # divergence: the same spectrum with eta lambda_1 = 2.1
        eta_div = 2.1 / float(q.eigenvalues[0])
        w0 = np.random.default_rng(int(rng.integers(2**31))).standard_normal(q.dim)
        with np.errstate(over="ignore", invalid="ignore"):
            traj = trajectory(
                q, preset("sam", lr=eta_div, rho=rho), w0, 200, ctx=ctx, on_nonfinite="stop"
            )
        z = traj.iterates @ q.eigenvectors
        div.append(
            {
                "eta_lambda_1": 2.1,
                "rho": rho,
                "status": traj.status,
                "growth_v1": float(abs(z[-1, 0]) / max(abs(z[0, 0]), 1e-300)),
            }
        )
    worst_amp = max(
        max(r["amplitude_rel_error"], r["alternation_rel_error"], r["transverse_rel"]) for r in amp
    )
    worst_edge = max(r["edge_rel_error"] for r in amp)
    worst_fac = max(max(r["max_abs_error_1_step"], r["max_abs_error_2_step"]) for r in fac)
    diverged = all(d["growth_v1"] > 1e3 for d in div)
    ok = (
        der.all_proved
        and worst_amp <= AMP_RTOL
        and worst_edge <= AMP_RTOL
        and worst_fac <= FACTOR_ATOL
        and diverged
    )
    return Outcome(
        Verdict.HOLDS if ok else Verdict.FAILS,
        f"amplitude rel. err {worst_amp:.1e}, edge {worst_edge:.1e}, tau^2 err {worst_fac:.1e}",
        {
            "symbolic": der.proved,
            "assumptions": der.assumptions,
            "max_amplitude_rel_error": worst_amp,
            "max_edge_rel_error": worst_edge,
            "max_factor_abs_error": worst_fac,
            "divergence_at_2.1": diverged,
            "amplitude_runs": amp,
            "factor_runs": fac,
            "divergence_runs": div,
            "delta": DELTA,
            "seed": ctx.seed,
        },
    )
