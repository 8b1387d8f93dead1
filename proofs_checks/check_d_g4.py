"""D-G4: the X-SAM correction geometry (theory-notes F6.1/F6.3); see xsam_theory.claims.geometry."""

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import geometry


def test_symbolic_proof():
    der = geometry.descent_inner_product()
    assert der.all_proved, der.proved


def test_claim_holds():
    result = run_claim("D-G4", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
