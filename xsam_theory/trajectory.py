"""The trajectory runner: problem + optimizer + initial point + steps + seed + batches + monitors.

:func:`run_trajectory` steps :func:`xsam_theory.optimizers.step` and collects what it reports into
a :class:`Trajectory` of NumPy arrays, which saves to and loads from ``.npz`` atomically. A
non-finite loss or iterate stops the run: by default with a :class:`NonFiniteError` that carries
the step index, the last finite state and the trajectory so far.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xsam_theory._version import __version__
from xsam_theory.backend import namespace, to_numpy
from xsam_theory.checks import check_seed, check_tolerance
from xsam_theory.io import atomic_write
from xsam_theory.optimizers.config import OptimizerConfig, Schedule
from xsam_theory.optimizers.step import (
    OptimizerState,
    StepInfo,
    finite_eigenpair,
    init_state,
    step,
)
from xsam_theory.problems.base import Problem
from xsam_theory.spectral import HessianOperator, orient, top_eigenpair
from xsam_theory.vectors import angle_deg

__all__ = [
    "NonFiniteError",
    "SpectralMonitor",
    "TraceMonitor",
    "Trajectory",
    "batch_schedule",
    "run_trajectory",
]


def _check_every(every: Any) -> None:
    """A monitor's period: an integer >= 1 (``True`` is refused, not read as 1)."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be an integer >= 1, got {every!r}")


@dataclass(frozen=True)
class SpectralMonitor:
    """Every ``every`` steps (and after the last), the top eigenpair of the Hessian at the iterate.

    Records ``lambda_max`` (algebraic top by ``method``: ``lanczos`` | ``exact``), the angles of the
    gradient with the top eigenvector (oriented after :func:`~xsam_theory.spectral.orient`, and
    orientation-free), the orientation-free angle between the optimizer's own ``v`` and it (NaN
    when the optimizer has none), and the HVPs spent. ``batch="full"`` measures the full-data
    Hessian; ``"current"`` the minibatch of the step. ``tol`` is the eigen-solver's relative
    tolerance (a finite number >= 0; ``0``: machine precision).
    """

    every: int = 10
    method: str = "lanczos"
    tol: float = 0.0
    batch: str = "full"
    name: str = "spectral"

    def __post_init__(self) -> None:
        _check_every(self.every)
        check_tolerance("tol", self.tol)
        if self.method not in ("lanczos", "exact"):
            raise ValueError(f"method must be 'lanczos' or 'exact', got {self.method!r}")
        if self.batch not in ("full", "current"):
            raise ValueError(f"batch must be 'full' or 'current', got {self.batch!r}")

    def measure(self, problem: Problem, state: OptimizerState, batch: Any) -> dict[str, float]:
        point = problem.at(state.w, None if self.batch == "full" else batch)
        op = HessianOperator.from_point(point)
        res = finite_eigenpair(op, lambda: top_eigenpair(op, self.method, tol=self.tol))
        u = orient(res.eigenvector)
        g = point.grad
        return {
            "lambda_max": float(res.eigenvalue),
            "angle_g_top": angle_deg(g, u),
            "angle_g_top_free": angle_deg(g, u, oriented=False),
            "angle_v_top_free": (angle_deg(state.v, u, oriented=False)
                                 if state.v is not None else math.nan),
            "n_hvp": float(op.n_hvp),
        }


@dataclass(frozen=True)
class TraceMonitor:
    """Every ``every`` steps, a Hutchinson estimate of the full-data Hessian trace."""

    every: int = 10
    n_probes: int = 32
    name: str = "trace"

    def __post_init__(self) -> None:
        _check_every(self.every)
        if isinstance(self.n_probes, bool) or not isinstance(self.n_probes, int) \
                or self.n_probes < 1:
            raise ValueError(f"n_probes must be an integer >= 1, got {self.n_probes!r}")

    def measure(self, problem: Problem, state: OptimizerState, batch: Any) -> dict[str, float]:
        from xsam_theory.spectral import hutchinson_trace

        op = HessianOperator.from_problem(problem, state.w)
        est = hutchinson_trace(op, self.n_probes, seed=state.step)
        if not math.isfinite(est.estimate):
            raise FloatingPointError("non-finite trace estimate (the Hessian overflows here)")
        return {"trace": float(est.estimate), "trace_stderr": float(est.stderr),
                "n_hvp": float(op.n_hvp)}


Monitor = SpectralMonitor | TraceMonitor


@dataclass
class Trajectory:
    """What a run produced, as NumPy arrays on the host.

    Attributes:
        config: the run's full configuration (optimizer options, steps, seed, batch size,
            problem description, package version), JSON-ready.
        iterates: kept iterates, shape ``(m, dim)``, at the steps in ``iterate_steps``.
        diagnostics: per-step :class:`~xsam_theory.optimizers.StepInfo` fields, each an array of
            length ``n_steps`` (entry ``t`` describes the step from ``w_t`` to ``w_{t+1}``).
        monitors: per monitor name, arrays keyed by quantity, with ``step`` holding the iterate
            index each row was measured at.
        status: ``"completed"`` or ``"diverged"``; ``message`` says why it stopped early.
    """

    config: dict[str, Any]
    iterates: np.ndarray
    iterate_steps: np.ndarray
    diagnostics: dict[str, np.ndarray]
    monitors: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    status: str = "completed"
    message: str = ""

    @property
    def n_steps(self) -> int:
        """Number of completed steps."""
        return len(self.diagnostics.get("loss", ()))

    @property
    def final_w(self) -> np.ndarray:
        """The last kept iterate."""
        return self.iterates[-1]

    # -- persistence ----------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The flat ``name -> array`` form that :meth:`save` writes and the sweep store keeps:
        ``config_json``, ``status``, ``message``, ``iterates``, ``iterate_steps``,
        ``diag/<field>`` and ``mon/<monitor>/<column>``."""
        arrays: dict[str, np.ndarray] = {
            "config_json": np.array(json.dumps(self.config, sort_keys=True)),
            "status": np.array(self.status),
            "message": np.array(self.message),
            "iterates": np.asarray(self.iterates),
            "iterate_steps": np.asarray(self.iterate_steps),
        }
        for k, a in self.diagnostics.items():
            arrays[f"diag/{k}"] = np.asarray(a)
        for name, table in self.monitors.items():
            for k, a in table.items():
                arrays[f"mon/{name}/{k}"] = np.asarray(a)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Any, source: str = "arrays") -> Trajectory:
        """The trajectory whose :meth:`to_arrays` form is ``arrays`` (a mapping, e.g. an open
        ``np.load`` file); ``source`` names it in the error for anything else."""
        keys = list(arrays.keys())
        if "config_json" not in keys or "iterates" not in keys:
            raise ValueError(f"{source} is not a trajectory written by Trajectory.to_arrays")
        diagnostics = {k[5:]: arrays[k] for k in keys if k.startswith("diag/")}
        monitors: dict[str, dict[str, np.ndarray]] = {}
        for k in keys:
            if k.startswith("mon/"):
                _, name, q = k.split("/", 2)
                monitors.setdefault(name, {})[q] = arrays[k]
        return cls(config=json.loads(str(arrays["config_json"])), iterates=arrays["iterates"],
                   iterate_steps=arrays["iterate_steps"], diagnostics=diagnostics,
                   monitors=monitors, status=str(arrays["status"]),
                   message=str(arrays["message"]))

    def save(self, path: str | Path) -> Path:
        """Write the trajectory to ``path`` (``.npz``) atomically."""
        arrays = self.to_arrays()

        def write(f: Any) -> None:
            buf = io.BytesIO()
            np.savez_compressed(buf, **arrays)
            f.write(buf.getvalue())

        return atomic_write(path, write)

    @classmethod
    def load(cls, path: str | Path) -> Trajectory:
        """Read a trajectory written by :meth:`save`."""
        with np.load(Path(path), allow_pickle=False) as z:
            return cls.from_arrays(z, source=str(path))


class NonFiniteError(FloatingPointError):
    """A run met a non-finite loss or iterate.

    Attributes: ``step`` (index of the step that produced it), ``state`` (the last finite
    optimizer state), ``trajectory`` (everything up to and including that state).
    """

    def __init__(self, message: str, step: int, state: OptimizerState, trajectory: Trajectory):
        super().__init__(message)
        self.step = step
        self.state = state
        self.trajectory = trajectory


def batch_schedule(n_samples: int | None, batch_size: int | None, seed: int) -> Iterator[Any]:
    """Minibatch index arrays: a fresh seeded permutation each epoch, the last partial batch
    dropped (``drop_last``, as in the reference loop); ``None`` forever for full batches.
    ``seed`` must be an integer >= 0."""
    seed = check_seed(seed)
    if batch_size is None or n_samples is None:
        while True:
            yield None
    rng = np.random.default_rng([seed, 0xBA7C])
    per_epoch = n_samples // batch_size
    while True:
        perm = rng.permutation(n_samples)
        for i in range(per_epoch):
            yield perm[i * batch_size : (i + 1) * batch_size]


def run_trajectory(problem: Problem, config: OptimizerConfig, w0: Any, steps: int, *,
                   seed: int = 0, batch_size: int | None = None,
                   monitors: Sequence[Monitor] = (), iterate_every: int | None = 1,
                   on_nonfinite: str = "raise") -> Trajectory:
    """Run ``steps`` optimizer steps from ``w0`` and collect a :class:`Trajectory`.

    Args:
        w0: the start point, an array of shape ``(dim,)`` of finite real numbers (a list, a
            complex or a bool array raises ``ValueError`` naming ``w0``).
        seed: an integer >= 0; seeds the minibatch order and the optimizer's first eigenvector
            start vector; the same seed gives bit-identical results on the NumPy backend.
            ``None`` is refused (it would draw fresh entropy: not reproducible).
        batch_size: ``None`` for full batches; otherwise minibatches of this size (problems with
            data only). The reference schedule's epoch length is set to ``n // batch_size``.
        monitors: :class:`SpectralMonitor` / :class:`TraceMonitor` instances.
        iterate_every: keep every k-th iterate (``None``: only the first and the last).
        on_nonfinite: ``"raise"`` a :class:`NonFiniteError`, or ``"stop"`` and return the
            trajectory with ``status="diverged"``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    seed = check_seed(seed)
    if on_nonfinite not in ("raise", "stop"):
        raise ValueError(f"on_nonfinite must be 'raise' or 'stop', got {on_nonfinite!r}")
    if iterate_every is not None and (not isinstance(iterate_every, int) or iterate_every < 1):
        raise ValueError(f"iterate_every must be an integer >= 1 or None, got {iterate_every!r}")
    if batch_size is not None:
        if problem.n_samples is None:
            raise ValueError(f"batch_size needs a problem with data; {type(problem).__name__} "
                             "has none (use batch_size=None)")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or \
                not 1 <= batch_size <= problem.n_samples:
            raise ValueError(f"batch_size must be an integer in [1, {problem.n_samples}], "
                             f"got {batch_size!r}")
        if config.schedule is Schedule.REFERENCE and config.steps_per_epoch is None:
            config = config.replace(steps_per_epoch=problem.n_samples // batch_size)
    if (config.uses_eigvec and config.schedule is Schedule.REFERENCE
            and config.steps_per_epoch is not None
            and config.steps_per_epoch <= config.refresh_every):
        warnings.warn(
            f"reference schedule with steps_per_epoch={config.steps_per_epoch} <= "
            f"refresh_every={config.refresh_every}: the step counter restarts every epoch "
            "before reaching refresh_every, so v is never computed", UserWarning, stacklevel=2)
    names = [m.name for m in monitors]
    if len(set(names)) != len(names):
        raise ValueError(f"monitor names must be distinct, got {names}")

    state = init_state(problem, w0, config, seed=seed)
    run_config = {
        "optimizer": config.to_dict(),
        "steps": steps,
        "seed": seed,
        "batch_size": batch_size,
        "iterate_every": iterate_every,
        "problem": {"type": type(problem).__name__, "dim": problem.dim,
                    "n_samples": problem.n_samples},
        "monitors": [{"type": type(m).__name__, **m.__dict__} for m in monitors],
        "package_version": __version__,
    }
    xp = namespace(w0)
    kept, kept_steps = [to_numpy(w0).copy()], [0]
    infos: list[StepInfo] = []
    rows: dict[str, list[dict[str, float]]] = {m.name: [] for m in monitors}
    batches = batch_schedule(problem.n_samples, batch_size, seed)

    def measure(at_state: OptimizerState, batch: Any) -> str | None:
        """Run the due monitors; a message instead if a monitored quantity overflowed."""
        for m in monitors:
            if at_state.step % m.every == 0 or at_state.step == steps:
                try:
                    with np.errstate(over="ignore", invalid="ignore"):
                        values = m.measure(problem, at_state, batch)
                except FloatingPointError as err:
                    return f"monitor {m.name!r} at step {at_state.step}: {err}"
                rows[m.name].append({"step": float(at_state.step), **values})
        return None

    def finish(status: str, message: str) -> Trajectory:
        if kept_steps[-1] != state.step:
            kept.append(to_numpy(state.w).copy())
            kept_steps.append(state.step)
        diag = {f: np.array([getattr(i, f) for i in infos],
                            dtype=bool if f == "refreshed" else
                            (np.int64 if f.startswith("n_") else np.float64))
                for f in StepInfo.FIELDS}
        mons = {name: {k: np.array([r[k] for r in table]) for k in (table[0] if table else {})}
                for name, table in rows.items()}
        return Trajectory(config=run_config, iterates=np.stack(kept),
                          iterate_steps=np.array(kept_steps), diagnostics=diag, monitors=mons,
                          status=status, message=message)

    def diverged(bad: str, t: int) -> Trajectory:
        traj = finish("diverged", bad)
        if on_nonfinite == "raise":
            raise NonFiniteError(bad, t, state, traj)
        return traj

    for t in range(steps):
        batch = next(batches)
        bad = measure(state, batch)
        if bad is not None:
            return diverged(bad, t)
        # overflow is detected and reported below, with the step index and the last finite
        # state; NumPy's own floating-point warnings would only duplicate that report
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                new_state, info = step(problem, state, config, batch)
        except FloatingPointError as err:   # overflow inside the step (see optimizers.step)
            return diverged(str(err) if f"step {t}" in str(err) else f"{err} (in step {t})", t)
        bad = None
        if not math.isfinite(info.loss):
            bad = f"non-finite loss {info.loss} at step {t}"
        elif not bool(xp.all(xp.isfinite(new_state.w))):
            infos.append(info)
            bad = f"non-finite iterate after step {t} (loss there was {info.loss:.6g})"
        if bad is not None:
            return diverged(bad, t)
        infos.append(info)
        state = new_state
        if iterate_every is not None and state.step % iterate_every == 0:
            kept.append(to_numpy(state.w).copy())
            kept_steps.append(state.step)
    bad = measure(state, None)
    if bad is not None:
        return diverged(bad, steps)
    return finish("completed", "")
