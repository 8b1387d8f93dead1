"""The ``torch.optim`` SAM family (xsam_theory.torch) against the NumPy reference, and its API.

The oracle is the package's own NumPy trajectory runner on the same MLP, weights and data: the
R-operator HVPs, ARPACK eigenvectors and the pure step there share no code with autograd, the
torch-native Lanczos or the optimizer's bookkeeping here (only the pure maps of
``optimizers.directions``, which are tested on their own against closed forms).
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import xsam_theory.torch as xsam_torch  # noqa: E402
from xsam_theory import MLP, NonFiniteError, preset, run_trajectory  # noqa: E402
from xsam_theory.optimizers import PRESETS, REFERENCE_OPTIONS  # noqa: E402
from xsam_theory.torch import (  # noqa: E402
    SAM,
    USAM,
    XSAM,
    EigenSAM,
    GradientGraph,
    SAMFamily,
    flatten,
    lanczos_top,
    lr_lambda,
    optimizer_from_config,
    power_iteration,
)
from xsam_theory.trajectory import batch_schedule  # noqa: E402

F = torch.nn.functional
# scripts/gpu_check.sh runs this module with XSAM_TEST_DEVICE=cuda: the NumPy-parity tests then
# run the torch side on the GPU (float64, same tolerances); the API tests stay on the CPU.
DEVICE = torch.device(os.environ.get("XSAM_TEST_DEVICE", "cpu"))
if DEVICE.type == "cuda" and not torch.cuda.is_available():
    pytest.skip("XSAM_TEST_DEVICE=cuda but CUDA is not available", allow_module_level=True)
WIDTHS = (3, 4, 3)
EIGVEC_PRESETS = {
    "eigen_sam",
    "xsam",
    "xsam_paper",
    "xsam_symmetric",
    "xsam_projector",
    "xsam_raw_projection",
}


@pytest.fixture(scope="module")
def problem():
    return MLP.teacher_student(WIDTHS, 16, seed=2)


def make_net(w, widths=WIDTHS, device=None):
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        if i:
            layers.append(torch.nn.Tanh())
        layers.append(torch.nn.Linear(a, b))
    net = torch.nn.Sequential(*layers).double().to(device or "cpu")
    # torch.tensor copies: vector_to_parameters would otherwise alias the NumPy array
    torch.nn.utils.vector_to_parameters(torch.tensor(w, device=device or "cpu"), net.parameters())
    return net


def data(problem, device=None):
    X, Y = torch.tensor(problem.X), torch.tensor(problem.Y).argmax(1)
    return X.to(device or "cpu"), Y.to(device or "cpu")


def weights(net):
    return torch.nn.utils.parameters_to_vector(net.parameters()).detach().cpu().numpy().copy()


def run_torch(problem, cfg, w0, steps, *, seed, batch_size=None, scheduler=None, **kw):
    net = make_net(w0, device=DEVICE)
    X, y = data(problem, DEVICE)
    opt = optimizer_from_config(net.parameters(), cfg, seed=seed, lanczos_steps=problem.dim, **kw)
    sched = scheduler(opt) if scheduler else None
    batches = batch_schedule(problem.n_samples, batch_size, seed)
    out = [weights(net)]
    for _ in range(steps):
        b = next(batches)
        idx = slice(None) if b is None else torch.as_tensor(b, device=DEVICE)
        opt.step(lambda idx=idx: F.cross_entropy(net(X[idx]), y[idx]))
        if sched:
            sched.step()
        out.append(weights(net))
    return np.array(out), opt


def _cfg(name, **extra):
    kw = dict(lr=0.05) if name == "gd" else dict(lr=0.05, rho=0.05)
    if name in EIGVEC_PRESETS:
        kw["refresh_every"] = 4
    return preset(name, **{**kw, **extra})


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_matches_the_numpy_reference(problem, name):
    """nn.Sequential + torch optimizer == NumPy run_trajectory, 1e-10 (float64).

    The parity target: docs/algorithms.md#A-backends.
    """
    cfg = _cfg(name)
    w0 = problem.init_params(3)
    ref = run_trajectory(problem, cfg, w0, 16, seed=1)
    ws, opt = run_torch(problem, cfg, w0, 16, seed=1)
    np.testing.assert_allclose(ws, ref.iterates, rtol=1e-10, atol=1e-12)
    if name in EIGVEC_PRESETS:
        assert opt.n_hvp > 0 and math.isfinite(float(opt.eigenvalue))


@pytest.mark.parametrize("name", ["xsam", "eigen_sam"])
def test_reference_schedule_with_minibatches_matches(problem, name):
    """Power iteration, first refresh at step k, epoch restarts, pre-v SAM/USAM, minibatches."""
    cfg = preset(
        name,
        lr=0.1,
        rho=0.05,
        alpha=0.3,
        momentum=0.9,
        weight_decay=5e-4,
        **{**REFERENCE_OPTIONS[name], "refresh_every": 2, "steps_per_epoch": 3},
    )
    w0 = problem.init_params(4)
    ref = run_trajectory(problem, cfg, w0, 14, seed=5, batch_size=8)
    ws, _ = run_torch(problem, cfg, w0, 14, seed=5, batch_size=8)
    assert ref.diagnostics["refreshed"].sum() >= 3
    np.testing.assert_allclose(ws, ref.iterates, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(EIGVEC_PRESETS - {"xsam", "eigen_sam"} | {"nsam"}))
def test_reference_schedule_matches_for_every_other_eigenvector_preset(problem, name):
    """The same on the remaining presets that use v under the reference schedule.

    For nsam the form changes once v exists even at alpha = 0.
    """
    alpha = {} if name == "nsam" else {"alpha": 0.3}
    cfg = preset(
        name,
        lr=0.1,
        rho=0.05,
        momentum=0.9,
        **alpha,
        **{**REFERENCE_OPTIONS["xsam"], "refresh_every": 2, "steps_per_epoch": 3},
    )
    w0 = problem.init_params(4)
    ref = run_trajectory(problem, cfg, w0, 14, seed=5, batch_size=8)
    ws, _ = run_torch(problem, cfg, w0, 14, seed=5, batch_size=8)
    assert ref.diagnostics["refreshed"].sum() >= 3
    np.testing.assert_allclose(ws, ref.iterates, rtol=1e-10, atol=1e-12)


def test_cosine_scheduler_momentum_weight_decay(problem):
    cfg = _cfg(
        "xsam_symmetric", momentum=0.9, weight_decay=1e-3, lr_schedule="cosine", total_steps=12
    )
    w0 = problem.init_params(5)
    ref = run_trajectory(problem, cfg, w0, 12, seed=2)
    sched = lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=12)  # noqa: E731
    ws, _ = run_torch(problem, cfg, w0, 12, seed=2, scheduler=sched)
    np.testing.assert_allclose(ws, ref.iterates, rtol=1e-10, atol=1e-12)
    # LambdaLR with the package's schedule gives the same
    sched2 = lambda o: torch.optim.lr_scheduler.LambdaLR(o, lr_lambda(cfg))  # noqa: E731
    ws2, _ = run_torch(problem, cfg, w0, 12, seed=2, scheduler=sched2)
    np.testing.assert_allclose(ws2, ref.iterates, rtol=1e-10, atol=1e-12)


def test_forward_over_reverse_and_eval_mode_match_double_backward(problem):
    cfg = _cfg("xsam", refresh_every=3)
    w0 = problem.init_params(6)
    ref = run_trajectory(problem, cfg, w0, 7, seed=3)
    X, y = data(problem, DEVICE)
    for kw in (dict(hvp_mode="forward_over_reverse"), dict(hessian_mode="eval")):
        net = make_net(w0, device=DEVICE)
        opt = optimizer_from_config(
            net.parameters(), cfg, seed=3, lanczos_steps=problem.dim, model=net, **kw
        )
        for _ in range(7):
            opt.step(lambda net=net: F.cross_entropy(net(X), y))
        np.testing.assert_allclose(weights(net), ref.iterates[-1], rtol=1e-10, atol=1e-12)


def test_state_dict_round_trip_resumes_bit_identically(problem):
    cfg = preset(
        "xsam",
        lr=0.1,
        rho=0.05,
        alpha=0.4,
        momentum=0.9,
        **{**REFERENCE_OPTIONS["xsam"], "refresh_every": 3},
    )
    w0 = problem.init_params(7)
    X, y = data(problem)

    def make():
        net = make_net(w0)
        opt = optimizer_from_config(net.parameters(), cfg, seed=4)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
        return net, opt, sched

    def steps(net, opt, sched, n):
        for _ in range(n):
            opt.step(lambda: F.cross_entropy(net(X), y))
            sched.step()

    net, opt, sched = make()
    steps(net, opt, sched, 13)
    net_a, opt_a, sched_a = make()
    steps(net_a, opt_a, sched_a, 7)
    saved = (opt_a.state_dict(), sched_a.state_dict(), net_a.state_dict())
    assert saved[0]["sam_family"]["counters"]["step"] == 7
    net_b, opt_b, sched_b = make()
    net_b.load_state_dict(saved[2])
    opt_b.load_state_dict(saved[0])
    sched_b.load_state_dict(saved[1])
    assert opt_b.base_optimizer.param_groups is opt_b.param_groups
    torch.testing.assert_close(opt_b.eigenvector, opt_a.eigenvector, rtol=0, atol=0)
    steps(net_b, opt_b, sched_b, 6)
    np.testing.assert_array_equal(weights(net_b), weights(net))
    assert opt_b.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == 0.1 * 0.5**3
    with pytest.raises(ValueError, match="different configuration"):
        optimizer_from_config(net.parameters(), cfg.replace(alpha=0.1)).load_state_dict(saved[0])


def test_parameters_without_grad_keep_v_aligned(problem):
    """An unused layer placed *first* changes nothing on the used parameters, and is never updated.

    The reference code misaligns v when a parameter has .grad None.
    """
    cfg = _cfg("xsam", refresh_every=2)
    w0 = problem.init_params(8)
    ref = run_trajectory(problem, cfg, w0, 6, seed=6)
    net = make_net(w0)
    unused = torch.nn.Linear(3, 5).double()  # 20 parameters
    before = [p.detach().clone() for p in unused.parameters()]
    X, y = data(problem)
    params = [*unused.parameters(), *net.parameters()]
    opt = optimizer_from_config(params, cfg, seed=6, lanczos_steps=problem.dim + 20)
    for _ in range(6):
        opt.step(lambda: F.cross_entropy(net(X), y))
    np.testing.assert_allclose(weights(net), ref.iterates[-1], rtol=1e-9, atol=1e-12)
    for p, b in zip(unused.parameters(), before):
        assert p.grad is None
        torch.testing.assert_close(p, b, rtol=0, atol=0)
    v = opt.eigenvector
    assert torch.all(v[: 5 * 3 + 5] == 0)


@pytest.mark.parametrize("name", ["sam", "usam", "eigen_sam", "xsam", "xsam_projector"])
def test_exact_zero_gradient_gives_exact_zero_step(name):
    """No +1e-12: a zero gradient gives a zero perturbation and a zero (normalized) step."""
    lin = torch.nn.Linear(3, 2).double()
    before = weights(lin)
    cfg = _cfg(name, refresh_every=1)
    opt = optimizer_from_config(lin.parameters(), cfg)
    for _ in range(2):
        loss = opt.step(lambda: 0.0 * sum(p.sum() for p in lin.parameters()))
        assert float(loss) == 0.0
    np.testing.assert_array_equal(weights(lin), before)
    for value in opt.last_info.values():
        if isinstance(value, torch.Tensor):
            assert torch.isfinite(value).all()


def test_manual_two_pass_api_equals_step_closure(problem):
    w0 = problem.init_params(9)
    X, y = data(problem)
    for make in (
        lambda ps: SAM(ps, torch.optim.SGD, rho=0.05, lr=0.1),
        lambda ps: XSAM(ps, torch.optim.SGD, rho=0.05, alpha=0.3, lr=0.1, refresh_every=2),
    ):
        net_a, net_b = make_net(w0), make_net(w0)
        opt_a, opt_b = make(net_a.parameters()), make(net_b.parameters())
        sched = torch.optim.lr_scheduler.StepLR(opt_b, 2, 0.5)
        sched_a = torch.optim.lr_scheduler.StepLR(opt_a, 2, 0.5)
        for _ in range(5):
            opt_a.step(lambda net_a=net_a: F.cross_entropy(net_a(X), y))
            sched_a.step()
            if opt_b.refresh_due:
                opt_b.refresh_eigenvector(lambda net_b=net_b: F.cross_entropy(net_b(X), y))
            F.cross_entropy(net_b(X), y).backward()
            opt_b.first_step(zero_grad=True)
            F.cross_entropy(net_b(X), y).backward()
            opt_b.second_step(zero_grad=True)
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # no "scheduler before optimizer" warning
                sched.step()
        np.testing.assert_allclose(weights(net_b), weights(net_a), rtol=1e-12, atol=1e-14)


def test_manual_api_refuses_to_skip_a_due_refresh():
    lin = torch.nn.Linear(2, 1).double()
    opt = XSAM(lin.parameters(), rho=0.05, alpha=0.2, lr=0.1, schedule="standard")
    lin(torch.ones(1, 2, dtype=torch.float64)).sum().backward()
    with pytest.raises(RuntimeError, match="refresh_eigenvector"):
        opt.first_step()


def test_batchnorm_needs_an_explicit_hessian_mode_and_modes_are_restored():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 4),
        torch.nn.BatchNorm1d(4),
        torch.nn.Tanh(),
        torch.nn.Dropout(0.0),
        torch.nn.Linear(4, 2),
    ).double()
    X = torch.randn(8, 3, dtype=torch.float64)
    y = torch.tensor([0, 1] * 4)
    with pytest.raises(ValueError, match="hessian_mode"):
        XSAM(net.parameters(), lr=0.1, model=net)
    SAM(net.parameters(), lr=0.1, model=net)  # SAM needs no Hessian: no error
    bn = net[1]
    for mode, forwards_per_refresh_step in (("train", 2), ("eval", 2)):
        opt = XSAM(
            net.parameters(),
            lr=0.1,
            model=net,
            hessian_mode=mode,
            schedule="standard",
            refresh_every=1,
            eigvec_source="power",
        )
        net.train()
        net[3].eval()  # a module in its own mode stays there
        tracked = int(bn.num_batches_tracked)
        opt.step(lambda: F.cross_entropy(net(X), y))
        assert int(bn.num_batches_tracked) - tracked == forwards_per_refresh_step
        assert net.training and bn.training and not net[3].training
    with pytest.raises(ValueError, match="needs model"):
        XSAM(net.parameters(), lr=0.1, hessian_mode="eval")


def test_closure_that_calls_backward_is_rejected():
    lin = torch.nn.Linear(2, 1).double()
    opt = SAM(lin.parameters(), lr=0.1)

    def closure():
        loss = lin(torch.ones(1, 2, dtype=torch.float64)).sum() ** 2
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="called backward"):
        opt.step(closure)
    with pytest.raises(ValueError, match="closure"):
        opt.step()


def test_invalid_options_name_the_option():
    ps = torch.nn.Linear(2, 1).parameters
    with pytest.raises(ValueError, match="rho"):
        SAM(ps(), rho=-1.0, lr=0.1)
    with pytest.raises(ValueError, match="rule"):
        XSAM(ps(), rule="sideways", lr=0.1)
    with pytest.raises(ValueError, match="refresh_every"):
        EigenSAM(ps(), refresh_every=0, lr=0.1)
    with pytest.raises(ValueError, match="hessian_mode"):
        XSAM(ps(), hessian_mode="test", lr=0.1)
    with pytest.raises(ValueError, match="base_optimizer"):
        USAM(ps(), base_optimizer="sgd", lr=0.1)


def test_torch_lanczos_and_power_match_dense_eigh(problem):
    w = torch.tensor(problem.init_params(2), requires_grad=True)
    tp = problem.convert(__import__("array_api_compat.torch", fromlist=["x"]))
    gg = GradientGraph(tp.loss(w), [w])
    H = torch.tensor(np.asarray(problem.hessian(problem.init_params(2))))
    lam = torch.linalg.eigvalsh(H)
    v0 = torch.tensor(np.random.default_rng(0).standard_normal(problem.dim))
    res = lanczos_top(gg.hvp, v0, problem.dim, k=2)
    torch.testing.assert_close(res.eigenvalues, torch.flip(lam, (0,))[:2], rtol=1e-10, atol=1e-12)
    assert float(res.residuals.max()) < 1e-10
    res2 = lanczos_top(gg.hvp, v0, problem.dim, k=1, keep_hvps=False)
    assert res2.n_hvp == problem.dim + 1
    dominant = lam[torch.argmax(lam.abs())]
    pw = power_iteration(gg.hvp, v0, 400)
    assert float(pw.eigenvalue) == pytest.approx(float(dominant), rel=1e-8)
    # breakdown: a rank-one operator is exhausted after 2 steps, with no division by zero
    u = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64) / 3
    rb = lanczos_top(lambda x: 5.0 * u * torch.dot(u, x), torch.ones(3, dtype=torch.float64), 3)
    assert rb.iterations <= 2 and float(rb.eigenvalue) == pytest.approx(5.0, rel=1e-12)
    assert "breakdown" in rb.method
    # flatten treats a missing gradient as zeros
    assert flatten([None], [torch.zeros(2)]).tolist() == [0.0, 0.0]


# -- one vocabulary: the preset names ---------------------------------------------------------


def _preset_options(name):
    kw = dict(lr=0.05, momentum=0.9, weight_decay=1e-4)
    if name != "gd":
        kw["rho"] = 0.07
    if name in EIGVEC_PRESETS:
        kw.update(alpha=0.3, refresh_every=3)
    return kw


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_name_builds_a_torch_optimizer_with_that_config(name):
    kw = _preset_options(name)
    lin = torch.nn.Linear(2, 2).double()
    for build in (xsam_torch.optimizer, SAMFamily.from_preset):
        opt = build(name, lin.parameters(), seed=3, **kw)
        assert opt.config == preset(name, **kw)
        assert opt.preset == name
        group = opt.param_groups[0]  # SGD runs the package's lr, momentum, weight decay
        assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.05, 0.9, 1e-4)
    with pytest.raises(ValueError, match="preset"):
        xsam_torch.optimizer("adam_sam", lin.parameters(), lr=0.1)


def test_named_classes_are_presets_with_the_reference_loop_as_default():
    ps = torch.nn.Linear(2, 1).double().parameters
    base = dict(lr=0.1, momentum=0.9)
    assert SAM.PRESET == "sam" and USAM.PRESET == "usam"
    assert EigenSAM.PRESET == "eigen_sam" and XSAM.PRESET == "xsam"
    assert SAM(ps(), rho=0.1, **base).config == preset("sam", rho=0.1, **base)
    assert USAM(ps(), rho=0.1, **base).config == preset("usam", rho=0.1, **base)
    assert EigenSAM(ps(), rho=0.1, alpha=0.3, **base).config == preset(
        "eigen_sam", rho=0.1, alpha=0.3, **REFERENCE_OPTIONS["eigen_sam"], **base
    )
    for rule in ("paper", "symmetric", "projector", "raw_projection"):
        opt = XSAM(ps(), rho=0.1, alpha=0.3, rule=rule, steps_per_epoch=10, **base)
        assert opt.preset == f"xsam_{rule}"
        assert opt.config == preset(
            f"xsam_{rule}",
            rho=0.1,
            alpha=0.3,
            steps_per_epoch=10,
            **REFERENCE_OPTIONS["xsam"],
            **base,
        )
    # a base optimizer other than SGD keeps its own options; the config holds the method's
    adam = SAM(ps(), torch.optim.Adam, rho=0.1, lr=1e-3, betas=(0.8, 0.99), weight_decay=0.1)
    assert adam.config == preset("sam", rho=0.1, lr=1e-3)
    assert adam.param_groups[0]["betas"] == (0.8, 0.99)
    assert adam.param_groups[0]["weight_decay"] == 0.1


# -- exception safety ---------------------------------------------------------------------------


def _xsam_run(problem, w0, steps, *, fail_at=None, rho=0.5):
    """X-SAM (refresh every 2 steps, momentum) whose second-pass closure raises once at ``fail_at``.

    ``fail_at`` is a step index; the loop catches the error and goes on with the next step.
    """
    cfg = preset("xsam", lr=0.1, rho=rho, alpha=0.4, momentum=0.9, refresh_every=2)
    net = make_net(w0)
    X, y = data(problem)
    opt = optimizer_from_config(net.parameters(), cfg, seed=1, lanczos_steps=problem.dim)
    calls = {"n": 0, "failed": False, "w_after": None}

    def closure():
        calls["n"] += 1
        if opt.steps_taken == fail_at and not calls["failed"] and calls["n"] % 2 == 0:
            calls["failed"] = True
            raise KeyError("lost the batch")
        return F.cross_entropy(net(X), y)

    for _ in range(steps):
        try:
            opt.step(closure)
        except KeyError:
            calls["w_after"] = weights(net)
            calls["n"] = 0
    return net, opt, calls


def test_an_exception_in_the_second_pass_restores_w_and_the_run_continues(problem):
    """With rho = 0.5 the weights are restored to w; before the fix they stayed at w + eps.

    The next step then saved w + eps as w (the run was off by 0.47 two steps later).
    """
    w0 = problem.init_params(3)
    clean, clean_opt, _ = _xsam_run(problem, w0, 6)
    net_w2, _, _ = _xsam_run(problem, w0, 2)
    # fails at step 2, a refresh step: the step is redone from the same w, counters and v
    net, opt, calls = _xsam_run(problem, w0, 7, fail_at=2)
    assert calls["failed"]
    np.testing.assert_array_equal(calls["w_after"], weights(net_w2))
    np.testing.assert_array_equal(weights(net), weights(clean))
    assert opt.steps_taken == clean_opt.steps_taken == 6
    torch.testing.assert_close(opt.eigenvector, clean_opt.eigenvector, rtol=0, atol=0)


def test_two_pass_api_after_an_exception_does_not_save_the_perturbed_point(problem):
    w0 = problem.init_params(4)
    net = make_net(w0)
    X, y = data(problem)
    opt = SAM(net.parameters(), rho=0.5, lr=0.1)
    F.cross_entropy(net(X), y).backward()
    opt.first_step(zero_grad=True)
    assert not np.array_equal(weights(net), w0)  # at w + eps; the user's pass fails here
    with pytest.raises(RuntimeError, match="second_step"):
        opt.first_step()
    np.testing.assert_array_equal(weights(net), w0)
    opt.zero_grad()
    F.cross_entropy(net(X), y).backward()  # the step again, from w
    opt.first_step(zero_grad=True)
    F.cross_entropy(net(X), y).backward()
    opt.second_step()
    ref = make_net(w0)
    SAM(ref.parameters(), rho=0.5, lr=0.1).step(lambda: F.cross_entropy(ref(X), y))
    np.testing.assert_array_equal(weights(net), weights(ref))
    # undo_ascent is the explicit way back
    F.cross_entropy(net(X), y).backward()
    w1 = weights(net)
    opt.first_step(zero_grad=True)
    opt.undo_ascent()
    np.testing.assert_array_equal(weights(net), w1)
    opt.undo_ascent()  # nothing pending: no-op


def _lin_problem():
    lin = torch.nn.Linear(3, 2).double()
    x = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    return lin, x


@pytest.mark.parametrize("name", ["sam", "xsam"])
def test_nan_loss_raises_nonfinite_error_naming_the_step(name):
    lin, x = _lin_problem()
    opt = xsam_torch.optimizer(name, lin.parameters(), lr=0.1, rho=0.05, seed=0)
    opt.step(lambda: lin(x).pow(2).sum())
    before = weights(lin)
    with pytest.raises(NonFiniteError, match="step 1") as err:
        opt.step(lambda: lin(x).pow(2).sum() * float("nan"))
    assert err.value.step == 1
    np.testing.assert_array_equal(weights(lin), before)
    assert opt.steps_taken == 1


def test_inf_gradient_raises_nonfinite_error_and_leaves_the_weights():
    """sqrt(u) at u = 0: a finite loss (0) with an infinite gradient."""
    lin, x = _lin_problem()
    opt = SAM(lin.parameters(), rho=0.05, lr=0.1)
    before = weights(lin)

    def closure():
        s = lin(x).sum()
        return torch.sqrt(s - s.detach())

    with pytest.raises(NonFiniteError, match="gradient") as err:
        opt.step(closure)
    assert err.value.step == 0
    np.testing.assert_array_equal(weights(lin), before)


def test_nan_in_the_second_pass_restores_w():
    lin, x = _lin_problem()
    opt = SAM(lin.parameters(), rho=0.5, lr=0.1)
    before = weights(lin)
    calls = []

    def closure():
        calls.append(1)
        loss = lin(x).pow(2).sum()
        return loss if len(calls) == 1 else loss * float("nan")

    with pytest.raises(NonFiniteError, match="step 0"):
        opt.step(closure)
    np.testing.assert_array_equal(weights(lin), before)
    assert opt.steps_taken == 0


# -- BatchNorm, the eigenvector's running statistics ---------------------------------------------


def test_batchnorm_eval_hessian_step_closure_equals_the_two_pass_api():
    """With hessian_mode='eval', v comes from the running statistics before the first train pass.

    The statistics are those *before* the step's first train-mode pass, in step(closure) as in the
    two-pass API (and the reference code).
    """
    torch.manual_seed(0)
    make = lambda: torch.nn.Sequential(  # noqa: E731
        torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Tanh(), torch.nn.Linear(4, 2)
    ).double()
    net_a = make()
    net_b = make()
    net_b.load_state_dict(net_a.state_dict())
    X = torch.randn(8, 3, dtype=torch.float64)
    y = torch.tensor([0, 1] * 4)
    opts = [
        XSAM(
            net.parameters(),
            lr=0.1,
            rho=0.1,
            alpha=0.5,
            model=net,
            hessian_mode="eval",
            schedule="standard",
            refresh_every=2,
            eigvec_source="power",
        )
        for net in (net_a, net_b)
    ]
    for _ in range(6):
        opts[0].step(lambda: F.cross_entropy(net_a(X), y))
        if opts[1].refresh_due:
            opts[1].refresh_eigenvector(lambda: F.cross_entropy(net_b(X), y))
        F.cross_entropy(net_b(X), y).backward()
        opts[1].first_step(zero_grad=True)
        F.cross_entropy(net_b(X), y).backward()
        opts[1].second_step(zero_grad=True)
    np.testing.assert_allclose(weights(net_a), weights(net_b), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(net_a[1].running_mean, net_b[1].running_mean, rtol=1e-12, atol=1e-12)


# -- the reference schedule's per-epoch counter --------------------------------------------------


def test_reference_schedule_without_steps_per_epoch_warns_once():
    lin, x = _lin_problem()
    opt = XSAM(lin.parameters(), lr=0.1, rho=0.05, alpha=0.2)  # the reference loop
    with pytest.warns(UserWarning, match="never restarts") as rec:
        opt.step(lambda: lin(x).pow(2).sum())
    assert len([w for w in rec if "never restarts" in str(w.message)]) == 1
    assert "steps_per_epoch" in str(rec[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            opt.step(lambda: lin(x).pow(2).sum())
        # set: steps_per_epoch, or new_epoch() from the first epoch on; SAM has no counter
        for make in (lambda ps: XSAM(ps, lr=0.1, steps_per_epoch=4), lambda ps: SAM(ps, lr=0.1)):
            make(lin.parameters()).step(lambda: lin(x).pow(2).sum())
        opt2 = XSAM(lin.parameters(), lr=0.1)
        opt2.new_epoch()
        opt2.step(lambda: lin(x).pow(2).sum())
