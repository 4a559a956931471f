#!/usr/bin/env bash
# CUDA kernel variants side by side on one card, in one call (the GPU twin of
# scripts/cpu_kernel_ab.sh). Each variant is a copy of this source tree with one patch from
# scripts/experiments/ applied ("base": none), run through scripts/gpu_check.sh (build, GPU
# tests, benchmark, sanitizers; no peers), one after the other. The last thing printed is
# each variant's fused time over the copy of the same bytes (op level), or the fused block's
# over fused LRN + cuDNN's pool (block level), per shape and pass.
#
#   bash scripts/gpu_ab.sh OUT_DIR [PATCH...]      e.g. scripts/experiments/gpu-precise-sqrt.patch
#
# OUT_DIR gets ab-summary.txt and bench-<variant>.json (1 + variants files, for the device
# tool's 8). Environment: BENCH_DTYPES (default float32,float16), AB_BENCH_WHAT (what the
# benchmark times: op, the default, or block, for lrn_relu_max_pool's kernels), and
# gpu_check.sh's.
set -u
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
shift
WORK=${AB_WORK:-/tmp/alexops-ab}
PY=${PYTHON:-python3}
: > "$OUT/ab-summary.txt"

run_variant() {  # NAME [PATCH]
  local name=$1 patch=${2:-} tree=$WORK/$1
  rm -rf "$tree" && mkdir -p "$tree"
  tar -C "$REPO" --exclude=./build --exclude=./.venv --exclude=./.git --exclude=./gpu-logs -cf - . | tar -C "$tree" -xf -
  if [ -n "$patch" ] && ! (cd "$tree" && patch -p1 -s < "$REPO/$patch"); then
    echo "== $name: $patch does not apply" >> "$OUT/ab-summary.txt"
    return
  fi
  GPU_CHECK_OUT="$tree/logs" BUILD_DIR="$tree/build" PEERS=0 BENCH_WHAT="${AB_BENCH_WHAT:-op}" \
    BENCH_DTYPES="${BENCH_DTYPES:-float32,float16}" bash "$tree/scripts/gpu_check.sh" > "$tree/stdout.txt" 2>&1
  { echo "== $name ${patch:-(no patch)}"; cat "$tree/logs/summary.txt"; } >> "$OUT/ab-summary.txt"
  [ -f "$tree/logs/bench.json" ] && cp "$tree/logs/bench.json" "$OUT/bench-$name.json"
}

run_variant base
for patch in "$@"; do
  run_variant "$(basename "$patch" .patch)" "$patch"
done
cat "$OUT/ab-summary.txt"
"$PY" - "$OUT" <<'PYEOF'
import glob, json, os, sys
print("\nours / the yardstick: fused / copy (op), fused_pool / fused+cudnn pool (block); medians")
for path in sorted(glob.glob(os.path.join(sys.argv[1], "bench-*.json"))):
    times = {}
    for row in json.load(open(path))["results"]:
        times[(row["name"], row["pass"], row["impl"])] = row["median_ms"]
    print(os.path.basename(path)[6:-5])
    # Op level: fused over the copy; block level: the fused block over fused LRN + cuDNN pool.
    for ours, yardstick in (("fused", "copy"), ("fused_pool", "fused+cudnn pool")):
        for (name, pas, impl), base in sorted(times.items()):
            if impl == yardstick and (name, pas, ours) in times:
                t = times[(name, pas, ours)]
                print(f"  {name:20} {pas:17} {t / base:.3f}  ({t:.4f} ms / {base:.4f} ms {yardstick})")
PYEOF
