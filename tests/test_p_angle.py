"""The P-ANGLE / F-ORIENT measurements (xsam_theory.experiments.angle) and verdict builders.

Each statistic is compared with an independent computation (a dummy-variable least-squares fit,
hand-built sequences whose answer is known), and the verdict builders are shown to be able to
say "holds", "fails" and "inconclusive".
"""

from __future__ import annotations

import numpy as np
import pytest

from xsam_theory.claims.angle_orientation import flip_findings, flip_verdict
from xsam_theory.claims.p_angle import HEADLINE_IDS, angle_subclaims
from xsam_theory.claims.verdicts import Verdict, headline
from xsam_theory.experiments.angle import (
    BURN_IN,
    LRS,
    AngleRun,
    abs_cos_quantiles,
    convention_signs,
    one_run,
    oriented_difference,
    run_statistics,
    window_slope,
    window_split_effect,
    within_window_sd,
)
from xsam_theory.problems import MLP

RNG = np.random.default_rng(0)


def _series(n=60, effect=0.0, seed=0):
    rng = np.random.default_rng(seed)
    abs_cos = 10.0 ** rng.uniform(-4, 0, n)
    dlam = effect * np.log10(abs_cos) + rng.standard_normal(n)
    return dlam, abs_cos


def test_split_effect_by_hand():
    # one window: |cos| ranks 0..9; dlam = rank -> top five mean 7, bottom five mean 2
    abs_cos = np.array([5, 1, 9, 3, 7, 0, 8, 2, 6, 4], dtype=float) + 1
    dlam = abs_cos - 1
    sd = np.sqrt(np.mean((dlam - dlam.mean()) ** 2))
    assert window_split_effect(dlam, abs_cos) == pytest.approx(5.0 / sd)
    assert window_split_effect(-dlam, abs_cos) == pytest.approx(-5.0 / sd)


def test_window_statistics_ignore_the_training_phase_and_the_scale():
    dlam, abs_cos = _series(effect=0.7)
    trend = np.repeat(np.arange(6) * 3.0, 10)  # constant within each window
    for f in (window_split_effect, window_slope):
        base = f(dlam, abs_cos)
        assert f(dlam + trend, abs_cos) == pytest.approx(base, rel=1e-12)
        assert f(4.0 * dlam, abs_cos) == pytest.approx(base, rel=1e-12)
        # a trailing partial window is dropped
        assert f(np.r_[dlam, 1e6, -1e6], np.r_[abs_cos, 1.0, 1e-3]) == pytest.approx(base)


def test_window_slope_equals_a_dummy_variable_regression():
    dlam, abs_cos = _series(effect=0.3, seed=3)
    x = np.log10(abs_cos)
    dummies = np.kron(np.eye(6), np.ones((10, 1)))
    beta = np.linalg.lstsq(np.column_stack([x, dummies]), dlam, rcond=None)[0][0]
    assert window_slope(dlam, abs_cos) == pytest.approx(beta / within_window_sd(dlam), rel=1e-10)


def test_statistics_see_a_planted_effect_and_its_absence():
    pos = [window_split_effect(*_series(effect=1.0, seed=s)) for s in range(20)]
    neg = [window_slope(*_series(effect=-1.0, seed=s)) for s in range(20)]
    assert min(pos) > 0 and max(neg) < 0
    null = [window_slope(*_series(effect=0.0, seed=s)) for s in range(200)]
    assert abs(np.mean(null)) < 3 * np.std(null) / np.sqrt(200)


def test_oriented_difference_is_odd_and_needs_both_sides():
    dlam, _ = _series()
    cos = RNG.standard_normal(dlam.size)
    assert oriented_difference(dlam, -cos) == -oriented_difference(dlam, cos)
    assert np.isnan(oriented_difference(dlam, np.abs(cos)))  # orientation-free: one side


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="window"):
        window_split_effect(np.zeros(20), np.ones(20), window=5)
    with pytest.raises(ValueError, match="abs_cos"):
        window_slope(np.zeros(20), np.ones(19))
    with pytest.raises(ValueError, match="convention"):
        convention_signs(_fake_run(), "sideways")


def _fake_run(seed=0, lr=0.5, n=60, effect=0.0, diverged=False):
    dlam, abs_cos = _series(n, effect, seed)
    rng = np.random.default_rng(seed + 100)
    cos = abs_cos * rng.choice([-1.0, 1.0], n)
    lam = np.cumsum(np.r_[1.0, np.zeros(BURN_IN), dlam])
    pad = lambda a, v: np.r_[np.full(BURN_IN, v), a]  # noqa: E731
    return AngleRun(
        seed,
        lr,
        lam,
        pad(cos, 0.5),
        pad(rng.choice([-1.0, 1.0], n), 1.0),
        pad(rng.choice([-1.0, 1.0], n), 1.0),
        np.full(n + BURN_IN, 1e-10),
        np.ones(n + BURN_IN),
        diverged,
    )


def test_conventions():
    run = _fake_run()
    s_cont = convention_signs(run, "continuous")
    assert np.array_equal(s_cont, np.cumprod(run.prev_sign)[BURN_IN:])
    assert np.array_equal(convention_signs(run, "negated"), -convention_signs(run, "canonical"))
    stats = run_statistics(run)
    assert stats["oriented_negated"] == -stats["oriented_canonical"]
    assert np.array_equal(run.dlam, np.diff(run.lam)[BURN_IN:])
    q = abs_cos_quantiles([run])
    assert q["median"] == np.median(run.abs_cos)


def _records(effect, n_per_lr=12, diverged=0):
    runs = [
        _fake_run(seed=100 * k + s, lr=lr, effect=effect, diverged=s < diverged)
        for k, lr in enumerate(LRS)
        for s in range(n_per_lr)
    ]
    return [run_statistics(r) for r in runs]


@pytest.mark.parametrize(
    ("effect", "want"), [(1.5, Verdict.HOLDS), (-1.5, Verdict.FAILS), (0.0, Verdict.INCONCLUSIVE)]
)
def test_subclaims_and_headline_can_hold_fail_or_stay_open(effect, want):
    judged = angle_subclaims(_records(effect))
    assert [s.id for s in judged][:2] == list(HEADLINE_IDS) and len(judged) == 6
    assert headline(judged, HEADLINE_IDS) is want


def test_a_diverged_run_keeps_the_subclaims_from_holding():
    judged = angle_subclaims(_records(1.5, diverged=1))
    assert all(s.verdict is not Verdict.HOLDS for s in judged)
    assert judged[0].n_diverged == 2 and judged[0].n == 22


def test_flip_verdict_fails_for_an_orientation_free_angle():
    recs = _records(0.5)
    assert flip_verdict(flip_findings(recs, 0)) is Verdict.HOLDS
    for r in recs:  # what an orientation-free angle gives: every step on one side
        r["oriented_canonical"] = r["oriented_negated"] = float("nan")
    assert flip_verdict(flip_findings(recs, 0)) is Verdict.FAILS
    recs = _records(0.5)
    for r in recs:  # a "flip" that did not flip
        r["oriented_negated"] = r["oriented_canonical"]
    assert flip_verdict(flip_findings(recs, 0)) is Verdict.FAILS
    assert flip_verdict(flip_findings(_records(0.5), 3)) is Verdict.FAILS  # cos exactly 0


def test_per_step_lambda_max_matches_a_dense_eigensolver():
    """Warm-started ARPACK at relative residual 1e-9 agrees with numpy.linalg.eigh.

    Checked on a short run at the edge-reaching rate, where lambda_max moves fastest; and its error
    is far below the per-step change it measures.
    """
    widths, data_seed, seed, steps = (6, 12, 3), 1000, 5, 15
    run = one_run(widths, data_seed, seed, 2.0, steps)
    p = MLP.teacher_student(widths, n_samples=96, seed=data_seed)
    from xsam_theory.optimizers import init_state, preset, step

    cfg = preset("sam", lr=2.0, rho=0.05)
    state = init_state(p, np.asarray(p.init_params(seed)), cfg, seed=seed)
    errors = []
    for t in range(steps + 1):
        lam = np.linalg.eigvalsh(np.asarray(p.hessian(np.asarray(state.w))))[-1]
        errors.append(abs(run.lam[t] - lam))
        state, _ = step(p, state, cfg)
    assert max(errors) < 1e-9 * np.max(np.abs(run.lam))
    assert max(errors) < 1e-6 * np.median(np.abs(np.diff(run.lam)))
    assert not run.diverged and run.cos.size == steps and run.lam.size == steps + 1
