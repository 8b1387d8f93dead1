"""P-CONV's measurement (xsam_theory.experiments.convergence) and rates (symbolic.rates)."""

import math

import numpy as np
import pytest

from xsam_theory.experiments.context import ExperimentContext
from xsam_theory.experiments.convergence import (
    Cell,
    expected_slope,
    fast_path_deviation,
    grid_for,
    plan,
    quadratic_runs,
    run_cell,
)
from xsam_theory.symbolic.rates import bound_curve, exact_sums, finite_t_allowance


class _BigStep(Cell):
    """A cell with eta0 = 100 (an injected diverging configuration)."""

    @property
    def eta0(self) -> float:
        return 100.0


@pytest.mark.parametrize("form", ["paper", "symmetric", "projector", "raw_projection"])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.5])
def test_fast_path_is_the_package_step(form, alpha):
    # the vectorized quadratic loop against xsam_theory.optimizers.step, seed by seed
    assert fast_path_deviation(form, alpha, seed=3, steps=40) < 1e-9


def test_fast_path_differs_when_the_form_differs():
    # the comparison can fail: the paper and symmetric forms give different runs
    a = quadratic_runs("paper", 0.5, 0.1, (0,), 60)["grad_norm"]
    b = quadratic_runs("symmetric", 0.5, 0.1, (0,), 60)["grad_norm"]
    assert np.max(np.abs(a - b)) > 1e-3


def test_divergence_is_counted_from_the_final_gradient():
    # F-ESCAPE: the paper rule with alpha = 1.5 walks off linearly; every seed ends above its
    # start, though nothing overflows
    r = run_cell(Cell("quadratic", "paper", 1.5), (0, 1, 2), 256)
    assert np.all(np.isfinite(r.final)) and r.diverged.all()
    # the projector form (unnormalized) with a large eta0 overflows even at alpha = 0.5:
    # non-finite counts as diverged, and best(T) keeps what it reached before
    r = run_cell(_BigStep("quadratic", "projector", 0.5), (0, 1), 256)
    assert r.diverged.all() and not np.any(np.isfinite(r.final))
    assert np.all(np.isfinite(r.best[:, 0]))
    # a converging cell: no seed diverged, best(T) never rises
    r = run_cell(Cell("quadratic", "paper", 0.5), (0, 1, 2), 256)
    assert not r.diverged.any()
    assert np.all(np.diff(r.best, axis=1) <= 0)


def test_expected_slopes_per_form_and_problem():
    assert expected_slope(Cell("quadratic", "paper", 0.5)) == -0.5
    assert expected_slope(Cell("mlp", "paper", 0.5, "minibatch")) == -0.5
    assert expected_slope(Cell("mlp", "raw_projection", 0.5)) == -0.5
    assert expected_slope(Cell("quadratic", "projector", 0.5)) == -0.5
    assert expected_slope(Cell("mlp", "projector", 0.5)) == -0.25


def test_allowance_is_the_worst_case_over_constants():
    grid = grid_for(2048)
    allow = finite_t_allowance(grid)
    for a in (0.0, 0.1, 1.0, 10.0, 1e3):
        y = bound_curve(grid, a, 1.0, 1.0)
        slope = np.polyfit(np.log(grid), np.log(y), 1)[0]
        assert -0.5 - 0.05 < slope <= -0.5 + allow + 1e-12, a
    assert 0.1 < allow < 0.2
    assert finite_t_allowance(grid, 0.5) == pytest.approx(allow / 2)
    S, H = exact_sums(3)
    assert S == pytest.approx([1, 1 + 2**-0.5, 1 + 2**-0.5 + 3**-0.5])
    assert H == pytest.approx([1, 1.5, 1.5 + 1 / 3])


def test_plan_headline_is_the_authors_rule_below_one():
    for scale in ("quick", "default", "full"):
        p = plan(ExperimentContext(scale=scale))
        head = p["headline"]
        assert all(c.form == "paper" and 0 < c.alpha < 1 for c in head)
        assert {c.batch for c in head} == {"full", "minibatch"}
        assert any(c.alpha >= 1 for c in p["other"])
        ids = [c.id for c in head + p["other"]]
        assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(problem="ravine", form="paper", alpha=0.5), "problem"),
        (dict(problem="mlp", form="pap", alpha=0.5), "form"),
        (dict(problem="mlp", form="paper", alpha=-1.0), "alpha"),
        (dict(problem="mlp", form="paper", alpha=math.nan), "alpha"),
        (dict(problem="mlp", form="paper", alpha=0.5, batch="mini"), "batch"),
        (dict(problem="quadratic", form="paper", alpha=0.5, batch="minibatch"), "minibatch"),
    ],
)
def test_bad_cells_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        Cell(**bad)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="t_max"):
        grid_for(32)
    with pytest.raises(ValueError, match="form"):
        quadratic_runs("nope", 0.5, 0.1, (0,), 10)
    with pytest.raises(ValueError, match="schedule"):
        quadratic_runs("paper", 0.5, 0.1, (0,), 10, schedule="cosine")
    with pytest.raises(ValueError, match="power"):
        finite_t_allowance(grid_for(256), 2.0)
    with pytest.raises(ValueError, match="t_max"):
        exact_sums(0)
