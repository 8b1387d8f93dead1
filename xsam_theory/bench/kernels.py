"""Sections ``ceiling`` (GEMM) and ``kernels`` (gradient and HVPs per model and batch)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from xsam_theory.bench.config import MIN_SAMPLE_S, MINIBATCH, N_SAMPLES, BenchConfig, torch_or_none
from xsam_theory.bench.keys import Kernel, Library, label
from xsam_theory.bench.problem import (
    TorchStudent,
    gradient_flops,
    n_params,
    reference_problem,
    sync_for,
)
from xsam_theory.bench.report import Report, timed_row
from xsam_theory.bench.timing import interleaved

__all__ = ["bench_ceiling", "bench_kernels"]

Contenders = dict[tuple[Library, Kernel], Callable[[], Any]]
GEMM_N = 2048


def bench_ceiling(report: Report, out: Callable[[str], None]) -> None:
    """Square GEMM 2048³ in float64 in NumPy (CPU runs) and torch: the FLOP/s ceiling (T1)."""
    cfg = report.config
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((GEMM_N, GEMM_N)), rng.standard_normal((GEMM_N, GEMM_N))
    contenders: dict[Library, Callable[[], Any]] = {}
    if not cfg.cuda:
        contenders[Library.NUMPY] = lambda: A @ B
    torch = torch_or_none()
    if torch is not None:
        At = torch.tensor(A, device=cfg.device or "cpu")
        Bt = torch.tensor(B, device=cfg.device or "cpu")
        contenders[Library.TORCH] = lambda: At @ Bt
    times = interleaved(contenders, cfg.repeats, sync=sync_for(cfg), min_sample_s=MIN_SAMPLE_S)
    for lib, t in times.items():
        gflops = 2.0 * GEMM_N**3 / t.median / 1e9
        report.add("ceiling", timed_row(lib, Kernel.GEMM, t, gflops=gflops))
        out(f"  {lib.value:<8} GEMM {GEMM_N}³ f64  {t}  {gflops:6.1f} GFLOP/s")


def kernel_cases(cfg: BenchConfig) -> list[tuple[str, int | None]]:
    """``(model, batch size)`` pairs measured: full data and the minibatch (``None``: all).

    ``quick`` keeps the minibatch of ``tiny`` and the full data of ``medium``.
    """
    cases: list[tuple[str, int | None]] = []
    for model in cfg.models:
        batches: list[int | None] = [None, MINIBATCH]
        if cfg.quick and model == "tiny":
            batches = [MINIBATCH]
        if cfg.quick and model == "medium":
            batches = [None]
        cases += [(model, b) for b in batches]
    return cases


def bench_kernels(report: Report, out: Callable[[str], None]) -> None:
    """Gradient and HVP costs per model and batch (T1, T2, T6)."""
    for model, bsize in kernel_cases(report.config):
        _kernels_one(report, out, model, bsize)


def _numpy_contenders(
    problem: Any, w: np.ndarray, batch: Any, model: str, v: np.ndarray, V16: np.ndarray
) -> Contenders:
    """The package's NumPy gradient and R-operator HVPs (fresh, cached; 16 batched vs single)."""
    point = problem.at(w, batch)
    point.grad  # noqa: B018 - fills the caches the "cached" rows reuse
    N = Library.NUMPY
    c: Contenders = {
        (N, Kernel.GRADIENT): lambda: problem.at(w, batch).grad,
        (N, Kernel.HVP_FRESH): lambda: problem.at(w, batch).hvp(v),
        (N, Kernel.HVP_CACHED): lambda: point.hvp(v),
    }
    if model not in ("medium", "large"):  # T2's batched rows: the small model
        c[(N, Kernel.HVP_16_BATCHED)] = lambda: point.hvp_batch(V16)
        c[(N, Kernel.HVP_16_SINGLE)] = lambda: [point.hvp(u) for u in V16]
    return c


def _torch_contenders(
    cfg: BenchConfig, torch: Any, problem: Any, w: np.ndarray, batch: Any, model: str, v: np.ndarray
) -> Contenders:
    """Torch autograd (double backward, forward-over-reverse) and the package on torch."""
    import array_api_compat.torch as xpt

    dev = torch.device(cfg.device or "cpu")
    tm = TorchStudent(torch, problem, w, batch, dev)
    vt = torch.tensor(v, device=dev)
    gg = tm.graph()
    T, P = Library.TORCH, Library.PACKAGE_ON_TORCH
    c: Contenders = {
        (T, Kernel.GRADIENT): tm.grad,
        (T, Kernel.HVP_FRESH): lambda: tm.hvp_fresh(vt),
        (T, Kernel.HVP_CACHED): lambda: gg.hvp(vt),
    }
    if not (cfg.quick and model == "medium"):
        c[(T, Kernel.HVP_FORWARD_OVER_REVERSE)] = lambda: tm.hvp_forward_over_reverse(vt)
    pt = problem.convert(xpt, dev)
    wt = torch.tensor(w, device=dev)
    bt = None if batch is None else torch.as_tensor(batch, device=dev)
    tpoint = pt.at(wt, bt)
    tpoint.grad  # noqa: B018
    c[(P, Kernel.GRADIENT)] = lambda: pt.at(wt, bt).grad
    c[(P, Kernel.HVP_FRESH)] = lambda: pt.at(wt, bt).hvp(vt)
    c[(P, Kernel.HVP_CACHED)] = lambda: tpoint.hvp(vt)
    return c


def _kernels_one(report: Report, out: Callable[[str], None], model: str, bsize: int | None) -> None:
    """Every contender for one model and batch, interleaved; rows with the ratio to gradient."""
    cfg = report.config
    torch = torch_or_none()
    problem = reference_problem(model)
    n = N_SAMPLES if bsize is None else bsize
    batch = None if bsize is None else np.arange(bsize)
    w = np.asarray(problem.init_params(1))
    rng = np.random.default_rng(2)
    v = rng.standard_normal(problem.dim)
    V16 = rng.standard_normal((16, problem.dim))
    c: Contenders = {}
    if not cfg.cuda:
        c.update(_numpy_contenders(problem, w, batch, model, v, V16))
    if torch is not None:
        c.update(_torch_contenders(cfg, torch, problem, w, batch, model, v))
    times = interleaved(c, cfg.repeats, sync=sync_for(cfg), min_sample_s=MIN_SAMPLE_S)
    out(f"  {model} ({n_params(problem.widths):,} params), batch {n}")
    for (lib, kernel), t in times.items():
        ref = times.get((lib, Kernel.GRADIENT))
        ratio = t.median / ref.median if ref else math.nan
        row = timed_row(lib, kernel, t, model=model, batch=n, ratio_to_gradient=ratio)
        if kernel is Kernel.GRADIENT:
            row["gflops"] = gradient_flops(problem.widths, n) / t.median / 1e9
        report.add("kernels", row)
        extra = f"  {row['gflops']:6.1f} GFLOP/s" if "gflops" in row else ""
        out(f"    {label(lib, kernel):<42} {t!s:<28} {ratio:5.2f}x gradient{extra}")
