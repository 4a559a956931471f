#!/usr/bin/env bash
# The one command for a bare GPU machine (Python with CuPy, pybind11, CMake, nvcc, pytest and
# the nvidia-cudnn wheel; no TensorFlow, no network). It builds the core with CUDA (and the
# cuDNN baseline) in place, runs the GPU tests, runs compute-sanitizer memcheck and racecheck
# on a small forward+backward, then the GPU benchmark, whose table prints last.
# Takes about 3-5 minutes. Environment: PYTHON (default python3), BUILD_DIR, CUDA_ARCH
# (default native), OUT (the JSON goes there).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUILD=${BUILD_DIR:-build/gpu}
RESULTS=${OUT:-$BUILD}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

echo "== $(date -u +%Y-%m-%dT%H:%MZ) $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
echo "== nvcc: $(nvcc --version | tail -1)"
CUDNN_ROOT=$($PY -c "import nvidia.cudnn; print(nvidia.cudnn.__path__[0])" 2>/dev/null || true)

echo "== build (CUDA for this GPU, no TensorFlow)"
mkdir -p "$BUILD"
cmake -S . -B "$BUILD" -G Ninja -DPython_EXECUTABLE="$(command -v "$PY")" -DALEXOPS_TF=off \
  -DALEXOPS_CUDA=on -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-native}" -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$PWD/alexops" \
  ${CUDNN_ROOT:+-DCUDNN_ROOT=$CUDNN_ROOT} > "$BUILD/configure.log" 2>&1 || { cat "$BUILD/configure.log"; exit 1; }
grep -A4 "alexops build summary" "$BUILD/configure.log"
cmake --build "$BUILD" --parallel > "$BUILD/build.log" 2>&1 || { tail -60 "$BUILD/build.log"; exit 1; }
grep -E "warning|spill" "$BUILD/build.log" || echo "no compiler warnings, no register spills"

echo "== tests (GPU, and the CPU core and reference)"
$PY -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_core.py tests/test_reference.py

echo "== compute-sanitizer"
for tool in memcheck racecheck; do
  compute-sanitizer --tool "$tool" --error-exitcode 1 $PY scripts/gpu_smoke.py 2>&1 | tail -3
done

echo "== benchmark"
mkdir -p "$RESULTS"
$PY -m alexops.compare --backend cupy --what op --steps 50 --burn-in 10 --json "$RESULTS/gpu_bench.json"
