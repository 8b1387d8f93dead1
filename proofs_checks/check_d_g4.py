"""D-G4: <d, g_hat> = 1 - alpha c|c| (descent unless alpha c|c| >= 1).

Theory: docs/theory.md#T-correction-identities. Claim page: docs/claims/D-G4.md.
See xsam_theory.claims.geometry.
"""

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import geometry


def test_symbolic_proof():
    der = geometry.descent_inner_product()
    assert der.all_proved, der.proved


def test_claim_holds():
    result = run_claim("D-G4", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
