"""The trajectory runner: problem + optimizer + initial point + steps + seed + batches + monitors.

:func:`run_trajectory` steps :func:`xsam_theory.optimizers.step` and collects what it reports into
a :class:`Trajectory` of NumPy arrays, which saves to and loads from ``.npz`` atomically. A
non-finite loss or iterate stops the run: by default with a :class:`NonFiniteError` that carries
the step index, the last finite state and the trajectory so far.

The runner is three parts: :class:`RunOptions`, the validated options of a run;
:class:`TrajectoryRecorder`, which accumulates the kept iterates, the per-step diagnostics and
the monitors' rows and builds the :class:`Trajectory`; and a loop of monitors and steps. Every
way a run can diverge (an overflow a step or a monitor reports, a non-finite loss or iterate)
ends in the same place, which stops the run or raises.

What each step reports: docs/algorithms.md#A-step-report; the schedule of the eigenvector
refreshes: docs/algorithms.md#A-schedule; a tour with examples: docs/python.md.
"""

from __future__ import annotations

import functools
import io
import json
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xsam_theory._version import __version__
from xsam_theory.backend import namespace, to_numpy
from xsam_theory.checks import check_seed, check_tolerance
from xsam_theory.io import atomic_write
from xsam_theory.optimizers import rules
from xsam_theory.optimizers.config import OptimizerConfig
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

    The eigen-solvers: docs/algorithms.md#A-eigenvector-sources; the angle to the top eigenspace
    when the top eigenvalue is repeated: docs/theory.md#T-eigenspace-angle.
    """

    every: int = 10
    method: str = "lanczos"
    tol: float = 0.0
    batch: str = "full"
    name: str = "spectral"

    def __post_init__(self) -> None:
        """Check the options: ``every`` >= 1, ``tol`` >= 0, a known method and batch."""
        _check_every(self.every)
        check_tolerance("tol", self.tol)
        if self.method not in ("lanczos", "exact"):
            raise ValueError(f"method must be 'lanczos' or 'exact', got {self.method!r}")
        if self.batch not in ("full", "current"):
            raise ValueError(f"batch must be 'full' or 'current', got {self.batch!r}")

    def measure(self, problem: Problem, state: OptimizerState, batch: Any) -> dict[str, float]:
        """The spectral quantities at ``state.w`` (see the class docstring).

        Raises:
            FloatingPointError: The Hessian overflows at ``state.w``.
        """
        point = problem.at(state.w, None if self.batch == "full" else batch)
        op = HessianOperator.from_point(point)
        res = finite_eigenpair(op, lambda: top_eigenpair(op, self.method, tol=self.tol))
        u = orient(res.eigenvector)
        g = point.grad
        return {
            "lambda_max": float(res.eigenvalue),
            "angle_g_top": angle_deg(g, u),
            "angle_g_top_free": angle_deg(g, u, oriented=False),
            "angle_v_top_free": (
                angle_deg(state.v, u, oriented=False) if state.v is not None else math.nan
            ),
            "n_hvp": float(op.n_hvp),
        }


@dataclass(frozen=True)
class TraceMonitor:
    r"""Every ``every`` steps, a Hutchinson estimate of the full-data Hessian trace.

    :math:`\widehat{\mathrm{tr}}(H) = \frac1m\sum_{k=1}^m z_k^\top H z_k` over ``n_probes``
    (:math:`m`) Rademacher probes :math:`z_k`, with its standard error (derivation:
    docs/theory.md#T-hutchinson).
    """

    every: int = 10
    n_probes: int = 32
    name: str = "trace"

    def __post_init__(self) -> None:
        """Check the options: ``every`` >= 1 and ``n_probes`` >= 1, both integers."""
        _check_every(self.every)
        if (
            isinstance(self.n_probes, bool)
            or not isinstance(self.n_probes, int)
            or self.n_probes < 1
        ):
            raise ValueError(f"n_probes must be an integer >= 1, got {self.n_probes!r}")

    def measure(self, problem: Problem, state: OptimizerState, batch: Any) -> dict[str, float]:
        """The trace estimate at ``state.w``, its standard error and the HVPs spent.

        Raises:
            FloatingPointError: The estimate is not finite (the Hessian overflows at ``state.w``).
        """
        from xsam_theory.spectral import hutchinson_trace

        op = HessianOperator.from_problem(problem, state.w)
        est = hutchinson_trace(op, self.n_probes, seed=state.step)
        if not math.isfinite(est.estimate):
            raise FloatingPointError("non-finite trace estimate (the Hessian overflows here)")
        return {
            "trace": float(est.estimate),
            "trace_stderr": float(est.stderr),
            "n_hvp": float(op.n_hvp),
        }


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
        """The flat ``name -> array`` form that :meth:`save` writes and the sweep store keeps.

        Returns:
            ``config_json``, ``status``, ``message``, ``iterates``, ``iterate_steps``,
            ``diag/<field>`` and ``mon/<monitor>/<column>``.
        """
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
        """The trajectory whose :meth:`to_arrays` form is ``arrays``.

        Args:
            arrays: A mapping, e.g. an open ``np.load`` file.
            source: What ``arrays`` came from, named in the error.

        Raises:
            ValueError: ``arrays`` is not a trajectory's :meth:`to_arrays` form.
        """
        keys = list(arrays.keys())
        if "config_json" not in keys or "iterates" not in keys:
            raise ValueError(f"{source} is not a trajectory written by Trajectory.to_arrays")
        diagnostics = {k[5:]: arrays[k] for k in keys if k.startswith("diag/")}
        monitors: dict[str, dict[str, np.ndarray]] = {}
        for k in keys:
            if k.startswith("mon/"):
                _, name, q = k.split("/", 2)
                monitors.setdefault(name, {})[q] = arrays[k]
        return cls(
            config=json.loads(str(arrays["config_json"])),
            iterates=arrays["iterates"],
            iterate_steps=arrays["iterate_steps"],
            diagnostics=diagnostics,
            monitors=monitors,
            status=str(arrays["status"]),
            message=str(arrays["message"]),
        )

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
    """A run met a non-finite loss or iterate, or an overflow in a step or a monitor.

    Attributes:
        step: The index of the step that produced it (that of the last finite state).
        state: The last finite optimizer state.
        trajectory: Everything up to and including that state, ``status="diverged"``.
    """

    def __init__(self, message: str, step: int, state: OptimizerState, trajectory: Trajectory):
        """Keep the message and what the run had when it diverged (see the attributes)."""
        super().__init__(message)
        self.step = step
        self.state = state
        self.trajectory = trajectory


def batch_schedule(n_samples: int | None, batch_size: int | None, seed: int) -> Iterator[Any]:
    """Minibatch index arrays: a fresh seeded permutation each epoch.

    The last partial batch of an epoch is dropped (``drop_last``, as in the reference loop).

    Args:
        n_samples: The number of samples (``None``: a problem without data).
        batch_size: The minibatch size (``None``: full batches).
        seed: An integer >= 0; seeds the permutations.

    Yields:
        ``batch_size`` sample indices per step, ``n_samples // batch_size`` batches per epoch;
        ``None`` forever for full batches.
    """
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


@dataclass(frozen=True)
class RunOptions:
    """How :func:`run_trajectory` runs, besides the problem, the optimizer and the start point.

    Construction validates every field, so a record that exists is a valid one; whether
    ``batch_size`` fits the problem's data is checked when the run starts.

    Attributes:
        steps: The number of optimizer steps, an integer >= 0.
        seed: An integer >= 0; seeds the minibatch order and the optimizer's first eigenvector
            start vector (stored as an ``int``).
        batch_size: ``None`` for full batches; otherwise the minibatch size.
        monitors: :class:`SpectralMonitor` / :class:`TraceMonitor` instances with distinct names
            (stored as a tuple).
        iterate_every: Keep every k-th iterate (``None``: only the first and the last).
        on_nonfinite: ``"raise"`` a :class:`NonFiniteError`, or ``"stop"`` and return the
            trajectory with ``status="diverged"``.
    """

    steps: int
    seed: int = 0
    batch_size: int | None = None
    monitors: tuple[Monitor, ...] = ()
    iterate_every: int | None = 1
    on_nonfinite: str = "raise"

    def __post_init__(self) -> None:
        """Check the fields (ValueError names a bad one); store seed as int, monitors as tuple."""
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"steps must be an integer >= 0, got {self.steps!r}")
        object.__setattr__(self, "seed", check_seed(self.seed))
        if self.on_nonfinite not in ("raise", "stop"):
            raise ValueError(f"on_nonfinite must be 'raise' or 'stop', got {self.on_nonfinite!r}")
        every = self.iterate_every
        if every is not None and (not isinstance(every, int) or every < 1):
            raise ValueError(f"iterate_every must be an integer >= 1 or None, got {every!r}")
        object.__setattr__(self, "monitors", tuple(self.monitors))
        names = [m.name for m in self.monitors]
        if len(set(names)) != len(names):
            raise ValueError(f"monitor names must be distinct, got {names}")

    def due(self, monitor: Monitor, step: int) -> bool:
        """Whether ``monitor`` measures at iterate ``step``.

        Args:
            monitor: One of :attr:`monitors`.
            step: The iterate index.

        Returns:
            ``step % monitor.every == 0`` or ``step == steps`` (the last iterate).
        """
        return step % monitor.every == 0 or step == self.steps


def _epoch_config(
    problem: Problem, config: OptimizerConfig, batch_size: int | None
) -> OptimizerConfig:
    """The optimizer configuration for minibatches of ``batch_size`` on ``problem``.

    Args:
        problem: The problem; minibatches need one with data.
        config: The optimizer configuration as given.
        batch_size: ``None`` (full batches) or an integer in ``[1, problem.n_samples]``.

    Returns:
        ``config``, with the reference schedule's epoch length ``steps_per_epoch`` set to
        ``n_samples // batch_size`` when it is unset and minibatches are used.

    Raises:
        ValueError: ``batch_size`` on a problem without data, or outside its range.
    """
    if batch_size is None:
        return config
    if problem.n_samples is None:
        raise ValueError(
            f"batch_size needs a problem with data; {type(problem).__name__} "
            "has none (use batch_size=None)"
        )
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or not 1 <= batch_size <= problem.n_samples
    ):
        raise ValueError(
            f"batch_size must be an integer in [1, {problem.n_samples}], got {batch_size!r}"
        )
    if rules.epoch_counter_never_restarts(config):
        return config.replace(steps_per_epoch=problem.n_samples // batch_size)
    return config


def _warn_if_v_never_computed(config: OptimizerConfig) -> None:
    """Warn when the reference schedule's counter restarts before it reaches ``refresh_every``.

    The warning points at the caller of :func:`run_trajectory`.
    """
    if rules.refresh_never_happens(config):
        warnings.warn(
            f"reference schedule with steps_per_epoch={config.steps_per_epoch} <= "
            f"refresh_every={config.refresh_every}: the step counter restarts every epoch "
            "before reaching refresh_every, so v is never computed",
            UserWarning,
            stacklevel=3,
        )


def _run_config(problem: Problem, config: OptimizerConfig, options: RunOptions) -> dict[str, Any]:
    """The run's full configuration as JSON-ready data (what :attr:`Trajectory.config` holds)."""
    return {
        "optimizer": config.to_dict(),
        "steps": options.steps,
        "seed": options.seed,
        "batch_size": options.batch_size,
        "iterate_every": options.iterate_every,
        "problem": {
            "type": type(problem).__name__,
            "dim": problem.dim,
            "n_samples": problem.n_samples,
        },
        "monitors": [{"type": type(m).__name__, **m.__dict__} for m in options.monitors],
        "package_version": __version__,
    }


class TrajectoryRecorder:
    """What a run has produced so far, and the :class:`Trajectory` built from it.

    It holds the last finite optimizer state, the kept iterates (the start point, every
    ``iterate_every``-th iterate, and the last), one :class:`~xsam_theory.optimizers.StepInfo`
    per completed step, and each monitor's rows.

    Args:
        state: The state before the first step.
        run_config: The run's configuration (see :attr:`Trajectory.config`).
        options: The run's options (the monitors' names and ``iterate_every``).
    """

    def __init__(self, state: OptimizerState, run_config: dict[str, Any], options: RunOptions):
        self.state = state
        self._run_config = run_config
        self._iterate_every = options.iterate_every
        self._kept = [to_numpy(state.w).copy()]
        self._kept_steps = [state.step]
        self._infos: list[StepInfo] = []
        self._rows: dict[str, list[dict[str, float]]] = {m.name: [] for m in options.monitors}

    def add_row(self, monitor: str, values: dict[str, float]) -> None:
        """Record what ``monitor`` measured at the current state, with its ``step``."""
        self._rows[monitor].append({"step": float(self.state.step), **values})

    def add_step(self, info: StepInfo) -> None:
        """Record the diagnostics of one step."""
        self._infos.append(info)

    def advance(self, state: OptimizerState) -> None:
        """Make ``state`` current; keep its iterate when ``iterate_every`` divides its step."""
        self.state = state
        if self._iterate_every is not None and state.step % self._iterate_every == 0:
            self._keep_current()

    def _keep_current(self) -> None:
        self._kept.append(to_numpy(self.state.w).copy())
        self._kept_steps.append(self.state.step)

    def build(self, status: str = "completed", message: str = "") -> Trajectory:
        """The trajectory so far, ending at the current state.

        Args:
            status: ``"completed"`` or ``"diverged"``.
            message: Why the run stopped early (empty when it completed).

        Returns:
            A :class:`Trajectory` whose last kept iterate is the current state's.
        """
        if self._kept_steps[-1] != self.state.step:
            self._keep_current()
        diag = {
            f: np.array([getattr(i, f) for i in self._infos], dtype=_diagnostic_dtype(f))
            for f in StepInfo.FIELDS
        }
        mons = {
            name: {k: np.array([r[k] for r in table]) for k in (table[0] if table else {})}
            for name, table in self._rows.items()
        }
        return Trajectory(
            config=self._run_config,
            iterates=np.stack(self._kept),
            iterate_steps=np.array(self._kept_steps),
            diagnostics=diag,
            monitors=mons,
            status=status,
            message=message,
        )


def _diagnostic_dtype(field_name: str) -> Any:
    """The array dtype of one :class:`~xsam_theory.optimizers.StepInfo` field."""
    if field_name == "refreshed":
        return bool
    return np.int64 if field_name.startswith("n_") else np.float64


class _Divergence(Exception):
    """The run met a non-finite value: raised where it is detected, handled in one place.

    Attributes:
        message: What diverged, and at which step.
        info: The diagnostics of the step that produced a non-finite iterate from a finite
            loss (they are kept in the trajectory); ``None`` otherwise.
    """

    def __init__(self, message: str, info: StepInfo | None = None):
        super().__init__(message)
        self.message = message
        self.info = info


@contextmanager
def _overflow_is_divergence(describe: Callable[[FloatingPointError], str]) -> Iterator[None]:
    """Run the block with NumPy's overflow warnings off; an overflow it reports is divergence.

    NumPy's own floating-point warnings would only duplicate the report, which names the step
    and keeps the last finite state.

    Args:
        describe: The message for the ``FloatingPointError`` the block raised.

    Raises:
        _Divergence: With ``describe(err)``, from the ``FloatingPointError`` ``err``.
    """
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            yield
    except FloatingPointError as err:
        raise _Divergence(describe(err)) from err


def _step_overflow(t: int, err: FloatingPointError) -> str:
    """The message for an overflow inside step ``t``: the step's own, naming the step."""
    return str(err) if f"step {t}" in str(err) else f"{err} (in step {t})"


def _monitor_overflow(name: str, step: int, err: FloatingPointError) -> str:
    """The message for an overflow in the monitor ``name`` at iterate ``step``."""
    return f"monitor {name!r} at step {step}: {err}"


def _check_finite(t: int, info: StepInfo, w: Any) -> None:
    """Decide whether step ``t`` diverged: its loss or its new iterate ``w`` is not finite.

    Args:
        t: The step's index.
        info: The step's diagnostics (``info.loss`` is the loss at the step's start).
        w: The iterate the step produced.

    Raises:
        _Divergence: For a non-finite loss (without ``info``), or for a non-finite iterate
            after a finite loss (with ``info``, which the trajectory keeps).
    """
    if not math.isfinite(info.loss):
        raise _Divergence(f"non-finite loss {info.loss} at step {t}")
    xp = namespace(w)
    if not bool(xp.all(xp.isfinite(w))):
        raise _Divergence(
            f"non-finite iterate after step {t} (loss there was {info.loss:.6g})", info
        )


def _measure(
    problem: Problem, options: RunOptions, recorder: TrajectoryRecorder, batch: Any
) -> None:
    """Run the monitors due at the recorder's current state and record their rows."""
    state = recorder.state
    for m in options.monitors:
        if options.due(m, state.step):
            with _overflow_is_divergence(functools.partial(_monitor_overflow, m.name, state.step)):
                values = m.measure(problem, state, batch)
            recorder.add_row(m.name, values)


def _run_steps(
    problem: Problem, config: OptimizerConfig, options: RunOptions, recorder: TrajectoryRecorder
) -> None:
    """The loop: monitors, then one :func:`~xsam_theory.optimizers.step`, per step; monitors last.

    Raises:
        _Divergence: At the first overflow or non-finite loss or iterate.
    """
    batches = batch_schedule(problem.n_samples, options.batch_size, options.seed)
    for t in range(options.steps):
        batch = next(batches)
        _measure(problem, options, recorder, batch)
        with _overflow_is_divergence(functools.partial(_step_overflow, t)):
            new_state, info = step(problem, recorder.state, config, batch)
        _check_finite(t, info, new_state.w)
        recorder.add_step(info)
        recorder.advance(new_state)
    _measure(problem, options, recorder, None)


def _diverged(div: _Divergence, recorder: TrajectoryRecorder, on_nonfinite: str) -> Trajectory:
    """The diverged trajectory, or the :class:`NonFiniteError` that carries it.

    Raises:
        NonFiniteError: With ``on_nonfinite="raise"``: the message, the index of the last
            finite state (the step that diverged), that state and the trajectory; the overflow
            that was reported, if any, is its cause.
    """
    if div.info is not None:
        recorder.add_step(div.info)
    traj = recorder.build("diverged", div.message)
    if on_nonfinite == "raise":
        state = recorder.state
        raise NonFiniteError(div.message, state.step, state, traj) from div.__cause__
    return traj


def run_trajectory(
    problem: Problem,
    config: OptimizerConfig,
    w0: Any,
    steps: int,
    *,
    seed: int = 0,
    batch_size: int | None = None,
    monitors: Sequence[Monitor] = (),
    iterate_every: int | None = 1,
    on_nonfinite: str = "raise",
) -> Trajectory:
    """Run ``steps`` optimizer steps from ``w0`` and collect a :class:`Trajectory`.

    Step ``t`` maps ``w_t`` to ``w_{t+1}`` by :func:`~xsam_theory.optimizers.step` on the
    ``t``-th minibatch of :func:`batch_schedule`; the monitors measure at ``w_t`` before it
    when due, and at the last iterate. The run diverges at the first non-finite loss or
    iterate, or the first overflow a step or a monitor reports.

    Args:
        problem: The objective.
        config: The optimizer configuration.
        w0: The start point, an array of shape ``(dim,)`` of finite real numbers (a list, a
            complex or a bool array raises ``ValueError`` naming ``w0``).
        steps: The number of steps, an integer >= 0.
        seed: An integer >= 0; seeds the minibatch order and the optimizer's first eigenvector
            start vector; the same seed gives bit-identical results on the NumPy backend.
            ``None`` is refused (it would draw fresh entropy: not reproducible).
        batch_size: ``None`` for full batches; otherwise minibatches of this size (problems with
            data only). The reference schedule's epoch length is set to ``n // batch_size``.
        monitors: :class:`SpectralMonitor` / :class:`TraceMonitor` instances.
        iterate_every: Keep every k-th iterate (``None``: only the first and the last).
        on_nonfinite: ``"raise"`` a :class:`NonFiniteError`, or ``"stop"`` and return the
            trajectory with ``status="diverged"``.

    Returns:
        The trajectory, ``status="completed"``, or ``"diverged"`` with ``on_nonfinite="stop"``.

    Raises:
        ValueError: An invalid argument (see :class:`RunOptions`).
        NonFiniteError: The run diverged and ``on_nonfinite="raise"``.
    """
    options = RunOptions(
        steps=steps,
        seed=seed,
        batch_size=batch_size,
        monitors=tuple(monitors),
        iterate_every=iterate_every,
        on_nonfinite=on_nonfinite,
    )
    config = _epoch_config(problem, config, options.batch_size)
    _warn_if_v_never_computed(config)
    state = init_state(problem, w0, config, seed=options.seed)
    recorder = TrajectoryRecorder(state, _run_config(problem, config, options), options)
    divergence = None
    try:
        _run_steps(problem, config, options, recorder)
    except _Divergence as div:
        divergence = div  # handled outside: a NonFiniteError's context is the overflow, if any
    if divergence is None:
        return recorder.build()
    return _diverged(divergence, recorder, options.on_nonfinite)
