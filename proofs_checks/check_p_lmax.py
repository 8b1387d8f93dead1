"""P-LMAX: a paper claim, checked as an experiment (see xsam_theory.claims.p_lmax).

Any verdict is a result; what must hold is that the experiment ran, produced intervals, and
that its verdict follows from them by the rule stated in the claim's module docstring.
"""

import functools
import math

from xsam_theory.claims import ExperimentContext, run_claim


@functools.cache
def _quick():
    return run_claim("P-LMAX", ExperimentContext(scale="quick"))


def test_experiment_runs_and_reports_a_verdict_with_evidence():
    result = _quick()
    assert result.verdict in ("holds", "fails", "inconclusive"), result.evidence
    assert result.evidence and "traceback" not in result.evidence
    assert math.isfinite(result.seconds)


def test_verdict_follows_from_the_paired_intervals():
    r = _quick()
    per_problem = []
    for name in ("factorization", "mlp"):
        study = r.evidence[name]
        xs = study["paired"]["xsam - sam"]["interval95"]
        sg = study["paired"]["sam - gd"]["interval95"]
        v = ("fails" if xs[0] > 0 or sg[0] > 0 else
             "holds" if xs[1] < 0 and sg[1] < 0 else "inconclusive")
        assert study["verdict"] == v
        per_problem.append(v)
    overall = ("fails" if "fails" in per_problem else
               "holds" if set(per_problem) == {"holds"} else "inconclusive")
    assert r.verdict == overall
