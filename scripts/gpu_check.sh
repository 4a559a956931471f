#!/usr/bin/env bash
# The one command for a GPU machine (Python with CuPy, pybind11, CMake, nvcc, pytest and the
# nvidia-cudnn wheel; no TensorFlow, no network needed):
#
#   bash scripts/gpu_check.sh            build, GPU tests, benchmark, sanitizers, compiler peers
#   bash scripts/gpu_check.sh --no-gpu   configure and build for sm_90, check the imports
#                                        (what needs no card; CI runs it)
#
# Every stage runs whatever happened before it, is timed (and cut off at its time limit, so a
# hung kernel cannot eat a lent card's whole lease), and logs under $GPU_CHECK_OUT (default
# gpu-logs/; at most 8 files of at most 2 MB). The last thing printed is the summary (each
# stage's result and time), the benchmark's table and the peers' table.
# The build goes to $BUILD_DIR (default build/gpu-check) as a package of its own, so the
# source tree's build (and TensorFlow's op library) is left alone.
# Environment: PYTHON (default python3), CUDA_ARCH (default native; sm_90 with --no-gpu),
# BENCH_STEPS (default 30), SANITIZER_TIMEOUT (seconds per tool, default 120), STAGE_TIMEOUT
# (seconds for each of tests, benchmark and peers, default 900: a guard against a hung kernel,
# generous for slower cards; a lent card's lease wants less), PEERS=0 (skip the peers),
# BENCH_WHAT (op|block|model|all, default all), BENCH_DTYPES (default float32,float16,bfloat16),
# POOL_BAND_SWEEP (e.g. "1 2 3 4": lrn_relu_max_pool's block rows, its backward in each band),
# PROFILE=1 (each kernel under ncu; one more log: with PEERS and POOL_BAND_SWEEP too, that is 9,
# one more than the device tool brings back, so tar them).
set -u
cd "$(dirname "$0")/.."
REPO=$PWD
NO_GPU=0
[ "${1:-}" = "--no-gpu" ] && NO_GPU=1
PY=$(command -v "${PYTHON:-python3}") || { echo "no ${PYTHON:-python3}"; exit 1; }
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"  # absolute, symlinks kept (a venv's python is one)
OUT=$(mkdir -p "${GPU_CHECK_OUT:-gpu-logs}" && cd "${GPU_CHECK_OUT:-gpu-logs}" && pwd)
BUILD=${BUILD_DIR:-$REPO/build/gpu-check}
STAGE_LIMIT=${STAGE_TIMEOUT:-900}  # seconds for each of the tests, benchmark and peers stages
PKG=$BUILD/pkg
SUMMARY=$OUT/summary.txt
export PYTHONUNBUFFERED=1
export PATH="$(dirname "$PY"):$PATH"  # the interpreter's own cmake, ninja, pytest
: > "$SUMMARY"
rm -f "$OUT"/*.log

# run_stage NAME LOG COMMAND...: runs the command with its output added to LOG, records the result.
run_stage() {
  local name=$1 log=$2 start rc
  shift 2
  start=$(date +%s)
  echo "== $name (log: $log)"
  "$@" >> "$OUT/$log" 2>&1
  rc=$?
  printf '%-12s %-28s %4ss  %s\n' "$name" \
    "$([ $rc -eq 0 ] && echo passed || { [ $rc -eq 124 ] && echo "TIMED OUT" || echo "FAILED (exit $rc)"; })" \
    "$(( $(date +%s) - start ))" "$log" >> "$SUMMARY"
  tail -n 3 "$OUT/$log"
  return $rc
}

note() { printf '%-12s %s\n' "$1" "$2" >> "$SUMMARY"; }

# Keeps every log within 2 MB (its end, where failures are).
trim_logs() {
  for f in "$OUT"/*; do
    if [ -f "$f" ] && [ "$(stat -c %s "$f")" -gt 2000000 ]; then
      tail -c 1900000 "$f" > "$f.tmp" && mv "$f.tmp" "$f"
    fi
  done
}

environment() {
  date -u +%Y-%m-%dT%H:%MZ
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader 2>/dev/null || echo "nvidia-smi: no GPU"
  nvcc --version | tail -2
  "$PY" - <<'EOF'
import importlib, platform
print("python", platform.python_version())
for name in ("numpy", "pybind11", "cupy", "pytest"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"))
    except Exception as error:
        print(name, "missing:", error)
try:
    import nvidia.cudnn, os
    libs = os.listdir(os.path.join(nvidia.cudnn.__path__[0], "lib"))
    print("cudnn wheel", nvidia.cudnn.__path__[0], sorted(l for l in libs if l.startswith("libcudnn.so")))
except Exception as error:
    print("cudnn wheel missing:", error)
EOF
  command -v ninja > /dev/null && echo "ninja $(ninja --version)" || echo "ninja: missing (Makefiles instead)"
  echo "compute-sanitizer: $(find_cuda_tool compute-sanitizer || echo missing)"
  echo "ncu: $(find_cuda_tool ncu || echo missing)"
}

find_cuda_tool() {  # $1: compute-sanitizer or ncu
  local candidate
  for candidate in "$(command -v "$1" 2>/dev/null)" "${CUDA_HOME:-}/bin/$1" \
      "$(dirname "$(command -v nvcc 2>/dev/null || echo /x/x)")/$1" "/usr/local/cuda/bin/$1" /opt/nvidia/nsight-compute/*/"$1"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] && { echo "$candidate"; return 0; }
  done
  return 1
}

CUDNN_ROOT=$("$PY" -c "import nvidia.cudnn; print(nvidia.cudnn.__path__[0])" 2>/dev/null || true)
[ -n "$CUDNN_ROOT" ] && export LD_LIBRARY_PATH="$CUDNN_ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

configure_and_build() {  # $1: on|off for the cuDNN baseline
  local generator=Ninja arch=${CUDA_ARCH:-native}
  command -v ninja > /dev/null || generator="Unix Makefiles"
  [ $NO_GPU -eq 1 ] && arch=${CUDA_ARCH:-90}
  rm -rf "$PKG" && mkdir -p "$PKG/alexops/bench"
  cp "$REPO"/alexops/*.py "$PKG/alexops/" && cp "$REPO"/alexops/bench/*.py "$PKG/alexops/bench/"
  rm -f "$PKG/alexops/_build_info.py"
  cmake -S "$REPO" -B "$BUILD/cmake" -G "$generator" -DPython_EXECUTABLE="$PY" -DALEXOPS_TF=off -DALEXOPS_CUDA=on \
    -DALEXOPS_CUDNN="$1" ${CUDNN_ROOT:+-DCUDNN_ROOT=$CUDNN_ROOT} -DCMAKE_CUDA_ARCHITECTURES="$arch" \
    -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$PKG/alexops" || return 1
  cmake --build "$BUILD/cmake" --parallel || return 1
}

build() {
  rm -rf "$BUILD/cmake"
  if ! configure_and_build auto; then
    echo "!! the build failed with the cuDNN baseline; building without it"
    rm -rf "$BUILD/cmake"
    configure_and_build off || return 1
    echo "cuDNN baseline: left out (see above)"
  fi
  local found
  found=$(grep -iE "warning|spill" "$OUT/build.log" | grep -v "0 bytes spill")
  echo "compiler warnings and register spills: ${found:-none}"
}

import_checks() {
  cd "$PKG" && "$PY" - <<EOF
import alexops, alexops.numpy, alexops.cupy, alexops._core as core
from alexops.bench import cudnn, compare, oplevel, report, timing, cupy_backend
assert core.__file__.startswith("$PKG"), core.__file__
assert core.cuda_available(), "built without CUDA"
for dtype in ("float16", "bfloat16", "float32", "float64"):
    for channels in (64, 192):
        assert core.cuda_kernel_for(dtype, channels, 4) == "registers", (dtype, channels)
print("imports fine; the cuDNN baseline", "is" if cudnn.available() else "is NOT", "built")
print("AlexNet's shapes take the register kernel in every dtype")
EOF
}

gpu_tests() {
  cd "$PKG" && timeout "$STAGE_LIMIT" "$PY" -m pytest -rfE -q -p no:cacheprovider --rootdir "$REPO" "$REPO/tests/test_gpu.py" \
    "$REPO/tests/test_core.py" "$REPO/tests/test_reference.py" || return 1
  # lrn_relu_max_pool's version 1 (the fallback for shapes outside the lanes' layout) too.
  # (test_max_pool_gradient_is_the_same_in_every_band sets its own bands, and has run above.)
  echo "---- lrn_relu_max_pool, version 1 (ALEXOPS_CUDA_KERNEL=tiled)"
  ALEXOPS_CUDA_KERNEL=tiled timeout "$STAGE_LIMIT" "$PY" -m pytest -rfE -q -p no:cacheprovider --rootdir "$REPO" \
    "$REPO/tests/test_gpu.py" -k "max_pool and not 2x27x27x192 and not every_band" || return 1
  # Version 2's backward in bands of several output rows (the tests' small batches get bands of one).
  echo "---- lrn_relu_max_pool, version 2's backward in bands of 3 output rows (ALEXOPS_CUDA_POOL_BAND_ROWS=3)"
  ALEXOPS_CUDA_POOL_BAND_ROWS=3 timeout "$STAGE_LIMIT" "$PY" -m pytest -rfE -q -p no:cacheprovider --rootdir "$REPO" \
    "$REPO/tests/test_gpu.py" -k "max_pool and not every_band"
}

benchmark() {
  cd "$PKG" && timeout "$STAGE_LIMIT" "$PY" -m alexops.compare --backend cupy --what "${BENCH_WHAT:-all}" \
    --steps "${BENCH_STEPS:-30}" --burn-in 5 --dtype "${BENCH_DTYPES:-float32,float16,bfloat16}" --json "$OUT/bench.json"
}

# lrn_relu_max_pool's block rows (float32) with its backward in each band of output rows in
# POOL_BAND_SWEEP (the forward takes no bands: its rows time it again each time).
band_sweep() {
  local rows
  for rows in $POOL_BAND_SWEEP; do
    echo "---- ALEXOPS_CUDA_POOL_BAND_ROWS=$rows"
    (cd "$PKG" && ALEXOPS_CUDA_POOL_BAND_ROWS=$rows timeout "$STAGE_LIMIT" "$PY" -m alexops.compare --backend cupy \
      --what block --steps "${BENCH_STEPS:-30}" --burn-in 5 --dtype float32) | grep -E "^block .*(fused_pool|fused\+cudnn)" \
      || return 1
  done
}

# PROFILE=1: one launch of each of our kernels at AlexNet's shapes (scripts/gpu_profile.py)
# under Nsight Compute, with the card's clocks left alone: throughput against the card's
# peaks, occupancy, and where warps stall. The whole report is profile.log.
# ncu exits 0 when its filter matched no kernel: the stage fails then, rather than pass empty.
profile() {
  local ncu report rc
  ncu=$(find_cuda_tool ncu) || { echo "ncu not found"; return 1; }
  report=$(mktemp)
  (cd "$PKG" && PYTHONPATH="$PKG" timeout "$STAGE_LIMIT" "$ncu" --clock-control none --kernel-name-base function \
    --kernel-name regex:'(forward|backward)_(registers|tiled)|pool_(forward|backward)' \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    --section SchedulerStats --section MemoryWorkloadAnalysis "$PY" "$REPO/scripts/gpu_profile.py") > "$report" 2>&1
  rc=$?
  cat "$report"
  if ! grep -q "Section: " "$report"; then
    echo "ncu reported no section of any of our kernels (its --kernel-name filter, or ncu itself)"
    [ $rc -ne 0 ] || rc=1
  fi
  rm -f "$report"
  return $rc
}

# torch.compile and jax.jit of relu+LRN beside our kernel, timed alike (issue 12's peers).
# JAX is kept from taking most of the card's memory up front, which torch already holds.
peers() {
  cd "$PKG" && PYTHONPATH="$PKG" XLA_PYTHON_CLIENT_PREALLOCATE=false timeout "$STAGE_LIMIT" "$PY" "$REPO/scripts/gpu_peers.py"
}

sanitizers() {
  local sanitizer tool rc failed=0
  sanitizer=$(find_cuda_tool compute-sanitizer) || { echo "compute-sanitizer not found: skipped"; return 0; }
  for tool in memcheck racecheck initcheck synccheck; do
    echo "---- $tool"
    # CuPy's memory pool would hide out-of-bounds accesses into neighbouring pool blocks.
    (cd "$PKG" && PYTHONPATH="$PKG" ALEXOPS_NO_MEMPOOL=1 timeout "${SANITIZER_TIMEOUT:-120}" "$sanitizer" --tool "$tool" \
      --error-exitcode 3 "$PY" "$REPO/scripts/gpu_smoke.py") > "$OUT/sanitizer.tmp" 2>&1
    rc=$?
    cat "$OUT/sanitizer.tmp"
    if grep -qiE "device not supported|not supported on this|Unable to (find|load)" "$OUT/sanitizer.tmp"; then
      echo "$tool: unsupported here, skipped"
      note "  $tool" "skipped (unsupported here)"
    elif [ $rc -eq 124 ]; then
      note "  $tool" "TIMED OUT after ${SANITIZER_TIMEOUT:-120}s"
      failed=1
    else
      note "  $tool" "$([ $rc -eq 0 ] && echo clean || echo "FAILED (exit $rc)")"
      [ $rc -eq 0 ] || failed=1
    fi
  done
  rm -f "$OUT/sanitizer.tmp"
  return $failed
}

run_stage environment environment.log environment
run_stage build build.log build
built=$?
if [ $built -eq 0 ]; then
  run_stage imports build.log import_checks
  if [ $NO_GPU -eq 0 ]; then
    run_stage gpu-tests tests.log gpu_tests
    run_stage benchmark benchmark.log benchmark
    run_stage sanitizers sanitizers.log sanitizers
    [ -z "${POOL_BAND_SWEEP:-}" ] || run_stage band-sweep bands.log band_sweep
    [ -z "${PROFILE:-}" ] || run_stage profile profile.log profile
    [ "${PEERS:-1}" = 0 ] || run_stage peers peers.log peers
  fi
else
  note tests "not run: the build failed"
fi
trim_logs

echo
echo "==== gpu_check summary ($(date -u +%Y-%m-%dT%H:%MZ); logs in $OUT)"
head -n 2 "$OUT/environment.log" | tail -n 1
cat "$SUMMARY"
if [ -f "$OUT/benchmark.log" ]; then
  echo
  sed -n '/^alexops.compare on/,$p' "$OUT/benchmark.log"
fi
if [ -f "$OUT/bands.log" ]; then
  echo
  cat "$OUT/bands.log"
fi
if [ -f "$OUT/profile.log" ]; then  # each launch's name and headline figures
  echo
  grep -E "^float(32|16) lrn|^  [^ ].*Context [0-9]+, Stream|^ +(Duration|DRAM Throughput|Compute \(SM\) Throughput|Achieved Occupancy|Registers Per Thread|Warp Cycles Per Issued Instruction) " \
    "$OUT/profile.log"
fi
if [ -f "$OUT/peers.log" ]; then
  echo
  sed -n '/^relu + LRN peers/,$p' "$OUT/peers.log"
fi
! grep -q "FAILED\|TIMED OUT" "$SUMMARY"
