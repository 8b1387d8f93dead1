"""The trajectory runner: determinism, persistence, divergence handling, monitors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xsam_theory import (
    MLP,
    Factorization,
    NonFiniteError,
    Quadratic,
    SpectralMonitor,
    TraceMonitor,
    Trajectory,
    preset,
    run_trajectory,
)
from xsam_theory.optimizers import REFERENCE_OPTIONS, StepInfo, init_state, step
from xsam_theory.trajectory import RunOptions, batch_schedule


@pytest.fixture(scope="module")
def mlp():
    p = MLP.teacher_student((6, 16, 4), 96, seed=11)
    return p, p.init_params(12)


def _reference_xsam():
    return preset(
        "xsam", lr=0.1, rho=0.05, alpha=0.4, **{**REFERENCE_OPTIONS["xsam"], "refresh_every": 3}
    )


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
    traj = run_trajectory(
        p,
        _reference_xsam(),
        w0,
        12,
        seed=1,
        batch_size=16,
        monitors=[SpectralMonitor(every=4), TraceMonitor(every=6, n_probes=4)],
    )
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
    # docs/theory.md#T-projector-usam: the projector form with alpha in (1, 2] grows along v1 by
    # 1 + eta (alpha - 1)(lam + rho lam^2) per step
    q = Quadratic.diagonal_from([10.0, 1.0])
    cfg = preset(
        "xsam_projector",
        lr=0.1,
        rho=0.0,
        alpha=1.8,
        eigvec_source="exact",
        perturbation="unnormalized",
    )
    with pytest.raises(NonFiniteError) as info:
        run_trajectory(q, cfg, np.array([1.0, 1.0]), 2000)
    err = info.value
    growth = 1 + 0.1 * 0.8 * 10.0  # = 1.8 per step
    # overflow of the loss 0.5*10*x^2 happens near x ~ 1e154: step index ≈ log(1e154)/log(1.8)
    assert abs(err.step - np.log(1.3e154) / np.log(growth)) < 3
    assert np.all(np.isfinite(err.state.w)) and err.state.step == err.step
    assert err.trajectory.status == "diverged"
    assert err.trajectory.iterates.shape[0] == err.step + 1
    np.testing.assert_allclose(
        err.trajectory.iterates[1:6, 0], growth ** np.arange(1, 6), rtol=1e-12
    )

    stopped = run_trajectory(q, cfg, np.array([1.0, 1.0]), 2000, on_nonfinite="stop")
    assert stopped.status == "diverged" and "step" in stopped.message
    assert stopped.n_steps == err.step


def test_spectral_monitor_matches_dense_eigh(mlp):
    p, w0 = mlp
    traj = run_trajectory(
        p,
        preset("sam", lr=0.2, rho=0.05),
        w0,
        10,
        monitors=[SpectralMonitor(every=5, method="lanczos")],
        iterate_every=5,
    )
    mon = traj.monitors["spectral"]
    np.testing.assert_array_equal(mon["step"], [0, 5, 10])
    for s, lam in zip(mon["step"], mon["lambda_max"]):
        w = traj.iterates[list(traj.iterate_steps).index(int(s))]
        top = np.linalg.eigvalsh(p.hessian(w))[-1]
        assert lam == pytest.approx(top, rel=1e-10)
    assert np.all(np.isnan(mon["angle_v_top_free"]))  # SAM has no v of its own


def test_batch_schedule_is_a_seeded_permutation_per_epoch_dropping_the_last_batch():
    it = batch_schedule(10, 3, seed=5)
    epoch = [next(it) for _ in range(3)]
    flat = np.concatenate(epoch)
    assert len(set(flat)) == 9 and flat.max() < 10
    again = batch_schedule(10, 3, seed=5)
    assert all(np.array_equal(a, next(again)) for a in epoch)
    assert next(batch_schedule(None, None, 0)) is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(steps=-1), "steps"),
        (dict(steps=2.0), "steps"),
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=1000), "batch_size"),
        (dict(on_nonfinite="ignore"), "on_nonfinite"),
        (dict(iterate_every=0), "iterate_every"),
    ],
)
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


# -- the runner against a plain loop ---------------------------------------------------------------
# run_trajectory is built from a validated options record, a recorder and one divergence path;
# these tests pin what it returns against a straightforward loop written from its docstring:
# step t maps w_t to w_{t+1} by step() on the t-th batch of batch_schedule; monitors measure at
# w_t before the step when t % every == 0, and at the last iterate (batch None); iterates are kept
# at steps divisible by iterate_every, plus the first and the last; the run stops at the first
# overflow a step or a monitor reports (FloatingPointError) or the first non-finite loss or
# iterate, keeping the last finite state (and, for a non-finite iterate, the diagnostics of the
# step that produced it). The loop shares only the public building blocks (init_state, step,
# batch_schedule and the monitors' measure) with the runner; each has tests of its own.


def _measure_due(problem, monitors, state, batch, rows, *, last):
    """Append to ``rows`` what each monitor due at ``state`` measures (all at the last one)."""
    for m in monitors:
        if last or state.step % m.every == 0:
            rows[m.name].append({"step": state.step, **m.measure(problem, state, batch)})


def _plain_loop(
    problem, config, w0, steps, *, seed=0, batch_size=None, monitors=(), iterate_every=1
):
    """What run_trajectory should return, as plain lists (see the comment above)."""
    state = init_state(problem, w0, config, seed=seed)
    batches = batch_schedule(problem.n_samples, batch_size, seed)
    kept, kept_steps, infos = [np.array(w0)], [0], []
    rows = {m.name: [] for m in monitors}
    diverged = False
    with np.errstate(over="ignore", invalid="ignore"):  # the runner reports overflow itself
        try:
            for _ in range(steps):
                batch = next(batches)
                _measure_due(problem, monitors, state, batch, rows, last=False)
                new, info = step(problem, state, config, batch)
                if not np.isfinite(info.loss):
                    raise FloatingPointError("loss")
                infos.append(info)
                if not np.all(np.isfinite(new.w)):
                    raise FloatingPointError("iterate")
                state = new
                if iterate_every is not None and state.step % iterate_every == 0:
                    kept.append(np.array(state.w))
                    kept_steps.append(state.step)
            _measure_due(problem, monitors, state, None, rows, last=True)
        except FloatingPointError:
            diverged = True
    if kept_steps[-1] != state.step:
        kept.append(np.array(state.w))
        kept_steps.append(state.step)
    return dict(
        state=state, kept=kept, kept_steps=kept_steps, infos=infos, rows=rows, diverged=diverged
    )


def _assert_matches_plain_loop(traj, want):
    assert traj.status == ("diverged" if want["diverged"] else "completed")
    assert np.array_equal(traj.iterates, np.stack(want["kept"]))
    assert traj.iterate_steps.tolist() == want["kept_steps"]
    assert traj.n_steps == len(want["infos"])
    for f in StepInfo.FIELDS:
        got = traj.diagnostics[f]
        assert got.dtype == (
            bool if f == "refreshed" else np.int64 if f.startswith("n_") else np.float64
        ), f
        want_f = [getattr(i, f) for i in want["infos"]]
        assert np.array_equal(got, want_f, equal_nan=f != "refreshed"), f
    assert traj.monitors.keys() == want["rows"].keys()
    for name, rows in want["rows"].items():
        table = traj.monitors[name]
        assert set(table) == (set(rows[0]) if rows else set()), name
        for k, col in table.items():
            assert np.array_equal(col, [r[k] for r in rows], equal_nan=True), (name, k)


_TEACHER = MLP.teacher_student((6, 16, 4), 96, seed=11)
_FACTOR = Factorization()
_DIVERGING_PROJECTOR = dict(
    lr=0.1, rho=0.0, alpha=1.8, eigvec_source="exact", perturbation="unnormalized"
)

# (problem, preset name, preset options, w0, steps, run options, expected message or "")
RUNS = {
    "minibatch-reference-xsam-monitors": (
        _TEACHER,
        "xsam",
        dict(lr=0.1, rho=0.05, alpha=0.4, **{**REFERENCE_OPTIONS["xsam"], "refresh_every": 3}),
        _TEACHER.init_params(12),
        13,
        dict(
            seed=3,
            batch_size=16,
            iterate_every=4,
            monitors=[SpectralMonitor(every=5), TraceMonitor(every=6, n_probes=4)],
        ),
        "",
    ),
    "full-batch-sam-first-and-last-iterate": (
        _TEACHER,
        "sam",
        dict(lr=0.2, rho=0.05),
        _TEACHER.init_params(12),
        7,
        dict(
            iterate_every=None, monitors=[SpectralMonitor(every=3, batch="current", method="exact")]
        ),
        "",
    ),
    "no-steps": (
        Quadratic.diagonal_from([10.0, 1.0]),
        "gd",
        dict(lr=0.1),
        np.array([1.0, 1.0]),
        0,
        dict(monitors=[SpectralMonitor(every=4)]),
        "",
    ),
    "non-finite-loss": (
        Quadratic.diagonal_from([10.0, 1.0]),
        "xsam_projector",
        _DIVERGING_PROJECTOR,
        np.array([1.0, 1.0]),
        2000,
        dict(iterate_every=50),
        "non-finite loss inf at step 602",
    ),
    "non-finite-iterate": (
        Quadratic.diagonal_from([10.0, 1.0]),
        "gd",
        dict(lr=1e300),
        np.array([1e10, 1.0]),
        5,
        {},
        "non-finite iterate after step 0 (loss there was 5e+20)",
    ),
    "overflow-in-the-ascent": (
        Quadratic.diagonal_from([10.0, 1.0]),
        "usam",
        dict(lr=0.1, rho=1e300),
        np.array([1e10, 1.0]),
        5,
        {},
        "non-finite perturbed point w + eps at step 0 (||g|| = 1e+11, rho = 1e+300)",
    ),
    "overflow-in-the-refresh": (
        _FACTOR,
        "xsam",
        dict(lr=0.1, rho=0.05, alpha=0.4),
        np.array([1e160, 1e-160]),
        5,
        {},
        "non-finite Hessian-vector products (the Hessian overflows at this point) (in step 0)",
    ),
    "overflow-in-a-monitor": (
        _FACTOR,
        "gd",
        dict(lr=1e150),
        np.array([1e10, 1.0]),
        5,
        dict(monitors=[TraceMonitor(every=1, n_probes=2)]),
        "monitor 'trace' at step 1: non-finite trace estimate (the Hessian overflows here)",
    ),
    "overflow-in-the-last-measurement": (
        _FACTOR,
        "gd",
        dict(lr=1e150),
        np.array([1e10, 1.0]),
        1,
        dict(monitors=[SpectralMonitor(every=7, method="exact")]),
        "monitor 'spectral' at step 1: non-finite Hessian-vector products (the Hessian "
        "overflows at this point)",
    ),
}


@pytest.mark.parametrize("case", list(RUNS))
def test_runner_matches_a_plain_loop_and_stops_or_raises_alike(case):
    problem, name, options, w0, steps, kw, message = RUNS[case]
    config = preset(name, **options)
    loop_config = config
    if kw.get("batch_size") is not None:  # documented: the epoch is n // batch_size steps
        loop_config = preset(name, **options, steps_per_epoch=problem.n_samples // kw["batch_size"])
    want = _plain_loop(problem, loop_config, w0, steps, **kw)
    assert want["diverged"] == bool(message)

    stopped = run_trajectory(problem, config, w0, steps, on_nonfinite="stop", **kw)
    _assert_matches_plain_loop(stopped, want)
    assert stopped.message == message
    assert stopped.config["steps"] == steps
    assert stopped.config["optimizer"] == loop_config.to_dict()  # the epoch length it ran with
    if not message:
        return
    with pytest.raises(NonFiniteError) as info:
        run_trajectory(problem, config, w0, steps, **kw)
    err = info.value
    assert str(err) == message
    assert err.step == want["state"].step
    assert np.array_equal(err.state.w, want["state"].w)
    _assert_matches_plain_loop(err.trajectory, want)
    assert err.trajectory.message == message


def test_run_options_are_validated_when_built():
    opts = RunOptions(steps=4, seed=np.int64(2), monitors=[SpectralMonitor()])
    assert opts.seed == 2 and type(opts.seed) is int
    assert isinstance(opts.monitors, tuple)
    with pytest.raises(ValueError, match="monitor names must be distinct"):
        RunOptions(steps=4, monitors=[SpectralMonitor(), SpectralMonitor(every=3)])
    with pytest.raises(ValueError, match="steps"):
        RunOptions(steps=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.steps = 5


def test_the_never_computed_v_warning_points_at_the_caller(mlp):
    p, w0 = mlp
    # 96 // 48 = 2 steps per epoch <= refresh_every = 3: the counter never reaches a refresh
    with pytest.warns(UserWarning, match="v is never computed") as record:
        run_trajectory(p, _reference_xsam(), w0, 2, batch_size=48)
    assert record[0].filename == __file__
