"""F-FREEZE: non-stationary fixed points at alpha = 1.

Theory: docs/theory.md#T-fixed-points and docs/theory.md#T-freeze. Claim page:
docs/claims/F-FREEZE.md. See xsam_theory.claims.xsam_dynamics.
"""

import pytest

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import xsam_1d


def test_symbolic_proof():
    for der in (xsam_1d.fixed_points(), xsam_1d.paper_rule_map(), xsam_1d.projector_factor()):
        assert der.all_proved, der.proved


def test_claim_holds():
    result = run_claim("F-FREEZE", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence


def test_every_run_is_on_the_torch_backend_when_asked():
    """The claim declares torch support, so ``--backend torch`` must run everything on torch.

    The implementation under test runs on torch: the paper-rule, fixed-point and projector runs
    alike (each record's ``backend`` is read off the final state's array type).
    """
    pytest.importorskip("torch")
    result = run_claim("F-FREEZE", ExperimentContext(scale="quick", backend="torch"))
    assert result.backend == "torch"
    ev = result.evidence
    for runs in ("paper_runs", "exact_fixed_points", "projector_runs"):
        assert ev[runs] and {r["backend"] for r in ev[runs]} == {"torch"}, runs
    assert result.verdict == "holds", ev
    on_numpy = run_claim("F-FREEZE", ExperimentContext(scale="quick"))
    assert {r["backend"] for r in on_numpy.evidence["projector_runs"]} == {"numpy"}
