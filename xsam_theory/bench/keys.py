"""The keys of the bench's rows: which kernel, on which library.

Every row a section writes carries ``kernel`` (a :class:`Kernel` value) and, where a section
compares libraries, ``library`` (a :class:`Library` value), plus ``model`` and ``batch`` where
they vary. The targets find their measurements by these keys (:class:`RowKey`), never by the
display label in the row's ``name``: :data:`LABELS` may be reworded freely.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = ["LABELS", "Kernel", "Library", "RowKey", "label"]


class Library(str, Enum):
    """Who computes a kernel."""

    NUMPY = "numpy"
    TORCH = "torch"
    #: the package's own code (R-operator, problems) running on torch tensors
    PACKAGE_ON_TORCH = "package-on-torch"
    #: the package's pure step on the configured backend
    PACKAGE = "package"


class Kernel(str, Enum):
    """What is measured."""

    GEMM = "gemm"
    GRADIENT = "gradient"
    HVP_FRESH = "hvp_fresh"
    #: reusing the gradient's forward/backward (torch: the gradient's graph)
    HVP_CACHED = "hvp_cached"
    HVP_16_BATCHED = "hvp_16_batched"
    HVP_16_SINGLE = "hvp_16_single"
    HVP_FORWARD_OVER_REVERSE = "hvp_forward_over_reverse"
    EIGEN_REFERENCE = "eigen_arpack_tol0"
    EIGEN_LANCZOS = "eigen_lanczos_40"
    EIGEN_ARPACK = "eigen_arpack_tol1e-6"
    EIGEN_POWER_5 = "eigen_power_5"
    EIGEN_POWER_40 = "eigen_power_40"
    EIGEN_PYHESSIAN = "eigen_pyhessian_power"
    EIGEN_TORCH_LANCZOS = "eigen_torch_lanczos_top_40"
    HESSIAN = "exact_hessian"
    STEP_GD = "step_gd"
    STEP_SAM = "step_sam"
    STEP_XSAM = "step_xsam"
    #: the package's steps with their vector diagnostics (norms, angles) on
    STEP_SAM_DIAGNOSTICS = "step_sam_diagnostics"
    STEP_XSAM_DIAGNOSTICS = "step_xsam_diagnostics"
    XSAM_OVER_SAM_BOUND = "xsam_over_sam_vs_bound"
    XSAM_OVER_SAM_BOUND_DIAGNOSTICS = "xsam_over_sam_vs_bound_diagnostics"
    #: ``steps`` Lanczos steps, and the same number of HVPs alone (section ``lanczos``)
    LANCZOS_STEPS = "lanczos_steps"
    LANCZOS_HVPS = "lanczos_hvps_alone"
    LANCZOS_STEPS_OVER_HVPS = "lanczos_steps_over_hvps"
    #: the package's Lanczos to a tolerance (``top_eigenpair``) and ARPACK to the same one
    LANCZOS_TOL = "lanczos_tol"
    ARPACK_TOL = "arpack_tol"
    LANCZOS_TOL_OVER_ARPACK = "lanczos_tol_over_arpack"
    EIGSH_LIMITED = "eigsh_blas_limited"
    EIGSH_UNLIMITED = "eigsh_pools_unlimited"
    EIGSH_UNLIMITED_OVER_LIMITED = "eigsh_unlimited_over_limited"
    VERIFY_QUICK = "verify_quick"


_N, _T, _P = Library.NUMPY, Library.TORCH, Library.PACKAGE_ON_TORCH
#: display labels, by (library, kernel); ``None``: no library. Wording only: nothing reads them.
LABELS: dict[tuple[Library | None, Kernel], str] = {
    (_N, Kernel.GEMM): "GEMM 2048^3 f64 numpy",
    (_T, Kernel.GEMM): "GEMM 2048^3 f64 torch",
    (_N, Kernel.GRADIENT): "numpy gradient",
    (_N, Kernel.HVP_FRESH): "numpy R-op HVP fresh",
    (_N, Kernel.HVP_CACHED): "numpy R-op HVP cached",
    (_N, Kernel.HVP_16_BATCHED): "numpy R-op 16 HVPs batched (cached)",
    (_N, Kernel.HVP_16_SINGLE): "numpy R-op 16 single HVPs (cached)",
    (_T, Kernel.GRADIENT): "torch autograd gradient",
    (_T, Kernel.HVP_FRESH): "torch double-backward HVP fresh",
    (_T, Kernel.HVP_CACHED): "torch double-backward HVP reusing graph",
    (_T, Kernel.HVP_FORWARD_OVER_REVERSE): "torch forward-over-reverse HVP",
    (_P, Kernel.GRADIENT): "package-on-torch gradient",
    (_P, Kernel.HVP_FRESH): "package-on-torch R-op HVP fresh",
    (_P, Kernel.HVP_CACHED): "package-on-torch R-op HVP cached",
    **{
        (lib, kernel): f"{lib.value} {name} step"
        for lib in (Library.PACKAGE, _T)
        for kernel, name in (
            (Kernel.STEP_GD, "gd"),
            (Kernel.STEP_SAM, "sam"),
            (Kernel.STEP_XSAM, "xsam"),
        )
    },
    (Library.PACKAGE, Kernel.STEP_SAM_DIAGNOSTICS): "package sam step with diagnostics",
    (Library.PACKAGE, Kernel.STEP_XSAM_DIAGNOSTICS): "package xsam step with diagnostics",
    (Library.PACKAGE, Kernel.XSAM_OVER_SAM_BOUND): "package X-SAM/SAM vs bound",
    (
        Library.PACKAGE,
        Kernel.XSAM_OVER_SAM_BOUND_DIAGNOSTICS,
    ): "package X-SAM/SAM vs bound, diagnostics on",
    (_T, Kernel.XSAM_OVER_SAM_BOUND): "torch X-SAM/SAM vs bound",
    **{
        (lib, kernel): text.format(lib=lib.value)
        for lib in (_N, _T)
        for kernel, text in (
            (Kernel.EIGSH_LIMITED, "eigsh on {lib} HVPs, BLAS limited (default)"),
            (Kernel.EIGSH_UNLIMITED, "eigsh on {lib} HVPs, pools unlimited"),
            (Kernel.EIGSH_UNLIMITED_OVER_LIMITED, "{lib}: unlimited / limited"),
        )
    },
    (None, Kernel.EIGEN_REFERENCE): "reference ARPACK tol=0",
    (None, Kernel.EIGEN_LANCZOS): "package Lanczos (40 steps)",
    (None, Kernel.EIGEN_ARPACK): "ARPACK eigsh tol=1e-6",
    (None, Kernel.EIGEN_POWER_5): "reference power iteration (5 cold steps)",
    (None, Kernel.EIGEN_POWER_40): "reference power iteration (40 steps)",
    (None, Kernel.EIGEN_PYHESSIAN): "PyHessian-style power (tol 1e-3)",
    (None, Kernel.EIGEN_TORCH_LANCZOS): "torch-native lanczos_top (40 steps, no host sync)",
    (None, Kernel.HESSIAN): "tiny exact Hessian + eigvalsh",
    (None, Kernel.VERIFY_QUICK): "verify --quick",
    (None, Kernel.LANCZOS_STEPS): "package Lanczos, fixed steps",
    (None, Kernel.LANCZOS_HVPS): "its HVPs alone",
    (None, Kernel.LANCZOS_STEPS_OVER_HVPS): "Lanczos / its HVPs",
    (None, Kernel.LANCZOS_TOL): "top_eigenpair lanczos (default tol)",
    (None, Kernel.ARPACK_TOL): "ARPACK eigsh to the same tol",
    (None, Kernel.LANCZOS_TOL_OVER_ARPACK): "Lanczos / ARPACK at one tol",
}


def label(library: Library | None, kernel: Kernel) -> str:
    """The display label of ``(library, kernel)``.

    Args:
        library: who computes it (``None`` where a section does not compare libraries).
        kernel: what is measured.

    Returns:
        ``LABELS[(library, kernel)]``, or ``"<library> <kernel>"`` for a pair without one.
    """
    found = LABELS.get((library, kernel))
    if found is not None:
        return found
    return " ".join(k.value for k in (library, kernel) if k is not None)


@dataclass(frozen=True)
class RowKey:
    """Which row of a report holds a measurement.

    A row matches when its ``kernel`` equals :attr:`kernel` and every other field that is not
    ``None`` equals the row's field of the same name (enums compared by value).
    """

    section: str
    kernel: Kernel
    library: Library | None = None
    model: str | None = None
    batch: int | None = None

    def fields(self) -> dict[str, Any]:
        """The row fields this key fixes.

        Returns:
            ``{"kernel": ..., "library": ..., "model": ..., "batch": ...}`` without the ``None``
            ones; enums as their values.
        """
        out: dict[str, Any] = {"kernel": self.kernel.value}
        if self.library is not None:
            out["library"] = self.library.value
        if self.model is not None:
            out["model"] = self.model
        if self.batch is not None:
            out["batch"] = self.batch
        return out

    def __str__(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.fields().items())
        return f"{self.section}[{where}]"
