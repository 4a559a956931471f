#!/usr/bin/env bash
# The CPU measurements recorded in BENCHMARKS.md, in one go (about 15-25 minutes on 2 cores).
# Run after the README's set-up; JSON results go to ${OUT:-benchmarks-out}/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-benchmarks-out}
mkdir -p "$OUT"
echo "### date: $(date -u); $(grep -m1 'model name' /proc/cpuinfo); $(nproc) CPUs"
echo "### op and block, float32, default environment"
$PY -m alexops.compare --what op --json "$OUT/op_float32.json" --plot "$OUT/op_float32.png"
$PY -m alexops.compare --what block --json "$OUT/block_float32.json"
echo "### op, float32, without allocation page faults (glibc keeps the freed buffers)"
MALLOC_MMAP_THRESHOLD_=1000000000 $PY -m alexops.compare --what op --json "$OUT/op_float32_no_page_faults.json"
echo "### op, float16 and bfloat16 beside float32, 10 timed steps"
$PY -m alexops.compare --what op --dtype float32,float16,bfloat16 --steps 10 --json "$OUT/op_dtypes.json"
echo "### model float32, 20 timed after 3 burn-in"
$PY -m alexops.compare --what model --steps 20 --burn-in 3 --json "$OUT/model_float32.json"
echo "### LRN for free: the fused op against the ReLU it replaces, TF and preallocated"
$PY scripts/lrn_for_free.py --dtype float32,float16,bfloat16 --rounds 30
