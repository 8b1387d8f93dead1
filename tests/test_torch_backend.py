"""The torch backend: the same array-API code on torch tensors agrees with NumPy.

The backend switch and its parity target: docs/algorithms.md#A-backends.

Every check runs the package's own math twice, on NumPy arrays and on torch CPU float64
tensors (``problem.convert(array_api_compat.torch)``), and asks for agreement to 1e-10
relative: losses, gradients, HVPs, top eigenpairs and 100-step trajectories of every preset.
The derivatives themselves are checked against finite differences and autograd in
``test_problems.py``; here the point is that nothing in the code path depends on the backend.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import array_api_compat.torch as xpt  # noqa: E402

from xsam_theory import (  # noqa: E402
    MLP,
    Factorization,
    HessianOperator,
    Quadratic,
    Ravine,
    TwoBlockFactorization,
    preset,
    run_trajectory,
    use_backend,
)
from xsam_theory.backend import (  # noqa: E402
    add_backend_arguments,
    apply_backend_arguments,
    get_backend,
    resolve_backend,
    to_numpy,
)
from xsam_theory.optimizers import PRESETS, REFERENCE_OPTIONS  # noqa: E402
from xsam_theory.spectral import (  # noqa: E402
    exact_top,
    lanczos,
    lanczos_eigsh,
    power_iteration,
)
from xsam_theory.trajectory import SpectralMonitor  # noqa: E402

RTOL = 1e-10
# scripts/gpu_check.sh runs this module with XSAM_TEST_DEVICE=cuda (same float64 tolerances)
DEVICE = torch.device(os.environ.get("XSAM_TEST_DEVICE", "cpu"))
if DEVICE.type == "cuda" and not torch.cuda.is_available():
    pytest.skip("XSAM_TEST_DEVICE=cuda but CUDA is not available", allow_module_level=True)


def T(x):
    """A float64 torch copy of a NumPy array on the test device."""
    return torch.tensor(np.asarray(x), device=DEVICE)


PROBLEMS = {
    "quadratic": (lambda: Quadratic.from_spectrum([4.0, 2.0, 1.0, -0.5], seed=1), None),
    "factorization": (lambda: Factorization(n=3, depth=3), None),
    "two-block": (lambda: TwoBlockFactorization(), [0, 1, 1]),
    "ravine": (lambda: Ravine(lam0=3.0), None),
    "mlp-ce-tanh": (lambda: MLP.teacher_student((4, 6, 3), 24, seed=2), [0, 5, 9, 5]),
    "mlp-squared-softplus-l2": (
        lambda: MLP.teacher_student(
            (3, 5, 4, 2), 15, loss="squared", activation="softplus", l2=0.01, seed=2
        ),
        None,
    ),
}


def both(name):
    make, batch = PROBLEMS[name]
    p = make()
    return p, p.convert(xpt, DEVICE), batch


def close(a, b, rtol=RTOL):
    a, b = to_numpy(a), to_numpy(b)
    scale = max(float(np.max(np.abs(b))), 1e-300)
    assert float(np.max(np.abs(a - b))) <= rtol * scale


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_losses_gradients_hvps_agree(name):
    p, pt, batch = both(name)
    rng = np.random.default_rng(0)
    w = rng.standard_normal(p.dim) * 0.7
    V = rng.standard_normal((5, p.dim))
    for b in (None, batch):
        bn = None if b is None else np.asarray(b)
        bt = None if b is None else torch.as_tensor(b, device=DEVICE)
        point, tpoint = p.at(w, bn), pt.at(T(w), bt)
        assert isinstance(tpoint.grad, torch.Tensor)
        close(tpoint.loss, point.loss)
        close(tpoint.grad, point.grad)
        close(tpoint.hvp(T(V[0])), point.hvp(V[0]))
        close(tpoint.hvp_batch(T(V)), point.hvp_batch(V))
        close(tpoint.hessian(), point.hessian())


def test_top_eigenpairs_agree():
    p, pt, _ = both("mlp-ce-tanh")
    w = p.init_params(1)
    op, opt = HessianOperator.from_problem(p, w), HessianOperator.from_problem(pt, T(w))
    v0 = np.random.default_rng(3).standard_normal(p.dim)
    for f in (
        lambda o: lanczos_eigsh(o, 3, v0=v0),
        lambda o: lanczos(o, v0, 30, 2),
        lambda o: power_iteration(o, v0, 40),
        lambda o: exact_top(o, 2),
    ):
        rn, rt = f(op), f(opt)
        np.testing.assert_allclose(rt.eigenvalues, rn.eigenvalues, rtol=RTOL)
        assert isinstance(rt.eigenvectors, torch.Tensor)
        close(rt.eigenvectors, rn.eigenvectors, rtol=1e-8)  # eigenvectors: 1/gap amplified
        assert rt.n_hvp == rn.n_hvp


def _cfg(name):
    kw = dict(lr=0.05) if name == "gd" else dict(lr=0.05, rho=0.05)
    if name not in ("gd", "sam", "usam", "nsam"):
        kw["refresh_every"] = 10
    return preset(name, **kw)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_100_step_trajectories_of_every_preset_agree(name):
    p, pt, _ = both("mlp-ce-tanh")
    cfg = _cfg(name)
    w0 = p.init_params(3)
    ref = run_trajectory(p, cfg, w0, 100, seed=1)
    tor = run_trajectory(pt, cfg, T(w0), 100, seed=1)
    close(tor.iterates, ref.iterates)
    for key in ("loss", "grad_norm", "direction_norm"):
        close(tor.diagnostics[key], ref.diagnostics[key])


def test_reference_schedule_minibatches_and_monitor_agree():
    p, pt, _ = both("mlp-ce-tanh")
    cfg = preset(
        "xsam",
        lr=0.1,
        rho=0.05,
        alpha=0.3,
        momentum=0.9,
        **{**REFERENCE_OPTIONS["xsam"], "refresh_every": 3},
    )
    w0 = p.init_params(4)
    mon = [SpectralMonitor(every=25)]
    ref = run_trajectory(p, cfg, w0, 100, seed=2, batch_size=6, monitors=mon)
    tor = run_trajectory(pt, cfg, T(w0), 100, seed=2, batch_size=6, monitors=mon)
    assert ref.diagnostics["refreshed"].sum() >= 20
    close(tor.iterates, ref.iterates)
    close(tor.monitors["spectral"]["lambda_max"], ref.monitors["spectral"]["lambda_max"])


def test_documented_switch_creates_torch_arrays():
    with use_backend("torch", str(DEVICE)):
        p = MLP.teacher_student((4, 6, 3), 24, seed=2)
        w = p.init_params(1)
        assert isinstance(w, torch.Tensor) and w.dtype == torch.float64
        assert w.device.type == DEVICE.type
    assert get_backend() == ("numpy", None)
    ref = MLP.teacher_student((4, 6, 3), 24, seed=2)
    close(p.at(w).grad, ref.at(ref.init_params(1)).grad)


def test_scipy_driving_hvps_limits_the_competing_blas_pools():
    """T8: SciPy driving HVPs limits the competing BLAS pools to one thread inside eigsh.

    On a torch operator every BLAS pool runs one thread; on a NumPy operator SciPy's own OpenBLAS
    runs one thread and NumPy's (which computes the HVPs) keeps its own.
    """
    from threadpoolctl import threadpool_info

    from xsam_theory.threads import _scipy_only_blas

    seen = {}

    def spy(kind, matmat):
        def f(V):
            seen.setdefault(kind, []).append(
                {
                    i["filepath"]: i["num_threads"]
                    for i in threadpool_info()
                    if i["user_api"] == "blas"
                }
            )
            return matmat(V)

        return f

    free = {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    scipy_own = {lib.filepath for lib in _scipy_only_blas()}
    p = PROBLEMS["quadratic"][0]()
    pt = p.convert(xpt)
    for kind, prob, xp, w in (
        ("torch", pt, xpt, torch.zeros(p.dim, dtype=torch.float64)),
        ("numpy", p, None, np.zeros(p.dim)),
    ):
        point = prob.at(w)
        op = HessianOperator(
            spy(kind, point.hvp_batch),
            p.dim,
            xp=xp or __import__("array_api_compat.numpy", fromlist=["x"]),
            dtype=w.dtype,
        )
        lanczos_eigsh(op, 1)
    # every HVP ARPACK asked for ran under the limit (the last call computes the residual
    # after eigsh returned, outside it)
    assert len(seen["torch"]) > 2 and all(set(s.values()) == {1} for s in seen["torch"][:-1])
    expected = {f: (1 if f in scipy_own else n) for f, n in free.items()}
    assert all(s == expected for s in seen["numpy"][:-1])
    assert {
        i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"
    } == free


def test_cli_backend_helper_parses_and_applies():
    parser = argparse.ArgumentParser()
    add_backend_arguments(parser)
    args = parser.parse_args(["--backend", "torch", "--device", "cpu"])
    xp, device = resolve_backend(args.backend, args.device)
    assert xp is xpt and str(device) == "cpu"
    with apply_backend_arguments(args):
        assert get_backend() == ("torch", "cpu")
    assert get_backend() == ("numpy", None)
    with pytest.raises(ValueError, match="cuda"):
        resolve_backend("numpy", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_backend("torch", "cuda")


def test_guide_pytorch_examples_run():
    """The two PyTorch examples of ``docs/torch.md`` run as written (kept true)."""
    import contextlib
    import io
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "torch.md"
    text = page.read_text(encoding="utf-8")
    blocks = [
        b
        for b in re.findall(r"```python\n(.*?)```", text, flags=re.S)
        if "resolve_backend" in b or "xsam_theory.torch" in b
    ]
    assert len(blocks) == 2
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, str(page), "exec"), {"__name__": "guide"})
    assert re.search(
        # 3 epochs of 8 batches, two gradients (w and w + eps) per step
        r"loss [0-9.]+, lambda estimate [0-9.]+, 48 gradients, \d+ HVPs",
        out.getvalue(),
    )
