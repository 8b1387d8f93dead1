"""The F-POWER runs: the reference loop's power-iteration ``v`` against the true top eigenvectors.

The power-iteration ``v`` is compared with the algebraic top eigenvectors along MLP training,
and the dominant-negative quadratic flip runs are made. The claim
:mod:`xsam_theory.claims.power_quality` judges them; the ``power-quality`` figure draws them.
Background: docs/algorithms.md#A-reference-code and docs/algorithms.md#A-schedule (the loop),
docs/algorithms.md#A-eigenvector-sources (power iteration's semantics),
docs/theory.md#T-power-rate and docs/theory.md#T-dominant-negative.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from xsam_theory.experiments.context import ExperimentContext, reusable
from xsam_theory.optimizers import REFERENCE_OPTIONS, init_state, preset, step
from xsam_theory.problems import MLP, Quadratic
from xsam_theory.spectral import HessianOperator, top_eigenpair
from xsam_theory.symbolic.power_flip import dominant_negative_flip
from xsam_theory.trajectory import batch_schedule

WIDTHS = (5, 8, 3)
N_SAMPLES = 256
BATCH = 16
HYPER = dict(lr=0.1, rho=0.05, alpha=0.2, momentum=0.9, weight_decay=5e-4)
TOL_BOUND = 1e-8


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    c = abs(float(a @ b)) / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.degrees(np.arccos(min(1.0, c))))


def _tan(a: np.ndarray, u: np.ndarray) -> float:
    """Tangent of the angle between ``a`` and the unit vector ``u``.

    Computed from the orthogonal component, accurate near 0 (unlike sqrt(1 - cos^2)).
    """
    along = float(a @ u)
    return float(np.linalg.norm(a - along * u) / abs(along)) if along != 0 else np.inf


def _mlp_run(seed: int, steps: int) -> list[dict[str, Any]]:
    p = MLP.teacher_student(WIDTHS, n_samples=N_SAMPLES, seed=seed)
    cfg = preset(
        "xsam_paper",
        **HYPER,
        **REFERENCE_OPTIONS["xsam"],
        steps_per_epoch=N_SAMPLES // BATCH,
        lr_schedule="cosine",
        total_steps=steps,
    )
    k = cfg.power_steps
    state = init_state(p, np.asarray(p.init_params(seed)), cfg, seed=seed)
    batches = batch_schedule(N_SAMPLES, BATCH, seed)
    rows = []
    for t in range(steps):
        batch = next(batches)
        w, prev = np.asarray(state.w), state.v if state.v is not None else state.v_start
        state, info = step(p, state, cfg, batch)
        if not info.refreshed:
            continue
        v = np.asarray(state.v)
        HB = np.asarray(p.hessian(w, batch))
        lam, vecs = np.linalg.eigh(HB)
        top = vecs[:, -1]
        order = np.argsort(-np.abs(lam))
        dom, mu1, mu2 = vecs[:, order[0]], abs(lam[order[0]]), abs(lam[order[1]])
        full = top_eigenpair(HessianOperator.from_point(p.at(w)), "lanczos", tol=1e-10)
        ray = float(v @ HB @ v)
        row = {
            "seed": seed,
            "step": t,
            "angle_batch_top": _angle(v, top),
            "angle_full_top": _angle(v, np.asarray(full.eigenvector)),
            "rayleigh": ray,
            "lambda_max_batch": float(lam[-1]),
            "lambda_max_full": float(full.eigenvalue),
            "reference_eigenvalue": info.eigenvalue,
            "rel_error": abs(ray - lam[-1]) / abs(lam[-1]),
            "dominant_negative": bool(lam[order[0]] < 0),
        }
        if mu2 < mu1 * (1 - 1e-9):
            bound = (mu2 / mu1) ** k * _tan(np.asarray(prev), dom)
            # rounding of the HVPs, measured by the asymmetry of the assembled H_B: each of the
            # k steps can turn the iterate by ~||E||/gap (Davis-Kahan), E the HVP error
            slack = k * float(np.linalg.norm(HB - HB.T)) / (mu1 - mu2)
            row["bound_ok"] = bool(_tan(v, dom) <= bound * (1 + TOL_BOUND) + 1e-10 + slack)
        rows.append(row)
    return rows


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """A context manager that runs small dense problems on one BLAS thread.

    Small dense problems (75 x 75 eigh, HVPs on 16 samples) run fastest on one BLAS thread; on a
    busy 2-core machine OpenBLAS's busy-waiting workers made them ~10x slower. Uses threadpoolctl
    when it is installed (it is not a dependency), else changes nothing.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def quantiles(x: list[float]) -> dict[str, float]:
    """The 10 %, 50 % and 90 % quantiles of ``x``, keyed ``q10``, ``median``, ``q90``."""
    q = np.quantile(np.asarray(x), [0.1, 0.5, 0.9])
    return {"q10": float(q[0]), "median": float(q[1]), "q90": float(q[2])}


def _flip_run(dim: int, seed: int, power_steps: int, refreshes: int) -> dict[str, Any]:
    q = Quadratic.dominant_negative(dim, seed=seed)
    lam, U = q.eigenvalues, q.eigenvectors  # descending: lam[-1] = -7 dominates
    v_dom, mu, lam2 = U[:, -1], abs(lam[-1]), max(abs(lam[0]), abs(lam[-2]))
    spread = float(lam[0] - lam[-1])
    cfg = preset(
        "xsam_paper",
        lr=0.05,
        rho=0.05,
        alpha=0.2,
        **{**REFERENCE_OPTIONS["xsam"], "power_steps": power_steps},
    )
    every = cfg.refresh_every
    state = init_state(q, np.ones(dim) / np.sqrt(dim), cfg, seed=seed)
    tan0 = _tan(np.asarray(state.v_start), v_dom)
    factor = float(dominant_negative_flip().func(lam2, mu, power_steps))
    vs, eigs = [], []
    for _ in range(every * refreshes + 1):
        state, info = step(q, state, cfg)
        if info.refreshed:
            vs.append(np.asarray(state.v))
            eigs.append(info.eigenvalue)
    bounds = [tan0 * factor ** (j + 1) for j in range(len(vs))]
    j0 = next(j for j, b in enumerate(bounds) if b <= 0.1)
    overlaps = [float(vs[j + 1] @ vs[j]) for j in range(len(vs) - 1)]
    want = -1.0 if power_steps % 2 else 1.0
    signs_ok = all(np.sign(o) == want for o in overlaps[j0:])
    bound_ok = all(
        _tan(vs[j], v_dom) <= bounds[j] * (1 + TOL_BOUND) + 1e-12 for j in range(len(vs))
    )
    # the reference's estimate: the Rayleigh quotient of u_{k-1} (k-1 steps into the refresh)
    ray_bounds = [
        spread * (bounds[j - 1] * (lam2 / mu) ** (power_steps - 1)) ** 2 for j in range(1, len(vs))
    ]
    eig_ok = all(
        abs(eigs[j] + mu) <= ray_bounds[j - 1] * (1 + 1e-8) + 1e-12
        for j in range(max(j0, 1), len(vs))
    )
    return {
        "dim": dim,
        "seed": seed,
        "power_steps": power_steps,
        "refreshes": len(vs),
        "algebraic_top": float(lam[0]),
        "dominant": float(lam[-1]),
        "tan_factor_per_refresh": factor,
        "converged_from_refresh": j0,
        "overlaps_after_convergence": [round(o, 6) for o in overlaps[j0 : j0 + 6]],
        "flips_every_refresh" if power_steps % 2 else "never_flips": signs_ok,
        "eigenvalue_estimates_last": [float(e) for e in eigs[-3:]],
        "overlaps": [float(o) for o in overlaps],
        "eigenvalue_estimates": [float(e) for e in eigs],
        "bound_ok": bound_ok,
        "eigenvalue_ok": eig_ok,
        "ok": bool(signs_ok and bound_ok and eig_ok),
    }


@reusable
def power_evidence(ctx: ExperimentContext) -> dict[str, Any]:
    r"""The F-POWER runs: what the claim judges and what the ``power-quality`` figure plots.

    One computation serves both. ``rows``: one record per refresh of the MLP runs; ``flips``: the
    dominant-negative quadratic runs (5 and 4 power steps per refresh). Per refresh the power
    bound :math:`\tan\angle(v, v_{dom}) \le (|\lambda_2|/|\lambda_1|)^k\tan\angle(v_{prev},
    v_{dom})` is evaluated (docs/theory.md#T-power-rate); with a dominant negative eigenvalue
    each power step flips the sign of ``v`` (docs/theory.md#T-dominant-negative).
    """
    seeds = [ctx.seed + i for i in range(ctx.pick(2, 4, 8))]
    steps = ctx.pick(96, 480, 960)
    with _one_blas_thread():
        rows = [r for s in seeds for r in _mlp_run(s, steps)]
    flips = [
        _flip_run(dim, ctx.seed + s, k, ctx.pick(12, 20, 40))
        for dim in (6, 10)
        for s in range(ctx.pick(1, 2, 3))
        for k in (5, 4)
    ]
    return {"seeds": seeds, "steps": steps, "rows": rows, "flips": flips}
