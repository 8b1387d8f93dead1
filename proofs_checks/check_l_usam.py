"""L-USAM: USAM on a quadratic.

Theory: docs/theory.md#T-usam. Claim page: docs/claims/L-USAM.md.
See xsam_theory.claims.usam.
"""

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import quadratic


def test_symbolic_proof():
    for der in (quadratic.usam_factor(), quadratic.usam_threshold()):
        assert der.all_proved, der.proved


def test_claim_holds():
    result = run_claim("L-USAM", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
