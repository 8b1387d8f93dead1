r"""``xsam-theory bench``: the reference problem's costs, measured side by side.

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
4. ``lanczos``: the package's 40-step Lanczos against its HVPs alone, timed side by side (small
   and medium, 128 and 2048 points; ``quick`` leaves out medium), and ``top_eigenpair``'s
   Lanczos to ``tol=1e-6`` against ARPACK to the same tolerance (seconds, HVPs, residuals).
5. ``hessian``: the exact Hessian of the tiny model (batched R-operator assembly) and its
   spectrum (``eigvalsh``), on the minibatch and on all 2048 points.
6. ``steps``: seconds per step of GD, SAM and X-SAM (reference schedule, ``k = 5`` refresh period,
   ``m = 5`` power steps), in the package's pure step (without its vector diagnostics, and SAM
   and X-SAM also with them) and in the torch optimizers, with X-SAM/SAM next to the HVP-count
   bound :math:`(2 + m r/k)/2` (``r`` = HVP/gradient cost measured here).
7. ``threads``: ARPACK driving torch HVPs with and without the BLAS limit (T8).
8. ``verify``: wall time of ``xsam-theory verify --quick`` (full runs only).

Every row carries its keys, ``kernel`` (:class:`~xsam_theory.bench.keys.Kernel`) and where
libraries are compared ``library`` (:class:`~xsam_theory.bench.keys.Library`); its ``name`` is a
display label only. Each target T1–T11 (:mod:`xsam_theory.bench.targets`) finds its rows by key
and is printed as ``measured / target``; a missing row is reported as not measured, by its key.
Targets are reported, never asserted. The reference problem, the anchors, every target and the
last full runs: docs/performance.md (#perf-reference-problem, #perf-anchors, #perf-T1 ...
#perf-T11, #perf-method, #perf-last-run).

Modules: ``keys`` (row keys and labels), ``timing`` (interleaved timing), ``config`` (what to
measure, the environment), ``problem`` (the reference problem), ``report``, one module per group
of sections (``kernels``, ``spectral``, ``lanczos_cost``, ``steps``, ``system``), ``targets``
and ``run`` (driver).
"""

from __future__ import annotations

from xsam_theory.bench.config import DEFAULT_SECTIONS, MINIBATCH, MODELS, N_SAMPLES, BenchConfig
from xsam_theory.bench.keys import LABELS, Kernel, Library, RowKey
from xsam_theory.bench.problem import gradient_flops, reference_problem
from xsam_theory.bench.report import NotMeasured, Report
from xsam_theory.bench.run import SECTIONS, main, run_bench
from xsam_theory.bench.targets import TARGETS, evaluate_targets
from xsam_theory.bench.timing import Timing, interleaved

__all__ = [
    "DEFAULT_SECTIONS",
    "LABELS",
    "MINIBATCH",
    "MODELS",
    "N_SAMPLES",
    "SECTIONS",
    "TARGETS",
    "BenchConfig",
    "Kernel",
    "Library",
    "NotMeasured",
    "Report",
    "RowKey",
    "Timing",
    "evaluate_targets",
    "gradient_flops",
    "interleaved",
    "main",
    "reference_problem",
    "run_bench",
]
