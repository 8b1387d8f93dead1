#!/usr/bin/env bash
# GPU check for the torch backend (issue 6). Fits in 5 minutes on one GPU (H100 or H200):
#   1. the torch parity tests on CUDA (float64; the same 1e-10 tolerances as on the CPU),
#   2. xsam-theory verify --quick --backend torch --device cuda,
#   3. xsam-theory bench --quick --device cuda on the medium model and a large one
#      (32-4096-4096-10, 16.9M parameters).
# Everything it prints also goes to $OUT (default gpu-check-out/): parity.txt, verify.txt,
# bench-cuda.txt, bench-cuda.json, env.txt.
#
# The GPU image has torch, numpy, scipy, sympy, matplotlib, threadpoolctl, pytest and hypothesis
# but not array-api-compat / array-api-strict (pure Python). Prepare once on the CPU machine:
#     scripts/gpu_check.sh prepare        # copies them into .gpu-vendor/ (git-ignored locally)
# then run on the device with `carry: [".gpu-vendor"]` and the command `scripts/gpu_check.sh`.
#
# STATUS: written without a GPU; it has NOT been run yet. Record its numbers, with the card's
# name, in docs/benchmarks.md when it has.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [[ "${1:-}" == "prepare" ]]; then
    mkdir -p .gpu-vendor
    for mod in array_api_compat array_api_strict; do
        src=$(python -c "import $mod, os; print(os.path.dirname($mod.__file__))")
        rm -rf ".gpu-vendor/$mod" && cp -r "$src" ".gpu-vendor/$mod"
    done
    grep -qx '/.gpu-vendor/' .git/info/exclude 2>/dev/null || echo '/.gpu-vendor/' >> .git/info/exclude
    echo "prepared .gpu-vendor/ ($(du -sh .gpu-vendor | cut -f1)); carry it to the GPU machine"
    exit 0
fi

PY=${PYTHON:-python3}
OUT=${OUT:-$ROOT/gpu-check-out}
mkdir -p "$OUT"
export PYTHONPATH="$ROOT:$ROOT/.gpu-vendor${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
status=0

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
    $PY - <<'PY'
import numpy, scipy, torch
print("python", __import__("sys").version.split()[0], "numpy", numpy.__version__,
      "scipy", scipy.__version__, "torch", torch.__version__)
print("cuda available:", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
import array_api_compat, xsam_theory
print("array_api_compat", array_api_compat.__version__, "xsam_theory", xsam_theory.__version__)
PY
} 2>&1 | tee "$OUT/env.txt"

echo "== 1. torch parity tests on CUDA (budget 100 s)"
XSAM_TEST_DEVICE=cuda timeout 100 $PY -m pytest -q -p no:cacheprovider \
    tests/test_torch_backend.py tests/test_torch_optim.py 2>&1 | tee "$OUT/parity.txt"
rc=${PIPESTATUS[0]}; echo "parity exit status $rc"; [[ $rc == 0 ]] || status=1

# the claims that drive the optimizer run it on the GPU (the table's "on" column says which);
# on torch CPU the quick run takes ~45 s
echo "== 2. verify --quick on torch/cuda (budget 120 s)"
timeout 120 $PY -m xsam_theory verify --quick --backend torch --device cuda --quiet \
    --no-figures --out "$OUT/verify" 2>&1 | tee "$OUT/verify.txt"
rc=${PIPESTATUS[0]}; echo "verify exit status $rc"; [[ $rc == 0 ]] || status=1

echo "== 3. bench --quick on cuda, medium and large (budget 90 s)"
timeout 90 $PY -m xsam_theory bench --quick --device cuda --models medium,large \
    --json "$OUT/bench-cuda.json" 2>&1 | tee "$OUT/bench-cuda.txt"
rc=${PIPESTATUS[0]}; echo "bench exit status $rc"; [[ $rc == 0 ]] || status=1

echo "gpu_check finished with status $status; outputs in $OUT"
exit $status
