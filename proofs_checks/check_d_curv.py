"""D-CURV: the curvature the X-SAM step sees.

Theory: docs/theory.md#T-curvature. Claim page: docs/claims/D-CURV.md.
See xsam_theory.claims.curvature.
"""

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import curvature


def test_symbolic_proof():
    der = curvature.curvature_seen()
    assert der.all_proved, der.proved


def test_claim_holds():
    result = run_claim("D-CURV", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
