"""The claims ledger (docs/claims.md): one registry, the single source of truth for every claim.

A :class:`Claim` couples an id, a kind, a one-sentence statement, the method and tolerance, and a
check function ``check(ctx) -> Outcome``. ``xsam-theory verify`` and the pytest modules in
``proofs_checks/`` both call :func:`run_claim`; no claim logic is written twice.
"""

from __future__ import annotations

import dataclasses
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from xsam_theory.claims.verdicts import Verdict, verdict_from_interval
from xsam_theory.experiments.context import ExperimentContext

__all__ = [
    "CLAIMS",
    "Claim",
    "ClaimResult",
    "ExperimentContext",
    "Kind",
    "Outcome",
    "Verdict",
    "claim",
    "get_claim",
    "run_claim",
    "verdict_from_interval",
]


class Kind(str, Enum):
    """D derived lemma, L literature closed form, F testbed finding, P paper claim.

    What each kind means and what a failure of each would say: docs/claims.md#C-kinds.
    """

    D = "D"
    L = "L"
    F = "F"
    P = "P"


@dataclass(frozen=True)
class Outcome:
    """What a check found: the verdict, the key number as a short text, and the evidence.

    Verdicts: docs/claims.md#C-verdicts; the evidence's fixed entries: docs/claims.md#C-evidence.
    """

    verdict: Verdict
    key: str
    evidence: dict[str, Any]
    figure: str | None = None


@dataclass(frozen=True)
class Claim:
    """A registered claim: its id, kind, statement, method, tolerance and check function.

    ``facts`` names the derivations it rests on, ``backends`` the array backends its check can run
    the implementation under test on, ``figure`` the figure that shows it. The facts are the
    bare anchor ids of docs/theory.md (``T-...``) and docs/algorithms.md (``A-...``); each
    claim's page in docs/claims/ (e.g. docs/claims/F-WINDOW.md) is generated from these fields.
    """

    id: str
    kind: Kind
    statement: str
    method: str
    tolerance: str
    check: Callable[[ExperimentContext], Outcome]
    facts: tuple[str, ...] = ()
    backends: tuple[str, ...] = ("numpy",)
    figure: str | None = None


@dataclass
class ClaimResult:
    """The outcome of one claim's check: verdict, key number and evidence, with the claim's text.

    One record of ``claims.json`` (:meth:`to_json`; the schema: docs/claims.md#C-evidence).
    """

    id: str
    kind: str
    statement: str
    method: str
    verdict: str
    key: str
    evidence: dict[str, Any]
    tolerance: str
    seconds: float
    figure: str | None = None
    facts: tuple[str, ...] = field(default_factory=tuple)
    backend: str = "numpy"

    def to_json(self) -> dict[str, Any]:
        """The claim's record in ``claims.json`` (docs/claims.md#C-evidence)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "statement": self.statement,
            "method": self.method,
            "verdict": self.verdict,
            "key": self.key,
            "evidence": _jsonable(self.evidence),
            "tolerance": self.tolerance,
            "seconds": round(self.seconds, 3),
            "figure": self.figure,
            "facts": list(self.facts),
            "backend": self.backend,
        }


#: id -> Claim, in ledger order
CLAIMS: dict[str, Claim] = {}


Check = Callable[[ExperimentContext], "Outcome"]


def claim(
    id: str,
    kind: str,
    statement: str,
    *,
    method: str,
    tolerance: str,
    facts: tuple[str, ...] = (),
    backends: tuple[str, ...] = ("numpy",),
    figure: str | None = None,
) -> Callable[[Check], Check]:
    """Decorator registering ``check`` as the claim ``id``.

    ``backends``: the array backends on which the check can run the implementation under test
    (its measurements are NumPy on every backend). A check asked for another backend runs on
    NumPy, and its result says so (``ClaimResult.backend``).
    ``figure``: the id of the :mod:`xsam_theory.figures` figure that shows this claim's closed
    forms or data; ``verify`` draws it next to the report.
    """

    def register(check: Check) -> Check:
        if id in CLAIMS:
            raise ValueError(f"claim {id!r} is registered twice")
        CLAIMS[id] = Claim(
            id, Kind(kind), statement, method, tolerance, check, facts, tuple(backends), figure
        )
        return check

    return register


def get_claim(id: str) -> Claim:
    """The claim ``id``, after importing every claim module; ``ValueError`` naming the known ids."""
    from xsam_theory.claims import load_all

    load_all()
    try:
        return CLAIMS[id]
    except KeyError:
        raise ValueError(f"unknown claim id {id!r}; known: {', '.join(CLAIMS)}") from None


def run_claim(id: str, ctx: ExperimentContext | None = None) -> ClaimResult:
    """Run one claim's check; an exception becomes the verdict ``error`` with its traceback.

    A claim whose check cannot run on ``ctx.backend`` runs on NumPy, and the result's
    ``backend`` says so; ``seconds`` is the check's wall time (docs/claims.md#C-verdicts).
    """
    c = get_claim(id)
    ctx = ctx or ExperimentContext()
    if ctx.backend not in c.backends:
        ctx = dataclasses.replace(ctx, backend="numpy", device=None)
    t0 = time.perf_counter()
    try:
        out = c.check(ctx)
        if not isinstance(out, Outcome):
            raise TypeError(f"check of {id} returned {type(out).__name__}, not Outcome")
    except Exception as e:  # a failing check is a result, not a crash of the ledger
        out = Outcome(
            Verdict.ERROR, f"{type(e).__name__}: {e}", {"traceback": traceback.format_exc()}
        )
    return ClaimResult(
        c.id,
        c.kind.value,
        c.statement,
        c.method,
        Verdict(out.verdict).value,
        out.key,
        out.evidence,
        c.tolerance,
        time.perf_counter() - t0,
        out.figure,
        c.facts,
        ctx.backend if ctx.device is None else f"{ctx.backend}:{ctx.device}",
    )


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        f = float(x)
        return f if math.isfinite(f) else str(f)  # JSON has no NaN/inf: say them in words
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, Enum):
        return x.value
    return x
