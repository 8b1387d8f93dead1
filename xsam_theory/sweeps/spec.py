"""Declarative sweep specifications and their expansion into runs (docs/sweeps.md).

A :class:`SweepSpec` names one problem, one or more optimizer presets with their options and
hyperparameter grids, the seeds, the number of steps, the monitors and the scalar results to
keep. :meth:`SweepSpec.runs` expands it into :class:`RunConfig` records: one JSON-ready dictionary
per run, with every optimizer option filled in (the canonical form of
:meth:`~xsam_theory.optimizers.OptimizerConfig.to_dict`: options the run's values make inert at
their off value), identified by :func:`run_hash` — the SHA-256 of its canonical JSON, which
includes the package version. The same run in two sweeps has the same hash, so a store holds it
once, and so do two runs whose optimizers differ only in inert options.

The TOML form mirrors the Python one (see ``examples/sweeps/phase_quick.toml``)::

    name = "phase_quick"
    steps = 300
    seeds = [0, 1]

    [problem]
    name = "factorization"
    n = 4

    [[optimizers]]
    preset = "xsam_paper"
    lr = 0.05
    eigvec_source = "exact"
    grid = { rho = [0.02, 0.1], alpha = [0.0, 0.5, 1.0] }
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xsam_theory._version import __version__
from xsam_theory.optimizers.config import OptimizerConfig, preset
from xsam_theory.sweeps.registry import (
    check_init,
    check_problem,
    default_results,
    resolve_monitors,
    resolve_results,
)

__all__ = ["MAX_RUNS", "RunConfig", "SweepSpec", "canonical_json", "load_spec", "run_hash"]

#: the most runs a sweep may expand to without ``force=True`` (``xsam-theory sweep --force``):
#: the size is computed from the grid lengths before anything is expanded, so that a mistyped
#: grid is refused at once instead of filling memory (10 million runs take about 2 GB)
MAX_RUNS = 100_000

#: run-level fields that a top-level grid axis may set directly
RUN_AXES = ("steps", "batch_size", "iterate_every")

_SWEEP_KEYS = (
    "name",
    "problem",
    "optimizers",
    "seeds",
    "steps",
    "grid",
    "init",
    "batch_size",
    "iterate_every",
    "monitors",
    "results",
    "store_trajectory",
    "description",
    "problem_seed_param",
)
_ENTRY_KEYS = ("preset", "label", "grid")


def canonical_json(obj: Any) -> str:
    """The one JSON text of ``obj`` that is hashed: sorted keys, no spaces, no NaN/inf."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def run_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a run configuration.

    >>> run_hash({"b": 1, "a": [1.0, 2]}) == run_hash({"a": [1.0, 2], "b": 1})
    True
    """
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RunConfig:
    """One expanded run: its content hash and its full, JSON-ready configuration."""

    hash: str
    config: dict[str, Any]

    @property
    def label(self) -> str:
        """A short human description, e.g. ``xsam_paper rho=0.05 alpha=0.5 seed=1``."""
        return f"{self.config['method']} seed={self.config['seed']} [{self.hash[:12]}]"


def plain(obj: Any) -> Any:
    """``obj`` with NumPy scalars and arrays, tuples and ranges turned into plain JSON types."""
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (list, tuple, range)):
        return [plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise ValueError(
        f"sweep specs hold plain values (numbers, strings, lists, tables); "
        f"got {type(obj).__name__}: {obj!r}"
    )


def _axis_values(where: str, key: str, values: Any) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(
            f"{where}: grid axis {key!r} needs a non-empty list of values, got {values!r}"
        )
    return list(values)


def _product(grid: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


@dataclass(frozen=True)
class SweepSpec:
    r"""A grid of (optimizer, hyperparameters, seed) runs on one problem.

    Every number anywhere in a spec must be finite: a NaN or an infinity is an error that
    names where it is (e.g. ``optimizers[0].grid.rho[1]``).

    Args:
        name: the sweep's name in the store (one store may hold several sweeps).
        problem: ``{"name": NAME, **params}``; ``NAME`` is one of
            :data:`~xsam_theory.sweeps.registry.PROBLEMS` (params are the keyword arguments of the
            constructor it names) or ``"package.module:function"`` returning a problem.
        optimizers: entries ``{"preset": NAME, **options, "grid": {option: [values]},
            "label": TEXT}``: a :func:`~xsam_theory.optimizers.preset` with fixed ``options`` and
            a per-entry grid over options; ``label`` (default: the preset name) becomes the run's
            ``method``.
        seeds: the run seeds, a list of distinct non-negative integers such as ``[0, 1, 2]``
            (minibatch order, eigenvector start vector, and the initial point unless ``init``
            fixes its own seed).
        steps: optimizer steps per run.
        grid: axes shared by every optimizer entry: an optimizer option (``"rho"``,
            ``"optimizer.rho"``), ``"problem.PARAM"``, ``"init.PARAM"``, or one of ``steps``,
            ``batch_size``, ``iterate_every``.
        init: the initial point: ``{"kind": "default"}`` (the problem's own init — PyTorch-style
            for MLPs, :math:`\mathcal N(0, I)` otherwise), ``{"kind": "normal", "scale": s}``, or
            ``{"kind": "explicit", "w0": [...]}``; an optional ``"seed"`` fixes the draw across
            run seeds.
        batch_size: ``None`` (full batch) or the minibatch size.
        iterate_every: keep every k-th iterate in the stored trajectory (``None``: first and last).
        monitors: ``{"type": "spectral" | "trace", **params}`` (see
            :class:`~xsam_theory.trajectory.SpectralMonitor`, :class:`~.TraceMonitor`).
        results: the scalar results to extract, as names or ``{column: expression}``; see
            :func:`~xsam_theory.sweeps.registry.resolve_results`. ``None``: final loss and
            gradient norm, plus the final λ_max / trace when those monitors are present.
        store_trajectory: keep each run's :class:`~xsam_theory.trajectory.Trajectory` (compressed
            arrays) in the store.
        description: free text, stored with the sweep.
        problem_seed_param: the name of a problem parameter that takes each run's seed (e.g.
            ``"seed"``), so that every seed draws its own data (teacher, split) while the runs
            of one seed share it — paired comparisons over data draws. ``None`` (default): the
            problem is the same for every seed.
    """

    name: str
    problem: Mapping[str, Any]
    optimizers: Sequence[Mapping[str, Any]]
    seeds: Sequence[int] = (0,)
    steps: int = 100
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    init: Mapping[str, Any] = field(default_factory=lambda: {"kind": "default"})
    batch_size: int | None = None
    iterate_every: int | None = None
    monitors: Sequence[Mapping[str, Any]] = ()
    results: Sequence[str] | Mapping[str, str] | None = None
    store_trajectory: bool = True
    description: str = ""
    problem_seed_param: str | None = None

    def __post_init__(self) -> None:
        """Convert the fields to plain data and check them; ``ValueError`` names the bad one."""
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, plain(getattr(self, f.name)))
        _check_finite(self.to_dict())
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.problem, dict) or "name" not in self.problem:
            raise ValueError(f"problem must be a table with a 'name', got {self.problem!r}")
        _check_optimizer_entries(self.optimizers)
        _check_seeds(self.seeds)
        if not isinstance(self.grid, dict):
            raise ValueError(f"grid must be a table of lists, got {self.grid!r}")
        _check_problem_seeds(self.problem, self.grid)
        _check_problem_seed_param(self.problem_seed_param, self.grid)
        if not isinstance(self.store_trajectory, bool):
            raise ValueError(
                f"store_trajectory must be true or false, got {self.store_trajectory!r}"
            )

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepSpec:
        """A spec from a plain mapping (a parsed TOML or JSON file); unknown keys are errors."""
        unknown = sorted(set(data) - set(_SWEEP_KEYS))
        if unknown:
            raise ValueError(f"unknown sweep spec key(s) {unknown}; allowed: {list(_SWEEP_KEYS)}")
        missing = [k for k in ("name", "problem", "optimizers") if k not in data]
        if missing:
            raise ValueError(f"sweep spec misses required key(s) {missing}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON-ready data (inverse of :meth:`from_dict`)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    # -- expansion ------------------------------------------------------------------------------
    def run_count(self) -> int:
        """The number of runs the spec expands to, counted without expanding anything.

        For each optimizer entry, the count is the product of the shared and the entry's grid
        lengths times the number of seeds (runs that turn out identical are counted once each
        here, and kept once by :meth:`runs`).
        """
        shared = math.prod(len(_axis_values("grid", k, v)) for k, v in self.grid.items())
        total = 0
        for i, entry in enumerate(self.optimizers):
            where = f"optimizers[{i}] ({entry['preset']!r})"
            own_grid = entry.get("grid", {})
            if not isinstance(own_grid, dict):
                raise ValueError(f"{where}: grid must be a table of lists, got {own_grid!r}")
            own = math.prod(len(_axis_values(where, k, v)) for k, v in own_grid.items())
            total += shared * own * len(self.seeds)
        return total

    def runs(self, *, force: bool = False) -> list[RunConfig]:
        """Every run of the sweep, each validated, in a fixed order.

        The order is optimizer entry, shared grid, entry grid, seed; duplicates (same hash) are
        kept once.

        A spec of more than :data:`MAX_RUNS` runs (:meth:`run_count`) is refused with a
        ``ValueError`` before anything is expanded, unless ``force`` is true.
        """
        check_run_count(self.run_count(), force=force)
        check_problem(self.problem)
        check_init(self.init)
        monitors = resolve_monitors(self.monitors)
        results = (
            default_results(monitors)
            if self.results is None
            else resolve_results(self.results, monitors)
        )
        shared = {k: _axis_values("grid", k, v) for k, v in self.grid.items()}
        out: dict[str, RunConfig] = {}
        for i, entry in enumerate(self.optimizers):
            where = f"optimizers[{i}] ({entry['preset']!r})"
            unknown_keys = set(entry) - set(_ENTRY_KEYS) - _option_names()
            if unknown_keys:
                raise ValueError(f"{where}: unknown option(s) {sorted(unknown_keys)}")
            fixed = {k: v for k, v in entry.items() if k not in _ENTRY_KEYS}
            own_grid = entry.get("grid", {})
            if not isinstance(own_grid, dict):
                raise ValueError(f"{where}: grid must be a table of lists, got {own_grid!r}")
            own = {k: _axis_values(where, k, v) for k, v in own_grid.items()}
            label = entry.get("label", entry["preset"])
            for point in _product(shared):
                for own_point in _product(own):
                    for seed in self.seeds:
                        cfg = self._config(
                            entry["preset"],
                            label,
                            fixed,
                            point,
                            own_point,
                            seed,
                            monitors,
                            results,
                            where,
                        )
                        h = run_hash(cfg)
                        out.setdefault(h, RunConfig(h, cfg))
        return list(out.values())

    def _config(
        self,
        preset_name: str,
        label: str,
        fixed: dict[str, Any],
        shared: dict[str, Any],
        own: dict[str, Any],
        seed: int,
        monitors: list[dict[str, Any]],
        results: dict[str, str],
        where: str,
    ) -> dict[str, Any]:
        problem = dict(self.problem)
        if self.problem_seed_param is not None:
            problem[self.problem_seed_param] = seed
        init = dict(self.init)
        run = {
            "steps": self.steps,
            "batch_size": self.batch_size,
            "iterate_every": self.iterate_every,
        }
        options = dict(fixed)
        for key, value in shared.items():
            head, _, rest = key.partition(".")
            if head == "problem" and rest:
                problem[rest] = value
            elif head == "init" and rest:
                init[rest] = value
            elif head == "optimizer" and rest:
                options[rest] = value
            elif key in RUN_AXES:
                run[key] = value
            elif key in _option_names():
                options[key] = value
            else:
                raise ValueError(
                    f"grid axis {key!r} is not an optimizer option, 'problem.PARAM', "
                    f"'init.PARAM' or one of {list(RUN_AXES)}"
                )
        options.update(own)
        try:
            opt = preset(preset_name, **options)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where} with {options}: {e}") from None
        _check_run_fields(run)
        cfg = {
            "problem": problem,
            "method": label,
            "optimizer": opt.to_dict(),
            "init": init,
            "seed": seed,
            **run,
            "monitors": monitors,
            "results": results,
            "store_trajectory": self.store_trajectory,
            "backend": "numpy",
            "package_version": __version__,
        }
        check_problem(problem)
        check_init(init)
        from xsam_theory import provenance  # the code that computes the run is in its hash

        cfg["source_digest"] = provenance.source_digest(problem["name"])
        return cfg


def check_run_count(n_runs: int, *, force: bool = False) -> None:
    """Refuse (``ValueError``) a sweep of more than :data:`MAX_RUNS` runs unless ``force``."""
    if n_runs > MAX_RUNS and not force:
        raise ValueError(
            f"the sweep expands to {n_runs:,} runs, more than the limit of "
            f"{MAX_RUNS:,}; check the grid and seeds, or pass --force "
            "(force=True) to run it anyway"
        )


_SEEDS_FORM = "seeds must be a list of distinct non-negative integers, e.g. seeds = [0, 1, 2]"


def _check_optimizer_entries(optimizers: Any) -> None:
    """Check that ``optimizers`` lists at least one table with a ``preset``.

    Raises:
        ValueError: Naming the first entry that is not such a table.
    """
    if not optimizers:
        raise ValueError("optimizers must list at least one {'preset': ...} entry")
    for i, entry in enumerate(optimizers):
        if not isinstance(entry, dict) or "preset" not in entry:
            raise ValueError(f"optimizers[{i}] must be a table with a 'preset', got {entry!r}")


def _check_problem_seed_param(psp: Any, grid: Mapping[str, Any]) -> None:
    """Check ``problem_seed_param``: ``None``, or a problem parameter that no grid axis sets.

    Raises:
        ValueError: ``psp`` is not an identifier other than ``name``, or ``problem.<psp>`` is a
            grid axis too.
    """
    if psp is None:
        return
    if not isinstance(psp, str) or not psp.isidentifier() or psp == "name":
        raise ValueError(f"problem_seed_param must name a problem parameter, got {psp!r}")
    if f"problem.{psp}" in grid:
        raise ValueError(
            f"problem.{psp} is set by problem_seed_param; it cannot be a grid axis too"
        )


def _check_seeds(seeds: Any) -> None:
    """Validate the run seeds (see :class:`SweepSpec`); the message names the bad seed."""
    if not isinstance(seeds, list) or not seeds:
        raise ValueError(f"{_SEEDS_FORM}; got {seeds!r}")
    for i, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seeds[{i}] = {seed!r} is not an integer; {_SEEDS_FORM}")
        if seed < 0:
            raise ValueError(f"seeds[{i}] = {seed} is negative; {_SEEDS_FORM}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds!r}")


def _check_problem_seeds(problem: Mapping[str, Any], grid: Mapping[str, Any]) -> None:
    """Check that a problem's own ``seed`` is a valid random seed.

    The seed (fixed or a grid axis ``problem.seed``/``init.seed``) must be a non-negative
    integer (NumPy's seeding would fail on it only in the run).
    """
    values = [("problem.seed", problem["seed"])] if "seed" in problem else []
    for key in ("problem.seed", "init.seed"):
        axis = grid.get(key)
        if isinstance(axis, list):
            values += [(f"grid[{key!r}][{j}]", v) for j, v in enumerate(axis)]
    for where, value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{where} = {value!r}: a seed must be a non-negative integer")


def _nonfinite(obj: Any, path: str) -> tuple[str, float] | None:
    """The path and value of the first NaN or infinite number in ``obj`` (plain data)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return path, obj
    if isinstance(obj, dict):
        items = ((f"{path}.{k}" if path else str(k), v) for k, v in obj.items())
    elif isinstance(obj, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for sub_path, value in items:
        found = _nonfinite(value, sub_path)
        if found is not None:
            return found
    return None


def _check_finite(data: Mapping[str, Any]) -> None:
    """Refuse a NaN or an infinity anywhere in a spec, naming its place.

    The place is a path such as ``optimizers[0].grid.rho[1]``.
    """
    found = _nonfinite(dict(data), "")
    if found is not None:
        where, value = found
        raise ValueError(f"{where} is {value!r}: sweep spec values must be finite numbers")


def _option_names() -> set[str]:
    return {f.name for f in dataclasses.fields(OptimizerConfig)}


def _check_run_fields(run: Mapping[str, Any]) -> None:
    steps = run["steps"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    for key in ("batch_size", "iterate_every"):
        value = run[key]
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"{key} must be an integer >= 1 or absent, got {value!r}")


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: invalid TOML: {e}") from None


def load_spec(path: str | Path) -> SweepSpec:
    """Read a sweep spec from a ``.toml`` or ``.json`` file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no sweep spec file at {path}")
    if path.suffix == ".toml":
        data = _read_toml(path)
    elif path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: invalid JSON: {e}") from None
    else:
        raise ValueError(f"sweep spec files are .toml or .json, got {path.name!r}")
    try:
        return SweepSpec.from_dict(data)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
