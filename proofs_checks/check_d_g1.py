"""D-G1: the paper rule's component along v, <d, v> = c - alpha|c|.

Theory: docs/theory.md#T-correction-identities. Claim page: docs/claims/D-G1.md.
See xsam_theory.claims.geometry.
"""

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.symbolic import geometry


def test_symbolic_proof():
    der = geometry.parallel_component()
    assert der.all_proved, der.proved


def test_symbolic_proof_fails_for_a_wrong_step_rule():
    """The proof starts from d's definition in a general frame, so it is not true by construction.

    A rule with the wrong sign of the correction, or with c for |c|, is refused (by G1, and by the
    ||d||^2 and <d, g_hat> identities built the same way).
    """
    wrong_sign = lambda g_hat, v, a, abs_c: g_hat + a * abs_c * v  # noqa: E731
    signed_c = lambda g_hat, v, a, abs_c: g_hat - a * g_hat.dot(v) * v  # noqa: E731
    for rule in (wrong_sign, signed_c):
        assert not geometry.parallel_component(rule).all_proved
    assert not geometry.direction_norm(wrong_sign).all_proved
    assert not geometry.descent_inner_product(wrong_sign).all_proved
    # the same machinery accepts the paper rule written out independently
    assert geometry.parallel_component(lambda g_hat, v, a, abs_c: g_hat - v * abs_c * a).all_proved


def test_general_frame_is_not_aligned_with_v():
    """No coordinate of the frame is fixed: v and g_hat are free symbols on the unit sphere."""
    f = geometry.general_frame()
    assert all(x.is_Symbol for x in (*f.g_hat, *f.v))
    assert not f.holds(f.v[0] - 1) and not f.holds(f.c - f.abs_c)


def test_claim_holds():
    result = run_claim("D-G1", ExperimentContext(scale="quick"))
    assert result.verdict == "holds", result.evidence
