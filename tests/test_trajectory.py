"""The trajectory runner: determinism, persistence, divergence handling, monitors."""

from __future__ import annotations

import numpy as np
import pytest

from xsam_theory import (
    MLP,
    NonFiniteError,
    Quadratic,
    SpectralMonitor,
    TraceMonitor,
    Trajectory,
    preset,
    run_trajectory,
)
from xsam_theory.optimizers import REFERENCE_OPTIONS
from xsam_theory.trajectory import batch_schedule


@pytest.fixture(scope="module")
def mlp():
    p = MLP.teacher_student((6, 16, 4), 96, seed=11)
    return p, p.init_params(12)


def _reference_xsam():
    return preset("xsam", lr=0.1, rho=0.05, alpha=0.4,
                  **{**REFERENCE_OPTIONS["xsam"], "refresh_every": 3})


def test_same_seed_gives_bit_identical_trajectories(mlp):
    p, w0 = mlp
    kw = dict(seed=3, batch_size=16, monitors=[SpectralMonitor(every=5)])
    a = run_trajectory(p, _reference_xsam(), w0, 30, **kw)
    b = run_trajectory(p, _reference_xsam(), w0, 30, **kw)
    assert np.array_equal(a.iterates, b.iterates)
    for k in a.diagnostics:
        assert np.array_equal(a.diagnostics[k], b.diagnostics[k], equal_nan=k != "refreshed")
    c = run_trajectory(p, _reference_xsam(), w0, 30, seed=4, batch_size=16)
    assert not np.array_equal(a.final_w, c.final_w)


def test_save_load_round_trips_exactly(mlp, tmp_path):
    p, w0 = mlp
    traj = run_trajectory(p, _reference_xsam(), w0, 12, seed=1, batch_size=16,
                          monitors=[SpectralMonitor(every=4), TraceMonitor(every=6, n_probes=4)])
    path = traj.save(tmp_path / "sub" / "run.npz")
    back = Trajectory.load(path)
    assert back.config == traj.config
    assert back.status == traj.status and back.message == traj.message
    assert np.array_equal(back.iterates, traj.iterates)
    assert np.array_equal(back.iterate_steps, traj.iterate_steps)
    assert back.diagnostics.keys() == traj.diagnostics.keys()
    for k, a in traj.diagnostics.items():
        assert back.diagnostics[k].dtype == a.dtype
        assert np.array_equal(back.diagnostics[k], a, equal_nan=a.dtype == float)
    for name, table in traj.monitors.items():
        for k, a in table.items():
            assert np.array_equal(back.monitors[name][k], a, equal_nan=True)
    assert [f.name for f in tmp_path.joinpath("sub").iterdir()] == ["run.npz"]  # no temp left


def test_load_rejects_a_foreign_file(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="not a trajectory"):
        Trajectory.load(tmp_path / "x.npz")


def test_projector_form_alpha_above_one_diverges_and_reports_last_finite_state():
    # F7.4: the projector form with alpha in (1, 2] grows along v1 by
    # 1 + eta (alpha - 1)(lam + rho lam^2) per step
    q = Quadratic.diagonal_from([10.0, 1.0])
    cfg = preset("xsam_projector", lr=0.1, rho=0.0, alpha=1.8, eigvec_source="exact",
                 perturbation="unnormalized")
    with pytest.raises(NonFiniteError) as info:
        run_trajectory(q, cfg, np.array([1.0, 1.0]), 2000)
    err = info.value
    growth = 1 + 0.1 * 0.8 * 10.0   # = 1.8 per step
    # overflow of the loss 0.5*10*x^2 happens near x ~ 1e154: step index ≈ log(1e154)/log(1.8)
    assert abs(err.step - np.log(1.3e154) / np.log(growth)) < 3
    assert np.all(np.isfinite(err.state.w)) and err.state.step == err.step
    assert err.trajectory.status == "diverged"
    assert err.trajectory.iterates.shape[0] == err.step + 1
    np.testing.assert_allclose(err.trajectory.iterates[1:6, 0], growth ** np.arange(1, 6),
                               rtol=1e-12)

    stopped = run_trajectory(q, cfg, np.array([1.0, 1.0]), 2000, on_nonfinite="stop")
    assert stopped.status == "diverged" and "step" in stopped.message
    assert stopped.n_steps == err.step


def test_spectral_monitor_matches_dense_eigh(mlp):
    p, w0 = mlp
    traj = run_trajectory(p, preset("sam", lr=0.2, rho=0.05), w0, 10,
                          monitors=[SpectralMonitor(every=5, method="lanczos")], iterate_every=5)
    mon = traj.monitors["spectral"]
    np.testing.assert_array_equal(mon["step"], [0, 5, 10])
    for s, lam in zip(mon["step"], mon["lambda_max"]):
        w = traj.iterates[list(traj.iterate_steps).index(int(s))]
        top = np.linalg.eigvalsh(p.hessian(w))[-1]
        assert lam == pytest.approx(top, rel=1e-10)
    assert np.all(np.isnan(mon["angle_v_top_free"]))   # SAM has no v of its own


def test_batch_schedule_is_a_seeded_permutation_per_epoch_dropping_the_last_batch():
    it = batch_schedule(10, 3, seed=5)
    epoch = [next(it) for _ in range(3)]
    flat = np.concatenate(epoch)
    assert len(set(flat)) == 9 and flat.max() < 10
    again = batch_schedule(10, 3, seed=5)
    assert all(np.array_equal(a, next(again)) for a in epoch)
    assert next(batch_schedule(None, None, 0)) is None


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(steps=-1), "steps"),
    (dict(steps=2.0), "steps"),
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=1000), "batch_size"),
    (dict(on_nonfinite="ignore"), "on_nonfinite"),
    (dict(iterate_every=0), "iterate_every"),
])
def test_runner_rejects_bad_arguments(mlp, kwargs, match):
    p, w0 = mlp
    args = dict(steps=3)
    args.update(kwargs)
    steps = args.pop("steps")
    with pytest.raises(ValueError, match=match):
        run_trajectory(p, preset("sam", lr=0.1, rho=0.05), w0, steps, **args)


def test_runner_rejects_non_finite_initial_point_and_minibatches_without_data(mlp):
    p, w0 = mlp
    bad = w0.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        run_trajectory(p, preset("sam", lr=0.1, rho=0.05), bad, 3)
    q = Quadratic.diagonal_from([1.0, 2.0])
    with pytest.raises(ValueError, match="batch_size"):
        run_trajectory(q, preset("sam", lr=0.1, rho=0.05), np.ones(2), 3, batch_size=1)
