"""L-SAM2: normalized SAM's 2-cycle.

Theory: docs/theory.md#T-sam-cycle and docs/theory.md#T-sam-edge. Claim page:
docs/claims/L-SAM2.md. See xsam_theory.claims.bartlett2022_two_cycle.
"""

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import quadratic


def test_symbolic_proof():
    for der in (quadratic.sam_two_cycle(), quadratic.sam_edge()):
        assert der.all_proved, der.proved


def test_claim_holds():
    result = run_claim("L-SAM2", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
