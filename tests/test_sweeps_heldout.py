"""The two sweep features the generalization study (P-GEN) needs.

A problem parameter that takes each run's seed (``problem_seed_param``: every seed its own data,
paired across methods) and results on a problem's held-out splits (``final_loss@test``,
``final_accuracy@val``).
"""

from __future__ import annotations

import numpy as np
import pytest

from xsam_theory.data import mlp_problem
from xsam_theory.optimizers import preset
from xsam_theory.problems import Factorization
from xsam_theory.sweeps import LocalExecutor, SweepSpec, run_sweep
from xsam_theory.sweeps.registry import extract_results, resolve_results
from xsam_theory.trajectory import run_trajectory

OPTIONS = {
    "n_train": 64,
    "n_val": 32,
    "n_test": 48,
    "d_in": 4,
    "n_classes": 3,
    "teacher_hidden": 8,
    "label_noise": 0.1,
}
PROBLEM = {
    "name": "xsam_theory.data:mlp_problem",
    "dataset": "teacher_student",
    "hidden": [6],
    "options": OPTIONS,
}
RESULTS = {
    "train_loss": "final_loss",
    "val_loss": "final_loss@val",
    "test_loss": "final_loss@test",
    "test_accuracy": "final_accuracy@test",
}


def spec(**kw):
    return SweepSpec(
        **{
            "name": "heldout",
            "problem": PROBLEM,
            "optimizers": [{"preset": "sam", "lr": 0.1, "rho": 0.05}, {"preset": "gd", "lr": 0.1}],
            "seeds": [0, 3],
            "steps": 12,
            "batch_size": 16,
            "results": RESULTS,
            "store_trajectory": False,
            "problem_seed_param": "seed",
            **kw,
        }
    )


def test_problem_seed_param_gives_each_seed_its_problem():
    runs = spec().runs()
    assert len(runs) == 4
    for r in runs:
        assert r.config["problem"]["seed"] == r.config["seed"]
    plain = spec(problem_seed_param=None).runs()
    assert all("seed" not in r.config["problem"] for r in plain)
    # the field round-trips through the plain form
    assert SweepSpec.from_dict(spec().to_dict()).runs() == runs


def test_problem_seed_param_leaves_other_sweeps_unchanged():
    """A spec without the field expands exactly as before (same hashes: stores stay valid)."""
    base = dict(
        name="f",
        problem={"name": "factorization", "n": 2},
        optimizers=[{"preset": "sam", "lr": 0.05}],
        seeds=[0, 1],
        steps=5,
    )
    assert SweepSpec(**base).runs() == SweepSpec(**base, problem_seed_param=None).runs()


@pytest.mark.parametrize("bad", ["", "not an identifier", "name", 3])
def test_problem_seed_param_rejects_bad_names(bad):
    with pytest.raises(ValueError, match="problem_seed_param"):
        spec(problem_seed_param=bad)


def test_problem_seed_param_conflicts_with_a_grid_axis():
    with pytest.raises(ValueError, match="problem_seed_param"):
        spec(grid={"problem.seed": [1, 2]})


def test_held_out_expressions_resolve_and_are_validated():
    assert resolve_results(RESULTS, []) == RESULTS
    for bad in ("final_loss@", "final_grad_norm@test", "final_loss@te-st"):
        with pytest.raises(ValueError, match="final_loss@SPLIT"):
            resolve_results([bad], [])


def test_held_out_results_match_a_direct_evaluation():
    p = mlp_problem("teacher_student", (6,), seed=2, options=OPTIONS)
    traj = run_trajectory(
        p,
        preset("sam", lr=0.1, rho=0.05),
        mlp_problem.default_init(p, 2),
        10,
        batch_size=16,
        iterate_every=None,
    )
    out = extract_results(p, traj, {**RESULTS, "val_accuracy": "final_accuracy@val"})
    w = traj.final_w
    assert out["test_loss"] == float(p.held_out["test"].loss(w))
    assert out["val_loss"] == float(p.held_out["val"].loss(w))
    assert out["train_loss"] == float(p.loss(w))
    assert out["test_accuracy"] == p.held_out["test"].accuracy(w)
    assert out["val_accuracy"] == p.held_out["val"].accuracy(w)
    assert out["test_loss"] != out["train_loss"]


def test_held_out_result_on_a_problem_without_that_split_is_an_error():
    traj = run_trajectory(Factorization(), preset("sam", lr=0.05), np.array([1.5, 0.5]), 3)
    with pytest.raises(ValueError, match="no held-out split 'test'"):
        extract_results(Factorization(), traj, {"t": "final_loss@test"})


def test_sweep_with_held_out_results_resumes_without_recomputing(tmp_path):
    store = tmp_path / "runs.sqlite"
    with LocalExecutor(1) as ex:
        first = run_sweep(spec(), store, executor=ex)
        assert first.ok and first.ran == 4
        again = run_sweep(spec(), store, executor=ex, resume=True)
    assert again.ran == 0 and again.skipped == 4
    rows = {(r.method, r.seed): r.results for r in first.records}
    assert rows == {(r.method, r.seed): r.results for r in again.records}
    for res in rows.values():
        assert set(res) == set(RESULTS) and all(np.isfinite(list(res.values())))
    # a seed's data are shared by the methods and differ between seeds (paired design)
    by_seed = {s: {m: rows[m, s]["test_loss"] for m in ("sam", "gd")} for s in (0, 3)}
    p0 = mlp_problem("teacher_student", (6,), seed=0, options=OPTIONS)
    p3 = mlp_problem("teacher_student", (6,), seed=3, options=OPTIONS)
    assert not np.array_equal(p0.dataset.test.X, p3.dataset.test.X)
    assert by_seed[0] != by_seed[3]
