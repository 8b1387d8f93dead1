"""F-ESCAPE: linear escape and exponential divergence for alpha > 1.

Theory: docs/theory.md#T-escape and docs/theory.md#T-projector-usam. Claim page:
docs/claims/F-ESCAPE.md. See xsam_theory.claims.xsam_dynamics.
"""

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import xsam_1d


def test_symbolic_proof():
    for der in (xsam_1d.escape(), xsam_1d.paper_rule_map()):
        assert der.all_proved, der.proved


def test_claim_holds():
    result = run_claim("F-ESCAPE", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
