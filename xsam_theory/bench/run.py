"""The driver: run the sections, evaluate the targets, print and write the report."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xsam_theory._version import __version__
from xsam_theory.bench.config import BenchConfig, environment, loadavg, torch_or_none
from xsam_theory.bench.kernels import bench_ceiling, bench_kernels
from xsam_theory.bench.lanczos_cost import bench_lanczos
from xsam_theory.bench.report import Report
from xsam_theory.bench.spectral import bench_eigen, bench_hessian
from xsam_theory.bench.steps import bench_steps
from xsam_theory.bench.system import bench_threads, bench_verify
from xsam_theory.bench.targets import evaluate_targets
from xsam_theory.io import atomic_write

__all__ = ["SECTIONS", "main", "run_bench"]

Out = Callable[[str], None]

#: section key -> (title, function writing its rows), in the order of ``DEFAULT_SECTIONS``
SECTIONS: dict[str, tuple[str, Callable[[Report, Out], None]]] = {
    "ceiling": ("GEMM ceiling", bench_ceiling),
    "kernels": ("Gradient and HVP", bench_kernels),
    "eigen": ("λ_max at init", bench_eigen),
    "lanczos": ("Lanczos against its HVPs and against ARPACK", bench_lanczos),
    "hessian": ("Exact Hessian of tiny", bench_hessian),
    "steps": ("Per-step cost", bench_steps),
    "threads": ("Thread pools (SciPy's ARPACK driving HVPs)", bench_threads),
    "verify": ("verify --quick", bench_verify),
}


def run_bench(cfg: BenchConfig, out: Out = print) -> Report:
    """Run the sections of ``cfg`` and evaluate the targets; prints as it goes.

    ``cfg.threads`` limits every BLAS/OpenMP pool (threadpoolctl) and torch's intra-op pool for
    the run, and restores them afterwards (default: leave them as they are).

    Args:
        cfg: what to measure.
        out: where each printed line goes.

    Returns:
        The report, with its rows and targets.
    """
    if cfg.threads is None:
        return _run_bench(cfg, out)
    from threadpoolctl import threadpool_limits

    torch = torch_or_none()
    saved = torch.get_num_threads() if torch is not None else None
    try:
        if torch is not None:
            torch.set_num_threads(cfg.threads)
        with threadpool_limits(limits=cfg.threads):
            return _run_bench(cfg, out)
    finally:
        if torch is not None and saved is not None:
            torch.set_num_threads(saved)


def _print_header(cfg: BenchConfig, e: dict[str, Any], out: Out) -> None:
    """The run's settings, CPU, versions and thread pools."""
    out(
        f"xsam-theory bench {__version__} — backend {cfg.backend}, device {e['device']}"
        f"{', quick' if cfg.quick else ''}"
        f"{f', pools limited to {cfg.threads} thread(s)' if cfg.threads else ''}, "
        f"{cfg.repeats} interleaved repeats (median [min–max])"
    )
    out(
        f"  {e['cpu']}, {e['cpu_count']} CPUs; numpy {e['numpy']}, scipy {e['scipy']}"
        + (f", torch {e['torch']}" if "torch" in e else ", torch not installed")
        + (f"; GPU {e['gpu']}" if "gpu" in e else "")
    )
    for p in e["pools"]:
        out(
            f"  pool: {p.get('internal_api')} {p.get('version') or ''} "
            f"{p.get('architecture') or ''} {p.get('num_threads')} threads "
            f"({p.get('filepath', '')})"
        )
    if "torch" in e:
        out(f"  torch: {e['torch_threads']} threads, BLAS {e['torch_blas']}")
    if e["env"]:
        out("  environment: " + ", ".join(f"{k}={v}" for k, v in e["env"].items()))


def _print_footer(report: Report, out: Out) -> None:
    """The targets, the run's duration and the load average (a warning when it was busy)."""
    e = report.env
    out("\nTargets, measured / target (each explained in docs/performance.md#perf-targets)")
    for t in report.targets:
        out(f"  {t['id']:<4} {t['status']:<8} {t['measured']}  /  {t['target']}")
    out(
        f"\nbench finished in {report.seconds:.0f} s; load average at start "
        f"{_fmt_load(e['loadavg_start'])}, at end {_fmt_load(e['loadavg_end'])} "
        f"on {e['cpu_count']} CPUs"
    )
    busy = [
        x
        for x in (e["loadavg_start"] or [])[:1] + (e["loadavg_end"] or [])[:1]
        if x > 0.5 * (e["cpu_count"] or 1) + 1
    ]
    if busy:
        out("  warning: other processes were competing for the cores; ratios are noisier")


def _run_bench(cfg: BenchConfig, out: Out) -> Report:
    t0 = time.perf_counter()
    if cfg.cuda:
        from xsam_theory.backend import resolve_backend

        resolve_backend("torch", cfg.device)
    report = Report(cfg, environment(cfg))
    _print_header(cfg, report.env, out)
    for key in cfg.sections:
        title, fn = SECTIONS[key]
        out(f"\n{title}")
        fn(report, out)
    report.targets = evaluate_targets(report)
    report.seconds = time.perf_counter() - t0
    report.env["loadavg_end"] = loadavg()
    _print_footer(report, out)
    return report


def main(
    backend: str = "numpy",
    device: str | None = None,
    quick: bool = False,
    json_path: str | None = None,
    models: Sequence[str] | None = None,
    repeats: int | None = None,
    threads: int | None = None,
) -> int:
    """The ``xsam-theory bench`` command: run, print, and write the JSON report if asked.

    Returns:
        The exit status, 0.
    """
    kw: dict[str, Any] = {}
    if models:
        kw["models"] = tuple(models)
    cfg = BenchConfig(
        backend=backend, device=device, quick=quick, repeats=repeats, threads=threads, **kw
    )
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
