"""F-NORM: X-SAM's iterates are invariant to scaling the loss.

Theory: docs/theory.md#T-correction-identities (the step-length bound); the normalization is the
authors' code's (docs/algorithms.md#A-reference-code). Claim page: docs/claims/F-NORM.md.
See xsam_theory.claims.normalization.
"""

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import invariance


def test_symbolic_proof():
    der = invariance.scale_invariance()
    assert der.all_proved, der.proved


def test_claim_holds():
    result = run_claim("F-NORM", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
