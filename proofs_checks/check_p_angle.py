"""P-ANGLE: a paper claim, checked as an experiment (see xsam_theory.claims.p_angle).

Any verdict is a result; what must hold is that the experiment ran, produced intervals, and
that its verdict follows from them by the rule stated in the claim's module docstring.
"""

import functools
import math

from xsam_theory.claims import ExperimentContext, run_claim


@functools.cache
def _quick():
    return run_claim("P-ANGLE", ExperimentContext(scale="quick"))


def test_experiment_runs_and_reports_a_verdict_with_evidence():
    result = _quick()
    assert result.verdict in ("holds", "fails", "inconclusive"), result.evidence
    assert result.evidence and "traceback" not in result.evidence
    assert math.isfinite(result.seconds)


def test_verdict_follows_from_the_interval():
    r = _quick()
    lo, hi = r.evidence["oriented"]["interval95"]
    expected = "holds" if lo > 0 else "fails" if hi < 0 else "inconclusive"
    assert r.verdict == expected
