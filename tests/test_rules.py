"""The step's decisions (xsam_theory.optimizers.rules) against the algorithm table written out.

The expected values are the semantics of the SAM family written out by hand (which perturbation
and which direction each method takes, before and after the reference schedule's first ``v``;
the refresh points of both schedules; the epoch restart), not computed by the module under test.
The last test checks that the decisions are made only there: neither the NumPy step nor the
torch optimizer branches on a method or on the schedule itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from xsam_theory.optimizers import PRESETS, REFERENCE_OPTIONS, preset, rules
from xsam_theory.optimizers.rules import Ascent, Descent, Phase

ROOT = Path(__file__).resolve().parents[1] / "xsam_theory"

#: preset -> (ascent, descent) on a regular step with a v, and before the reference
#: schedule's first v (the authors' loop: X-SAM takes raw SAM, Eigen-SAM perturbs by rho*g)
TABLE = {
    "gd": ((Ascent.NONE, Descent.RAW), (Ascent.NONE, Descent.RAW)),
    "usam": ((Ascent.UNNORMALIZED, Descent.RAW), (Ascent.UNNORMALIZED, Descent.RAW)),
    "sam": ((Ascent.NORMALIZED, Descent.RAW), (Ascent.NORMALIZED, Descent.RAW)),
    "nsam": ((Ascent.NORMALIZED, Descent.CORRECTED), (Ascent.NORMALIZED, Descent.RAW)),
    "eigen_sam": ((Ascent.EIGEN_SAM, Descent.RAW), (Ascent.UNNORMALIZED, Descent.RAW)),
    "xsam": ((Ascent.NORMALIZED, Descent.CORRECTED), (Ascent.NORMALIZED, Descent.RAW)),
    "xsam_paper": ((Ascent.NORMALIZED, Descent.CORRECTED), (Ascent.NORMALIZED, Descent.RAW)),
    "xsam_symmetric": ((Ascent.NORMALIZED, Descent.CORRECTED), (Ascent.NORMALIZED, Descent.RAW)),
    "xsam_projector": ((Ascent.NORMALIZED, Descent.CORRECTED), (Ascent.NORMALIZED, Descent.RAW)),
    "xsam_raw_projection": (
        (Ascent.NORMALIZED, Descent.CORRECTED),
        (Ascent.NORMALIZED, Descent.RAW),
    ),
}


def _options(name, **extra):
    kw = {} if name == "gd" else {"rho": 0.1}
    return {**kw, **extra}


def test_the_table_covers_every_preset():
    assert set(TABLE) == set(PRESETS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_plan_follows_the_algorithm_table(name):
    regular, before_v = TABLE[name]
    cfg = preset(name, **_options(name))
    p = rules.plan(cfg, has_v=True)
    assert (p.phase, p.ascent, p.descent) == (Phase.REGULAR, *regular)
    assert p.second_gradient is (regular[0] is not Ascent.NONE)
    # the standard schedule has no first phase: without a v it is a regular step
    assert rules.plan(cfg, has_v=False).phase is Phase.REGULAR
    if name in {"gd", "usam", "sam"}:  # no eigenvector: v changes nothing
        p = rules.plan(cfg, has_v=False)
        assert (p.ascent, p.descent) == regular
        return
    ref = preset(name, **_options(name, schedule="reference"))
    p = rules.plan(ref, has_v=False)
    assert (p.phase, p.ascent, p.descent) == (Phase.BEFORE_V, *before_v)


def test_xsam_without_v_on_the_standard_schedule_takes_the_uncorrected_base():
    """With alpha = 0 (no v needed), d is normalized g_adv, or g_adv for the projector form."""
    assert rules.plan(preset("xsam", alpha=0.0), has_v=False).descent is Descent.NORMALIZED
    assert rules.plan(preset("xsam_projector", alpha=0.0), has_v=False).descent is Descent.RAW
    # Eigen-SAM at alpha = 0 perturbs like SAM
    assert rules.plan(preset("eigen_sam", alpha=0.0), has_v=False).ascent is Ascent.NORMALIZED


def test_rho_zero_needs_no_second_gradient():
    for name in ("sam", "usam", "eigen_sam", "xsam"):
        assert not rules.plan(preset(name, rho=0.0), has_v=True).second_gradient


def test_perturbations_and_directions_are_the_closed_forms():
    g = np.array([3.0, 4.0])
    v = np.array([0.0, 1.0])
    cfg = preset("eigen_sam", rho=0.5, alpha=0.4)
    np.testing.assert_allclose(
        rules.perturbation(cfg, Ascent.NORMALIZED, g, None), [0.3, 0.4], rtol=1e-15
    )
    np.testing.assert_allclose(
        rules.perturbation(cfg, Ascent.UNNORMALIZED, g, None), [1.5, 2.0], rtol=1e-15
    )
    # rho (g_hat + alpha sign<g,v> (v - <g_hat,v> g_hat)); g_hat = (.6, .8), <g_hat, v> = .8
    want = 0.5 * (np.array([0.6, 0.8]) + 0.4 * (v - 0.8 * np.array([0.6, 0.8])))
    np.testing.assert_allclose(rules.perturbation(cfg, Ascent.EIGEN_SAM, g, v), want, rtol=1e-15)
    with pytest.raises(ValueError, match="NONE"):
        rules.perturbation(cfg, Ascent.NONE, g, v)
    x = preset("xsam", alpha=0.5)
    d, c = rules.direction(x, Descent.CORRECTED, g, v)  # g_hat - alpha |c| v, c = 0.8
    np.testing.assert_allclose(d, [0.6, 0.4], rtol=1e-15)
    assert float(c) == pytest.approx(0.8, rel=1e-15)
    d, c = rules.direction(x, Descent.NORMALIZED, g, v)
    np.testing.assert_allclose(d, [0.6, 0.8], rtol=1e-15)
    assert c is None
    d, c = rules.direction(x, Descent.RAW, g, v)
    assert d is g and c is None


def test_standard_schedule_refreshes_at_step_zero_and_every_k_steps():
    cfg = preset("xsam", refresh_every=4)
    due = [t for t in range(13) if rules.refresh_due(cfg, t, epoch_step=t)]
    assert due == [0, 4, 8, 12]
    assert not any(rules.refresh_due(preset("sam"), t, t) for t in range(5))
    assert not rules.refresh_due(preset("xsam", alpha=0.0), 0, 0)  # alpha = 0: no v needed


def test_reference_schedule_counts_per_epoch_and_never_refreshes_at_zero():
    """With k = 5 and 7-step epochs, the counter restarts at 7, 14, ...; refreshes at 5, 12, 19."""
    cfg = preset("xsam", **{**REFERENCE_OPTIONS["xsam"], "steps_per_epoch": 7})
    step, epoch_step, due, counters = 0, 0, [], []
    for _ in range(21):
        counters.append(epoch_step)
        if rules.refresh_due(cfg, step, epoch_step):
            due.append(step)
        step, epoch_step = rules.advance(cfg, step, epoch_step)
    assert due == [5, 12, 19]
    assert counters == [0, 1, 2, 3, 4, 5, 6] * 3
    assert step == 21
    # without steps_per_epoch the counter never restarts
    no_epoch = cfg.replace(steps_per_epoch=None)
    assert rules.advance(no_epoch, 99, 99) == (100, 100)


def test_epoch_warnings_conditions():
    ref = {**REFERENCE_OPTIONS["xsam"]}
    assert rules.epoch_counter_never_restarts(preset("xsam", **ref))
    assert not rules.epoch_counter_never_restarts(preset("xsam", **ref, steps_per_epoch=10))
    assert not rules.epoch_counter_never_restarts(preset("xsam"))  # standard schedule
    assert rules.epoch_counter_never_restarts(preset("xsam", alpha=0.0, **ref))  # form changes
    assert rules.refresh_never_happens(preset("xsam", **ref, steps_per_epoch=5))
    assert not rules.refresh_never_happens(preset("xsam", **ref, steps_per_epoch=6))
    assert not rules.refresh_never_happens(preset("xsam", **ref))


def test_eigenvector_source_rules():
    v = np.array([0.6, -0.8])
    power = preset("xsam", eigvec_source="power")
    assert rules.finish_eigvec(power, v) is v  # the reference keeps its sign
    np.testing.assert_array_equal(rules.finish_eigvec(preset("xsam"), v), [-0.6, 0.8])
    np.testing.assert_array_equal(
        rules.finish_eigvec(preset("xsam", eigvec_source="exact", eigvec_sign=-1), v), [0.6, -0.8]
    )
    start = np.ones(2)
    assert rules.eigvec_start(None, start) is start
    assert rules.eigvec_start(v, start) is v


def _branches_on_rules(path: Path) -> list[str]:
    """``Method.X`` / ``Schedule.X`` / ``Perturbation.X`` attributes used in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in {"Method", "Schedule", "Perturbation"}
        ):
            found.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("path", ["optimizers/step.py", "torch/optim.py", "trajectory.py"])
def test_step_decisions_live_only_in_the_rules_module(path):
    """The NumPy step, the torch optimizer and the runner decide nothing by method or schedule."""
    assert _branches_on_rules(ROOT / path) == []
    assert _branches_on_rules(ROOT / "optimizers" / "rules.py")  # the check sees them


def test_no_module_but_the_rules_and_the_config_branches_on_method_or_schedule():
    found = [
        hit
        for path in sorted(ROOT.rglob("*.py"))
        if path.relative_to(ROOT).as_posix() not in {"optimizers/rules.py", "optimizers/config.py"}
        for hit in _branches_on_rules(path)
    ]
    assert found == []
