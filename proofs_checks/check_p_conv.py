"""P-CONV: a paper claim, checked as an experiment (see xsam_theory.claims.p_conv).

Any verdict is a result; what must hold is that the experiment ran, produced intervals, and
that its verdict follows from them by the rule stated in the claim's module docstring.
"""

import functools
import math

from xsam_theory.claims import ExperimentContext, run_claim


@functools.cache
def _quick():
    return run_claim("P-CONV", ExperimentContext(scale="quick"))


def test_experiment_runs_and_reports_a_verdict_with_evidence():
    result = _quick()
    assert result.verdict in ("holds", "fails", "inconclusive"), result.evidence
    assert result.evidence and "traceback" not in result.evidence
    assert math.isfinite(result.seconds)


def test_alpha_above_one_is_reported_per_form_and_escape_is_caught():
    # F-ESCAPE predicts no convergence for alpha > 1 with the paper rule on a convex quadratic
    r = _quick()
    assert r.evidence["cells"]["quadratic/paper/alpha=1.5"]["verdict"] == "fails"
    assert set(r.evidence["holds_in"]) | set(r.evidence["fails_in"]) <= set(r.evidence["cells"])
