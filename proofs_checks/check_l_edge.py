"""L-EDGE: stability edges and lambda_max along MLP training.

Theory: docs/theory.md#T-gd-edge, docs/theory.md#T-sam-edge and docs/theory.md#T-sam-lmax.
Claim page: docs/claims/L-EDGE.md. See xsam_theory.claims.edge.
"""

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import quadratic


def test_symbolic_proof():
    for der in (quadratic.stability_edges(), quadratic.sam_edge(), quadratic.heavy_ball_edge()):
        assert der.all_proved, der.proved


def test_claim_holds():
    result = run_claim("L-EDGE", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", {
        k: v for k, v in result.evidence.items() if k != "quadratic_cases"
    }
