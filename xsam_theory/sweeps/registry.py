"""What a run configuration names, and how a worker builds it.

Problems, initial points, monitors and scalar results.

Everything here works on plain JSON data, so a run configuration can be shipped to another
process or machine as it is — no pickled closures.

Problems are named by :data:`PROBLEMS` (the keyword arguments of each entry are those of the
constructor it wraps) or by an importable ``"package.module:function"``; register more with
:func:`register_problem` in a module that the workers import too. What a spec may name:
docs/sweeps.md.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xsam_theory.optimizers.step import StepInfo
from xsam_theory.problems import (
    MLP,
    Factorization,
    Problem,
    Quadratic,
    Ravine,
    TwoBlockFactorization,
)
from xsam_theory.trajectory import SpectralMonitor, TraceMonitor, Trajectory

__all__ = [
    "BUILTIN_RESULTS",
    "MONITORS",
    "PROBLEMS",
    "REDUCERS",
    "ProblemFactory",
    "build_monitors",
    "build_problem",
    "check_init",
    "check_problem",
    "default_results",
    "extract_results",
    "initial_point",
    "problem_factory",
    "register_problem",
    "resolve_monitors",
    "resolve_results",
]


def _array(x: Any) -> Any:
    return None if x is None else np.asarray(x, dtype=float)


@dataclass(frozen=True)
class ProblemFactory:
    """A named way to build a problem from JSON parameters.

    Attributes:
        build: ``build(**params) -> Problem``; its signature is what a spec may pass.
        init: ``init(problem, rng_seed) -> w0`` for ``init.kind = "default"`` (``None``: a
            standard normal draw).
    """

    build: Callable[..., Problem]
    init: Callable[[Problem, int], Any] | None = None


def _quadratic(
    eigenvalues: Sequence[float], seed: int | None = 0, b: Sequence[float] | None = None
) -> Quadratic:
    return Quadratic.from_spectrum(eigenvalues, seed=seed, b=_array(b))


def _quadratic_diagonal(
    eigenvalues: Sequence[float], b: Sequence[float] | None = None
) -> Quadratic:
    return Quadratic.diagonal_from(eigenvalues, b=_array(b))


def _quadratic_repeated_top(
    dim: int,
    top: float = 10.0,
    multiplicity: int = 2,
    rest: Sequence[float] = (0.1, 5.0),
    seed: int = 0,
) -> Quadratic:
    return Quadratic.repeated_top(
        dim, top=top, multiplicity=multiplicity, rest=tuple(rest), seed=seed
    )


def _quadratic_dominant_negative(
    dim: int,
    top: float = 5.0,
    negative: float = -7.0,
    rest: Sequence[float] = (-2.0, 3.0),
    seed: int = 0,
) -> Quadratic:
    return Quadratic.dominant_negative(dim, top=top, negative=negative, rest=tuple(rest), seed=seed)


def _factorization(n: int = 1, depth: int = 2) -> Factorization:
    return Factorization(n, depth)


def _two_block() -> TwoBlockFactorization:
    return TwoBlockFactorization()


def _ravine(lam0: float = 5.0) -> Ravine:
    return Ravine(lam0)


def _mlp_teacher_student(
    widths: Sequence[int],
    n_samples: int = 512,
    teacher_widths: Sequence[int] | None = None,
    loss: str = "cross_entropy",
    activation: str = "tanh",
    label_noise: float = 0.0,
    l2: float = 0.0,
    seed: int = 0,
) -> MLP:
    return MLP.teacher_student(
        widths,
        n_samples,
        teacher_widths=teacher_widths,
        loss=loss,
        activation=activation,
        label_noise=label_noise,
        l2=l2,
        seed=seed,
    )


def _mlp_init(problem: Problem, seed: int) -> Any:
    return problem.init_params(seed)  # type: ignore[attr-defined]


#: name -> factory; ``problem.seed`` (where a factory has one) is the problem's own seed (basis,
#: data), fixed across the runs of a sweep unless a grid varies it.
PROBLEMS: dict[str, ProblemFactory] = {
    "quadratic": ProblemFactory(_quadratic),
    "quadratic_diagonal": ProblemFactory(_quadratic_diagonal),
    "quadratic_repeated_top": ProblemFactory(_quadratic_repeated_top),
    "quadratic_dominant_negative": ProblemFactory(_quadratic_dominant_negative),
    "factorization": ProblemFactory(_factorization),
    "two_block_factorization": ProblemFactory(_two_block),
    "ravine": ProblemFactory(_ravine),
    "mlp_teacher_student": ProblemFactory(_mlp_teacher_student, _mlp_init),
}


def register_problem(
    name: str, build: Callable[..., Problem], *, init: Callable[[Problem, int], Any] | None = None
) -> None:
    """Add a named problem factory.

    Workers in other processes see it only if the module that calls this is imported there too;
    an importable ``"module:function"`` name needs nothing.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"problem names are identifiers, got {name!r}")
    PROBLEMS[name] = ProblemFactory(build, init)


def problem_factory(name: Any) -> ProblemFactory:
    """The :class:`ProblemFactory` a problem name refers to (``ValueError`` if none)."""
    if not isinstance(name, str):
        raise ValueError(f"problem.name must be a string, got {name!r}")
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            build = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"problem {name!r}: cannot import it ({e})") from None
        init = getattr(build, "default_init", None)
        return ProblemFactory(build, init)
    try:
        return PROBLEMS[name]
    except KeyError:
        raise ValueError(
            f"problem.name must be one of {sorted(PROBLEMS)} or "
            f"'package.module:function', got {name!r}"
        ) from None


def check_problem(spec: Mapping[str, Any]) -> None:
    """Validate a problem table without building it (name known, parameters accepted)."""
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ValueError(f"problem must be a table with a 'name', got {spec!r}")
    factory = problem_factory(spec["name"])
    params = {k: v for k, v in spec.items() if k != "name"}
    try:
        inspect.signature(factory.build).bind(**params)
    except TypeError as e:
        raise ValueError(
            f"problem {spec['name']!r}: bad parameters {sorted(params)}: {e}; "
            f"it takes {inspect.signature(factory.build)}"
        ) from None


def build_problem(spec: Mapping[str, Any]) -> Problem:
    """The problem a ``{"name": ..., **params}`` table describes.

    >>> build_problem({"name": "ravine", "lam0": 2.0})
    Ravine(lam0=2.0)
    """
    check_problem(spec)
    factory = problem_factory(spec["name"])
    return factory.build(**{k: v for k, v in spec.items() if k != "name"})


INIT_KINDS = {"default": {"seed", "scale"}, "normal": {"seed", "scale"}, "explicit": {"w0"}}


def check_init(spec: Mapping[str, Any]) -> None:
    """Validate an ``init`` table."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"init must be a table, got {spec!r}")
    kind = spec.get("kind", "default")
    if kind not in INIT_KINDS:
        raise ValueError(f"init.kind must be one of {sorted(INIT_KINDS)}, got {kind!r}")
    extra = set(spec) - {"kind"} - INIT_KINDS[kind]
    if extra:
        raise ValueError(
            f"init kind {kind!r} takes {sorted(INIT_KINDS[kind])}, got also {sorted(extra)}"
        )
    if kind == "explicit" and "w0" not in spec:
        raise ValueError("init kind 'explicit' needs w0 = [...]")
    seed = spec.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"init.seed must be an integer >= 0, got {seed!r}")
    scale = spec.get("scale", 1.0)
    if (
        isinstance(scale, bool)
        or not isinstance(scale, (int, float))
        or not (math.isfinite(scale) and scale > 0)
    ):
        raise ValueError(f"init.scale must be a positive number, got {scale!r}")


def initial_point(
    problem: Problem,
    spec: Mapping[str, Any],
    run_seed: int,
    *,
    default_init: Callable[[Problem, int], Any] | None = None,
) -> np.ndarray:
    """The initial point an ``init`` table describes, drawn from ``init.seed``.

    The seed defaults to the run seed. ``default``: ``default_init(problem, seed)`` (the factory's
    own init) if given and no ``scale`` is set, else like ``normal``; ``normal``: ``scale`` times
    a standard normal vector; ``explicit``: ``w0`` as given.
    """
    check_init(spec)
    kind = spec.get("kind", "default")
    if kind == "explicit":
        w0 = np.asarray(spec["w0"], dtype=np.float64)
        if w0.shape != (problem.dim,):
            raise ValueError(f"init.w0 must have {problem.dim} entries, got shape {w0.shape}")
        return w0
    seed = spec.get("seed", run_seed)
    if kind == "default" and "scale" not in spec and default_init is not None:
        return np.asarray(default_init(problem, seed), dtype=np.float64)
    rng = np.random.default_rng([seed, 0x1417])
    return float(spec.get("scale", 1.0)) * rng.standard_normal(problem.dim)


# -- monitors -----------------------------------------------------------------------------------

#: type name -> (class, the quantities it records)
MONITORS: dict[str, tuple[type, tuple[str, ...]]] = {
    "spectral": (
        SpectralMonitor,
        ("lambda_max", "angle_g_top", "angle_g_top_free", "angle_v_top_free", "n_hvp", "step"),
    ),
    "trace": (TraceMonitor, ("trace", "trace_stderr", "n_hvp", "step")),
}


def resolve_monitors(specs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate monitor tables and fill in every parameter (the form stored in a run config)."""
    out = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, Mapping) or spec.get("type") not in MONITORS:
            raise ValueError(f"monitors[{i}] needs type = one of {sorted(MONITORS)}, got {spec!r}")
        cls = MONITORS[spec["type"]][0]
        params = {k: v for k, v in spec.items() if k != "type"}
        try:
            monitor = cls(**params)
        except TypeError as e:
            raise ValueError(f"monitors[{i}] ({spec['type']}): {e}") from None
        out.append({"type": spec["type"], **dataclasses.asdict(monitor)})
    names = [m["name"] for m in out]
    if len(set(names)) != len(names):
        raise ValueError(f"monitor names must be distinct, got {names} (set name = ...)")
    return out


def build_monitors(specs: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Monitor objects from resolved monitor tables."""
    return [MONITORS[s["type"]][0](**{k: v for k, v in s.items() if k != "type"}) for s in specs]


# -- scalar results -----------------------------------------------------------------------------

#: reducers over a recorded series
REDUCERS: dict[str, Callable[[np.ndarray], float]] = {
    "last": lambda a: float(a[-1]),
    "first": lambda a: float(a[0]),
    "min": lambda a: float(np.min(a)),
    "max": lambda a: float(np.max(a)),
    "mean": lambda a: float(np.mean(a)),
    "median": lambda a: float(np.median(a)),
}

#: results computed at the final iterate (full data), or aliases of series expressions
BUILTIN_RESULTS = {
    "final_loss": "full-data loss at the last iterate",
    "final_grad_norm": "full-data gradient norm at the last iterate",
    "final_accuracy": "full-data accuracy at the last iterate (MLP only)",
    "n_steps": "completed steps",
    "min_loss": "alias of diag.loss:min",
    "final_lambda_max": "alias of spectral.lambda_max:last",
    "final_trace": "alias of trace.trace:last",
}
_ALIASES = {
    "min_loss": "diag.loss:min",
    "final_lambda_max": "spectral.lambda_max:last",
    "final_trace": "trace.trace:last",
}
#: ``final_loss@SPLIT`` / ``final_accuracy@SPLIT``: the final iterate evaluated on the problem's
#: held-out split ``SPLIT``, i.e. on ``problem.held_out[SPLIT]`` (a problem on other data with the
#: same parameters, e.g. :func:`xsam_theory.data.mlp_problem`'s ``"val"`` and ``"test"``)
_HELD_OUT = re.compile(r"(?P<what>final_loss|final_accuracy)@(?P<split>[A-Za-z_]\w*)")
_EXPR = re.compile(r"(?P<source>[A-Za-z_][\w-]*)\.(?P<quantity>\w+)(?::(?P<reducer>\w+))?")


def _check_expression(expr: str, monitors: Sequence[Mapping[str, Any]]) -> str:
    expr = _ALIASES.get(expr, expr)
    if expr in BUILTIN_RESULTS or (isinstance(expr, str) and _HELD_OUT.fullmatch(expr)):
        return expr
    m = _EXPR.fullmatch(expr) if isinstance(expr, str) else None
    if m is None:
        raise ValueError(
            f"result {expr!r} is neither one of {sorted(BUILTIN_RESULTS)}, "
            "final_loss@SPLIT / final_accuracy@SPLIT (a held-out split), nor "
            "SOURCE.QUANTITY[:REDUCER] (e.g. 'spectral.lambda_max:last', "
            "'diag.angle_d_v:mean')"
        )
    source, quantity, reducer = m["source"], m["quantity"], m["reducer"] or "last"
    if reducer not in REDUCERS:
        raise ValueError(f"result {expr!r}: reducer must be one of {sorted(REDUCERS)}")
    if source == "diag":
        known: Sequence[str] = StepInfo.FIELDS
    else:
        by_name = {mon["name"]: mon for mon in monitors}
        if source not in by_name:
            raise ValueError(
                f"result {expr!r} needs a monitor named {source!r}; the sweep has "
                f"{sorted(by_name) or 'none'} (and 'diag' for per-step values)"
            )
        known = MONITORS[by_name[source]["type"]][1]
    if quantity not in known:
        raise ValueError(f"result {expr!r}: {source!r} records {sorted(known)}")
    return f"{source}.{quantity}:{reducer}"


def resolve_results(
    results: Sequence[str] | Mapping[str, str], monitors: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """``{column: canonical expression}`` from a list of names/expressions or a table.

    An expression is a built-in name (:data:`BUILTIN_RESULTS`), ``final_loss@SPLIT`` or
    ``final_accuracy@SPLIT`` (the final iterate on ``problem.held_out[SPLIT]``, for problems that
    carry held-out splits, e.g. :func:`xsam_theory.data.mlp_problem`), or
    ``SOURCE.QUANTITY[:REDUCER]``
    with ``SOURCE`` = ``diag`` (the per-step :class:`~xsam_theory.optimizers.StepInfo` fields) or
    a monitor's name, and ``REDUCER`` one of :data:`REDUCERS` (default ``last``).
    """
    if isinstance(results, Mapping):
        items = list(results.items())
    elif isinstance(results, (list, tuple)):
        items = [(r, r) for r in results]
    else:
        raise ValueError(f"results must be a list of names or a table, got {results!r}")
    out = {}
    for column, expr in items:
        if not isinstance(column, str) or not column:
            raise ValueError(f"result column names are non-empty strings, got {column!r}")
        out[column] = _check_expression(expr, monitors)
    return out


def default_results(monitors: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Final loss and gradient norm, plus λ_max / trace when a monitor of that name exists."""
    names = {m["name"] for m in monitors}
    columns = ["final_loss", "final_grad_norm"]
    columns += [
        c for c, n in (("final_lambda_max", "spectral"), ("final_trace", "trace")) if n in names
    ]
    return resolve_results(columns, monitors)


def extract_results(
    problem: Problem, traj: Trajectory, results: Mapping[str, str]
) -> dict[str, float | int]:
    """Evaluate resolved result expressions on a finished trajectory.

    NaN for an empty series.
    """
    out: dict[str, float | int] = {}
    point = None
    for column, expr in results.items():
        if expr == "n_steps":
            out[column] = traj.n_steps
            continue
        if expr in ("final_loss", "final_grad_norm"):
            point = point or problem.at(traj.final_w)
            value = point.loss if expr == "final_loss" else np.linalg.norm(point.grad)
            out[column] = float(value)
            continue
        held = _HELD_OUT.fullmatch(expr)
        if held is not None:
            splits = getattr(problem, "held_out", None) or {}
            if held["split"] not in splits:
                raise ValueError(
                    f"result {expr!r}: the problem has no held-out split "
                    f"{held['split']!r} (it has {sorted(splits) or 'none'})"
                )
            other = splits[held["split"]]
            if held["what"] == "final_loss":
                out[column] = float(other.loss(traj.final_w))
            elif not isinstance(other, MLP):
                raise ValueError(f"{expr} needs an MLP problem, got {type(other).__name__}")
            else:
                out[column] = float(other.accuracy(traj.final_w))
            continue
        if expr == "final_accuracy":
            if not isinstance(problem, MLP):
                raise ValueError(
                    f"final_accuracy needs an MLP problem, got {type(problem).__name__}"
                )
            out[column] = float(problem.accuracy(traj.final_w))
            continue
        source, rest = expr.split(".", 1)
        quantity, reducer = rest.split(":")
        series = traj.diagnostics if source == "diag" else traj.monitors.get(source, {})
        values = np.asarray(series.get(quantity, ()), dtype=float)
        out[column] = REDUCERS[reducer](values) if values.size else math.nan
    return out
