"""Reusable derivative checks for any :class:`~xsam_theory.problems.base.Problem`.

``from derivative_checks import check_problem_derivatives`` (pytest puts ``tests/`` on
``sys.path`` under its default ``prepend`` import mode, since ``tests/`` has no ``__init__.py``).

All checks run the problem in its own array namespace (NumPy, ``array_api_strict``, torch) and
compare on the host in float64 NumPy, so they also prove that the problem's code stays inside
the array API.

Finite differences
------------------
Central differences with Richardson extrapolation, ``D = (4 D(h/2) - D(h)) / 3`` with
``D(h) = (f(w + h u) - f(w - h u)) / (2h)``. The plain central difference has truncation error
``h^2 |f'''| / 6`` and rounding error ``~ eps |f| / h``; Richardson cancels the ``h^2`` term,
leaving ``O(h^4 |f^(5)|)``. With ``h = 1e-3 * max(1, |w|_inf)`` (``u`` of unit length) the
truncation is ``~1e-12`` and the rounding ``~1e-16 / 1e-3 = 1e-13`` relative to the function's
scale: both far below the 1e-6 tolerance for the low-degree polynomials and smooth networks
tested here (observed: ~1e-13). A plain central difference would need ``h ~ 1e-5`` and lands
near 1e-10, with less margin on higher-degree problems such as the depth-4 factorization.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xsam_theory.backend import device_of, namespace, to_numpy
from xsam_theory.problems.base import Problem

__all__ = ["check_problem_derivatives", "fd_derivative", "rel_err"]

FD_RTOL = 1e-6  # gradient / HVP / Hessian against finite differences
SYMMETRY_RTOL = 1e-10  # <u, Hv> = <Hu, v>
EXACT_RTOL = 1e-12  # two exact code paths for the same quantity (batched vs single HVPs)


def rel_err(a: Any, b: Any, scale: float | None = None) -> float:
    """``|a - b| / max(|a|, |b|)`` in the Euclidean/Frobenius norm (0 when both are 0).

    ``scale`` replaces the denominator, for quantities that may cancel to near zero.
    """
    a = np.asarray(to_numpy(a), dtype=np.float64)
    b = np.asarray(to_numpy(b), dtype=np.float64)
    num = float(np.linalg.norm(a - b))
    den = max(float(np.linalg.norm(a)), float(np.linalg.norm(b))) if scale is None else scale
    return 0.0 if num == 0.0 else num / den if den > 0 else float("inf")


def fd_derivative(
    f: Callable[[np.ndarray], np.ndarray], w: np.ndarray, u: np.ndarray, h: float
) -> np.ndarray:
    """Directional derivative of ``f`` at ``w`` along ``u``: central difference + Richardson."""

    def central(step: float) -> np.ndarray:
        return (f(w + step * u) - f(w - step * u)) / (2.0 * step)

    return (4.0 * central(h / 2.0) - central(h)) / 3.0


def check_problem_derivatives(
    problem: Problem,
    w: Any,
    batch: Any = None,
    rng: np.random.Generator | int = 0,
    n_directions: int = 3,
) -> None:
    """Assert that ``problem``'s exact derivatives at ``w`` (on ``batch``) are consistent.

    Checks (tolerances relative, float64):

    - loss is 0-d, gradient ``(dim,)``, ``hvp_batch`` ``(k, dim)``, all in ``w``'s namespace;
    - gradient against finite differences of the loss (``FD_RTOL``);
    - HVPs along random directions against finite differences of the gradient (``FD_RTOL``);
    - HVP symmetry ``<u, Hv> = <Hu, v>`` (``SYMMETRY_RTOL``, relative to ``|u||Hv| + |Hu||v|``);
    - ``hvp_batch`` equal to the stacked single ``hvp`` calls (``EXACT_RTOL``);
    - the dense ``hessian()`` symmetric, equal to the HVPs of the basis vectors
      (``EXACT_RTOL``) and to the finite-difference Jacobian of the gradient (``FD_RTOL``);
    - for problems with data, the loss, gradient and HVP on ``batch`` (or on all data) equal
      the mean of the single-sample ones (``EXACT_RTOL``-level, 1e-12).
    """
    rng = np.random.default_rng(rng)
    xp = namespace(w)
    dim = problem.dim
    w_np = np.asarray(to_numpy(w), dtype=np.float64)
    assert w_np.shape == (dim,), f"w has shape {w_np.shape}, problem.dim = {dim}"

    def on_device(x: np.ndarray) -> Any:
        return xp.asarray(x, dtype=w.dtype, device=device_of(w))

    def loss_at(v: np.ndarray) -> np.ndarray:
        return np.asarray(to_numpy(problem.loss(on_device(v), batch)), dtype=np.float64)

    def grad_at(v: np.ndarray) -> np.ndarray:
        return np.asarray(to_numpy(problem.grad(on_device(v), batch)), dtype=np.float64)

    h = 1e-3 * max(1.0, float(np.max(np.abs(w_np))))
    point = problem.at(w, batch)

    # -- shapes and namespaces ----------------------------------------------------------------
    loss, grad = point.loss, point.grad
    assert tuple(loss.shape) == (), f"loss has shape {tuple(loss.shape)}, expected ()"
    assert tuple(grad.shape) == (dim,), f"grad has shape {tuple(grad.shape)}, expected ({dim},)"
    assert namespace(loss) is xp and namespace(grad) is xp, "loss/grad left w's namespace"
    assert np.isfinite(float(to_numpy(loss))), "loss is not finite"

    # -- gradient vs finite differences of the loss -------------------------------------------
    eye = np.eye(dim)
    g_fd = np.array([fd_derivative(loss_at, w_np, eye[i], h) for i in range(dim)])
    err = rel_err(grad, g_fd)
    assert err <= FD_RTOL, f"{problem!r}: gradient vs FD relative error {err:.2e}"

    # -- HVP vs finite differences of the gradient --------------------------------------------
    U = rng.standard_normal((n_directions, dim))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    HU = point.hvp_batch(on_device(U))
    assert tuple(HU.shape) == (n_directions, dim), f"hvp_batch shape {tuple(HU.shape)}"
    assert namespace(HU) is xp, "hvp_batch left w's namespace"
    HU_np = np.asarray(to_numpy(HU), dtype=np.float64)
    for j in range(n_directions):
        hv_fd = fd_derivative(grad_at, w_np, U[j], h)
        err = rel_err(HU_np[j], hv_fd)
        assert err <= FD_RTOL, f"{problem!r}: HVP vs FD relative error {err:.2e}"

    # -- hvp_batch equals stacked single hvp --------------------------------------------------
    singles = np.stack(
        [
            np.asarray(to_numpy(point.hvp(on_device(U[j]))), dtype=np.float64)
            for j in range(n_directions)
        ]
    )
    for j in range(n_directions):
        err = rel_err(HU_np[j], singles[j])
        assert err <= EXACT_RTOL, f"{problem!r}: hvp_batch row {j} vs hvp: {err:.2e}"

    # -- symmetry <u, Hv> = <Hu, v> -----------------------------------------------------------
    for j in range(n_directions - 1):
        u, v, Hu, Hv = U[j], U[j + 1], HU_np[j], HU_np[j + 1]
        scale = np.linalg.norm(u) * np.linalg.norm(Hv) + np.linalg.norm(Hu) * np.linalg.norm(v)
        err = rel_err(u @ Hv, Hu @ v, scale=float(scale))
        assert err <= SYMMETRY_RTOL, f"{problem!r}: HVP asymmetry {err:.2e}"

    # -- dense Hessian ------------------------------------------------------------------------
    H = point.hessian()
    assert tuple(H.shape) == (dim, dim), f"hessian shape {tuple(H.shape)}"
    assert namespace(H) is xp, "hessian left w's namespace"
    H_np = np.asarray(to_numpy(H), dtype=np.float64)
    err = rel_err(H_np, H_np.T)
    assert err <= EXACT_RTOL, f"{problem!r}: Hessian asymmetry {err:.2e}"
    H_basis = np.asarray(to_numpy(point.hvp_batch(on_device(eye))), dtype=np.float64)
    err = rel_err(H_np, H_basis)
    assert err <= EXACT_RTOL, f"{problem!r}: hessian() vs HVPs of basis vectors {err:.2e}"
    jac_fd = np.stack([fd_derivative(grad_at, w_np, eye[i], h) for i in range(dim)])
    err = rel_err(H_np, jac_fd)
    assert err <= FD_RTOL, f"{problem!r}: hessian() vs FD Jacobian of the gradient {err:.2e}"

    # -- minibatch = mean of single-sample quantities -----------------------------------------
    if problem.n_samples is not None:
        idx = (
            np.arange(problem.n_samples)
            if batch is None
            else np.asarray(to_numpy(batch)).astype(np.int64)
        )
        per_loss, per_grad, per_hvp = [], [], []
        for i in idx:
            single = problem.at(w, xp.asarray(np.array([i]), device=device_of(w)))
            per_loss.append(float(to_numpy(single.loss)))
            per_grad.append(np.asarray(to_numpy(single.grad), dtype=np.float64))
            per_hvp.append(np.asarray(to_numpy(single.hvp_batch(on_device(U))), dtype=np.float64))
        mean_loss = float(np.mean(per_loss))
        err = rel_err(float(to_numpy(loss)), mean_loss)
        assert err <= EXACT_RTOL, f"{problem!r}: batch loss vs mean of samples {err:.2e}"
        err = rel_err(grad, np.mean(per_grad, axis=0))
        assert err <= EXACT_RTOL, f"{problem!r}: batch grad vs mean of samples {err:.2e}"
        err = rel_err(HU_np, np.mean(per_hvp, axis=0))
        assert err <= EXACT_RTOL, f"{problem!r}: batch HVP vs mean of samples {err:.2e}"
