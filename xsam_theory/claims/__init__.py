"""The claims ledger (docs/claims.md).

:func:`load_all` registers every claim module in ledger order.
"""

from __future__ import annotations

import importlib

from xsam_theory.claims.registry import (
    CLAIMS,
    Claim,
    ClaimResult,
    ExperimentContext,
    Kind,
    Outcome,
    Verdict,
    get_claim,
    run_claim,
)

__all__ = [
    "CLAIMS",
    "MODULES",
    "Claim",
    "ClaimResult",
    "ExperimentContext",
    "Kind",
    "Outcome",
    "Verdict",
    "get_claim",
    "load_all",
    "run_claim",
]

#: claim modules, in ledger order (each registers its claims on import)
MODULES = (
    "geometry",
    "curvature",
    "orientation",
    "normalization",
    "power_quality",
    "xsam_dynamics",
    "confound",
    "usam",
    "bartlett2022_two_cycle",
    "edge",
    "drift",
    "lanczos_bounds",
    "angle_orientation",
    "p_conv",
    "p_lmax",
    "p_angle",
    "p_gen",
)


def load_all() -> dict[str, Claim]:
    """Import every claim module (registering its claims) and return the registry, in ledger order.

    The order is by module in :data:`MODULES`, then in registration order within a module
    (whatever imported a claim module first).
    """
    for name in MODULES:
        importlib.import_module(f"xsam_theory.claims.{name}")
    rank = {f"xsam_theory.claims.{name}": i for i, name in enumerate(MODULES)}
    ordered = sorted(CLAIMS.values(), key=lambda c: rank.get(c.check.__module__, len(rank)))
    if [c.id for c in ordered] != list(CLAIMS):
        CLAIMS.clear()
        CLAIMS.update((c.id, c) for c in ordered)
    return CLAIMS
