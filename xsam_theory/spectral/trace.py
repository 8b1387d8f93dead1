r"""Hutchinson's stochastic trace estimator with Rademacher probes (docs/theory.md#T-hutchinson)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xsam_theory.backend import to_numpy
from xsam_theory.checks import check_seed
from xsam_theory.spectral.operator import HessianOperator

__all__ = ["TraceEstimate", "hutchinson_trace"]


@dataclass(frozen=True)
class TraceEstimate:
    r"""A trace estimate :math:`\widehat{\operatorname{tr}}(H)` with its standard error.

    Attributes:
        estimate (float): The sample mean :math:`\frac1N\sum_i z_i^\top H z_i`.
        stderr (float): The standard error of the mean, :math:`s/\sqrt N` with :math:`s` the sample
            standard deviation (``ddof=1``); NaN ("not available") when ``n_probes == 1``.
        n_probes (int): Number of probes :math:`N`.
        n_hvp (int): HVPs spent (``= n_probes``).
    """

    estimate: float
    stderr: float
    n_probes: int
    n_hvp: int


def hutchinson_trace(
    op: HessianOperator, n_probes: int, *, seed: int = 0, block: int = 16
) -> TraceEstimate:
    r"""Hutchinson's unbiased estimate of :math:`\operatorname{tr}(H)` from Rademacher probes.

    .. math::

        \widehat{\operatorname{tr}}(H) = \frac1N \sum_{i=1}^N z_i^\top H z_i, \qquad
        z_i \in \{-1, +1\}^{\mathrm{dim}} \text{ i.i.d. uniform},

    unbiased because :math:`\mathbb E[zz^\top] = I`, with variance per probe
    :math:`\operatorname{Var}(z^\top Hz) = 2\sum_{i \ne j} H_{ij}^2` (exact for diagonal
    :math:`H`, since :math:`z_i^2 = 1`). Probes are drawn on the host from
    ``numpy.random.default_rng(seed)`` (the same probes on every backend) and applied ``block``
    at a time through one batched ``op.matmat`` each; the quadratic forms are computed on the
    operator's backend. Uses exactly ``n_probes`` HVPs.

    Args:
        op (HessianOperator): The symmetric operator.
        n_probes (int): Number of probes, ``>= 1``.
        seed (int): Seed of the probe generator, an integer >= 0 (``None`` is refused: not
            reproducible).
        block (int): Probes per batched HVP, ``>= 1``.

    Returns:
        TraceEstimate: The sample mean, its standard error, and the probe and HVP counts.
    """
    for name, value in (("n_probes", n_probes), ("block", block)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    xp = op.xp
    rng = np.random.default_rng(check_seed(seed))
    before = op.n_hvp
    samples: list[np.ndarray] = []
    done = 0
    while done < n_probes:
        b = min(int(block), int(n_probes) - done)
        Z_host = 2.0 * rng.integers(0, 2, size=(b, op.dim)) - 1.0
        Z = xp.asarray(Z_host, dtype=op.dtype, device=op.device)
        HZ = op._apply_rows(Z)
        samples.append(np.asarray(to_numpy(xp.sum(Z * HZ, axis=1)), dtype=float))
        done += b
    values = np.concatenate(samples)
    estimate = float(np.mean(values))
    if values.size > 1:
        stderr = float(np.std(values, ddof=1)) / math.sqrt(values.size)
    else:
        stderr = math.nan
    return TraceEstimate(
        estimate=estimate, stderr=stderr, n_probes=int(n_probes), n_hvp=op.n_hvp - before
    )
