"""F-WINDOW: the paper rule's window along an exact top eigenvector.

Theory: docs/theory.md#T-window, docs/theory.md#T-reduction-1d and
docs/theory.md#T-projector-usam. Claim page: docs/claims/F-WINDOW.md.
See xsam_theory.claims.xsam_dynamics.

The statement is conditional on the premise of the 1-D reduction (the components
transverse to v decay). That premise does not always hold: for alpha near 1 the paper rule can
lock on a normalized-GD 2-cycle across v2 with <w, v> -> 0; that finding is F-TRAP
(check_f_trap.py). The closed forms here are checked on every run where the premise holds.
"""

from functools import cache

from xsam_theory.claims import ClaimResult, ExperimentContext, run_claim
from xsam_theory.symbolic import xsam_1d


@cache
def _result() -> ClaimResult:
    return run_claim("F-WINDOW", ExperimentContext(scale="quick"))


def test_symbolic_proof():
    for der in (
        xsam_1d.paper_rule_map(),
        xsam_1d.paper_window(),
        xsam_1d.symmetric_window(),
        xsam_1d.projector_factor(),
    ):
        assert der.all_proved, der.proved


def test_window_and_occupancy_on_every_reduced_run():
    ev = _result().evidence
    reduced = [r for r in ev["paper_runs"] if r["reduced"]]
    assert reduced, ev["paper_reduced"]
    assert all(r["ok"] and r["in_window"] for r in reduced), reduced


def test_claim_holds():
    assert _result().verdict == "holds", _result().key
