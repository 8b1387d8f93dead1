r"""F-NORM: X-SAM's normalization makes it blind to the scale of the loss.

Background: docs/algorithms.md#A-reference-code and docs/theory.md#T-correction-identities.

Symbolic part (:func:`xsam_theory.symbolic.invariance.scale_invariance`): the paper rule's step
satisfies :math:`\|d\| \le 1 + \alpha|c| \le 1 + \alpha`; the paper and symmetric directions
and the ascent step :math:`\rho\hat g` are homogeneous of degree 0 in :math:`g`, SAM's
:math:`g_{adv}` and the projector form of degree 1, and the raw projection's correction scales
with :math:`s`. With :math:`\varepsilon = \rho\hat g` scale-free and the top eigenvector of
:math:`sH` equal to that of :math:`H` (for power iteration: :math:`sHu/\|sHu\| = Hu/\|Hu\|`),
every X-SAM iterate is unchanged by :math:`L \to sL` (:math:`s > 0`) once ``v`` exists.
Comparing α = 0 (``nsam``, normalized SAM) with SAM separates the two ingredients: the
invariance comes from the normalization, not from the correction.

Numerical part: the same seeded run on :math:`L` and on :math:`sL`,

* quadratics (three spectra × seeds, exact ``v``, η = ρ = 0.05), s ∈ {2⁻¹⁰, 1/2, 4, 2¹⁰} for
  the normalized forms (paper and symmetric rule at α = 0.5, ``nsam``) and s ∈ {1/2, 2} for SAM and
  the projector form (at s = 2¹⁰ they diverge: ηsλ₁ > 2). Powers of two make :math:`sH`,
  :math:`sHw` and :math:`\|sHw\|` exact in floating point, so an invariant form must reproduce
  the run bit for bit; a generic ``s`` adds rounding that the normalized map amplifies where
  ``||g||`` is small (its derivative is ~ηλ/‖g‖), which would blur the test;
* the ravine toy (non-quadratic, ``v`` recomputed every step): :math:`s L` is ``Ravine(s λ₀)``;
* a small MLP (teacher–student, cross-entropy) under the reference schedule (power iteration,
  5 steps, refresh every 5, minibatches, momentum 0.9) with a seeded ``v`` present from the
  start, wrapped as :math:`sL` by :class:`ScaledProblem`; a control on it, the reference loop
  *before* its first ``v`` (raw SAM steps, not invariant); and the same run with the reference's
  coupled weight decay (``b ← μb + d + λ_wd w``), which stays invariant because neither ``d`` nor
  ``λ_wd w`` depends on ``s`` — the qualifier "without weight decay" is not needed for that form
  of weight decay (it would be for an L2 term added to the loss but left out of the scaling).

Tolerances: invariant forms agree to 1e-9 relative over the whole run (0 expected on the
quadratics; on the ravine and the MLP, with s ∈ {0.01, 100} and {0.1, 10}, the runs differ by
rounding only, ~1e-16 over these short horizons); "not invariant" means a relative difference above
1e-3 (10⁶ times the invariance tolerance). The step-length bound :math:`\|\Delta w\| \le
\eta(1+\alpha|c|) \le \eta(1+\alpha)` is checked on every step of every scale, 1e-12 relative.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from xsam_theory.claims.registry import ExperimentContext, Outcome, Verdict, claim
from xsam_theory.experiments.loops import QUADRATIC_CASES, exact_v, quadratic_case, run_steps
from xsam_theory.optimizers import REFERENCE_OPTIONS, preset
from xsam_theory.problems import MLP, Point, Problem, Quadratic, Ravine
from xsam_theory.symbolic import invariance
from xsam_theory.trajectory import batch_schedule

__all__ = ["ScaledProblem"]

ETA = 0.05
RHO = 0.05
ALPHA = 0.5
TOL_INV = 1e-9
NOT_INV = 1e-3
SCALES_NORMALIZED = (2.0**-10, 0.5, 4.0, 2.0**10)  # powers of two: s*H is exact
SCALES_RAW = (0.5, 2.0)


class _ScaledPoint(Point):
    def __init__(self, problem: ScaledProblem, inner: Point):
        super().__init__(problem, inner.w)
        self.inner = inner
        self.s = problem.s

    @property
    def loss(self) -> Any:
        """The scaled loss :math:`sL(w)`."""
        return self.s * self.inner.loss

    @property
    def grad(self) -> Any:
        r"""The scaled gradient :math:`s\nabla L(w)`."""
        return self.s * self.inner.grad

    def hvp_batch(self, V: Any) -> Any:
        """The scaled Hessian times each column of ``V``: :math:`sHV`."""
        return self.s * self.inner.hvp_batch(V)


class ScaledProblem(Problem):
    r"""``s · base``: loss, gradient and HVPs of ``base`` multiplied by ``s > 0``.

    The problem :math:`sL` of F-NORM: :math:`\nabla(sL) = s\nabla L`, :math:`\nabla^2(sL) = sH`.
    With ``s`` a power of two every product is exact in floating point.
    """

    def __init__(self, base: Problem, s: float):
        if not s > 0:
            raise ValueError(f"s must be > 0, got {s!r}")
        self.base, self.s = base, float(s)
        self.dim = base.dim
        self.n_samples = base.n_samples

    def at(self, w: Any, batch: Any = None) -> Point:
        """The scaled problem's loss and derivatives at ``w`` on ``batch``: ``s`` times base's."""
        return _ScaledPoint(self, self.base.at(w, batch))

    def convert(self, xp: ModuleType, device: Any = None) -> ScaledProblem:
        """The same scaled problem with ``base`` converted to namespace ``xp`` (on ``device``)."""
        return ScaledProblem(self.base.convert(xp, device), self.s)

    @property
    def xp(self) -> ModuleType:
        """The array namespace of ``base``."""
        return self.base.xp

    def hessian_chunk(self) -> int:
        """How many directions one batched HVP takes for the dense Hessian: ``base``'s."""
        return self.base.hessian_chunk()


def _rel(W: np.ndarray, W0: np.ndarray) -> float:
    return float(np.max(np.linalg.norm(W - W0, axis=1)) / np.max(np.linalg.norm(W0, axis=1)))


def _step_bound(q: Quadratic, W: np.ndarray, v: np.ndarray, alpha: float) -> float:
    """max_t ||w_{t+1} - w_t|| / (eta (1 + alpha|c_t|)) with c_t recomputed from H."""
    H = np.asarray(q.hessian_matrix)
    G = W[:-1] @ H
    Ga = (W[:-1] + RHO * G / np.linalg.norm(G, axis=1, keepdims=True)) @ H
    c = (Ga @ v) / np.linalg.norm(Ga, axis=1)
    steps = np.linalg.norm(np.diff(W, axis=0), axis=1)
    return float(np.max(steps / (ETA * (1 + alpha * np.abs(c)))))


def _quadratic_case(spec: str, seed: int, steps: int, ctx: ExperimentContext) -> dict[str, Any]:
    q, U = quadratic_case(spec, seed)
    w0 = ctx.rng(800 + seed).standard_normal(q.dim)
    methods = {
        "xsam_paper": (dict(alpha=ALPHA), SCALES_NORMALIZED, True),
        "xsam_symmetric": (dict(alpha=ALPHA), SCALES_NORMALIZED, True),
        "nsam": ({}, SCALES_NORMALIZED, True),
        "sam": ({}, SCALES_RAW, False),
        "xsam_projector": (dict(alpha=ALPHA), SCALES_RAW, False),
    }
    out: dict[str, Any] = {"spectrum": spec, "seed": seed}
    for name, (kw, scales, invariant) in methods.items():
        make = preset if name == "sam" else exact_v  # sam computes no eigenvector
        runs = {
            s: run_steps(
                Quadratic(s * np.asarray(q.hessian_matrix)),
                make(name, lr=ETA, rho=RHO, **kw),
                w0,
                steps,
                ctx=ctx,
            ).iterates
            for s in (1.0, *scales)
        }
        dev = {s: _rel(runs[s], runs[1.0]) for s in scales}
        rec: dict[str, Any] = {"max_rel_difference_by_s": dev}
        if invariant:
            rec["ok"] = max(dev.values()) <= TOL_INV
        else:
            rec["ok"] = min(dev.values()) >= NOT_INV
            rec["first_step_length_ratio_by_s"] = {
                s: float(
                    np.linalg.norm(runs[s][1] - runs[s][0])
                    / np.linalg.norm(runs[1.0][1] - runs[1.0][0])
                )
                for s in scales
            }
        if name == "xsam_paper":
            bound = max(
                _step_bound(Quadratic(s * np.asarray(q.hessian_matrix)), runs[s], U[:, 0], ALPHA)
                for s in runs
            )
            longest = max(
                float(np.max(np.linalg.norm(np.diff(runs[s], axis=0), axis=1))) for s in runs
            )
            rec |= {
                "max ||dw||/(eta(1+alpha|c|))": bound,
                "max ||dw||/eta": longest / ETA,
                "bound 1+alpha": 1 + ALPHA,
            }
            rec["ok"] = bool(
                rec["ok"] and bound <= 1 + 1e-12 and longest <= ETA * (1 + ALPHA) * (1 + 1e-12)
            )
        out[name] = rec
    out["ok"] = all(out[m]["ok"] for m in methods)
    return out


def _ravine_case(steps: int, ctx: ExperimentContext) -> dict[str, Any]:
    w0 = np.array([0.3, 0.8]) + 0.05 * ctx.rng(900).standard_normal(2)
    out: dict[str, Any] = {"lam0": 5.0, "w0": w0}
    for name, kw, scales, invariant in (
        ("xsam_paper", dict(alpha=ALPHA, eigvec_source="exact"), (1e-2, 1e2), True),
        ("nsam", {}, (1e-2, 1e2), True),
        ("sam", {}, (0.5, 2.0), False),
    ):
        runs = {
            s: run_steps(
                Ravine(5.0 * s), preset(name, lr=ETA, rho=RHO, **kw), w0, steps, ctx=ctx
            ).iterates
            for s in (1.0, *scales)
        }
        dev = {s: _rel(runs[s], runs[1.0]) for s in scales}
        ok = max(dev.values()) <= TOL_INV if invariant else min(dev.values()) >= NOT_INV
        out[name] = {"max_rel_difference_by_s": dev, "ok": bool(ok)}
    out["ok"] = all(out[m]["ok"] for m in ("xsam_paper", "nsam", "sam"))
    return out


def _mlp_case(steps: int, ctx: ExperimentContext) -> dict[str, Any]:
    base = MLP.teacher_student((4, 8, 3), n_samples=128, seed=ctx.seed)
    w0 = np.asarray(base.init_params(ctx.seed))
    v0 = ctx.rng(901).standard_normal(base.dim)
    v0 /= np.linalg.norm(v0)
    batch, spe = 16, 128 // 16
    ref = dict(REFERENCE_OPTIONS["xsam"], steps_per_epoch=spe)

    def run(name: str, s: float, kw: dict[str, Any], v: Any) -> np.ndarray:
        cfg = preset(name, lr=ETA, rho=RHO, momentum=0.9, **kw)
        return run_steps(
            ScaledProblem(base, s),
            cfg,
            w0,
            steps,
            seed=ctx.seed,
            v=v,
            batches=batch_schedule(base.n_samples, batch, ctx.seed),
            ctx=ctx,
        ).iterates

    scales = (0.1, 10.0)
    cases = {
        "xsam_paper (reference schedule, v present)": (
            "xsam_paper",
            dict(alpha=0.2, **ref),
            v0,
            True,
        ),
        "nsam (reference schedule, v present)": ("nsam", dict(ref), v0, True),
        "sam": ("sam", {}, None, False),
        "control: xsam_paper before its first v (raw SAM steps)": (
            "xsam_paper",
            dict(alpha=0.2, **ref),
            None,
            False,
        ),
        "xsam_paper with coupled weight decay 5e-4 (reference SGD)": (
            "xsam_paper",
            dict(alpha=0.2, weight_decay=5e-4, **ref),
            v0,
            True,
        ),
    }
    out: dict[str, Any] = {
        "widths": (4, 8, 3),
        "n_samples": 128,
        "batch_size": batch,
        "steps": steps,
        "lr": ETA,
        "rho": RHO,
        "momentum": 0.9,
        "reference_options": {k: str(v) for k, v in ref.items()},
    }
    for label, (name, kw, v, invariant) in cases.items():
        runs = {s: run(name, s, kw, v) for s in (1.0, *scales)}
        dev = {s: _rel(runs[s], runs[1.0]) for s in scales}
        ok = max(dev.values()) <= TOL_INV if invariant else min(dev.values()) >= NOT_INV
        out[label] = {"max_rel_difference_by_s": dev, "ok": bool(ok)}
    out["ok"] = all(out[k]["ok"] for k in cases)
    return out


@claim(
    "F-NORM",
    "F",
    "X-SAM's normalization makes its step length eta||d|| <= eta(1+alpha) independent of the "
    "gradient scale, so X-SAM's iterates (once v exists, without weight decay) are invariant "
    "to scaling the loss by s > 0 while SAM's are not; alpha = 0 (normalized SAM) is "
    "invariant too, so the invariance comes from the normalization, not the correction.",
    method="sympy (norm bound, homogeneity of each form); paired runs on L and sL: quadratics "
    "(3 spectra x seeds, exact v), the ravine toy, a teacher-student MLP under the "
    "reference schedule (power v, minibatches, momentum .9) with controls (before the "
    "first v; weight decay)",
    tolerance="invariant: 1e-9 relative over the run; not invariant: > 1e-3 relative; step "
    "length bound 1e-12 relative",
    facts=("A-reference-code", "T-correction-identities"),
    backends=("numpy", "torch"),
)
def check_norm(ctx: ExperimentContext) -> Outcome:
    r"""Check F-NORM: X-SAM's iterates on :math:`sL` equal those on :math:`L`; SAM's do not.

    Every X-SAM form steps by :math:`\eta d` with :math:`d` built from unit vectors
    (:math:`\hat g_a = g_a/\|g_a\|` and ``v``), so :math:`\|d\| \le 1 + \alpha` and
    :math:`d(sg) = d(g)` for :math:`s > 0`; the ascent point :math:`w + \rho\hat g` is scale free
    too. SAM's step :math:`\eta g_a` scales with :math:`s`. Sympy proves the homogeneity and the
    norm bound; paired runs on :math:`L` and :math:`sL` (quadratics with exact ``v``, the ravine
    toy, an MLP under the reference schedule) compare the iterates, with controls before the
    first ``v`` (plain SAM) and with weight decay (which breaks the invariance).

    Rests on docs/algorithms.md#A-reference-code, docs/theory.md#T-correction-identities. The
    claim's page: docs/claims/F-NORM.md.
    """
    der = invariance.scale_invariance()
    seeds = [ctx.seed + i for i in range(ctx.pick(1, 2, 4))]
    quad = [
        _quadratic_case(spec, s, ctx.pick(60, 150, 400), ctx)
        for spec in QUADRATIC_CASES
        for s in seeds
    ]
    rav = _ravine_case(ctx.pick(100, 200, 400), ctx)
    mlp = _mlp_case(ctx.pick(30, 80, 250), ctx)
    ok = der.all_proved and all(c["ok"] for c in quad) and rav["ok"] and mlp["ok"]

    def worst(name: str) -> float:
        return max(max(c[name]["max_rel_difference_by_s"].values()) for c in quad)

    evidence = {
        "symbolic": {der.name: der.proved},
        "eta": ETA,
        "rho": RHO,
        "alpha": ALPHA,
        "seeds": seeds,
        "scales_normalized": SCALES_NORMALIZED,
        "scales_sam_projector": SCALES_RAW,
        "quadratics": quad,
        "ravine": rav,
        "mlp": mlp,
        "max_rel_difference": {
            m: worst(m) for m in ("xsam_paper", "xsam_symmetric", "nsam", "sam", "xsam_projector")
        },
    }
    key = (
        f"X-SAM/nsam differ {max(worst('xsam_paper'), worst('nsam')):.0e} under sL; "
        f"SAM {min(min(c['sam']['max_rel_difference_by_s'].values()) for c in quad):.1g}"
    )
    return Outcome(Verdict.HOLDS if ok else Verdict.FAILS, key, evidence)
