"""L-LANCZOS: power iteration and Lanczos bounds (theory-notes F8.1, F8.2).

See xsam_theory.claims.lanczos_bounds.
"""

from xsam_theory.claims import ExperimentContext, run_claim


def test_claim_holds():
    result = run_claim("L-LANCZOS", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
