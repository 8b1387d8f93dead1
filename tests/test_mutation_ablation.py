"""A mutation test of the ablation subclaims of P-GEN and P-LMAX.

With X-SAM's correction switched off, X-SAM *is* its α = 0 ablation, so every
``xsam…-vs-ablation`` difference of P-GEN and P-LMAX must be exactly 0 on every seed; without
the mutation some of them are not (so the test can fail).

The mutation replaces :func:`~xsam_theory.optimizers.xsam_direction` (every rule: paper,
symmetric, projector, raw projection) by the same function called with α = 0, in this process
(``workers=1`` runs the sweeps in-process), wherever a package module holds it by name. If an
experiment computed X-SAM's step some other way, its ablation differences would not vanish and
this test would say so.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from xsam_theory.claims import ExperimentContext, load_all, run_claim
from xsam_theory.optimizers import directions

CLAIMS = ("P-GEN", "P-LMAX")
CTX = ExperimentContext(scale="quick", workers=1, progress=False)


def _ablation_subclaims(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """The subclaims that compare X-SAM with its α = 0 ablation (ids ``…/xsam…-vs-ablation``)."""
    return [s for s in evidence["subclaims"] if "vs-ablation" in s["id"]]


def _run(cid: str) -> dict[str, Any]:
    load_all()
    r = run_claim(cid, CTX)
    assert r.verdict != "error", r.evidence.get("traceback", r.key)
    subs = _ablation_subclaims(r.evidence)
    ids = [s["id"] for s in r.evidence["subclaims"]]
    assert subs, f"{cid} has no xsam-vs-ablation subclaim: {ids}"
    return r.evidence


@pytest.fixture(scope="module")
def unmutated() -> dict[str, dict[str, Any]]:
    """Each claim's evidence without the mutation, computed on first use."""
    cache: dict[str, dict[str, Any]] = {}

    class Lazy(dict):
        def __missing__(self, cid: str) -> dict[str, Any]:
            cache[cid] = _run(cid)
            return cache[cid]

    return Lazy()


def _switch_off_the_correction(monkeypatch: pytest.MonkeyPatch) -> int:
    """Replace ``xsam_direction`` by its α = 0 version in every loaded package module holding it.

    Returns how many modules were patched.
    """
    original = directions.xsam_direction

    def no_correction(g_adv, v, alpha, **kwargs):
        return original(g_adv, v, 0.0, **kwargs)

    patched = 0
    for name, module in list(sys.modules.items()):
        if name.startswith("xsam_theory") and getattr(module, "xsam_direction", None) is original:
            monkeypatch.setattr(module, "xsam_direction", no_correction)
            patched += 1
    return patched


@pytest.mark.parametrize("cid", CLAIMS)
def test_without_the_correction_every_ablation_difference_is_exactly_zero(cid, monkeypatch):
    load_all()
    assert _switch_off_the_correction(monkeypatch) >= 1  # at least optimizers.step
    evidence = _run(cid)
    for s in _ablation_subclaims(evidence):
        assert s["samples"], s
        assert all(x == 0.0 for x in s["samples"]), (s["id"], s["samples"])
        assert s["verdict"] != "holds", s


@pytest.mark.parametrize("cid", CLAIMS)
def test_with_the_correction_some_ablation_difference_is_not_zero(unmutated, cid):
    samples = [x for s in _ablation_subclaims(unmutated[cid]) for x in s["samples"]]
    assert samples and any(x != 0.0 for x in samples)
