"""Small step loops shared by the X-SAM dynamics claims (F-SIGN … L-DRIFT).

They drive :func:`xsam_theory.optimizers.step` directly, because several checks need what the
trajectory runner does not offer: a given, fixed eigenvector ``v`` (the valley's or a seeded
one), a per-step perturbation of the iterate (the two-block toy's 1e-10 noise,
docs/theory.md#T-flat-bias), or the Hessian at the very point and minibatch of a refresh (F-POWER).

Backends: the claims' measurement code is NumPy; the implementation under test (problem,
optimizer step, trajectory runner) runs on the check's backend. :func:`run_steps` and
:func:`trajectory` take the :class:`~xsam_theory.experiments.context.ExperimentContext` as
``ctx``, move the problem and the start point there (``xsam-theory verify --backend torch
--device cuda``) and
hand the iterates back as NumPy arrays.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from xsam_theory.backend import resolve_backend, to_numpy
from xsam_theory.optimizers import (
    OptimizerConfig,
    OptimizerState,
    StepInfo,
    init_state,
    preset,
    step,
)
from xsam_theory.problems import Problem, Quadratic
from xsam_theory.spectral import orient
from xsam_theory.trajectory import Trajectory, run_trajectory

if TYPE_CHECKING:
    from xsam_theory.experiments.context import ExperimentContext

__all__ = [
    "QUADRATIC_CASES",
    "Run",
    "exact_v",
    "fixed_v_config",
    "placed",
    "quadratic_case",
    "ravine_window",
    "run_steps",
    "spectrum",
    "trajectory",
]


@dataclass(frozen=True)
class Run:
    """Iterates, per-step diagnostics and the final state of a run.

    Iterates ``w_0 … w_T`` have shape ``(T+1, dim)``; diagnostics are arrays of length ``T``.
    """

    iterates: np.ndarray
    diag: dict[str, np.ndarray]
    state: OptimizerState


def fixed_v_config(config: OptimizerConfig) -> OptimizerConfig:
    """``config`` set up to keep a ``v`` given to :func:`run_steps` for the whole run.

    The reference schedule never refreshes at step 0 and, with ``refresh_every`` larger than any
    run and no epochs, never refreshes at all; once ``v`` is set it takes the ordinary X-SAM
    step (the raw SAM step happens only while ``v`` is ``None``). The schedule:
    docs/algorithms.md#A-schedule.
    """
    return config.replace(schedule="reference", refresh_every=2**62, steps_per_epoch=None)


def placed(
    ctx: ExperimentContext | None, problem: Problem, *arrays: Any
) -> tuple[Problem, Callable[[Any], Any]]:
    """``problem`` on ``ctx``'s backend and a function that moves an array there.

    NumPy (``ctx`` ``None`` or ``ctx.backend == "numpy"``) leaves everything as it is.
    """
    if ctx is None or ctx.backend == "numpy":
        return problem, lambda a: a
    xp, dev = resolve_backend(ctx.backend, ctx.device)

    def move(a: Any) -> Any:
        return None if a is None else xp.asarray(np.ascontiguousarray(to_numpy(a)), device=dev)

    return problem.convert(xp, dev), move


def run_steps(
    problem: Problem,
    config: OptimizerConfig,
    w0: Any,
    steps: int,
    *,
    seed: int = 0,
    v: Any = None,
    batches: Iterator[Any] | None = None,
    after_step: Callable[[OptimizerState], OptimizerState] | None = None,
    ctx: ExperimentContext | None = None,
) -> Run:
    """``steps`` optimizer steps from ``w0``.

    Args:
        problem: the objective.
        config: the optimizer configuration (see :func:`~xsam_theory.optimizers.preset`).
        w0: the initial point, shape ``(dim,)``.
        steps: the number of optimizer steps.
        seed: seeds the optimizer's first eigenvector start vector (:func:`init_state`).
        v: if given, the state starts with this unit eigenvector estimate (use
            :func:`fixed_v_config` to keep it).
        batches: minibatch index arrays, one per step (``None``: full batches).
        after_step: applied to the state after every step (e.g. a small perturbation); it sees
            ``w`` as a NumPy array whatever the backend.
        ctx: run on its backend (see the module docstring); iterates and diagnostics come back
            as NumPy arrays, ``state`` stays on the backend.
    """
    problem, move = placed(ctx, problem)
    state = init_state(problem, move(w0), config, seed=seed)
    if v is not None:
        state = dataclasses.replace(state, v=move(np.asarray(v, dtype=float)))
    ws = [np.array(to_numpy(w0), dtype=float)]
    infos: list[StepInfo] = []
    for _ in range(steps):
        batch = None if batches is None else move(next(batches))
        state, info = step(problem, state, config, batch)
        if after_step is not None:
            new = after_step(dataclasses.replace(state, w=to_numpy(state.w)))
            state = dataclasses.replace(new, w=move(new.w))
        ws.append(np.array(to_numpy(state.w), dtype=float))
        infos.append(info)
    diag = {f: np.array([getattr(i, f) for i in infos]) for f in StepInfo.FIELDS}
    return Run(np.stack(ws), diag, state)


def trajectory(
    problem: Problem,
    config: OptimizerConfig,
    w0: Any,
    steps: int,
    *,
    ctx: ExperimentContext | None = None,
    **options: Any,
) -> Trajectory:
    """:func:`~xsam_theory.trajectory.run_trajectory` on ``ctx``'s backend.

    Its records are NumPy arrays on every backend.
    """
    problem, move = placed(ctx, problem)
    return run_trajectory(problem, config, move(w0), steps, **options)


# -- quadratics with an exact top eigenvector ----------------------------------------------------
#: the spectra of the quadratic checks: the examples of docs/theory.md#T-window and
#: docs/theory.md#T-sam-cycle, and a seeded random one
QUADRATIC_CASES = ("(10,4,1)", "(10,6,3,1)", "random d=6")


def spectrum(name: str, seed: int) -> np.ndarray:
    """Eigenvalues of the named spectrum (``random d=6``: top 8, five drawn from U[0.5, 5]).

    ``(10,4,1)`` and ``(10,6,3,1)`` are the worked examples of docs/theory.md#T-window and
    docs/theory.md#T-sam-cycle; the random one draws from the stream ``(seed, 0x5EC)``.
    """
    if name == "(10,4,1)":
        return np.array([10.0, 4.0, 1.0])
    if name == "(10,6,3,1)":
        return np.array([10.0, 6.0, 3.0, 1.0])
    if name == "random d=6":
        rest = np.random.default_rng([seed, 0x5EC]).uniform(0.5, 5.0, 5)
        return np.concatenate([[8.0], np.sort(rest)[::-1]])
    raise ValueError(f"unknown spectrum {name!r}; known: {QUADRATIC_CASES}")


def quadratic_case(name: str, seed: int) -> tuple[Quadratic, np.ndarray]:
    """``Quadratic.from_spectrum`` in a seeded random basis, and its eigenbasis ``U``.

    The columns of ``U`` are in descending eigenvalue order, each in the canonical orientation of
    :func:`~xsam_theory.spectral.orient` (the one ``eigvec_sign=+1`` gives).
    """
    q = Quadratic.from_spectrum(spectrum(name, seed), seed=1000 + seed)
    U = np.stack([np.asarray(orient(q.eigenvectors[:, i])) for i in range(q.dim)], axis=1)
    return q, U


def exact_v(name: str, **options: Any) -> OptimizerConfig:
    """Preset ``name`` with the exact top eigenvector, computed once at step 0.

    On a quadratic the eigenvector never changes. ``eigvec_source="exact"``: the algebraic top
    eigenvector of the dense Hessian (docs/algorithms.md#A-eigenvector-sources).
    """
    return preset(name, **{"eigvec_source": "exact", "refresh_every": 2**62, **options})


# -- the ravine toy ----------------------------------------------------------------------------
def ravine_window(
    problem: Problem,
    config: OptimizerConfig,
    w0: Any,
    burn: int,
    window: int,
    *,
    v: Any = None,
    ctx: ExperimentContext | None = None,
) -> dict[str, np.ndarray]:
    """Run ``burn + window`` steps on the ravine toy and return the window's records.

    Over the window: the iterates' ``x`` and ``y`` at the start of each step, the per-step ``Δy``
    and step lengths, and the final state's ``v`` (``None`` if the optimizer has none). ``burn``
    lets the cycle across the valley settle; ``window`` is even, so alternating cycle phases
    average out. The toy and its drift: docs/theory.md#T-drift.
    """
    run = run_steps(problem, config, w0, burn + window, v=v, ctx=ctx)
    W = run.iterates[burn:]
    return {
        "x": W[:-1, 0],
        "y": W[:-1, 1],
        "dy": np.diff(W[:, 1]),
        "step": np.linalg.norm(np.diff(W, axis=0), axis=1),
        "v": None if run.state.v is None else to_numpy(run.state.v),
    }
