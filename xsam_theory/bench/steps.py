r"""Section ``steps``: seconds per step of GD, SAM and X-SAM against the HVP-count bound (T5).

X-SAM with the reference schedule refreshes ``v`` every ``k`` steps with ``m`` power steps, so
over ``k`` steps it spends ``2k`` gradients and ``m`` HVPs where SAM spends ``2k`` gradients:
X-SAM/SAM is at most :math:`(2 + m r/k)/2`, ``r`` the HVP/gradient cost measured in the same run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xsam_theory.bench.config import MIN_SAMPLE_S, MINIBATCH, MODELS, BenchConfig, torch_or_none
from xsam_theory.bench.keys import Kernel, Library
from xsam_theory.bench.problem import (
    TorchStudent,
    n_params,
    problem_on_backend,
    reference_problem,
    sync_for,
)
from xsam_theory.bench.report import Report, key_row
from xsam_theory.bench.timing import Timing, fmt_s, interleaved

__all__ = ["STEP_KERNELS", "bench_steps"]

#: the optimizers compared, by their kernel
STEP_KERNELS = {Kernel.STEP_GD: "gd", Kernel.STEP_SAM: "sam", Kernel.STEP_XSAM: "xsam"}
Contenders = dict[tuple[Library, Kernel], Callable[[], Any]]


def bench_steps(report: Report, out: Callable[[str], None]) -> None:
    """Per-step cost of GD, SAM, X-SAM (reference schedule) and the HVP-count bound (T5)."""
    cfg = report.config
    models = [mo for mo in cfg.models if mo != "tiny"] or list(cfg.models)
    for model in models[:1] if cfg.quick else models:
        _steps_one(report, out, model)


def _package_contenders(cfg: BenchConfig, model: str, k: int) -> Contenders:
    """``k`` steps of the package's pure step per optimizer, its gradient and cached HVP."""
    from xsam_theory.optimizers import REFERENCE_OPTIONS, init_state, preset, step

    problem, w, batch = problem_on_backend(cfg, model)
    configs = {
        Kernel.STEP_GD: preset("gd", lr=0.05),
        Kernel.STEP_SAM: preset("sam", lr=0.05, rho=0.05),
        Kernel.STEP_XSAM: preset(
            "xsam",
            lr=0.05,
            rho=0.05,
            alpha=0.2,
            **{**REFERENCE_OPTIONS["xsam"], "steps_per_epoch": 10**6},
        ),
    }
    states = {kernel: init_state(problem, w, c, seed=0) for kernel, c in configs.items()}

    def period(kernel: Kernel) -> Callable[[], None]:
        def run() -> None:
            s = states[kernel]
            for _ in range(k):
                s, _info = step(problem, s, configs[kernel], batch)
            states[kernel] = s

        return run

    P = Library.PACKAGE
    c: Contenders = {}
    for kernel in configs:
        period(kernel)()  # move X-SAM past its plain-SAM start
        c[(P, kernel)] = period(kernel)
    # r: HVP/gradient cost ratio of the power iteration's HVPs (they reuse the caches)
    point = problem.at(w, batch)
    point.grad  # noqa: B018
    vv = point.grad * 0 + 1.0
    c[(P, Kernel.GRADIENT)] = lambda: problem.at(w, batch).grad
    c[(P, Kernel.HVP_CACHED)] = lambda: point.hvp(vv)
    return c


def _torch_contenders(cfg: BenchConfig, torch: Any, model: str, k: int) -> Contenders:
    """``k`` steps of ``torch.optim.SGD``, the torch ``SAM`` and ``XSAM``; gradient, HVP."""
    from xsam_theory.torch import SAM, XSAM

    problem = reference_problem(model)
    w = np.asarray(problem.init_params(1))
    dev = torch.device(cfg.device or "cpu")
    models = {
        kernel: TorchStudent(torch, problem, w, np.arange(MINIBATCH), dev)
        for kernel in STEP_KERNELS
    }
    opts = {
        Kernel.STEP_GD: torch.optim.SGD(models[Kernel.STEP_GD].params, lr=0.05),
        Kernel.STEP_SAM: SAM(models[Kernel.STEP_SAM].params, torch.optim.SGD, rho=0.05, lr=0.05),
        Kernel.STEP_XSAM: XSAM(
            models[Kernel.STEP_XSAM].params, torch.optim.SGD, rho=0.05, alpha=0.2, lr=0.05
        ),
    }

    def period(kernel: Kernel) -> Callable[[], None]:
        tm, opt = models[kernel], opts[kernel]

        def run() -> None:
            for _ in range(k):
                if kernel is Kernel.STEP_GD:
                    opt.zero_grad()
                    tm.loss().backward()
                    opt.step()
                else:
                    opt.step(tm.loss)

        return run

    T = Library.TORCH
    c: Contenders = {}
    for kernel in opts:
        period(kernel)()
        c[(T, kernel)] = period(kernel)
    tm = TorchStudent(torch, problem, w, np.arange(MINIBATCH), dev)  # untouched by the optimizers
    gg = tm.graph()
    vt = torch.ones(problem.dim, dtype=torch.float64, device=dev)
    c[(T, Kernel.GRADIENT)] = tm.grad
    c[(T, Kernel.HVP_CACHED)] = lambda: gg.hvp(vt)
    return c


def _steps_one(report: Report, out: Callable[[str], None], model: str) -> None:
    """Every contender on one model, interleaved; per library the rows and the bound row."""
    from xsam_theory.optimizers import REFERENCE_OPTIONS

    cfg = report.config
    torch = torch_or_none()
    k, m = REFERENCE_OPTIONS["xsam"]["refresh_every"], REFERENCE_OPTIONS["xsam"]["power_steps"]
    c = _package_contenders(cfg, model, k)
    if torch is not None:
        c.update(_torch_contenders(cfg, torch, model, k))
    times = interleaved(
        c, max(2, cfg.repeats), warmup=1, sync=sync_for(cfg), min_sample_s=MIN_SAMPLE_S
    )
    out(
        f"  {model} ({n_params(MODELS[model]):,} params), batch {MINIBATCH}, X-SAM "
        f"reference schedule k={k}, m={m}"
    )
    for lib in (Library.PACKAGE, Library.TORCH):
        if (lib, Kernel.GRADIENT) in times:
            _library_rows(report, out, model, lib, times, k, m)


def _library_rows(
    report: Report,
    out: Callable[[str], None],
    model: str,
    lib: Library,
    times: dict[tuple[Library, Kernel], Timing],
    k: int,
    m: int,
) -> None:
    """One library's per-step rows and its X-SAM/SAM against :math:`(2 + m r/k)/2`."""
    r = times[(lib, Kernel.HVP_CACHED)].median / times[(lib, Kernel.GRADIENT)].median
    per = {kernel: times[(lib, kernel)] for kernel in STEP_KERNELS}
    sam, gd = per[Kernel.STEP_SAM].median, per[Kernel.STEP_GD].median
    ratio = per[Kernel.STEP_XSAM].median / sam
    bound = (2.0 + m * r / k) / 2.0
    for kernel, t in per.items():
        report.add(
            "steps",
            key_row(
                lib,
                kernel,
                model=model,
                seconds_per_step=t.median / k,
                min_s=t.min / k,
                max_s=t.max / k,
                ratio_to_sam=t.median / sam,
            ),
        )
        out(
            f"    {lib.value:<8} {STEP_KERNELS[kernel]:<5} {fmt_s(t.median / k):>9}/step "
            f"[{fmt_s(t.min / k)}–{fmt_s(t.max / k)}]  {t.median / sam:5.2f}x SAM"
        )
    report.add(
        "steps",
        key_row(
            lib,
            Kernel.XSAM_OVER_SAM_BOUND,
            model=model,
            r=r,
            xsam_over_sam=ratio,
            bound=bound,
            ratio_to_bound=ratio / bound,
            sam_over_gd=sam / gd,
        ),
    )
    out(
        f"    {lib.value:<8} X-SAM/SAM = {ratio:.3f}, bound (2 + m·r/k)/2 = {bound:.3f} with "
        f"r = {r:.2f}: {ratio / bound:.3f}x the bound; SAM/GD = {sam / gd:.2f}"
    )
