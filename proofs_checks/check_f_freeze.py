"""F-FREEZE: non-stationary fixed points at alpha = 1 (theory-notes F6.6, F7.2); see
xsam_theory.claims.xsam_dynamics."""

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import xsam_1d


def test_symbolic_proof():
    for der in (xsam_1d.fixed_points(), xsam_1d.paper_rule_map(), xsam_1d.projector_factor()):
        assert der.all_proved, der.proved


def test_claim_holds():
    result = run_claim("F-FREEZE", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
