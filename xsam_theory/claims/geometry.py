"""D-G1 … D-G4: the X-SAM correction geometry.

Derivations: docs/theory.md#T-correction-identities (D-G1, D-G2, D-G4) and
docs/theory.md#T-angle-monotone (D-G3).

Each check proves the statement with sympy (:mod:`xsam_theory.symbolic.geometry`) and confirms it
numerically: the implementation's :func:`~xsam_theory.optimizers.xsam_direction` on random unit
pairs in dimensions 2–64 (plus the edge cases c = 0, ±1 and tiny c) against the lambdified
closed form. Tolerance 1e-12 absolute: every quantity is O(1) (unit vectors, α ≤ 3), and the
implementation's rounding is a few ulps.
"""

from __future__ import annotations

import numpy as np

from xsam_theory.claims.registry import ExperimentContext, Outcome, Verdict, claim
from xsam_theory.optimizers import xsam_direction
from xsam_theory.symbolic import geometry as sym

TOL = 1e-12


def _draws(ctx: ExperimentContext, stream: int) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Unit pairs (ĝ, v) and α ∈ [0, 3], with the edge cases c = 0, ±1, ±1e-9 included."""
    rng = ctx.rng(stream)
    n = ctx.pick(400, 4000, 40000)
    out = []
    for i in range(n):
        dim = int(rng.integers(2, 65))
        v = rng.standard_normal(dim)
        v /= np.linalg.norm(v)
        g = rng.standard_normal(dim) * 10.0 ** rng.uniform(-6, 6)
        out.append((g, v, float(rng.uniform(0, 3) if i % 7 else rng.choice([0.0, 1.0, 2.0]))))
    e1, e2 = np.eye(3)[0], np.eye(3)[1]
    for a in (0.0, 0.5, 1.0, 2.0, 3.0):
        for g in (e1, -e1, e2, e2 + 1e-9 * e1, e2 - 1e-9 * e1):
            out.append((g, e1, a))
    return out


def _geometry(g: np.ndarray, v: np.ndarray, a: float) -> tuple[np.ndarray, np.ndarray, float]:
    gh = g / np.linalg.norm(g)
    d, c = xsam_direction(g, v, a)
    return gh, np.asarray(d), float(c)


def _outcome(name: str, der: sym.Derivation, max_res: float, n: int, extra: dict) -> Outcome:
    ok = der.all_proved and max_res <= TOL and not extra.get("violations", 0)
    return Outcome(
        Verdict.HOLDS if ok else Verdict.FAILS,
        f"max |residual| {max_res:.1e} over {n} draws",
        {
            "symbolic": der.proved,
            "assumptions": der.assumptions,
            "max_abs_residual": max_res,
            "n_draws": n,
            **extra,
        },
    )


@claim(
    "D-G1",
    "D",
    "<d, v> = c - alpha|c| for the paper rule d = g_hat - alpha|c| v.",
    method="sympy: <d, v> from d = g_hat - alpha|c| v in a general frame (ideal of unit "
    "g_hat, v); xsam_direction on random unit pairs",
    tolerance="1e-12 absolute",
    facts=("T-correction-identities",),
    figure="geometry",
)
def check_g1(ctx: ExperimentContext) -> Outcome:
    """Check D-G1: ⟨d, v⟩ = c − α|c| for the paper rule d = ĝ − α|c|v.

    Rests on docs/theory.md#T-correction-identities. The claim's page: docs/claims/D-G1.md.
    """
    der = sym.parallel_component()
    draws = _draws(ctx, 1)
    res = 0.0
    for g, v, a in draws:
        _, d, c = _geometry(g, v, a)
        res = max(res, abs(d @ v - der.func(c, a)))
    return _outcome("G1", der, res, len(draws), {})


@claim(
    "D-G2",
    "D",
    "||d||^2 = 1 - c^2 + (c - alpha|c|)^2, so ||d|| <= 1 when c > 0 "
    "iff alpha in [0, 2] (and ||d|| > 1 when c < 0, alpha > 0).",
    method="sympy identity + factorization c^2 alpha(alpha -+ 2) per sign of c; numerical draws",
    tolerance="1e-12 absolute",
    facts=("T-correction-identities",),
    figure="geometry",
)
def check_g2(ctx: ExperimentContext) -> Outcome:
    """Check D-G2: ‖d‖² = 1 − c² + (c − α|c|)², so ‖d‖ ≤ 1 when c > 0 iff α ∈ [0, 2].

    Rests on docs/theory.md#T-correction-identities. The claim's page: docs/claims/D-G2.md.
    """
    der = sym.direction_norm()
    draws = _draws(ctx, 2)
    res, violations = 0.0, 0
    for g, v, a in draws:
        _, d, c = _geometry(g, v, a)
        n2 = d @ d
        res = max(res, abs(n2 - der.func(c, a)))
        if c > 1e-6 and a <= 2 and n2 > 1 + TOL:
            violations += 1
        if c > 1e-6 and a > 2 + 1e-9 and n2 <= 1:
            violations += 1
        if c < -1e-6 and a > 1e-9 and n2 <= 1:
            violations += 1
    return _outcome("G2", der, res, len(draws), {"violations": violations})


@claim(
    "D-G3",
    "D",
    "angle(d, v) >= angle(g_hat, v) for every alpha >= 0.",
    method="sympy: per sign of c, reduce to (2a -+ a^2)(1 - c^2) >= 0; numerical draws",
    tolerance="1e-12 absolute on the cosines",
    facts=("T-angle-monotone",),
    figure="geometry",
)
def check_g3(ctx: ExperimentContext) -> Outcome:
    """Check D-G3: ∠(d, v) ≥ ∠(ĝ, v) for every α ≥ 0.

    Rests on docs/theory.md#T-angle-monotone. The claim's page: docs/claims/D-G3.md.
    """
    der = sym.angle_monotonicity()
    draws = _draws(ctx, 3)
    res, violations, worst = 0.0, 0, 0.0
    for g, v, a in draws:
        _, d, c = _geometry(g, v, a)
        nd = np.linalg.norm(d)
        if nd == 0.0:  # alpha = 1, g_hat = v: d = 0, the angle is undefined
            continue
        cos_dv = d @ v / nd
        res = max(res, abs(cos_dv - der.func(c, a)))
        worst = max(worst, cos_dv - c)
        if cos_dv > c + TOL:
            violations += 1
    return _outcome(
        "G3", der, res, len(draws), {"violations": violations, "max cos(d,v) - cos(g,v)": worst}
    )


@claim(
    "D-G4",
    "D",
    "<d, g_hat> = 1 - alpha c|c|: d is a descent direction unless alpha c|c| >= 1.",
    method="sympy identity; numerical draws",
    tolerance="1e-12 absolute",
    facts=("T-correction-identities",),
    figure="geometry",
)
def check_g4(ctx: ExperimentContext) -> Outcome:
    """Check D-G4: ⟨d, ĝ⟩ = 1 − αc|c|, so d is a descent direction unless αc|c| ≥ 1.

    Rests on docs/theory.md#T-correction-identities. The claim's page: docs/claims/D-G4.md.
    """
    der = sym.descent_inner_product()
    draws = _draws(ctx, 4)
    res = 0.0
    for g, v, a in draws:
        gh, d, c = _geometry(g, v, a)
        res = max(res, abs(d @ gh - der.func(c, a)))
    return _outcome("G4", der, res, len(draws), {})
