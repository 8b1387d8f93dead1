"""The generalization study (P-GEN) checked piece by piece.

The pieces of its protocol against independent computations, the mutation that switches the
correction off, and user datasets end to end.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from xsam_theory import data
from xsam_theory.claims.p_gen import attribution, build_subclaims, reverses
from xsam_theory.claims.verdicts import Verdict, judge_family
from xsam_theory.experiments import generalization as G
from xsam_theory.experiments.context import ExperimentContext

needs_sklearn = pytest.mark.skipif(not data.has_digits(), reason="scikit-learn not installed")


def load_iris_xy():
    """A user loader importable by name (``test_p_gen:load_iris_xy``)."""
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


# -- pure pieces of the protocol -----------------------------------------------------------------


def test_noise_floor_is_the_entropy_of_the_noisy_label_distribution():
    # Monte Carlo of the Bayes classifier's cross-entropy under the noise model
    rng = np.random.default_rng(0)
    p, k, n = 0.2, 3, 400_000
    flipped = rng.random(n) < p
    probs = np.where(flipped, p / (k - 1), 1 - p)
    assert G.noise_floor(p, k) == pytest.approx(-np.log(probs).mean(), abs=3e-3)
    assert G.noise_floor(0.0, 5) == 0.0
    with pytest.raises(ValueError):
        G.noise_floor(1.0, 3)


def test_select_rate_takes_the_lowest_mean_and_counts_divergence_as_infinite():
    assert G.select_rate({0.01: 0.5, 0.03: 0.4, 0.1: math.inf}) == 0.03
    assert G.select_rate({0.01: 0.4, 0.03: 0.4}) == 0.01  # ties: the smaller rate
    with pytest.raises(ValueError, match="diverged"):
        G.select_rate({0.1: math.inf})


def test_ladder_neighbours():
    assert G.ladder_neighbours(0.1) == (0.03, 0.3)
    assert G.ladder_neighbours(G.LADDER[0]) == (None, G.LADDER[1])
    assert G.ladder_neighbours(G.LADDER[-1]) == (G.LADDER[-2], None)
    assert set(G.START_RATES) <= set(G.LADDER)


def test_plateau_criterion_on_synthetic_losses():
    k, spe = 20, G.STEPS_PER_EPOCH
    t = np.arange(k * spe)
    flat = 0.6 + 0.5 * np.exp(-t / 10.0)  # converged within a few epochs
    linear = 1.0 - 0.004 * t  # still falling at the same pace
    assert G.plateau(flat, k)["met"]
    p = G.plateau(linear, k)
    assert not p["met"]
    e = linear.reshape(k, spe).mean(axis=1)
    assert p["drop"] == pytest.approx(e[14] - e[-1]) and p["total"] == pytest.approx(e[0] - e[-1])
    assert not G.plateau(np.full(k * spe, np.nan), k)["met"]
    assert not G.plateau(flat[:-1], k)["met"]  # a run that stopped early


class _FakeRunner:
    """Answers tuning sweeps with a validation loss that is a function of the rate."""

    def __init__(self, val_of_lr):
        self.val_of_lr = val_of_lr
        self.asked = []

    def run(self, phase, dp, runs, seeds, results, monitors, trajectories):
        self.asked.append({m: list(v) for m, v in runs.items() if v})
        out = []
        for m, lrs in runs.items():
            for lr in lrs:
                for s in seeds:
                    v = self.val_of_lr(m, lr)
                    out.append(
                        (
                            SimpleNamespace(
                                method=m,
                                seed=s,
                                config={"optimizer": {"lr": lr}},
                                outcome="completed" if math.isfinite(v) else "diverged",
                                results={"val_loss": v},
                            ),
                            None,
                        )
                    )
        return out


def test_tuning_extends_the_grid_until_the_choice_is_interior():
    best = {m: 1e-3 for m in G.METHODS}
    best["sam"], best["sgd"] = 1.0, 3.0

    def val(m, lr):
        if m == "sgd" and lr >= 1.0:
            return math.inf  # diverges: extension stops there
        return (math.log10(lr) - math.log10(best[m])) ** 2

    pl = SimpleNamespace(tuning_seeds=(5, 6))
    t = G._tune(_FakeRunner(val), None, pl)
    assert t["selected_lr"]["xsam_paper"] == 1e-3
    assert t["extended"]["xsam_paper"] == [0.01, 3e-3, 1e-3, 3e-4]  # one rate per round
    assert t["grid"]["xsam_paper"] == [3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3]
    assert t["selected_lr"]["sam"] == 1.0 and t["extended"]["sam"] == [1.0, 3.0]
    assert t["selected_lr"]["sgd"] == 0.3 and t["extended"]["sgd"] == [1.0]
    assert t["mean_val_loss"]["sgd"]["1"] == "diverged"
    assert not any(t["at_grid_edge"].values())
    assert all(
        len(v) == 2 for m in t["val_loss_per_seed"] for v in t["val_loss_per_seed"][m].values()
    )


def test_tuning_records_a_choice_at_the_end_of_the_ladder():
    t = G._tune(_FakeRunner(lambda m, lr: -lr), None, SimpleNamespace(tuning_seeds=(1,)))
    assert t["selected_lr"]["sam"] == G.LADDER[-1] and t["at_grid_edge"]["sam"]


# -- subclaims and the headline ------------------------------------------------------------------


def _comparison(a_loss, b_loss, neighbours=()):
    n = len(a_loss)

    def side(loss):
        return {
            "test_loss": list(loss),
            "test_accuracy": [0.5] * n,
            "diverged": [not math.isfinite(x) for x in loss],
        }

    return {
        "a": "x",
        "b": "y",
        "lr_a": 0.1,
        "lr_b": 0.1,
        "same_rate": True,
        "values": {"a": side(a_loss), "b": side(b_loss)},
        "neighbours": [
            {"lr_a": la, "lr_b": lb, "a": side(x), "b": side(y)} for la, lb, x, y in neighbours
        ],
    }


def _evidence(comparisons, neighbouring=True):
    pairs = {"nsam - sam": {"test_loss": {"mean": 0.0, "ci95": [-0.1, 0.1]}}}
    return {
        "protocol": {"neighbouring_rates": neighbouring},
        "datasets": {"toy": {"comparisons": comparisons, "reported_pairs": pairs}},
    }


def test_tuning_sensitive_when_a_neighbouring_pairing_reverses_the_sign():
    rng = np.random.default_rng(1)
    base = rng.normal(1.0, 0.1, 10)
    better = base - 0.05 + rng.normal(0, 0.005, 10)  # X-SAM clearly better
    worse = base + 0.05 + rng.normal(0, 0.005, 10)  # ... but clearly worse next door
    same = base + rng.normal(0, 0.005, 10)  # ... or no different
    comps = {
        cid: _comparison(better, base, [(0.3, 0.1, worse, base)]) for cid, _, _ in G.COMPARISONS
    }
    comps["xsam-vs-sgd"] = _comparison(better, base, [(0.3, 0.1, same, base)])
    subs = {s.id: s for s in build_subclaims(_evidence(comps))}
    assert subs["toy/xsam-vs-sam"].extra["tuning_sensitive"] is True
    assert subs["toy/xsam-vs-sam"].extra["n_reversing_pairings"] == 1
    assert subs["toy/xsam-vs-sgd"].extra["tuning_sensitive"] is False
    assert subs["toy/xsam-vs-sam"].estimate < 0
    quick = build_subclaims(_evidence(comps, neighbouring=False))
    assert all(s.extra["tuning_sensitive"] is None for s in quick)
    assert reverses(-1.0, 0.1, 0.2) and reverses(1.0, -0.2, -0.1)
    assert not reverses(-1.0, -0.2, 0.2) and not reverses(0.0, 0.1, 0.2)


def test_divergence_on_the_xsam_side_blocks_holds_and_leaves_the_pair():
    base = np.linspace(1.0, 1.2, 10)
    better = base - 0.05 + np.linspace(0, 0.001, 10)
    better[3] = math.nan  # X-SAM diverged on one seed
    comps = {cid: _comparison(better, base) for cid, _, _ in G.COMPARISONS}
    judged = judge_family(build_subclaims(_evidence(comps)))
    s = judged[0]
    assert s.n == 9 and s.extra["other_diverged"] == 0 and s.n_diverged == 1
    assert s.estimate < 0 and s.p_adjusted < 0.05 and s.verdict is Verdict.INCONCLUSIVE
    text = attribution(_evidence(comps), judged)
    assert "correction" in text and "toy" in text


# -- user datasets end to end --------------------------------------------------------------------


def test_a_lambda_loader_is_planned_in_process_and_said_so():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] > 0).astype(int)
    data.register_dataset("toy_lambda", lambda: (X, y))
    try:
        pl = G.plan(ExperimentContext(scale="quick", datasets=("toy_lambda",)))
    finally:
        data.USER_DATASETS.pop("toy_lambda")
    (dp,) = pl.datasets
    assert dp.in_process and dp.options["loader"] is None
    assert dp.options["digest"] == data.dataset_digest(*data.check_xy("toy_lambda", X, y)[:2])
    assert any("toy_lambda" in n and "this process" in n for n in pl.notes)


def test_bad_user_data_is_rejected_before_any_run():
    data.register_dataset("one_class", lambda: (np.ones((30, 2)), np.zeros(30, int)))
    try:
        with pytest.raises(ValueError, match="one_class"):
            G.plan(ExperimentContext(scale="quick", datasets=("one_class",)))
    finally:
        data.USER_DATASETS.pop("one_class")
    with pytest.raises(ValueError, match="unknown dataset"):
        G.plan(ExperimentContext(scale="quick", datasets=("no_such_data",)))


@needs_sklearn
def test_verify_runs_a_dataset_it_was_not_developed_on(tmp_path):
    from xsam_theory.cli import main

    out = tmp_path / "out"
    status = main(
        [
            "verify",
            "--quick",
            "--only",
            "P-GEN",
            "--no-figures",
            "--quiet",
            "--datasets",
            f"{__name__}:load_iris_xy",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    (c,) = [
        c for c in json.loads((out / "claims.json").read_text())["claims"] if c["id"] == "P-GEN"
    ]
    assert c["verdict"] in ("holds", "fails", "inconclusive"), c.get("evidence", {})
    ev = c["evidence"]
    assert list(ev["datasets"]) == ["load_iris_xy"]
    setup = ev["datasets"]["load_iris_xy"]["setup"]
    assert setup["options"]["loader"] == f"{__name__}:load_iris_xy"
    assert setup["n_train"] == 90 and not setup["in_process"]  # stratified 60 % of 150
    assert [s["id"] for s in ev["subclaims"]] == [
        f"load_iris_xy/{cid}" for cid, _, _ in G.COMPARISONS
    ]
    assert ev["headline"]["subclaims"] == ["load_iris_xy/xsam-vs-sam"]
