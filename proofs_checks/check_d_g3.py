"""D-G3: the correction never decreases the angle to v.

Theory: docs/theory.md#T-angle-monotone. Claim page: docs/claims/D-G3.md.
See xsam_theory.claims.geometry.
"""

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import geometry


def test_symbolic_proof():
    der = geometry.angle_monotonicity()
    assert der.all_proved, der.proved


def test_claim_holds():
    result = run_claim("D-G3", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
