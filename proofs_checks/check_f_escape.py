"""F-ESCAPE: linear escape and exponential divergence for alpha > 1.

Theory-notes F7.3, F7.4; see xsam_theory.claims.xsam_dynamics.
"""

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import xsam_1d


def test_symbolic_proof():
    for der in (xsam_1d.escape(), xsam_1d.paper_rule_map()):
        assert der.all_proved, der.proved


def test_claim_holds():
    result = run_claim("F-ESCAPE", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
