"""F-NORM: X-SAM's iterates are invariant to scaling the loss (theory-notes F1.5, F6.1).

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
