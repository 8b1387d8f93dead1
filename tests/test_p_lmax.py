"""The P-LMAX experiment's pieces.

Matched loss levels, pairing, divergence, step-length matching, and the ablation twin (switch the
correction off and X-SAM becomes its alpha = 0 ablation bit for bit, so every xsam-vs-ablation
sample is exactly 0).
"""

import functools
import importlib
import math

import numpy as np
import pytest

from xsam_theory.claims.p_lmax import build_subclaims, headline_ids
from xsam_theory.experiments import lambda_max as lm
from xsam_theory.experiments.context import ExperimentContext
from xsam_theory.problems import Quadratic

# the module (the package re-exports its function ``step`` under the same name)
# the descent rule calls xsam_direction through the rules module (the one place it is chosen)
rules_module = importlib.import_module("xsam_theory.optimizers.rules")


def test_loss_levels_late_is_twice_the_deepest_common_loss_and_the_others_geometric():
    lv = lm.loss_levels(1.0, {"a": 1e-3, "b": 1e-6, "c": 4e-3})
    assert lv["late"] == pytest.approx(8e-3)
    assert lv["early"] == pytest.approx(8e-3 ** (1 / 3))
    assert lv["mid"] == pytest.approx(8e-3 ** (2 / 3))
    assert 1.0 > lv["early"] > lv["mid"] > lv["late"]


def test_loss_levels_rejects_bad_input():
    with pytest.raises(ValueError, match="initial loss"):
        lm.loss_levels(math.nan, {"a": 1.0})
    with pytest.raises(ValueError, match="all diverged"):
        lm.loss_levels(1.0, {"a": math.nan})


def test_first_reaching_and_divergence():
    assert lm.first_reaching(np.array([3.0, 2.0, 1.0, 0.5]), 1.0) == 2
    assert lm.first_reaching(np.array([3.0, 2.0]), 1.0) == -1
    assert not lm.diverged("completed", np.array([1.0, 0.1]))
    assert lm.diverged("completed", np.array([1.0, 2.0]))  # ended above its start
    assert lm.diverged("diverged", np.array([1.0, 0.1]))  # stopped on a non-finite value
    assert lm.diverged("completed", np.array([1.0, np.inf]))


def _record(seed, lam):
    return {
        "seed": seed,
        "methods": {m: {"diverged": d, "lambda": {"late": v}} for m, (v, d) in lam.items()},
    }


def test_paired_log_ratios_counts_what_it_leaves_out():
    recs = [
        _record(0, {"a": (2.0, False), "b": (4.0, False)}),
        _record(1, {"a": (math.nan, True), "b": (1.0, False)}),  # a diverged first
        _record(2, {"a": (-1.0, False), "b": (1.0, False)}),  # no logarithm
        _record(3, {"a": (3.0, False), "b": (3.0, False)}),
    ]
    out = lm.paired_log_ratios(recs, "a", "b", "late")
    assert out["samples"] == pytest.approx([math.log(0.5), 0.0])
    assert out["seeds"] == [0, 3]
    assert out["unreached"] == {"a": 1, "b": 0}
    assert out["nonpositive"] == 1
    assert out["diverged"] == {"a": 1, "b": 0}
    with pytest.raises(ValueError, match="level"):
        lm.paired_log_ratios(recs, "a", "b", "latest")


def test_matched_step_length_is_sams_mean_first_step():
    q = Quadratic(np.diag([3.0, 1.0]))
    starts = [np.array([1.0, 0.0]), np.array([0.0, 2.0])]
    # w0 = e1: g = 3 e1, w0 + rho e1 -> g_adv = 3 (1 + rho) e1;  w0 = 2 e2: g_adv = (2 + rho) e2
    rho, eta = 0.1, 0.5
    want = eta * (3 * (1 + rho) + (2 + rho)) / 2
    assert lm.matched_step_length(q, starts, eta, rho) == pytest.approx(want, rel=1e-14)
    with pytest.raises(ValueError, match="start"):
        lm.matched_step_length(q, [], eta, rho)


@functools.cache
def _quick(correction_off: bool):
    ctx = ExperimentContext(scale="quick", progress=False, workers=1)
    if not correction_off:
        return lm.lambda_max_evidence(ctx)
    original = rules_module.xsam_direction

    def no_correction(g_adv, v, alpha, **kw):
        return original(g_adv, v, 0.0, **kw)

    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(rules_module, "xsam_direction", no_correction)
        return lm.lambda_max_evidence(ctx)
    finally:
        mp.undo()


def _ablation_samples(ev):
    return [x for s in build_subclaims(ev) if s.id.endswith("-vs-ablation") for x in s.samples]


def test_without_the_correction_xsam_is_its_ablation_bit_for_bit():
    off = _ablation_samples(_quick(True))
    assert off and all(x == 0.0 for x in off)


def test_with_the_correction_xsam_differs_from_its_ablation():
    on = _ablation_samples(_quick(False))
    assert sum(x != 0.0 for x in on) > len(on) // 2


def test_headline_names_late_and_end_xsam_vs_sam_on_every_problem():
    ids = headline_ids(list(lm.PROBLEMS))
    assert len(ids) == 12
    assert all(i.split("/")[1] in ("late", "end") and "-vs-sam" in i for i in ids)
