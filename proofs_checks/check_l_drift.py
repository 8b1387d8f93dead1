"""L-DRIFT: SAM's drift toward flat minima.

Theory: docs/theory.md#T-drift and docs/theory.md#T-flat-bias. Claim page:
docs/claims/L-DRIFT.md. See xsam_theory.claims.drift.
"""

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import drift


def test_symbolic_proof():
    for der in (drift.ravine_drift(), drift.factorization_gd()):
        assert der.all_proved, der.proved


def test_claim_holds():
    result = run_claim("L-DRIFT", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
