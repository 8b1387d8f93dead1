"""The SAM family against independent closed forms and hand-written loops.

The update formulas under test: docs/algorithms.md#A-presets.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from xsam_theory import MLP, OptimizerConfig, Quadratic, init_state, preset, step
from xsam_theory.optimizers import (
    PRESETS,
    REFERENCE_OPTIONS,
    CorrectionRule,
    eigen_sam_perturbation,
    learning_rate,
    xsam_direction,
)
from xsam_theory.trajectory import run_trajectory
from xsam_theory.vectors import unit

RNG = np.random.default_rng(20260115)


def _unit(x):
    return x / np.linalg.norm(x)


# --- the pure maps ---------------------------------------------------------------------------


@pytest.mark.parametrize("trial", range(20))
def test_xsam_direction_forms_match_their_formulas(trial):
    rng = np.random.default_rng(trial)
    g = rng.standard_normal(7) * 10 ** rng.uniform(-3, 3)
    v = _unit(rng.standard_normal(7))
    alpha = rng.uniform(0, 2.5)
    gh = _unit(g)
    expected = {
        CorrectionRule.PAPER: gh - alpha * np.sign(g @ v) * (gh @ v) * v,
        CorrectionRule.SYMMETRIC: gh - alpha * (gh @ v) * v,
        CorrectionRule.PROJECTOR: g - alpha * (g @ v) * v,
        CorrectionRule.RAW_PROJECTION: gh - alpha * np.sign(g @ v) * (g @ v) * v,
    }
    for rule, want in expected.items():
        d, c = xsam_direction(g, v, alpha, **rule.switches)
        np.testing.assert_allclose(d, want, rtol=1e-13, atol=1e-13 * np.abs(want).max())
        assert float(c) == pytest.approx(gh @ v, rel=1e-13, abs=1e-15)


@pytest.mark.parametrize("trial", range(20))
def test_correction_geometry_identities_G1_G2_G4(trial):
    rng = np.random.default_rng(100 + trial)
    gh, v = _unit(rng.standard_normal(5)), _unit(rng.standard_normal(5))
    alpha = rng.uniform(0, 3)
    c = gh @ v
    d, _ = xsam_direction(gh, v, alpha)
    assert d @ v == pytest.approx(c - alpha * abs(c), abs=1e-14)  # G1
    assert d @ d == pytest.approx(1 - c * c + (c - alpha * abs(c)) ** 2, abs=1e-14)  # G2
    assert d @ gh == pytest.approx(1 - alpha * c * abs(c), abs=1e-14)  # G4


def test_paper_rule_is_not_invariant_under_v_flip_but_symmetric_rule_is():
    g, v = RNG.standard_normal(6), _unit(RNG.standard_normal(6))
    alpha = 0.7
    c = _unit(g) @ v
    d_plus, _ = xsam_direction(g, v, alpha)
    d_minus, _ = xsam_direction(g, -v, alpha)
    np.testing.assert_allclose(d_plus - d_minus, -2 * alpha * abs(c) * v, atol=1e-14)
    s_plus, _ = xsam_direction(g, v, alpha, sign_rule="symmetric")
    s_minus, _ = xsam_direction(g, -v, alpha, sign_rule="symmetric")
    np.testing.assert_allclose(s_plus, s_minus, atol=1e-15)


def test_alpha_zero_direction_is_the_normalized_gradient_bit_for_bit():
    for _ in range(50):
        g, v = RNG.standard_normal(9) * 1e3, _unit(RNG.standard_normal(9))
        d, _ = xsam_direction(g, v, 0.0)
        assert np.array_equal(d, unit(g))


def test_eigen_sam_perturbation_norm_and_orientation_invariance():
    g, v = RNG.standard_normal(8), _unit(RNG.standard_normal(8))
    rho, alpha = 0.05, 0.4
    cg = _unit(g) @ v
    eps = eigen_sam_perturbation(g, v, rho, alpha)
    assert np.linalg.norm(eps) == pytest.approx(
        rho * math.sqrt(1 + alpha**2 * (1 - cg**2)), rel=1e-13
    )
    np.testing.assert_allclose(eps, eigen_sam_perturbation(g, -v, rho, alpha), atol=1e-16)
    want = rho * (_unit(g) + alpha * np.sign(g @ v) * (v - cg * _unit(g)))
    np.testing.assert_allclose(eps, want, atol=1e-16)


@pytest.mark.parametrize(
    "fn",
    [
        lambda z, v: xsam_direction(z, v, 0.5)[0],
        lambda z, v: xsam_direction(z, v, 0.5, **CorrectionRule.PROJECTOR.switches)[0],
        lambda z, v: eigen_sam_perturbation(z, v, 0.1, 0.5),
        lambda z, v: unit(z),
    ],
)
def test_zero_vectors_give_exact_zeros_not_nan(fn):
    z, v = np.zeros(4), _unit(np.ones(4))
    out = fn(z, v)
    assert np.array_equal(out, np.zeros(4))


# --- whole steps on a quadratic against closed forms -----------------------------------------


def test_usam_step_multiplies_eigencomponents_by_closed_form_factor():
    lam = np.array([4.0, 1.5, 0.3, -0.2])
    q = Quadratic.from_spectrum(lam, seed=3)
    eta, rho = 0.1, 0.2
    w0 = RNG.standard_normal(4)
    state, _ = step(
        q, init_state(q, w0, preset("usam", lr=eta, rho=rho)), preset("usam", lr=eta, rho=rho)
    )
    Q = q.eigenvectors
    factor = 1 - eta * q.eigenvalues - eta * rho * q.eigenvalues**2  # L-USAM
    np.testing.assert_allclose(Q.T @ state.w, factor * (Q.T @ w0), rtol=1e-12, atol=1e-14)


def test_sam_and_gd_match_hand_written_loops_on_a_quadratic():
    q = Quadratic.from_spectrum([5.0, 2.0, 1.0], seed=1)
    H = q.H
    eta, rho = 0.05, 0.1
    w_sam = w_gd = w0 = RNG.standard_normal(3)
    s_sam = init_state(q, w0, preset("sam", lr=eta, rho=rho))
    s_gd = init_state(q, w0, preset("gd", lr=eta))
    for _ in range(30):
        g = H @ w_sam
        w_sam = w_sam - eta * H @ (w_sam + rho * g / np.linalg.norm(g))
        w_gd = w_gd - eta * H @ w_gd
        s_sam, _ = step(q, s_sam, preset("sam", lr=eta, rho=rho))
        s_gd, _ = step(q, s_gd, preset("gd", lr=eta))
    np.testing.assert_allclose(s_sam.w, w_sam, rtol=1e-12)
    np.testing.assert_allclose(s_gd.w, w_gd, rtol=1e-12)


def test_sam_two_cycle_amplitude_bartlett_long_bousquet():
    lam = np.array([10.0, 6.0, 3.0, 1.0])
    q = Quadratic.diagonal_from(lam)
    eta, rho = 0.15, 0.05
    traj = run_trajectory(
        q, preset("sam", lr=eta, rho=rho), RNG.standard_normal(4), 4000, iterate_every=None
    )
    x_star = eta * rho * lam[0] / (2 - eta * lam[0])  # docs/theory.md#T-sam-cycle
    np.testing.assert_allclose(np.abs(traj.final_w), [x_star, 0, 0, 0], atol=1e-10)


def test_momentum_and_weight_decay_follow_torch_sgd_semantics():
    q = Quadratic.from_spectrum([3.0, 1.0, 0.5], seed=2)
    cfg = preset("sam", lr=0.05, rho=0.1, momentum=0.9, weight_decay=0.01)
    w = w0 = RNG.standard_normal(3)
    b = None
    state = init_state(q, w0, cfg)
    for _ in range(25):
        g = q.H @ w
        d = q.H @ (w + 0.1 * g / np.linalg.norm(g)) + 0.01 * w
        b = d if b is None else 0.9 * b + d
        w = w - 0.05 * b
        state, _ = step(q, state, cfg)
    np.testing.assert_allclose(state.w, w, rtol=1e-12)


def test_learning_rate_schedules():
    assert learning_rate(OptimizerConfig(lr=0.3), 17) == 0.3
    assert learning_rate(OptimizerConfig(lr=0.3, lr_schedule="inv_sqrt"), 3) == 0.3 / 2
    cos = OptimizerConfig(lr=0.3, lr_schedule="cosine", total_steps=10)
    assert learning_rate(cos, 0) == pytest.approx(0.3)
    assert learning_rate(cos, 5) == pytest.approx(0.15)
    assert learning_rate(cos, 10) == pytest.approx(0.0, abs=1e-17)


# --- exact reductions --------------------------------------------------------------------------


def _mlp():
    p = MLP.teacher_student((6, 12, 3), 48, seed=4)
    return p, p.init_params(5)


def test_xsam_alpha_zero_equals_normalized_sam_bit_for_bit():
    p, w0 = _mlp()
    eta, rho = 0.2, 0.05
    traj = run_trajectory(p, preset("xsam", lr=eta, rho=rho, alpha=0.0), w0, 25)
    w = w0
    for _ in range(25):
        g_adv = p.grad(w + rho * unit(p.grad(w)))
        w = w - eta * unit(g_adv)
    assert np.array_equal(traj.final_w, w)


def test_xsam_alpha_zero_with_a_refreshed_v_still_equals_normalized_sam():
    # under the reference schedule v is computed at alpha = 0 too; once it exists the
    # correction must add an exact zero
    p, w0 = _mlp()
    cfg = preset(
        "xsam",
        lr=0.2,
        rho=0.05,
        alpha=0.0,
        schedule="reference",
        eigvec_source="power",
        refresh_every=2,
    )
    state = init_state(p, w0, cfg)
    for t in range(8):
        w = state.w
        state, info = step(p, state, cfg)
        if t >= 2:  # v exists from step 2 on
            g_adv = p.grad(w + 0.05 * unit(p.grad(w)))
            assert np.array_equal(state.w, w - 0.2 * unit(g_adv))
            assert not math.isnan(info.c)


def test_rho_zero_alpha_zero_equals_normalized_gd_bit_for_bit():
    p, w0 = _mlp()
    traj = run_trajectory(p, preset("xsam", lr=0.1, rho=0.0, alpha=0.0), w0, 20)
    w = w0
    for _ in range(20):
        w = w - 0.1 * unit(p.grad(w))
    assert np.array_equal(traj.final_w, w)
    assert set(traj.diagnostics["n_grad"]) == {1}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_zero_gradient_gives_no_nan(name):
    q = Quadratic.from_spectrum([2.0, 1.0, 0.5], seed=0)
    kw = {"lr": 0.1} if name == "gd" else {"lr": 0.1, "rho": 0.05}
    cfg = preset(name, **kw)
    state = init_state(q, np.zeros(3), cfg)  # the minimizer: g = 0 exactly
    state, info = step(q, state, cfg)
    assert np.array_equal(state.w, np.zeros(3))
    for field in ("loss", "grad_norm", "adv_grad_norm", "direction_norm"):
        assert getattr(info, field) == 0.0


# --- reference schedule ----------------------------------------------------------------------


def test_reference_schedule_refresh_points_and_pre_v_steps():
    p, w0 = _mlp()
    cfg = preset(
        "xsam", lr=0.1, rho=0.05, alpha=0.3, **REFERENCE_OPTIONS["xsam"], steps_per_epoch=7
    )
    traj = run_trajectory(p, cfg, w0, 21, batch_size=6)  # 48 // 6 = 8 per epoch; 7 given
    refreshed = np.flatnonzero(traj.diagnostics["refreshed"])
    # counter restarts every 7 steps; refresh at counter 5 (never 0): steps 5, 12, 19
    np.testing.assert_array_equal(refreshed, [5, 12, 19])
    assert traj.diagnostics["n_hvp"][5] == 5
    # before the first v: plain SAM with the raw g_adv (direction norm = ||g_adv||)
    pre = slice(0, 5)
    np.testing.assert_allclose(
        traj.diagnostics["direction_norm"][pre], traj.diagnostics["adv_grad_norm"][pre], rtol=1e-14
    )
    assert np.all(np.isnan(traj.diagnostics["c"][pre]))
    # after it: a normalized paper-rule step, ||d||^2 = 1 - 2 alpha c|c| + alpha^2 c^2 (G2)
    post = slice(5, None)
    c = traj.diagnostics["c"][post]
    np.testing.assert_allclose(
        traj.diagnostics["direction_norm"][post] ** 2,
        1 - 2 * 0.3 * c * np.abs(c) + 0.09 * c * c,
        rtol=1e-12,
    )


def test_reference_eigen_sam_uses_usam_perturbation_before_first_v():
    q = Quadratic.from_spectrum([3.0, 1.0], seed=0)
    cfg = preset("eigen_sam", lr=0.1, rho=0.2, alpha=0.5, **REFERENCE_OPTIONS["eigen_sam"])
    w0 = np.array([0.3, -0.7])
    state, _ = step(q, init_state(q, w0, cfg), cfg)
    g = q.H @ w0
    np.testing.assert_allclose(state.w, w0 - 0.1 * q.H @ (w0 + 0.2 * g), rtol=1e-14)


def test_reference_warns_when_epoch_is_shorter_than_refresh_period():
    p, w0 = _mlp()
    cfg = preset("xsam", lr=0.1, rho=0.05, **REFERENCE_OPTIONS["xsam"])
    with pytest.warns(UserWarning, match="never computed"):
        run_trajectory(p, cfg, w0, 2, batch_size=16)  # 3 steps per epoch < 5


def test_exact_eigvec_sign_option_flips_v():
    q = Quadratic.from_spectrum([4.0, 1.0, 0.5], seed=7)
    w0 = RNG.standard_normal(3)
    plus = preset("xsam", lr=0.05, rho=0.02, alpha=0.5, eigvec_source="exact")
    minus = plus.replace(eigvec_sign=-1)
    s_plus, _ = step(q, init_state(q, w0, plus), plus)
    s_minus, _ = step(q, init_state(q, w0, minus), minus)
    np.testing.assert_allclose(s_plus.v, -s_minus.v, atol=1e-15)
    v1 = q.eigenvectors[:, 0]
    assert abs(abs(s_plus.v @ v1) - 1) < 1e-12


# --- diagnostics ------------------------------------------------------------------------------


def test_step_diagnostics_are_consistent():
    q = Quadratic.from_spectrum([5.0, 2.0, 1.0, 0.2], seed=5)
    cfg = preset("xsam", lr=0.05, rho=0.05, alpha=0.5, eigvec_source="exact")
    _, info = step(q, init_state(q, RNG.standard_normal(4), cfg), cfg)
    assert info.refreshed and info.eigenvalue == pytest.approx(5.0, rel=1e-12)
    assert math.cos(math.radians(info.angle_d_v)) == pytest.approx(
        (info.c - 0.5 * abs(info.c)) / info.direction_norm, abs=1e-12
    )
    assert info.angle_g_v_free == pytest.approx(min(info.angle_g_v, 180 - info.angle_g_v))
    assert info.n_grad == 2 and info.n_hvp == 4


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": -1.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"rho": -0.1}, "rho"),
        ({"alpha": -0.5, "method": "xsam"}, "alpha"),
        ({"method": "adam"}, "method"),
        ({"sign_rule": "both", "method": "xsam"}, "sign_rule"),
        ({"coefficient": "weird", "method": "xsam"}, "coefficient"),
        ({"eigvec_source": "magic", "method": "xsam"}, "eigvec_source"),
        ({"schedule": "fancy"}, "schedule"),
        ({"lr_schedule": "step"}, "lr_schedule"),
        ({"lr_schedule": "cosine"}, "cosine"),
        ({"refresh_every": 0, "method": "xsam"}, "refresh_every"),
        ({"refresh_every": 2.5, "method": "xsam"}, "refresh_every"),
        ({"power_steps": 0}, "power_steps"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"eigvec_sign": 0}, "eigvec_sign"),
        ({"normalize": "yes"}, "normalize"),
        ({"alpha": 0.5, "method": "sam"}, "alpha"),
        ({"method": "gd", "rho": 0.1}, "rho"),
        ({"steps_per_epoch": 0}, "steps_per_epoch"),
    ],
)
def test_invalid_options_raise_value_error_naming_them(options, name):
    with pytest.raises(ValueError, match=name):
        OptimizerConfig(**options)


def test_alpha_above_two_warns():
    with pytest.warns(UserWarning, match="outside"):
        preset("xsam", lr=0.1, rho=0.05, alpha=2.5)


def test_unknown_preset_raises():
    with pytest.raises(ValueError, match="preset"):
        preset("xsgd")


def test_config_round_trips_through_a_dict():
    cfg = preset("xsam_projector", lr=0.1, rho=0.05, alpha=0.3, momentum=0.9)
    assert OptimizerConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        OptimizerConfig.from_dict({**cfg.to_dict(), "beta": 1})


def test_numpy_scalars_are_accepted_and_stored_as_python_numbers():
    import json

    cfg = preset(
        "xsam",
        lr=np.float64(0.1),
        rho=np.float32(0.05),
        alpha=np.float64(0.5),
        refresh_every=np.int64(5),
        normalize=np.bool_(True),
    )
    ref = preset("xsam", lr=0.1, rho=float(np.float32(0.05)), alpha=0.5, refresh_every=5)
    assert cfg == ref and type(cfg.lr) is float and type(cfg.refresh_every) is int
    json.dumps(cfg.to_dict())
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        preset("xsam", lr=0.1, rho=0.05, alpha=np.float64("nan"))
