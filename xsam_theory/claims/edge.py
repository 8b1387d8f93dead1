r"""L-EDGE: stability edges of GD, USAM, SAM and heavy ball, and λ_max along MLP training.

The MLP training is full-batch. After Cohen et al. 2021; Long & Bartlett 2023; Agarwala &
Dauphin 2023. Derivations: docs/theory.md#T-sam-edge, docs/theory.md#T-sam-lmax and
docs/theory.md#T-gd-edge (heavy ball included).

Symbolic: :func:`xsam_theory.symbolic.quadratic.stability_edges` — GD :math:`2/\eta`, USAM
:math:`\eta\lambda(1+\rho\lambda) = 2`, SAM :math:`\lambda_{SAM}(\|g\|) =
\frac{\|g\|}{2\rho}(\sqrt{1 + 8\rho/(\eta\|g\|)} - 1)` with its limits (:math:`\to 2/\eta` as
:math:`\rho/\|g\| \to 0`), heavy ball :math:`2(1+\mu)/\eta`.

Quadratics (exact; through :func:`~xsam_theory.trajectory.run_trajectory`): one direction with
eigenvalue :math:`0.99\times` or :math:`1.01\times` the edge. For SAM the gradient norm is held
fixed by a flat direction with a constant gradient :math:`G`
(:math:`L = \tfrac12\lambda x^2 + Gy`, so :math:`\|g\| = \sqrt{\lambda^2x^2 + G^2} = G(1 + O(x^2))`
while :math:`x` stays :math:`\le 10^{-3}G/\lambda`), which makes the frozen-:math:`\|g\|` edge an
exact statement about the :math:`x` dynamics. The per-step rate is measured from the trajectory:
for the one-step maps (GD, USAM, SAM) from windowed maxima,
:math:`(\max_{[260,300]}|x_t| / \max_{[60,100]}|x_t|)^{1/200}` (exact for a geometric sequence);
for heavy ball, whose iterates oscillate under a complex pair of roots, by fitting the two-term
recurrence :math:`x_{t+1} = a x_t + b x_{t-1}` to the 300 iterates by least squares and taking the
largest root modulus of :math:`z^2 - az - b`. The measured rate is compared with the closed-form
spectral radius (:math:`|1 - \eta\lambda|`, :math:`|1 - \eta\lambda(1+\rho\lambda)|`,
:math:`|1 - \eta\lambda(1 + \rho\lambda/G)|`, the largest root modulus of
:math:`z^2 - (1+\mu-\eta\lambda)z + \mu`). Tolerance :math:`10^{-6}` relative: the one-step maps
and the recurrence hold to rounding (:math:`\sim10^{-15}`, and a well-conditioned 2-parameter fit);
the only modelling error is SAM's drift of :math:`\|g\|`, :math:`(\lambda x/G)^2/2 < 10^{-7}`.
Every rate at :math:`0.99\times` must be :math:`< 1` and at :math:`1.01\times` :math:`> 1`.

MLP (empirical literature behaviour; the rule is fixed in advance of the reported runs): a tanh
MLP (widths 5-16-16-1, 100 teacher-student samples, squared loss) trained full-batch from
PyTorch's default init with :math:`\eta = 2/(1.5\,\lambda_0)` (:math:`\lambda_0` the sharpness at
init, so progressive sharpening must raise :math:`\lambda_{max}` by 50% to reach :math:`2/\eta`),
GD and SAM (:math:`\rho = 0.05`, same :math:`\eta`), :math:`\lambda_{max}` by Lanczos every 10
steps. Ratios: GD :math:`\lambda_{max}/(2/\eta)`; SAM :math:`\lambda_{max}/\lambda_{SAM}(\|g_t\|)`
with the measured :math:`\|g_t\|` at the same iterate. Rule per run and method: the edge is
*reached* at the first monitor point with ratio :math:`\ge 0.95`; the *late phase* is every point
from there to the end and must hold at least 10 points (100 steps), otherwise the run is *not
reached* (still sharpening: no evidence either way). The late-phase median in :math:`[0.8, 1.1]`
is *at the edge*; above 1.1 (sits beyond the edge) or below 0.8 (left it after reaching it)
contradicts the claim. Verdict of the MLP part: ``holds`` if every run is at the edge,
``fails`` if any run contradicts it, ``inconclusive`` otherwise. The spread is reported as the
late-phase interquartile range, minimum and maximum. (A first version of this rule took the
second half of the run as the late phase; it was replaced, before any reported run, because it
counted a still-rising :math:`\lambda_{max}` at 0.88-0.96 of the edge as "at the edge".)
The claim holds when the symbolic and quadratic parts pass and the MLP part holds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xsam_theory.claims.registry import ExperimentContext, Outcome, Verdict, claim
from xsam_theory.experiments.loops import trajectory
from xsam_theory.optimizers import preset
from xsam_theory.problems import MLP, Quadratic
from xsam_theory.spectral import HessianOperator, top_eigenpair
from xsam_theory.symbolic import quadratic as sym
from xsam_theory.trajectory import SpectralMonitor

RATE_RTOL = 1e-6
BAND = (0.8, 1.1)
REACHED = 0.95
MIN_LATE = 10
STEPS_Q = 300


def window_rate(x: np.ndarray, start: int = 60, gap: int = 200, width: int = 40) -> float:
    """Per-step rate from the maxima of ``|x|`` over two windows ``gap`` steps apart.

    ``r = (max|x[s+gap : s+gap+width]| / max|x[s : s+width]|)^(1/gap)`` with ``s = start``
    (both windows inclusive of their last index): the geometric mean factor per step of a
    sequence that oscillates around 0 (the quadratic runs at the edges of
    docs/theory.md#T-sam-edge and docs/theory.md#T-gd-edge).
    """
    a = float(np.max(np.abs(x[start : start + width + 1])))
    b = float(np.max(np.abs(x[start + gap : start + gap + width + 1])))
    return (b / a) ** (1.0 / gap)


def recurrence_rate(x: np.ndarray) -> float:
    """Largest root modulus of the recurrence ``x[t+1] = a x[t] + b x[t-1]`` fitted to ``x``.

    The coefficients ``a`` and ``b`` are fitted by least squares; the rate is the largest
    modulus of the roots of :math:`z^2 - az - b`, the per-step factor of a two-term recurrence
    such as heavy ball's (docs/theory.md#T-gd-edge).
    """
    A = np.stack([x[1:-1], x[:-2]], axis=1)
    (a, b), *_ = np.linalg.lstsq(A, x[2:], rcond=None)
    return float(np.max(np.abs(np.roots([1.0, -a, -b]))))


def _quadratic_case(
    method: str,
    factor: float,
    eta: float,
    rho: float,
    G: float,
    mu: float,
    seed: int,
    ctx: ExperimentContext,
) -> dict[str, Any]:
    gd, usam, sam, hb = sym.stability_edges().func(eta, rho, G, mu)
    edge = {"gd": gd, "usam": usam, "sam": sam, "heavy_ball": hb}[method]
    lam = float(factor * edge)
    x0 = float(np.random.default_rng([seed, 7]).uniform(0.5, 1.0))
    if method == "sam":
        q = Quadratic(np.array([lam, 0.0]), b=np.array([0.0, -G]))
        w0 = np.array([x0 * 1e-9 * G / lam, 0.0])
        cfg = preset("sam", lr=eta, rho=rho)
        closed = abs(1 - eta * lam * (1 + rho * lam / G))
    else:
        q = Quadratic(np.array([lam]))
        w0 = np.array([x0])
        if method == "gd":
            cfg, closed = preset("gd", lr=eta), abs(1 - eta * lam)
        elif method == "usam":
            cfg = preset("usam", lr=eta, rho=rho)
            closed = abs(1 - eta * lam * (1 + rho * lam))
        else:
            cfg = preset("gd", lr=eta, momentum=mu)
            closed = float(np.max(np.abs(np.roots([1.0, -(1 + mu - eta * lam), mu]))))
    traj = trajectory(q, cfg, w0, STEPS_Q, ctx=ctx)
    x = traj.iterates[:, 0]
    rate = recurrence_rate(x) if method == "heavy_ball" else window_rate(x)
    out = {
        "method": method,
        "factor": factor,
        "eta": eta,
        "lambda": lam,
        "edge": float(edge),
        "rate_measured": rate,
        "rate_closed": closed,
        "rate_rel_error": abs(rate - closed) / closed,
    }
    if method in ("usam", "sam"):
        out["rho"] = rho
    if method == "sam":
        out["G"] = G
        out["max_x_over_G_per_lambda"] = float(np.max(np.abs(traj.iterates[:, 0])) * lam / G)
    if method == "heavy_ball":
        out["mu"] = mu
    out["ok"] = bool(out["rate_rel_error"] <= RATE_RTOL and (rate < 1) == (factor < 1))
    return out


def _quadratic_part(ctx: ExperimentContext) -> list[dict[str, Any]]:
    rng = ctx.rng(51)
    cases = []
    for _ in range(ctx.pick(1, 2, 5)):
        eta = float(rng.uniform(0.01, 0.5))
        rho = float(rng.uniform(0.01, 0.3))
        for factor in (0.99, 1.01):
            seed = int(rng.integers(2**31))
            cases.append(_quadratic_case("gd", factor, eta, rho, 1.0, 0.0, seed, ctx))
            cases.append(_quadratic_case("usam", factor, eta, rho, 1.0, 0.0, seed, ctx))
            # ||g|| small, comparable and large relative to rho/eta: the edge moves from
            # sqrt(2G/(eta rho)) up to 2/eta
            for G in (1e-2 * rho / eta, rho / eta, 1e2 * rho / eta):
                cases.append(_quadratic_case("sam", factor, eta, rho, G, 0.0, seed, ctx))
            for mu in (0.5, 0.9):
                cases.append(_quadratic_case("heavy_ball", factor, eta, rho, 1.0, mu, seed, ctx))
    return cases


def _late(ratios: np.ndarray) -> dict[str, Any]:
    series = [float(f"{r:.3f}") for r in ratios[:: max(1, ratios.size // 25)]]
    hit = np.flatnonzero(ratios >= REACHED)
    if hit.size == 0 or ratios.size - hit[0] < MIN_LATE:
        return {"status": "not reached", "max_ratio": float(ratios.max()), "series": series}
    late = ratios[hit[0] :]
    med = float(np.median(late))
    q25, q75 = (float(v) for v in np.percentile(late, [25, 75]))
    status = "at edge" if BAND[0] <= med <= BAND[1] else ("above" if med > BAND[1] else "below")
    return {
        "reached_at_point": int(hit[0]),
        "late_median": med,
        "late_iqr": [q25, q75],
        "late_min": float(late.min()),
        "late_max": float(late.max()),
        "n_late": int(late.size),
        "status": status,
        "series": series,
    }


def _median_of(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def _mlp_run(seed: int, steps: int, every: int, ctx: ExperimentContext) -> dict[str, Any]:
    mlp = MLP.teacher_student((5, 16, 16, 1), 100, loss="squared", seed=seed)
    w0 = mlp.init_params(seed + 1)
    lam0 = float(
        top_eigenpair(HessianOperator.from_problem(mlp, w0), "lanczos", tol=1e-6).eigenvalue
    )
    eta = 2.0 / (1.5 * lam0)
    rho = 0.05
    mon = SpectralMonitor(every=every, method="lanczos", tol=1e-6)
    out: dict[str, Any] = {
        "seed": seed,
        "widths": [5, 16, 16, 1],
        "n_samples": 100,
        "loss": "squared",
        "lambda_0": lam0,
        "eta": eta,
        "2/eta": 2 / eta,
        "rho": rho,
        "steps": steps,
        "monitor_every": every,
    }
    for name, cfg in (("gd", preset("gd", lr=eta)), ("sam", preset("sam", lr=eta, rho=rho))):
        traj = trajectory(mlp, cfg, w0, steps, ctx=ctx, monitors=[mon], iterate_every=None)
        m = traj.monitors["spectral"]
        at = m["step"].astype(int) < steps  # iterates with a measured ||g||
        lam = m["lambda_max"][at]
        if name == "gd":
            ratios = lam / (2 / eta)
        else:
            g = traj.diagnostics["grad_norm"][m["step"].astype(int)[at]]
            ratios = lam / sym.sam_edge().func(eta, rho, g)
            out["sam_lambda_max_over_2/eta_late_median"] = float(
                np.median((lam / (2 / eta))[lam.size // 2 :])
            )
        out[name] = _late(ratios)
        out[name]["step_reached"] = (
            int(m["step"][at][out[name]["reached_at_point"]])
            if "reached_at_point" in out[name]
            else None
        )
        out[name]["final_loss"] = float(traj.diagnostics["loss"][-1])
    return out


@claim(
    "L-EDGE",
    "L",
    "Stability edges: GD 2/eta, USAM eta lambda (1 + rho lambda) = 2, SAM "
    "lambda_SAM(||g||) = (||g||/(2 rho))(sqrt(1 + 8 rho/(eta ||g||)) - 1) (-> 2/eta as "
    "rho/||g|| -> 0), heavy ball 2(1 + mu)/eta; along full-batch MLP training GD's lambda_max "
    "settles near 2/eta and SAM's near lambda_SAM(||g||).",
    method="sympy closed forms and limits; quadratic runs at 0.99x / 1.01x each edge (SAM "
    "with ||g|| held by a flat direction) against closed-form rates; full-batch GD and "
    "SAM on a tanh MLP with lambda_max by Lanczos every 10 steps, late-phase ratios",
    tolerance="quadratic rates 1e-6 relative; MLP: late-phase (from the first ratio >= 0.95) "
    "median ratio in [0.8, 1.1]; outside: fails; edge not reached: inconclusive",
    facts=("T-sam-edge", "T-sam-lmax", "T-gd-edge"),
    backends=("numpy", "torch"),
    figure="lambda-max",
)
def check_edge(ctx: ExperimentContext) -> Outcome:
    """Check L-EDGE: stability edges of GD, USAM, SAM, heavy ball; λ_max along MLP training.

    Rests on docs/theory.md#T-sam-edge, docs/theory.md#T-sam-lmax, docs/theory.md#T-gd-edge. The
    claim's page: docs/claims/L-EDGE.md.
    """
    der = sym.stability_edges()
    cases = _quadratic_part(ctx)
    quad_ok = all(c["ok"] for c in cases)
    rng = ctx.rng(52)
    steps = ctx.pick(800, 1500, 3000)
    runs = [_mlp_run(int(rng.integers(2**20)), steps, 10, ctx) for _ in range(ctx.pick(1, 3, 8))]
    statuses = [r[k]["status"] for r in runs for k in ("gd", "sam")]
    if all(s == "at edge" for s in statuses):
        mlp_verdict = Verdict.HOLDS
    elif "above" in statuses or "below" in statuses:
        mlp_verdict = Verdict.FAILS
    else:
        mlp_verdict = Verdict.INCONCLUSIVE
    if not (der.all_proved and quad_ok):
        verdict = Verdict.FAILS
    else:
        verdict = mlp_verdict
    gd_med, sam_med = (
        _median_of([r[k]["late_median"] for r in runs if "late_median" in r[k]])
        for k in ("gd", "sam")
    )
    worst = max(c["rate_rel_error"] for c in cases)
    return Outcome(
        verdict,
        f"GD lambda_max/(2/eta) {gd_med:.2f}, SAM lambda_max/lambda_SAM {sam_med:.2f} "
        f"(late medians); quadratic rate err {worst:.0e}",
        {
            "symbolic": der.proved,
            "assumptions": der.assumptions,
            "quadratic_ok": quad_ok,
            "max_quadratic_rate_rel_error": worst,
            "quadratic_cases": cases,
            "mlp_verdict": mlp_verdict.value,
            "mlp_rule": f"late phase = from the first ratio >= {REACHED} to the end (>= "
            f"{MIN_LATE} points, else 'not reached' -> inconclusive); late median in "
            f"{list(BAND)} -> at edge; above or below -> fails",
            "gd_late_median_ratio_over_runs": gd_med,
            "sam_late_median_ratio_over_runs": sam_med,
            "mlp_runs": runs,
            "seed": ctx.seed,
        },
    )
