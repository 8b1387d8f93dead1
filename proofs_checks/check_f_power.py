"""F-POWER: quality of the reference loop's power-iteration v.

Theory: docs/theory.md#T-power-rate and docs/theory.md#T-dominant-negative; the reference code's
caveats: docs/algorithms.md#A-reference-caveats. Claim page: docs/claims/F-POWER.md.
See xsam_theory.claims.power_quality.
"""

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import power_flip


def test_symbolic_proof():
    der = power_flip.dominant_negative_flip()
    assert der.all_proved, der.proved


def test_claim_holds():
    result = run_claim("F-POWER", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
    stats = result.evidence["statistics"]
    assert stats["refreshes"] > 0 and stats["power_bound_violations"] == 0
