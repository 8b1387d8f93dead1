"""F-ORIENT: the oriented P-ANGLE statistic flips with v's sign convention.

Theory: docs/theory.md#T-xsam-abstract (an angle "<= 90 deg" needs a sign convention for v).
Claim page: docs/claims/F-ORIENT.md. See xsam_theory.claims.angle_orientation.

Checked independently of the claim's code: the runs are re-read through the experiment, and for
each run the oriented statistic under v and -v is recomputed here; the canonical convention of
the recorded cosines is confirmed on one run by re-running its first steps with a dense Hessian
and orienting its top eigenvector here (largest-magnitude entry positive).
"""

import functools

import numpy as np
import pytest

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.experiments.angle import BURN_IN, RHO, angle_runs, angle_setup
from xsam_theory.optimizers import init_state, preset, step
from xsam_theory.problems import MLP

CTX = ExperimentContext(scale="quick", progress=False)


@functools.cache
def _quick():
    return run_claim("F-ORIENT", CTX)


def _oriented(dlam, cos):
    up, down = cos > 0, cos < 0
    if not (up.any() and down.any()):
        return None
    return dlam[up].mean() - dlam[down].mean()


def test_claim_holds():
    r = _quick()
    assert r.verdict == "holds", r.evidence


def test_flip_recomputed_from_the_runs():
    ev = _quick().evidence
    runs = angle_runs(CTX, reuse=True)
    assert len(runs) == len(ev["runs"])
    both = 0
    for run, rec in zip(runs, ev["runs"]):
        dlam, cos = np.diff(run.lam)[BURN_IN:], run.cos[BURN_IN:]
        assert np.count_nonzero(cos == 0) == 0
        d_plus, d_minus = _oriented(dlam, cos), _oriented(dlam, -cos)
        if d_plus is None:
            assert d_minus is None and not np.isfinite(rec["oriented_canonical"])
            continue
        both += 1
        assert rec["oriented_canonical"] == pytest.approx(d_plus, rel=1e-12)
        assert rec["oriented_negated"] == pytest.approx(d_minus, rel=1e-12)
        assert d_minus == -d_plus
    assert both == ev["runs_with_both_sides"] >= 2
    c, n = ev["conventions"]["canonical"], ev["conventions"]["negated"]
    assert n["estimate"] == -c["estimate"] != 0
    assert [n["ci_low"], n["ci_high"]] == pytest.approx([-c["ci_high"], -c["ci_low"]])


def test_recorded_cosines_use_the_canonical_orientation():
    """The recorded lambda and cos match a dense-Hessian re-run of the first eta = 2 run.

    Re-run the first steps of that run (where g swings into v) with a dense Hessian; orient its
    top eigenvector here; compare lambda and cos with the record.
    """
    setup = angle_setup(CTX)
    lr = 2.0
    seed = setup["seeds"][str(lr)][0]
    run = next(r for r in angle_runs(CTX, reuse=True) if r.seed == seed and r.lr == lr)
    p = MLP.teacher_student(setup["widths"], n_samples=setup["n_samples"], seed=setup["data_seed"])
    cfg = preset("sam", lr=lr, rho=RHO)
    state = init_state(p, np.asarray(p.init_params(seed)), cfg, seed=seed)
    for t in range(16):
        w = np.asarray(state.w)
        lam, vecs = np.linalg.eigh(np.asarray(p.hessian(w)))
        v = vecs[:, -1]
        v = v if v[np.argmax(np.abs(v))] > 0 else -v
        g = np.asarray(p.at(w).grad)
        assert run.lam[t] == pytest.approx(lam[-1], rel=1e-8, abs=1e-12), t
        assert run.cos[t] == pytest.approx(g @ v / np.linalg.norm(g), abs=1e-6), t
        state, _ = step(p, state, cfg)
