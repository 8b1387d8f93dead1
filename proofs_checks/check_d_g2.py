"""D-G2: the norm of the paper rule's direction, and when it is at most 1.

Theory: docs/theory.md#T-correction-identities. Claim page: docs/claims/D-G2.md.
See xsam_theory.claims.geometry.
"""

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import geometry


def test_symbolic_proof():
    der = geometry.direction_norm()
    assert der.all_proved, der.proved


def test_claim_holds():
    result = run_claim("D-G2", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
