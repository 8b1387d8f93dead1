r"""D-CURV: the curvature the X-SAM step sees, with the exact top eigenvector.

Derivation: docs/theory.md#T-curvature.

Symbolic proof: :func:`xsam_theory.symbolic.curvature.curvature_seen` (eigenbasis with a generic
symmetric complement block). Numerical confirmation against the implementation: random quadratics
:math:`H = Q\,\mathrm{diag}(\lambda)\,Q^\top` (dimension 2–40, Haar ``Q``, top eigenvalue
positive, the rest of either sign), ``v`` the constructed top eigenvector (``Q[:, 0]``, also
flipped to ``-v``), random ``g_adv`` over twelve orders of magnitude and
:math:`\alpha \in [0, 3]` (with 0, 1, 2 exactly); the direction ``d`` comes from
:func:`~xsam_theory.optimizers.xsam_direction` for the symmetric form (:math:`\hat g - \alpha cv`),
the projector form (:math:`g - \alpha\langle g,v\rangle v`) and the paper rule
(:math:`\hat g - \alpha|c|v`), and :math:`d^\top Hd - u^\top Hu` is compared with the lambdified
closed form (:math:`u` the form's base vector, :math:`c = \langle u, v\rangle`).

Tolerance: :math:`10^{-12}\cdot\|H\|\,\|u\|^2(1+\alpha)^2` absolute, i.e. relative to the size of
the terms. Forming :math:`H` and two quadratic forms in dimension :math:`\le 40` costs a few hundred
ulps at most (:math:`40\cdot 2.2\cdot10^{-16} \approx 10^{-14}`), so the tolerance leaves a margin
of about 100 while a wrong coefficient (e.g. :math:`2\alpha` instead of :math:`2\alpha - \alpha^2`)
errs by :math:`O(\lambda_1 c^2)`. The sign facts (reduction for :math:`\alpha \in (0, 2)`, increase
for the paper rule with :math:`c < 0`) are counted where the change exceeds the tolerance.
"""

from __future__ import annotations

import numpy as np

from xsam_theory.claims.registry import ExperimentContext, Outcome, Verdict, claim
from xsam_theory.optimizers import xsam_direction
from xsam_theory.problems import Quadratic
from xsam_theory.symbolic import curvature as sym

RTOL = 1e-12

FORMS = {
    "symmetric": dict(sign_rule="symmetric", normalize=True, coefficient="normalized"),
    "projector": dict(sign_rule="symmetric", normalize=False, coefficient="raw"),
    "paper": dict(sign_rule="paper", normalize=True, coefficient="normalized"),
}


@claim(
    "D-CURV",
    "D",
    "With v the exact top eigenvector, the projector forms change the curvature "
    "the step sees by -(2 alpha - alpha^2) lambda_1 c^2 (a reduction for alpha in (0, 2)); "
    "the paper rule with c < 0 raises it by (2 alpha + alpha^2) lambda_1 c^2.",
    method="sympy identity in an eigenbasis (generic symmetric complement block); "
    "xsam_direction (symmetric, projector, paper forms) on random quadratics, "
    "g_adv and alpha in [0, 3], against the lambdified closed form",
    tolerance="1e-12 * ||H|| ||u||^2 (1 + alpha)^2 absolute",
    facts=("T-curvature",),
)
def check_curvature(ctx: ExperimentContext) -> Outcome:
    """Check D-CURV: the curvature change of the projector and paper forms against the closed form.

    With v the exact top eigenvector the projector forms change the curvature the step sees by
    -(2α - α²)λ_1c², the paper rule with c < 0 by +(2α + α²)λ_1c².

    Rests on docs/theory.md#T-curvature. The claim's page: docs/claims/D-CURV.md.
    """
    der = sym.curvature_seen()
    rng = ctx.rng(11)
    n_problems = ctx.pick(20, 100, 400)
    per_problem = ctx.pick(10, 20, 50)
    worst = {f: 0.0 for f in FORMS}
    violations = {"reduction (alpha in (0,2))": 0, "increase (paper, c<0)": 0}
    counts = {"paper c<0": 0, "paper c>0": 0}
    n = 0
    for p in range(n_problems):
        dim = int(rng.integers(2, 41))
        lam = np.concatenate([[rng.uniform(0.5, 20.0)], rng.uniform(-10.0, 0.45, dim - 1)])
        if p % 5 == 0 and dim > 2:  # a near-degenerate top pair
            lam[1] = lam[0] * (1 - 1e-6)
        q = Quadratic.from_spectrum(lam, seed=int(rng.integers(2**31)))
        H, l1 = q.hessian_matrix, float(q.eigenvalues[0])
        v0 = q.eigenvectors[:, 0]
        norm_h = float(np.max(np.abs(q.eigenvalues)))
        for j in range(per_problem):
            v = v0 if j % 2 == 0 else -v0
            g = rng.standard_normal(dim) * 10.0 ** rng.uniform(-6, 6)
            if j % 4 == 3:  # g almost along v
                g = g * 1e-3 + v * np.linalg.norm(g) * rng.choice([-1.0, 1.0])
            a = float(rng.uniform(0, 3) if j % 5 else rng.choice([0.0, 1.0, 2.0]))
            for form, opts in FORMS.items():
                d, _ = xsam_direction(g, v, a, **opts)
                u = g if form == "projector" else g / np.linalg.norm(g)
                cu = float(u @ v)
                reduction, increase = der.func(cu, a, l1)
                change = reduction if (form != "paper" or cu >= 0) else increase
                seen = float(d @ H @ d) - float(u @ H @ u)
                tol = RTOL * norm_h * float(u @ u) * (1 + a) ** 2
                worst[form] = max(worst[form], abs(seen - change) / tol * RTOL)
                if form == "paper":
                    counts["paper c<0" if cu < 0 else "paper c>0"] += 1
                if form != "paper" and 0 < a < 2 and seen > -tol and -reduction > tol:
                    violations["reduction (alpha in (0,2))"] += 1
                if form == "paper" and cu < 0 and a > 0 and seen < tol and increase > tol:
                    violations["increase (paper, c<0)"] += 1
            n += 1
    max_res = max(worst.values())
    ok = der.all_proved and max_res <= RTOL and not any(violations.values())
    return Outcome(
        Verdict.HOLDS if ok else Verdict.FAILS,
        f"max rel. residual {max_res:.1e} over {n} draws x 3 forms",
        {
            "symbolic": der.proved,
            "assumptions": der.assumptions,
            "max_relative_residual_by_form": worst,
            "sign_violations": violations,
            "n_draws": n,
            "n_problems": n_problems,
            "paper_rule_draws_by_sign": counts,
            "alpha_range": [0.0, 3.0],
            "dims": [2, 40],
            "seed": ctx.seed,
        },
    )
