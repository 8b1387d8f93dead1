"""F-CONFOUND: step length, not the correction, sets the normalized forms' drift.

Theory: docs/theory.md#T-drift and docs/theory.md#T-confound. Claim page:
docs/claims/F-CONFOUND.md. See xsam_theory.claims.confound.
"""

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import drift


def test_symbolic_proof():
    for der in (drift.ravine_drift(), drift.ravine_drift_tilted(), drift.per_step_drift()):
        assert der.all_proved, der.proved


def test_claim_holds():
    result = run_claim("F-CONFOUND", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
