"""F-TRAP: the paper rule can lock on the normalized-GD 2-cycle across v2 with <w, v> -> 0.

It does so exactly when the linearized two-step multiplier about that cycle has modulus < 1;
see xsam_theory.claims.xsam_dynamics and xsam_theory.symbolic.xsam_1d.v2_cycle_trap.

Theory: docs/theory.md#T-trap (it shows the premise of docs/theory.md#T-reduction-1d can fail).
Claim page: docs/claims/F-TRAP.md.
"""

from functools import cache

import numpy as np

from xsam_theory.claims import ClaimResult, ExperimentContext, run_claim
from xsam_theory.symbolic import xsam_1d


@cache
def _result() -> ClaimResult:
    return run_claim("F-TRAP", ExperimentContext(scale="quick"))


def test_symbolic_linearization():
    der = xsam_1d.v2_cycle_trap()
    assert der.all_proved, der.proved


def test_linearization_matches_central_differences():
    """K = dc/dx at x = 0, against a central difference of c computed in NumPy."""
    l1, l2, rho, eta, y = 10.0, 6.0, 0.05, 0.05, 0.025
    H = np.diag([l1, l2])

    def c(x: float) -> float:
        w = np.array([x, y])
        g = H @ w
        ga = H @ (w + rho * g / np.linalg.norm(g))
        return float(ga[0] / np.linalg.norm(ga))

    h = 1e-6
    K_fd = (c(h) - c(-h)) / (2 * h)
    K = xsam_1d.v2_cycle_trap().func(l1, l2, rho, eta, 0.5, y)[0]
    assert abs(K_fd / K - 1) < 1e-8


def test_trap_predicted_for_every_alpha():
    runs = _result().evidence["runs"]
    assert all(r["multiplier_ok"] and r["predicted_trap"] == r["trapped"] for r in runs), runs


def test_claim_holds():
    assert _result().verdict == "holds", _result().key
