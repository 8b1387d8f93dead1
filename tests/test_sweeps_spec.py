"""Sweep specs: expansion, content hashes, validation, and what a run config names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xsam_theory import Factorization, SpectralMonitor, TraceMonitor, preset, run_trajectory
from xsam_theory._version import __version__
from xsam_theory.sweeps import SweepSpec, build_problem, load_spec, run_hash
from xsam_theory.sweeps.registry import (
    MONITORS,
    PROBLEMS,
    extract_results,
    initial_point,
    problem_factory,
)
from xsam_theory.sweeps.worker import decode_trajectory, encode_trajectory, execute_run

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sweeps" / "phase_quick.toml"


def small_spec(**changes):
    base = dict(
        name="t",
        problem={"name": "factorization", "n": 2},
        steps=5,
        seeds=[0, 1],
        optimizers=[
            {"preset": "sam", "lr": 0.05, "grid": {"rho": [0.01, 0.1]}},
            {
                "preset": "xsam_paper",
                "lr": 0.05,
                "eigvec_source": "exact",
                "grid": {"alpha": [0.5, 1.0]},
            },
        ],
        monitors=[{"type": "spectral", "every": 2, "method": "exact"}],
    )
    return SweepSpec(**{**base, **changes})


def test_expansion_order_and_count():
    runs = small_spec().runs()
    assert len(runs) == 2 * 2 + 2 * 2
    described = [
        (
            r.config["method"],
            r.config["optimizer"]["rho"],
            r.config["optimizer"]["alpha"],
            r.config["seed"],
        )
        for r in runs
    ]
    assert described[:4] == [
        ("sam", 0.01, 0.0, 0),
        ("sam", 0.01, 0.0, 1),
        ("sam", 0.1, 0.0, 0),
        ("sam", 0.1, 0.0, 1),
    ]
    assert described[4][:3] == ("xsam_paper", 0.05, 0.5)
    assert len({r.hash for r in runs}) == len(runs)


def test_run_config_is_complete_plain_json_and_hash_is_of_it():
    run = small_spec().runs()[0]
    cfg = run.config
    assert json.loads(json.dumps(cfg)) == cfg
    assert cfg["package_version"] == __version__
    # every optimizer option is filled in, so the hash does not depend on preset defaults
    assert set(cfg["optimizer"]) == set(preset("sam").to_dict())
    assert cfg["monitors"][0] == {
        "type": "spectral",
        **SpectralMonitor(every=2, method="exact").__dict__,
    }
    assert run.hash == run_hash(cfg)


def test_hash_is_stable_across_processes_and_key_order():
    cfg = small_spec().runs()[3].config
    code = (
        "import json, sys; from xsam_theory.sweeps import run_hash; "
        "print(run_hash(json.loads(sys.stdin.read())))"
    )
    shuffled = dict(reversed(list(cfg.items())))
    other = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(shuffled),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert other == run_hash(cfg)


def test_hash_changes_with_any_field_and_with_the_package_version():
    cfg = small_spec().runs()[0].config
    h = run_hash(cfg)
    for path, value in [
        (("seed",), 7),
        (("steps",), 6),
        (("optimizer", "lr"), 0.06),
        (("problem", "n"), 3),
        (("package_version",), "9.9.9"),
    ]:
        changed = json.loads(json.dumps(cfg))
        target = changed
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        assert run_hash(changed) != h, path


def test_int_and_float_options_give_the_same_run():
    a = small_spec(optimizers=[{"preset": "sam", "lr": 1, "rho": 0}]).runs()
    b = small_spec(optimizers=[{"preset": "sam", "lr": 1.0, "rho": 0.0}]).runs()
    assert [r.hash for r in a] == [r.hash for r in b]


def test_numpy_values_are_accepted_and_duplicates_kept_once():
    spec = small_spec(
        seeds=np.arange(2),
        optimizers=[{"preset": "sam", "lr": 0.05, "grid": {"rho": np.array([0.1, 0.1])}}],
    )
    assert len(spec.runs()) == 2


def test_shared_grid_axes_reach_problem_init_run_and_optimizer():
    spec = small_spec(
        optimizers=[{"preset": "sam", "lr": 0.05}],
        grid={"problem.n": [2, 3], "steps": [4], "rho": [0.2], "init.scale": [0.5]},
    )
    runs = spec.runs()
    assert {r.config["problem"]["n"] for r in runs} == {2, 3}
    assert all(
        r.config["steps"] == 4
        and r.config["optimizer"]["rho"] == 0.2
        and r.config["init"]["scale"] == 0.5
        for r in runs
    )


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(optimizers=[{"preset": "nope"}]), "preset must be one of"),
        (dict(optimizers=[{"preset": "sam", "lr": -1}]), "lr must be > 0"),
        (dict(optimizers=[{"preset": "sam", "rhoo": 1}]), "unknown option"),
        (dict(optimizers=[{"preset": "sam", "grid": {"rho": 0.1}}]), "non-empty list"),
        (dict(grid={"bogus.axis": [1]}), "grid axis 'bogus.axis'"),
        (dict(problem={"name": "nope"}), "problem.name must be one of"),
        (dict(problem={"name": "ravine", "lam": 1.0}), "bad parameters"),
        (dict(init={"kind": "normal", "w0": [1]}), "takes"),
        (dict(results=["spectral.lambda_max:avg"]), "reducer must be one of"),
        (dict(results=["trace.trace"]), "needs a monitor named 'trace'"),
        (dict(results=["spectral.trace"]), "records"),
        (dict(results=["final_lossy"]), "neither one of"),
        (dict(monitors=[{"type": "spectral", "every": 0}]), "every must be"),
        (dict(seeds=[0, 0]), "distinct"),
        (dict(steps=-1), "steps must be"),
    ],
)
def test_invalid_specs_say_what_is_wrong(changes, match):
    with pytest.raises(ValueError, match=match):
        small_spec(**changes).runs()


def test_the_example_spec_loads_and_is_the_phase_grid():
    spec = load_spec(EXAMPLE)
    runs = spec.runs()
    assert spec.name == "phase_quick" and len(runs) == 4 * 4 * 3
    assert {(r.config["optimizer"]["rho"], r.config["optimizer"]["alpha"]) for r in runs} == {
        (r, a) for r in (0.0, 0.02, 0.05, 0.1) for a in (0.0, 0.5, 1.0, 1.5)
    }
    assert SweepSpec.from_dict(spec.to_dict()).runs() == runs


def test_spec_files_report_bad_keys_and_bad_toml(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nproblem = {name = "ravine"}\noptimizers = []\nstepz = 3\n')
    with pytest.raises(ValueError, match=r"unknown sweep spec key.*stepz"):
        load_spec(bad)
    bad.write_text("name = \n")
    with pytest.raises(ValueError, match="invalid TOML"):
        load_spec(bad)
    with pytest.raises(ValueError, match="no sweep spec file"):
        load_spec(tmp_path / "missing.toml")


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_every_registered_problem_builds_and_runs_from_json(name):
    params = {
        "quadratic": {"eigenvalues": [3.0, 1.0]},
        "quadratic_diagonal": {"eigenvalues": [3.0, 1.0]},
        "quadratic_repeated_top": {"dim": 4},
        "quadratic_dominant_negative": {"dim": 4},
        "mlp_teacher_student": {"widths": [3, 4, 2], "n_samples": 8},
    }.get(name, {})
    spec = SweepSpec(
        name="p",
        problem={"name": name, **params},
        steps=2,
        optimizers=[{"preset": "sam", "lr": 0.01}],
    )
    out = execute_run(spec.runs()[0].config)
    assert out["status"] == "done", out["message"]
    assert np.isfinite(out["results"]["final_loss"])


def test_importable_problem_names_and_errors():
    assert (
        type(build_problem({"name": "xsam_theory.problems:Ravine", "lam0": 2.0})).__name__
        == "Ravine"
    )
    with pytest.raises(ValueError, match="cannot import"):
        build_problem({"name": "no_such_module_xyz:thing"})


def test_initial_points():
    p = build_problem({"name": "mlp_teacher_student", "widths": [3, 4, 2], "n_samples": 8})
    factory_init = problem_factory("mlp_teacher_student").init
    assert np.array_equal(
        initial_point(p, {"kind": "default"}, 5, default_init=factory_init), p.init_params(5)
    )
    q = build_problem({"name": "ravine"})
    a = initial_point(q, {"kind": "normal", "scale": 2.0}, 3)
    assert np.array_equal(a, initial_point(q, {"kind": "normal", "scale": 2.0}, 3))
    assert not np.array_equal(a, initial_point(q, {"kind": "normal", "scale": 2.0}, 4))
    assert np.array_equal(
        initial_point(q, {"kind": "normal", "seed": 1}, 3),
        initial_point(q, {"kind": "normal", "seed": 1}, 4),
    )
    assert initial_point(q, {"kind": "explicit", "w0": [1, 2]}, 0).tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="2 entries"):
        initial_point(q, {"kind": "explicit", "w0": [1, 2, 3]}, 0)


def test_monitor_quantity_lists_match_what_monitors_record():
    p = Factorization(2)
    traj = run_trajectory(
        p,
        preset("sam", lr=0.05),
        np.ones(4),
        2,
        monitors=[SpectralMonitor(every=1, method="exact"), TraceMonitor(every=1, n_probes=2)],
    )
    assert set(traj.monitors["spectral"]) == set(MONITORS["spectral"][1])
    assert set(traj.monitors["trace"]) == set(MONITORS["trace"][1])


def test_extract_results_reducers_and_builtins():
    p = Factorization(2)
    traj = run_trajectory(
        p,
        preset("sam", lr=0.05),
        np.full(4, 0.3),
        6,
        monitors=[SpectralMonitor(every=2, method="exact")],
    )
    res = extract_results(
        p,
        traj,
        {
            "a": "final_loss",
            "b": "diag.loss:min",
            "c": "spectral.lambda_max:first",
            "d": "n_steps",
            "e": "spectral.lambda_max:mean",
            "f": "final_grad_norm",
        },
    )
    assert res["a"] == float(p.loss(traj.final_w))
    assert res["b"] == float(traj.diagnostics["loss"].min())
    assert res["c"] == float(traj.monitors["spectral"]["lambda_max"][0])
    assert res["d"] == 6
    assert res["e"] == float(np.mean(traj.monitors["spectral"]["lambda_max"]))
    assert res["f"] == float(np.linalg.norm(p.grad(traj.final_w)))


def test_trajectory_blobs_round_trip_and_are_deterministic():
    p = Factorization(2)
    traj = run_trajectory(
        p,
        preset("xsam", lr=0.05, eigvec_source="exact"),
        np.full(4, 0.3),
        4,
        monitors=[SpectralMonitor(every=2, method="exact")],
    )
    blob = encode_trajectory(traj)
    assert encode_trajectory(traj) == blob
    back = decode_trajectory(blob)
    assert np.array_equal(back.iterates, traj.iterates)
    assert back.config == traj.config and back.status == traj.status
    for k, a in traj.diagnostics.items():
        assert np.array_equal(back.diagnostics[k], a, equal_nan=a.dtype.kind == "f")
    for k, a in traj.monitors["spectral"].items():
        assert np.array_equal(back.monitors["spectral"][k], a, equal_nan=True)


def test_a_failing_run_is_reported_not_raised_and_divergence_is_a_result():
    spec = small_spec(init={"kind": "explicit", "w0": [1.0, 2.0]})
    out = execute_run(spec.runs()[0].config)
    assert out["status"] == "failed" and "4 entries" in out["message"]
    diverging = SweepSpec(
        name="d",
        problem={"name": "quadratic", "eigenvalues": [10.0, 1.0]},
        steps=400,
        optimizers=[{"preset": "gd", "lr": 1.0}],
    )
    out = execute_run(diverging.runs()[0].config)
    assert out["status"] == "done" and out["outcome"] == "diverged", out["message"]


def test_a_run_planned_with_another_version_fails_clearly():
    cfg = small_spec().runs()[0].config
    out = execute_run({**cfg, "package_version": "0.0.0-other"})
    assert out["status"] == "failed" and "same version on every worker" in out["message"]


def test_importing_the_package_or_the_sweeps_does_not_import_dask():
    code = (
        "import sys, xsam_theory, xsam_theory.sweeps, xsam_theory.cli; "
        "print(any(m == 'dask' or m.startswith(('dask.', 'distributed')) "
        "for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "False"
