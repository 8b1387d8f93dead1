r"""``xsam-theory bench``: the reference problem of PERFORMANCE.md, measured side by side.

Everything that is compared is measured in one run with interleaved repeats (round ``r`` times
every contender once, in turn), and reported as the median with the min–max range, so that the
noise of a shared machine hits all contenders alike. Ratios are taken between medians of the same
run; absolute times across runs mean little.

Sections (each a list of rows; torch rows appear only when torch is installed):

1. ``ceiling``: square GEMM 2048³ (float64) in NumPy and torch.
2. ``kernels``: per model and batch, the gradient and HVPs: NumPy R-operator fresh and cached
   (reusing the gradient's forward/backward), batched over 16 directions vs 16 single HVPs;
   torch autograd gradient, double-backward HVP fresh and reusing the gradient graph,
   forward-over-reverse; the package's R-operator running on torch tensors.
3. ``eigen``: λ_max at init on the minibatch by the package's Lanczos (40 steps), ARPACK with
   ``tol=1e-6``, the reference power iteration (5 cold steps, and 40), and a PyHessian-style power
   iteration (stop when the relative change is below 1e-3): HVPs, relative error against a tight
   ARPACK reference (``tol=0``), orientation-free angle to its eigenvector, residual, seconds.
4. ``hessian``: the exact Hessian of the tiny model (batched R-operator assembly) and its
   spectrum (``eigvalsh``), on the minibatch and on all 2048 points.
5. ``steps``: seconds per step of GD, SAM and X-SAM (reference schedule, ``k = 5`` refresh period,
   ``m = 5`` power steps), in the package's pure step and in the torch optimizers, with X-SAM/SAM
   next to the HVP-count bound :math:`(2 + m r/k)/2` (``r`` = HVP/gradient cost measured here).
6. ``threads``: ARPACK driving torch HVPs with and without the BLAS limit (T8).
7. ``verify``: wall time of ``xsam-theory verify --quick`` (full runs only, when it exists).

Then each target T1–T8 is printed as ``measured / target``. Targets are reported, never asserted.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xsam_theory._version import __version__
from xsam_theory.io import atomic_write

__all__ = ["MODELS", "BenchConfig", "Timing", "interleaved", "main", "reference_problem",
           "run_bench"]

#: Student widths of the reference problem (PERFORMANCE.md) plus the GPU-only "large" one.
MODELS = {
    "tiny": (32, 64, 10),
    "small": (32, 256, 256, 10),
    "medium": (32, 1024, 1024, 10),
    "large": (32, 4096, 4096, 10),
}
N_SAMPLES = 2048
MINIBATCH = 128
#: shortest sample of a timing (see :func:`interleaved`)
MIN_SAMPLE_S = 0.05
DEFAULT_SECTIONS = ("ceiling", "kernels", "eigen", "hessian", "steps", "threads", "verify")
TEACHER = (32, 64, 10)


# -- timing ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Timing:
    """Seconds of one contender over the repeats of an interleaved measurement."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def to_dict(self) -> dict[str, Any]:
        return {"median_s": self.median, "min_s": self.min, "max_s": self.max,
                "repeats": len(self.samples)}

    def __str__(self) -> str:
        return f"{_fmt_s(self.median)} [{_fmt_s(self.min)}–{_fmt_s(self.max)}]"


def _fmt_s(s: float) -> str:
    if s >= 1.0:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} µs"


def interleaved(contenders: dict[str, Callable[[], Any]], repeats: int, *, warmup: int = 1,
                sync: Callable[[], None] | None = None,
                min_sample_s: float = 0.0) -> dict[str, Timing]:
    """Time every contender ``repeats`` times, in turn (round-robin), after ``warmup`` rounds.

    ``sync`` (e.g. ``torch.cuda.synchronize``) runs before the clock starts and before it stops.
    With ``min_sample_s > 0`` (and a warmup round), a contender faster than that is called
    ``n`` times per sample (``n`` from its warmup time) and the sample is the mean: on a shared
    machine a short call is either untouched or stretched by a whole scheduler time slice, while
    a longer sample absorbs its share of the competition, so ratios stay unbiased.
    """
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    loops = dict.fromkeys(contenders, 1)
    for r in range(warmup + repeats):
        for name, fn in contenders.items():
            n = loops[name]
            if sync:
                sync()
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            if sync:
                sync()
            dt = (time.perf_counter() - t0) / n
            if r >= warmup:
                samples[name].append(dt)
            elif min_sample_s > 0 and r == warmup - 1:
                loops[name] = max(1, min(1000, math.ceil(min_sample_s / max(dt, 1e-7))))
    return {name: Timing(tuple(s)) for name, s in samples.items()}


# -- configuration and environment ------------------------------------------------------------

@dataclass
class BenchConfig:
    """What to measure. ``quick`` shrinks repeats and sections to stay under 2 minutes."""

    backend: str = "numpy"
    device: str | None = None
    quick: bool = False
    models: tuple[str, ...] = ("tiny", "small", "medium")
    repeats: int | None = None
    threads: int | None = None
    sections: tuple[str, ...] = field(default_factory=lambda: DEFAULT_SECTIONS)
    verify_command: Sequence[str] | None = None

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in MODELS]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
        if self.backend not in ("numpy", "torch"):
            raise ValueError(f"backend must be 'numpy' or 'torch', got {self.backend!r}")
        if self.device is not None and str(self.device).startswith("cuda"):
            self.backend = "torch"
        if self.repeats is None:
            self.repeats = 3 if self.quick else 7
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        unknown = [s for s in self.sections if s not in SECTIONS]
        if unknown:
            raise ValueError(f"unknown section(s) {unknown}; known: {', '.join(SECTIONS)}")

    @property
    def cuda(self) -> bool:
        return self.device is not None and str(self.device).startswith("cuda")


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def environment(cfg: BenchConfig) -> dict[str, Any]:
    """Versions, CPU, BLAS vendors and thread pools (threadpoolctl), and the GPU if used."""
    import scipy

    from xsam_theory.threads import pool_info

    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    env: dict[str, Any] = {
        "package_version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "backend": cfg.backend,
        "device": str(cfg.device or "cpu"),
        "quick": cfg.quick,
        "repeats": cfg.repeats,
        "threads": cfg.threads,
        "models": list(cfg.models),
    }
    torch = _torch()
    if torch is not None:
        env["torch"] = torch.__version__
        env["torch_cuda_available"] = bool(torch.cuda.is_available())
        if cfg.cuda:
            env["gpu"] = torch.cuda.get_device_name(torch.device(cfg.device))
    env.update(pool_info())
    env["loadavg_start"] = _loadavg()
    return env


def _loadavg() -> list[float] | None:
    """The 1/5/15-minute load averages (other processes competing for the cores)."""
    try:
        return [float(x) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


# -- the reference problem ----------------------------------------------------------------------

def reference_problem(model: str) -> Any:
    """PERFORMANCE.md's problem: X ~ N(0, 1) of shape (2048, 32) (seed 0), labels the argmax of a
    random tanh teacher 32-64-10, mean softmax cross-entropy, student ``MODELS[model]``."""
    from xsam_theory.problems.mlp import MLP

    return MLP.teacher_student(MODELS[model], N_SAMPLES, teacher_widths=TEACHER, seed=0)


def _n_params(widths: Sequence[int]) -> int:
    return sum(o * i + o for i, o in zip(widths[:-1], widths[1:]))


def gradient_flops(widths: Sequence[int], n: int) -> float:
    """Multiply-add FLOPs (x2) of one gradient: forward, weight gradients, and the backward
    products into every hidden layer."""
    pairs = list(zip(widths[:-1], widths[1:]))
    fwd = sum(2.0 * n * i * o for i, o in pairs)
    back_in = sum(2.0 * n * i * o for i, o in pairs[1:])
    return 2.0 * fwd + back_in


class _Torch:
    """The student as an ``nn.Sequential`` on a device, with autograd gradient and HVPs."""

    def __init__(self, torch: Any, problem: Any, w: np.ndarray, batch: np.ndarray | None,
                 device: Any):
        from xsam_theory.torch.hvp import GradientGraph, forward_over_reverse_hvp

        self.torch = torch
        F = torch.nn.functional
        widths = problem.widths
        layers: list[Any] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            if i:
                layers.append(torch.nn.Tanh())
            layers.append(torch.nn.Linear(a, b))
        net = torch.nn.Sequential(*layers).double().to(device)
        torch.nn.utils.vector_to_parameters(torch.tensor(w, device=device), net.parameters())
        X = torch.tensor(np.asarray(problem.X), device=device)
        y = torch.tensor(np.asarray(problem.Y).argmax(1), device=device)
        if batch is not None:
            X, y = X[: len(batch)], y[: len(batch)]
        self.net, self.X, self.y = net, X, y
        self.params = list(net.parameters())
        self.names = [n for n, _ in net.named_parameters()]
        self.loss = lambda: F.cross_entropy(net(X), y)
        self._GG = GradientGraph
        self._for = forward_over_reverse_hvp
        self.F = F

    def grad(self) -> Any:
        return self.torch.autograd.grad(self.loss(), self.params)

    def graph(self) -> Any:
        return self._GG(self.loss(), self.params)

    def hvp_fresh(self, v: Any) -> Any:
        return self.graph().hvp(v)

    def hvp_forward_over_reverse(self, v: Any) -> Any:
        torch, F = self.torch, self.F

        def f(*ps: Any) -> Any:
            out = torch.func.functional_call(self.net, dict(zip(self.names, ps)), (self.X,))
            return F.cross_entropy(out, self.y)

        return self._for(f, self.params, v)


# -- sections -----------------------------------------------------------------------------------

@dataclass
class Report:
    config: BenchConfig
    env: dict[str, Any]
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, section: str, row: dict[str, Any]) -> None:
        self.sections.setdefault(section, []).append(row)

    def rows(self, section: str, **match: Any) -> list[dict[str, Any]]:
        return [r for r in self.sections.get(section, [])
                if all(r.get(k) == v for k, v in match.items())]

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.env, "sections": self.sections, "targets": self.targets,
                "seconds": self.seconds}


def _row(name: str, timing: Timing, **extra: Any) -> dict[str, Any]:
    return {"name": name, **timing.to_dict(), **extra}


def _sync_for(cfg: BenchConfig) -> Callable[[], None] | None:
    torch = _torch()
    if torch is not None and cfg.cuda:
        return torch.cuda.synchronize
    return None


def bench_ceiling(report: Report, out: Any) -> None:
    cfg = report.config
    n = 2048
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    contenders: dict[str, Callable[[], Any]] = {}
    if not cfg.cuda:
        contenders["numpy"] = lambda: A @ B
    torch = _torch()
    if torch is not None:
        At = torch.tensor(A, device=cfg.device or "cpu")
        Bt = torch.tensor(B, device=cfg.device or "cpu")
        contenders["torch"] = lambda: At @ Bt
    times = interleaved(contenders, cfg.repeats, sync=_sync_for(cfg), min_sample_s=MIN_SAMPLE_S)
    for name, t in times.items():
        gflops = 2.0 * n**3 / t.median / 1e9
        report.add("ceiling", _row(f"GEMM {n}^3 f64 {name}", t, library=name, gflops=gflops))
        out(f"  {name:<8} GEMM {n}³ f64  {t}  {gflops:6.1f} GFLOP/s")


def _kernel_cases(cfg: BenchConfig) -> list[tuple[str, int | None]]:
    cases: list[tuple[str, int | None]] = []
    for model in cfg.models:
        batches: list[int | None] = [None, MINIBATCH]
        if cfg.quick and model in ("tiny",):
            batches = [MINIBATCH]
        if cfg.quick and model == "medium":
            batches = [None]
        cases += [(model, b) for b in batches]
    return cases


def bench_kernels(report: Report, out: Any) -> None:
    """Gradient and HVP costs per model and batch (T1, T2, T6)."""
    for model, bsize in _kernel_cases(report.config):
        _kernels_one(report, out, model, bsize)


def _kernels_one(report: Report, out: Any, model: str, bsize: int | None) -> None:
    cfg = report.config
    torch = _torch()
    sync = _sync_for(cfg)
    problem = reference_problem(model)
    n = N_SAMPLES if bsize is None else bsize
    batch = None if bsize is None else np.arange(bsize)
    w = np.asarray(problem.init_params(1))
    rng = np.random.default_rng(2)
    v = rng.standard_normal(problem.dim)
    V16 = rng.standard_normal((16, problem.dim))
    c: dict[str, Callable[[], Any]] = {}
    if not cfg.cuda:
        point = problem.at(w, batch)
        point.grad  # noqa: B018 - fills the caches the "cached" rows reuse
        c["numpy gradient"] = lambda: problem.at(w, batch).grad
        c["numpy R-op HVP fresh"] = lambda: problem.at(w, batch).hvp(v)
        c["numpy R-op HVP cached"] = lambda: point.hvp(v)
        if model != "medium" and model != "large":   # T2's batched rows: the small model
            c["numpy R-op 16 HVPs batched (cached)"] = lambda: point.hvp_batch(V16)
            c["numpy R-op 16 single HVPs (cached)"] = lambda: [point.hvp(u) for u in V16]
    if torch is not None:
        import array_api_compat.torch as xpt

        dev = torch.device(cfg.device or "cpu")
        tm = _Torch(torch, problem, w, batch, dev)
        vt = torch.tensor(v, device=dev)
        gg = tm.graph()
        c["torch autograd gradient"] = tm.grad
        c["torch double-backward HVP fresh"] = lambda: tm.hvp_fresh(vt)
        c["torch double-backward HVP reusing graph"] = lambda: gg.hvp(vt)
        if not (cfg.quick and model == "medium"):
            c["torch forward-over-reverse HVP"] = lambda: tm.hvp_forward_over_reverse(vt)
        pt = problem.convert(xpt, dev)
        wt = torch.tensor(w, device=dev)
        bt = None if batch is None else torch.as_tensor(batch, device=dev)
        tpoint = pt.at(wt, bt)
        tpoint.grad  # noqa: B018
        c["package-on-torch gradient"] = lambda: pt.at(wt, bt).grad
        c["package-on-torch R-op HVP fresh"] = lambda: pt.at(wt, bt).hvp(vt)
        c["package-on-torch R-op HVP cached"] = lambda: tpoint.hvp(vt)
    times = interleaved(c, cfg.repeats, sync=sync, min_sample_s=MIN_SAMPLE_S)
    label = f"{model} ({_n_params(problem.widths):,} params), batch {n}"
    out(f"  {label}")
    base = {"numpy": times.get("numpy gradient"), "torch": times.get("torch autograd gradient"),
            "package-on-torch": times.get("package-on-torch gradient")}
    for name, t in times.items():
        lib = "numpy" if name.startswith("numpy") else (
            "package-on-torch" if name.startswith("package") else "torch")
        ref = base[lib]
        ratio = t.median / ref.median if ref else math.nan
        row = _row(name, t, model=model, batch=n, library=lib, ratio_to_gradient=ratio)
        if "gradient" in name:
            row["gflops"] = gradient_flops(problem.widths, n) / t.median / 1e9
        report.add("kernels", row)
        extra = f"  {row['gflops']:6.1f} GFLOP/s" if "gflops" in row else ""
        out(f"    {name:<42} {t!s:<28} {ratio:5.2f}x gradient{extra}")


def _pyhessian_power(op: Any, v0: Any, tol: float = 1e-3, max_iter: int = 100) -> \
        tuple[float, Any, int]:
    """PyHessian's top-eigenvalue loop: stop when |λ_prev − λ|/(|λ_prev| + 1e-6) < tol and return
    λ_prev (its behaviour), the last vector, and the HVPs spent."""
    xp = op.xp
    v = v0 / xp.linalg.vector_norm(v0)
    before = op.n_hvp
    eig = None
    for _ in range(max_iter):
        Hv = op.matvec(v)
        tmp = float(xp.vecdot(Hv, v))
        v = Hv / (xp.linalg.vector_norm(Hv) + 1e-6)
        if eig is not None and abs(eig - tmp) / (abs(eig) + 1e-6) < tol:
            break
        eig = tmp
    return float(eig if eig is not None else tmp), v, op.n_hvp - before


def _eigen_problem(cfg: BenchConfig, model: str) -> tuple[Any, Any, Any]:
    problem = reference_problem(model)
    w = problem.init_params(1)
    batch = np.arange(MINIBATCH)
    if cfg.backend == "torch":
        from xsam_theory.backend import resolve_backend

        xp, dev = resolve_backend("torch", cfg.device)
        problem = problem.convert(xp, dev)
        import torch

        w = torch.tensor(np.asarray(w), device=dev)
        batch = torch.as_tensor(batch, device=dev)
    return problem, w, batch


def bench_eigen(report: Report, out: Any) -> None:
    """λ_max at init on the minibatch (T3)."""
    for model in report.config.models:
        _eigen_one(report, out, model)


def _eigen_one(report: Report, out: Any, model: str) -> None:
    from xsam_theory.backend import to_numpy
    from xsam_theory.spectral import HessianOperator, lanczos, lanczos_eigsh, power_iteration
    from xsam_theory.vectors import angle_deg

    cfg = report.config
    sync = _sync_for(cfg)
    problem, w, batch = _eigen_problem(cfg, model)
    point = problem.at(w, batch)
    point.grad  # noqa: B018
    op = HessianOperator.from_point(point)
    t0 = time.perf_counter()
    ref = lanczos_eigsh(op, 1, tol=0.0, seed=0)
    t_ref = time.perf_counter() - t0
    lam, u = ref.eigenvalue, ref.eigenvector
    v0 = np.random.default_rng(1).standard_normal(problem.dim)
    methods: dict[str, Callable[[], Any]] = {
        "package Lanczos (40 steps)": lambda: lanczos(op, v0, 40),
        "ARPACK eigsh tol=1e-6": lambda: lanczos_eigsh(op, 1, v0=v0, tol=1e-6),
        "reference power iteration (5 cold steps)":
            lambda: power_iteration(op, v0, 5, rayleigh=True),
        "reference power iteration (40 steps)":
            lambda: power_iteration(op, v0, 39, rayleigh=True),
        "PyHessian-style power (tol 1e-3)": lambda: _pyhessian_power(op, _to(op, v0)),
    }
    if cfg.quick:           # the rows no target reads
        del methods["ARPACK eigsh tol=1e-6"], methods["reference power iteration (40 steps)"]
    if cfg.backend == "torch":
        from xsam_theory.torch.lanczos import lanczos_top

        methods["torch-native lanczos_top (40 steps, no host sync)"] = \
            lambda: lanczos_top(op.matvec, _to(op, v0), 40)
    results: dict[str, Any] = {}

    def run(name: str, f: Callable[[], Any]) -> Callable[[], None]:
        def g() -> None:
            before = op.n_hvp
            results[name] = (f(), op.n_hvp - before)
        return g

    times = interleaved({k: run(k, f) for k, f in methods.items()},
                        max(1, cfg.repeats // 2), warmup=0, sync=sync)
    out(f"  {model} ({problem.dim:,} params), batch {MINIBATCH}: tight reference "
        f"λ_max = {lam:.10g} (ARPACK tol=0, {ref.n_hvp} HVPs, residual "
        f"{ref.residuals[0]:.1e}, {t_ref:.2f} s)")
    report.add("eigen", {"name": "reference ARPACK tol=0", "model": model,
                         "eigenvalue": lam, "n_hvp": ref.n_hvp, "seconds": t_ref,
                         "residual": float(ref.residuals[0])})
    for name, t in times.items():
        res, n_hvp = results[name]
        if isinstance(res, tuple):
            est, vec, _ = res
            residual = math.nan
        else:
            est, vec = float(res.eigenvalue), res.eigenvector
            residual = float(res.residuals[0])
        rel = abs(est - lam) / abs(lam)
        angle = angle_deg(_to(op, to_numpy(vec)), u, oriented=False)
        report.add("eigen", _row(name, t, model=model, n_hvp=n_hvp, eigenvalue=est,
                                 rel_error=rel, angle_deg=angle, residual=residual))
        out(f"    {name:<42} {n_hvp:4d} HVPs  rel.err {rel:8.1e}  angle {angle:7.3f}°  "
            f"residual {residual:8.1e}  {t}")


def _to(op: Any, x: Any) -> Any:
    from xsam_theory.spectral.results import _to_backend

    return _to_backend(op, x)


def bench_hessian(report: Report, out: Any) -> None:
    """The exact Hessian of tiny and its spectrum (T4)."""
    cfg = report.config
    for bsize in [MINIBATCH] if cfg.quick else [MINIBATCH, None]:
        _hessian_one(report, out, bsize)


def _hessian_one(report: Report, out: Any, bsize: int | None) -> None:
    cfg = report.config
    problem, w, _ = _eigen_problem(cfg, "tiny")
    sync = _sync_for(cfg)
    batch = None
    if bsize is not None:
        batch = np.arange(bsize)
        if cfg.backend == "torch":
            import torch

            batch = torch.as_tensor(batch, device=w.device)
    n = N_SAMPLES if bsize is None else bsize
    holder: dict[str, Any] = {}
    xp = problem.xp

    def assemble() -> None:
        holder["H"] = problem.hessian(w, batch)

    def spectrum() -> None:
        holder["spec"] = xp.linalg.eigvalsh(holder["H"])

    times = interleaved({"assemble": assemble, "eigvalsh": spectrum},
                        max(1, cfg.repeats // 2), warmup=0, sync=sync)
    total = times["assemble"].median + times["eigvalsh"].median
    lam = float(xp.max(holder["spec"]))
    report.add("hessian", {"name": f"tiny exact Hessian + eigvalsh, batch {n}", "batch": n,
                           "assemble": times["assemble"].to_dict(),
                           "eigvalsh": times["eigvalsh"].to_dict(), "total_s": total,
                           "lambda_max": lam, "dim": problem.dim})
    out(f"  tiny ({problem.dim:,} params), batch {n}: assemble {times['assemble']}, "
        f"eigvalsh {times['eigvalsh']}, total {_fmt_s(total)}; λ_max = {lam:.10g}")


def bench_steps(report: Report, out: Any) -> None:
    """Per-step cost of GD, SAM, X-SAM (reference schedule) and the HVP-count bound (T5)."""
    cfg = report.config
    models = [mo for mo in cfg.models if mo != "tiny"] or list(cfg.models)
    for model in models[:1] if cfg.quick else models:
        _steps_one(report, out, model)


def _steps_one(report: Report, out: Any, model: str) -> None:
    from xsam_theory.optimizers import REFERENCE_OPTIONS, init_state, preset, step

    cfg = report.config
    sync = _sync_for(cfg)
    torch = _torch()
    k, m = REFERENCE_OPTIONS["xsam"]["refresh_every"], REFERENCE_OPTIONS["xsam"]["power_steps"]
    problem, w, batch = _eigen_problem(cfg, model)
    configs = {
        "gd": preset("gd", lr=0.05),
        "sam": preset("sam", lr=0.05, rho=0.05),
        "xsam": preset("xsam", lr=0.05, rho=0.05, alpha=0.2,
                       **{**REFERENCE_OPTIONS["xsam"], "steps_per_epoch": 10**6}),
    }
    states = {name: init_state(problem, w, c, seed=0) for name, c in configs.items()}

    def period(name: str) -> Callable[[], None]:
        def run() -> None:
            s = states[name]
            for _ in range(k):
                s, _info = step(problem, s, configs[name], batch)
            states[name] = s
        return run

    for name in configs:                    # move X-SAM past its plain-SAM start
        period(name)()
    c = {f"package {name} ({k} steps)": period(name) for name in configs}
    # r: HVP/gradient cost ratio of the power iteration's HVPs (they reuse the caches)
    point = problem.at(w, batch)
    point.grad  # noqa: B018
    vv = point.grad * 0 + 1.0
    c["package gradient"] = lambda: problem.at(w, batch).grad
    c["package HVP cached"] = lambda: point.hvp(vv)
    if torch is not None:
        c.update(_torch_step_contenders(cfg, torch, model, k))
    times = interleaved(c, max(2, cfg.repeats), warmup=1, sync=sync, min_sample_s=MIN_SAMPLE_S)
    lib_rows = [("package", times["package gradient"], times["package HVP cached"])]
    if "torch gradient" in times:
        lib_rows.append(("torch", times["torch gradient"], times["torch HVP reusing graph"]))
    out(f"  {model} ({problem.dim:,} params), batch {MINIBATCH}, X-SAM reference "
        f"schedule k={k}, m={m}")
    for lib, tg, th in lib_rows:
        r = th.median / tg.median
        per = {name: times[f"{lib} {name} ({k} steps)"] for name in configs}
        sam = per["sam"].median
        ratio = per["xsam"].median / sam
        bound = (2.0 + m * r / k) / 2.0
        for name, t in per.items():
            report.add("steps", {"name": f"{lib} {name} step", "model": model,
                                 "library": lib, "seconds_per_step": t.median / k,
                                 "min_s": t.min / k, "max_s": t.max / k,
                                 "ratio_to_sam": t.median / sam})
            out(f"    {lib:<8} {name:<5} {_fmt_s(t.median / k):>9}/step "
                f"[{_fmt_s(t.min / k)}–{_fmt_s(t.max / k)}]  {t.median / sam:5.2f}x SAM")
        report.add("steps", {"name": f"{lib} X-SAM/SAM vs bound", "model": model,
                             "library": lib, "r": r, "xsam_over_sam": ratio, "bound": bound,
                             "ratio_to_bound": ratio / bound,
                             "sam_over_gd": sam / per["gd"].median})
        out(f"    {lib:<8} X-SAM/SAM = {ratio:.3f}, bound (2 + m·r/k)/2 = {bound:.3f} with "
            f"r = {r:.2f}: {ratio / bound:.3f}x the bound; SAM/GD = "
            f"{sam / per['gd'].median:.2f}")


def _torch_step_contenders(cfg: BenchConfig, torch: Any, model: str,
                           k: int) -> dict[str, Callable[[], Any]]:
    from xsam_theory.torch import SAM, XSAM

    problem = reference_problem(model)
    w = np.asarray(problem.init_params(1))
    dev = torch.device(cfg.device or "cpu")
    out: dict[str, Callable[[], Any]] = {}
    models = {name: _Torch(torch, problem, w, np.arange(MINIBATCH), dev)
              for name in ("gd", "sam", "xsam")}
    opts = {
        "gd": torch.optim.SGD(models["gd"].params, lr=0.05),
        "sam": SAM(models["sam"].params, torch.optim.SGD, rho=0.05, lr=0.05),
        "xsam": XSAM(models["xsam"].params, torch.optim.SGD, rho=0.05, alpha=0.2, lr=0.05),
    }

    def period(name: str) -> Callable[[], None]:
        tm, opt = models[name], opts[name]

        def run() -> None:
            for _ in range(k):
                if name == "gd":
                    opt.zero_grad()
                    tm.loss().backward()
                    opt.step()
                else:
                    opt.step(tm.loss)
        return run

    for name in opts:
        period(name)()
        out[f"torch {name} ({k} steps)"] = period(name)
    tm = _Torch(torch, problem, w, np.arange(MINIBATCH), dev)   # untouched by the optimizers
    gg = tm.graph()
    vt = torch.ones(problem.dim, dtype=torch.float64, device=dev)
    out["torch gradient"] = tm.grad
    out["torch HVP reusing graph"] = lambda: gg.hvp(vt)
    return out


def bench_threads(report: Report, out: Any) -> None:
    """ARPACK driving torch and NumPy HVPs, with the BLAS limit (the package's default) and
    without (T8)."""
    cfg = report.config
    if cfg.cuda:
        return
    import importlib

    from xsam_theory.spectral import HessianOperator, lanczos_eigsh

    lanczos_module = importlib.import_module("xsam_theory.spectral.lanczos")
    model = "small" if any(m != "tiny" for m in cfg.models) else "tiny"
    problem = reference_problem(model)
    w = np.asarray(problem.init_params(1))
    points = {"numpy": problem.at(w, np.arange(MINIBATCH))}
    torch = _torch()
    if torch is not None:
        import array_api_compat.torch as xpt

        points["torch"] = problem.convert(xpt).at(torch.tensor(w), torch.arange(MINIBATCH))
    for point in points.values():
        point.grad  # noqa: B018

    def eigsh(point: Any, limited: bool) -> Callable[[], None]:
        def run() -> None:
            op = HessianOperator.from_point(point)
            if limited:
                lanczos_eigsh(op, 1, tol=1e-6)
                return
            saved = lanczos_module.limit_blas_for
            lanczos_module.limit_blas_for = lambda xp: contextlib.nullcontext()
            try:
                lanczos_eigsh(op, 1, tol=1e-6)
            finally:
                lanczos_module.limit_blas_for = saved
        return run

    contenders = {}
    for lib, point in points.items():
        contenders[f"eigsh on {lib} HVPs, BLAS limited (default)"] = eigsh(point, True)
        contenders[f"eigsh on {lib} HVPs, pools unlimited"] = eigsh(point, False)
    times = interleaved(contenders, max(2, cfg.repeats // 2 + 1), warmup=1)
    out(f"  {model}, batch {MINIBATCH}, ARPACK tol=1e-6")
    for name, t in times.items():
        report.add("threads", _row(name, t, model=model, batch=MINIBATCH))
        out(f"    {name:<46} {t}")
    for lib in points:
        a = times[f"eigsh on {lib} HVPs, BLAS limited (default)"]
        b = times[f"eigsh on {lib} HVPs, pools unlimited"]
        report.add("threads", {"name": f"{lib}: unlimited / limited", "library": lib,
                               "ratio": b.median / a.median})
        out(f"    {lib}: unlimited / limited = {b.median / a.median:.2f}x")


def bench_verify(report: Report, out: Any) -> None:
    cfg = report.config
    if cfg.quick:
        return
    cmd = list(cfg.verify_command or [sys.executable, "-m", "xsam_theory", "verify", "--quick",
                                      "--quiet", "--out"])
    try:
        import xsam_theory.verify  # noqa: F401
    except ImportError:
        out("    verify: not available in this version")
        return
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        proc = subprocess.run([*cmd, tmp], capture_output=True, text=True, check=False)
        dt = time.perf_counter() - t0
    report.add("verify", {"name": "verify --quick", "seconds": dt, "exit_status": proc.returncode})
    out(f"    xsam-theory verify --quick: {dt:.1f} s (exit status {proc.returncode})")


SECTIONS: dict[str, tuple[str, Callable[[Report, Any], None]]] = {
    "ceiling": ("GEMM ceiling", bench_ceiling),
    "kernels": ("Gradient and HVP", bench_kernels),
    "eigen": ("λ_max at init", bench_eigen),
    "hessian": ("Exact Hessian of tiny", bench_hessian),
    "steps": ("Per-step cost", bench_steps),
    "threads": ("Thread pools (SciPy's ARPACK driving HVPs)", bench_threads),
    "verify": ("verify --quick", bench_verify),
}


# -- targets ------------------------------------------------------------------------------------

def _status(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT met")


def evaluate_targets(report: Report) -> list[dict[str, Any]]:
    """T1–T8 as measured / target, from the rows of this run."""
    T: list[dict[str, Any]] = []

    def add(tid: str, measured: str, target: str, ok: bool | None, **numbers: Any) -> None:
        T.append({"id": tid, "measured": measured, "target": target, "status": _status(ok),
                  **numbers})

    k = {(r["model"], r["batch"], r["name"]): r for r in report.sections.get("kernels", [])}
    ceiling = {r["library"]: r["gflops"] for r in report.sections.get("ceiling", [])}
    # T1
    ng = k.get(("medium", N_SAMPLES, "numpy gradient"))
    tg = k.get(("medium", N_SAMPLES, "torch autograd gradient"))
    if ng and tg and "numpy" in ceiling:
        ratio = ng["median_s"] / tg["median_s"]
        frac = ng["gflops"] / ceiling["numpy"]
        add("T1", f"{ratio:.2f}x torch, {100 * frac:.0f}% of GEMM ceiling",
            "<= 1.15x torch, >= 70%", ratio <= 1.15 and frac >= 0.70,
            ratio_to_torch=ratio, ceiling_fraction=frac)
    else:
        add("T1", "not measured (needs the medium model, NumPy and torch on the CPU)",
            "<= 1.15x torch, >= 70%", None)
    # T2 (small model; worst over the batches measured)
    cached, fresh, batched = [], [], []
    for (model, b, name), r in k.items():
        if model != "small":
            continue
        if name == "numpy R-op HVP cached":
            cached.append(r["ratio_to_gradient"])
        elif name == "numpy R-op HVP fresh":
            fresh.append(r["ratio_to_gradient"])
        elif name == "numpy R-op 16 HVPs batched (cached)":
            single = k[(model, b, "numpy R-op 16 single HVPs (cached)")]
            batched.append(r["median_s"] / single["median_s"])
    if cached:
        ok = max(cached) <= 2.2 and max(fresh) <= 3.0 and max(batched) <= 0.8
        add("T2", f"cached {max(cached):.2f}x, fresh {max(fresh):.2f}x gradient; 16 batched = "
            f"{max(batched):.2f}x 16 single (small, worst batch)",
            "<= 2.2x, <= 3.0x, <= 0.8x", ok, cached=max(cached), fresh=max(fresh),
            batched=max(batched))
    else:
        add("T2", "not measured (needs the small model on NumPy)", "<= 2.2x, <= 3.0x, <= 0.8x",
            None)
    # T3
    lz = [r for r in report.sections.get("eigen", []) if r["name"].startswith("package Lanczos")]
    if lz:
        worst = max(r["rel_error"] for r in lz)
        hv = max(r["n_hvp"] for r in lz)
        res = max(r["residual"] for r in lz)
        models = ", ".join(f"{r['model']} {r['rel_error']:.0e}" for r in lz)
        add("T3", f"rel. error <= {worst:.1e} with {hv} HVPs ({models}); residual <= {res:.1e}",
            "<= 1e-6 within <= 40 HVPs", worst <= 1e-6 and hv <= 40, rel_error=worst, n_hvp=hv)
    else:
        add("T3", "not measured", "<= 1e-6 within <= 40 HVPs", None)
    # T4 (judged on the minibatch, the batch of every spectral and step row; all data shown too)
    hs = {h["batch"]: h["total_s"] for h in report.sections.get("hessian", [])}
    if MINIBATCH in hs:
        parts = ", ".join(f"batch {b}: {t:.2f} s" for b, t in hs.items())
        add("T4", parts, "<= 1 s (batch 128)", hs[MINIBATCH] <= 1.0, seconds=hs[MINIBATCH])
    else:
        add("T4", "not measured", "<= 1 s (batch 128)", None)
    # T5
    st = [r for r in report.sections.get("steps", []) if "ratio_to_bound" in r]
    if st:
        parts = ", ".join(f"{r['library']} {r['model']} {r['ratio_to_bound']:.2f}" for r in st)
        worst = max(r["ratio_to_bound"] for r in st)
        add("T5", f"X-SAM/SAM = {parts} x bound", "<= 1.05x bound", worst <= 1.05,
            ratio_to_bound=worst)
    else:
        add("T5", "not measured", "<= 1.05x bound", None)
    # T6
    t6 = []
    for (model, b, name), r in k.items():
        if name == "package-on-torch R-op HVP cached":
            own = k[(model, b, "torch double-backward HVP reusing graph")]
            fr = k[(model, b, "package-on-torch R-op HVP fresh")]
            own_fr = k[(model, b, "torch double-backward HVP fresh")]
            t6.append((model, b, r["median_s"] / own["median_s"],
                       fr["median_s"] / own_fr["median_s"]))
    if t6:
        worst = max(max(a, b) for _, _, a, b in t6)
        parts = ", ".join(f"{m}/{b}: {a:.2f} cached, {f:.2f} fresh" for m, b, a, f in t6)
        add("T6", f"package R-op / torch double backward = {parts}", "<= 1.0x", worst <= 1.0,
            ratio=worst)
    else:
        add("T6", "not measured (needs torch and the kernels section)", "<= 1.0x", None)
    # T7
    vr = report.sections.get("verify", [])
    if vr:
        add("T7", f"verify --quick {vr[0]['seconds']:.1f} s", "<= 60 s (quick)",
            vr[0]["seconds"] <= 60 and vr[0]["exit_status"] in (0, 1),
            seconds=vr[0]["seconds"])
    else:
        add("T7", "not measured in this run (full bench only; see docs/benchmarks.md)",
            "verify --quick <= 60 s, default <= 5 min, --full <= 30 min; pytest <= 5 min", None)
    # T8
    th = {r["library"]: r["ratio"] for r in report.sections.get("threads", []) if "ratio" in r}
    if th:
        parts = ", ".join(f"{lib} {ratio:.1f}x" for lib, ratio in th.items())
        add("T8", f"competing BLAS pools limited inside eigsh (unlimited / limited: {parts})",
            "limited", True, **{f"ratio_{lib}": ratio for lib, ratio in th.items()})
    else:
        add("T8", "limited by construction (xsam_theory.threads.limit_blas_for); not timed here",
            "limited", True)
    return T


# -- driver ------------------------------------------------------------------------------------

def run_bench(cfg: BenchConfig, out: Callable[[str], None] = print) -> Report:
    """Run the sections of ``cfg`` and evaluate the targets; prints as it goes.

    ``cfg.threads`` limits every BLAS/OpenMP pool (threadpoolctl) and torch's intra-op pool for
    the run (default: leave them as they are, 2 on the reference machine).
    """
    if cfg.threads is None:
        return _run_bench(cfg, out)
    from threadpoolctl import threadpool_limits

    torch = _torch()
    saved = torch.get_num_threads() if torch is not None else None
    try:
        if torch is not None:
            torch.set_num_threads(cfg.threads)
        with threadpool_limits(limits=cfg.threads):
            return _run_bench(cfg, out)
    finally:
        if torch is not None and saved is not None:
            torch.set_num_threads(saved)


def _run_bench(cfg: BenchConfig, out: Callable[[str], None]) -> Report:
    t0 = time.perf_counter()
    torch = _torch()
    if cfg.cuda:
        from xsam_theory.backend import resolve_backend

        resolve_backend("torch", cfg.device)
    report = Report(cfg, environment(cfg))
    e = report.env
    out(f"xsam-theory bench {__version__} — backend {cfg.backend}, device {e['device']}"
        f"{', quick' if cfg.quick else ''}"
        f"{f', pools limited to {cfg.threads} thread(s)' if cfg.threads else ''}, "
        f"{cfg.repeats} interleaved repeats (median [min–max])")
    out(f"  {e['cpu']}, {e['cpu_count']} CPUs; numpy {e['numpy']}, scipy {e['scipy']}"
        + (f", torch {e['torch']}" if "torch" in e else ", torch not installed")
        + (f"; GPU {e['gpu']}" if "gpu" in e else ""))
    for p in e["pools"]:
        out(f"  pool: {p.get('internal_api')} {p.get('version') or ''} "
            f"{p.get('architecture') or ''} {p.get('num_threads')} threads "
            f"({p.get('filepath', '')})")
    if torch is not None:
        out(f"  torch: {e['torch_threads']} threads, BLAS {e['torch_blas']}")
    if e["env"]:
        out("  environment: " + ", ".join(f"{k}={v}" for k, v in e["env"].items()))
    for key in cfg.sections:
        title, fn = SECTIONS[key]
        out(f"\n{title}")
        fn(report, out)
    report.targets = evaluate_targets(report)
    out("\nTargets (PERFORMANCE.md), measured / target")
    for t in report.targets:
        out(f"  {t['id']}  {t['status']:<8} {t['measured']}  /  {t['target']}")
    report.seconds = time.perf_counter() - t0
    e["loadavg_end"] = _loadavg()
    out(f"\nbench finished in {report.seconds:.0f} s; load average at start "
        f"{_fmt_load(e['loadavg_start'])}, at end {_fmt_load(e['loadavg_end'])} "
        f"on {e['cpu_count']} CPUs")
    busy = [x for x in (e["loadavg_start"] or [])[:1] + (e["loadavg_end"] or [])[:1]
            if x > 0.5 * (e["cpu_count"] or 1) + 1]
    if busy:
        out("  warning: other processes were competing for the cores; ratios are noisier")
    return report


def main(backend: str = "numpy", device: str | None = None, quick: bool = False,
         json_path: str | None = None, models: Sequence[str] | None = None,
         repeats: int | None = None, threads: int | None = None) -> int:
    """The ``xsam-theory bench`` command."""
    kw: dict[str, Any] = {}
    if models:
        kw["models"] = tuple(models)
    cfg = BenchConfig(backend=backend, device=device, quick=quick, repeats=repeats,
                      threads=threads, **kw)
    report = run_bench(cfg, lambda s: print(s, flush=True))
    if json_path:
        data = json.dumps(report.to_dict(), indent=1, default=_json_default).encode()
        atomic_write(json_path, lambda f: f.write(data))
        print(f"wrote {os.fspath(json_path)}")
    return 0


def _fmt_load(load: list[float] | None) -> str:
    return "n/a" if not load else "/".join(f"{x:.2f}" for x in load)


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, BenchConfig):
        return x.__dict__
    return str(x)
