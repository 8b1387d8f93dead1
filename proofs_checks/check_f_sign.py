"""F-SIGN: the paper rule depends on the orientation of v (theory-notes F6.2, F1.7); see
xsam_theory.claims.orientation."""

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import invariance, xsam_1d


def test_symbolic_proof():
    for der in (invariance.orientation_difference(), xsam_1d.paper_window()):
        assert der.all_proved, der.proved


def test_claim_holds():
    result = run_claim("F-SIGN", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
