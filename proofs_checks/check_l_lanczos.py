"""L-LANCZOS: power iteration and Lanczos bounds.

Theory: docs/theory.md#T-power-rate and docs/theory.md#T-lanczos-bound. Claim page:
docs/claims/L-LANCZOS.md. See xsam_theory.claims.lanczos_bounds.
"""

from xsam_theory.claims import ExperimentContext, run_claim


def test_claim_holds():
    result = run_claim("L-LANCZOS", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
