"""Independent re-derivations shared by the P claims' checks (not the package's code).

The protocol they serve: docs/claims.md#C-p-protocol (Holm's adjustment across a claim's
subclaims); the package's own implementation is described in docs/statistics.md.

Holm's step-down adjustment written out from its definition: sort the finite p-values,
multiply the i-th smallest by (m - i + 1), keep the running maximum, cap at 1. NaN p-values
stay NaN and do not count towards the family size m (the package's documented policy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def holm_step_down(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order."""
    p = [float(x) for x in p_values]
    finite = sorted((x, i) for i, x in enumerate(p) if math.isfinite(x))
    m, running, out = len(finite), 0.0, [math.nan] * len(p)
    for rank, (x, i) in enumerate(finite):
        running = max(running, min(1.0, (m - rank) * x))
        out[i] = running
    return out
