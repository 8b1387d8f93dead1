r"""Section ``steps``: seconds per step of GD, SAM and X-SAM against the HVP-count bound (T5).

X-SAM with the reference schedule refreshes ``v`` every ``k`` steps with ``m`` power steps, so
over ``k`` steps it spends ``2k`` gradients and ``m`` HVPs where SAM spends ``2k`` gradients:
X-SAM/SAM is at most :math:`(2 + m r/k)/2`, ``r`` the HVP/gradient cost measured in the same run.

The package's steps are timed with ``diagnostics=False`` (the bench records no per-step norms or
angles; the iterates are the same) and, for SAM and X-SAM, also with their vector diagnostics on
(the default of :func:`~xsam_theory.optimizers.step`): the difference is that fixed per-step
vector work, and a second bound row gives X-SAM/SAM with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xsam_theory.bench.config import MIN_SAMPLE_S, MINIBATCH, MODELS, BenchConfig, torch_or_none
from xsam_theory.bench.keys import Kernel, Library, label
from xsam_theory.bench.problem import (
    TorchStudent,
    n_params,
    problem_on_backend,
    reference_problem,
    sync_for,
)
from xsam_theory.bench.report import Report, key_row
from xsam_theory.bench.timing import Timing, fmt_s, interleaved

__all__ = ["DIAGNOSTICS_ON", "STEP_KERNELS", "STEP_NAMES", "bench_steps"]

#: the optimizers compared, by their kernel
STEP_KERNELS = {Kernel.STEP_GD: "gd", Kernel.STEP_SAM: "sam", Kernel.STEP_XSAM: "xsam"}
Contenders = dict[tuple[Library, Kernel], Callable[[], Any]]


def bench_steps(report: Report, out: Callable[[str], None]) -> None:
    """Per-step cost of GD, SAM, X-SAM (reference schedule) and the HVP-count bound (T5)."""
    cfg = report.config
    models = [mo for mo in cfg.models if mo != "tiny"] or list(cfg.models)
    for model in models[:1] if cfg.quick else models:
        _steps_one(report, out, model)


#: the package's steps timed with their vector diagnostics on (the default of ``step``), next to
#: the same steps with ``diagnostics=False`` (what T5 reads: the bench records no diagnostics)
DIAGNOSTICS_ON = {
    Kernel.STEP_SAM_DIAGNOSTICS: Kernel.STEP_SAM,
    Kernel.STEP_XSAM_DIAGNOSTICS: Kernel.STEP_XSAM,
}


def _package_configs() -> dict[Kernel, Any]:
    """GD, SAM and X-SAM (reference schedule, epoch counter never restarting) by kernel."""
    from xsam_theory.optimizers import REFERENCE_OPTIONS, preset

    return {
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


def _package_contenders(cfg: BenchConfig, model: str, k: int) -> Contenders:
    """``k`` steps of the package's pure step per optimizer, its gradient and cached HVP.

    GD, SAM and X-SAM run with ``diagnostics=False``; SAM and X-SAM also with their vector
    diagnostics (:data:`DIAGNOSTICS_ON`), to measure that fixed per-step vector work.
    """
    from xsam_theory.optimizers import init_state, step

    problem, w, batch = problem_on_backend(cfg, model)
    configs = _package_configs()
    runs = {kernel: (kernel, False) for kernel in configs}
    runs.update({on: (off, True) for on, off in DIAGNOSTICS_ON.items()})
    states = {kernel: init_state(problem, w, configs[c], seed=0) for kernel, (c, _) in runs.items()}

    def period(kernel: Kernel) -> Callable[[], None]:
        config, diagnostics = configs[runs[kernel][0]], runs[kernel][1]

        def run() -> None:
            s = states[kernel]
            for _ in range(k):
                s, _info = step(problem, s, config, batch, diagnostics=diagnostics)
            states[kernel] = s

        return run

    P = Library.PACKAGE
    c: Contenders = {}
    for kernel in runs:
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
        # one epoch longer than any timing: the bench times whole refresh periods of k steps
        Kernel.STEP_XSAM: XSAM(
            models[Kernel.STEP_XSAM].params,
            torch.optim.SGD,
            rho=0.05,
            alpha=0.2,
            lr=0.05,
            steps_per_epoch=1_000_000,
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


#: the step rows' short names, by kernel
STEP_NAMES = {
    **STEP_KERNELS,
    Kernel.STEP_SAM_DIAGNOSTICS: "sam+diagnostics",
    Kernel.STEP_XSAM_DIAGNOSTICS: "xsam+diagnostics",
}


def _library_rows(
    report: Report,
    out: Callable[[str], None],
    model: str,
    lib: Library,
    times: dict[tuple[Library, Kernel], Timing],
    k: int,
    m: int,
) -> None:
    """One library's per-step rows and its X-SAM/SAM against :math:`(2 + m r/k)/2`.

    With the package's diagnostics rows, a second bound row gives X-SAM/SAM with the vector
    diagnostics on (the default step), and the diagnostics' seconds per step.
    """
    r = times[(lib, Kernel.HVP_CACHED)].median / times[(lib, Kernel.GRADIENT)].median
    bound = (2.0 + m * r / k) / 2.0
    sam = times[(lib, Kernel.STEP_SAM)].median
    for kernel, name in STEP_NAMES.items():
        if (lib, kernel) in times:
            _step_row(report, out, model, lib, kernel, name, times[(lib, kernel)], k, sam)
    gd = times[(lib, Kernel.STEP_GD)].median
    xsam = times[(lib, Kernel.STEP_XSAM)].median
    _bound_row(
        report,
        out,
        (model, lib, Kernel.XSAM_OVER_SAM_BOUND),
        xsam / sam,
        bound,
        r,
        sam_over_gd=sam / gd,
    )
    if (lib, Kernel.STEP_XSAM_DIAGNOSTICS) in times:
        on = times[(lib, Kernel.STEP_XSAM_DIAGNOSTICS)].median
        sam_on = times[(lib, Kernel.STEP_SAM_DIAGNOSTICS)].median
        _bound_row(
            report,
            out,
            (model, lib, Kernel.XSAM_OVER_SAM_BOUND_DIAGNOSTICS),
            on / sam_on,
            bound,
            r,
            diagnostics_s_per_step=(on - xsam) / k,
            diagnostics_fraction=(on - xsam) / on,
        )


def _step_row(
    report: Report,
    out: Callable[[str], None],
    model: str,
    lib: Library,
    kernel: Kernel,
    name: str,
    t: Timing,
    k: int,
    sam: float,
) -> None:
    """One optimizer's seconds per step (``k`` steps per sample) and its ratio to SAM."""
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
        f"    {lib.value:<8} {name:<16} {fmt_s(t.median / k):>9}/step "
        f"[{fmt_s(t.min / k)}–{fmt_s(t.max / k)}]  {t.median / sam:5.2f}x SAM"
    )


def _bound_row(
    report: Report,
    out: Callable[[str], None],
    key: tuple[str, Library, Kernel],
    ratio: float,
    bound: float,
    r: float,
    **extra: float,
) -> None:
    """X-SAM/SAM next to the bound :math:`(2 + m r/k)/2`; ``key`` is ``(model, lib, kernel)``."""
    model, lib, kernel = key
    report.add(
        "steps",
        key_row(
            lib,
            kernel,
            model=model,
            r=r,
            xsam_over_sam=ratio,
            bound=bound,
            ratio_to_bound=ratio / bound,
            **extra,
        ),
    )
    notes = []
    if "sam_over_gd" in extra:
        notes.append(f"SAM/GD = {extra['sam_over_gd']:.2f}")
    if "diagnostics_s_per_step" in extra:
        notes.append(
            f"the vector diagnostics cost {fmt_s(extra['diagnostics_s_per_step'])}/step "
            f"({100 * extra['diagnostics_fraction']:.1f}% of the X-SAM step)"
        )
    out(
        f"    {label(lib, kernel)}: X-SAM/SAM = {ratio:.3f}, bound (2 + m·r/k)/2 = "
        f"{bound:.3f} with r = {r:.2f}: {ratio / bound:.3f}x the bound; {'; '.join(notes)}"
    )
