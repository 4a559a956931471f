#!/usr/bin/env bash
# Builds scripts/cpu_kernel_bench.cc in A/B mode: A = the kernels of this checkout, B = the
# same with PATCH applied (for example one of scripts/experiments/), both for this machine.
#   bash scripts/cpu_kernel_ab.sh scripts/experiments/bf16-truncating-store.patch /tmp/ab
#   C=64 /tmp/ab 64 forward bf16 threads     # arguments as cpu_kernel_bench.cc's (pool-forward,
#                                            # pool-backward time lrn_relu_max_pool)
set -euo pipefail
patch=$(realpath "$1"); out=${2:-/tmp/cpu_kernel_ab}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r csrc "$work/b"
(cd "$work/b" && patch -s -p2 < "$patch")  # the patches name a/csrc/...
flags="-O3 -march=native -fno-math-errno -std=c++17"
for kernel in lrn_relu lrn_relu_max_pool; do
  g++ $flags -Icsrc -DALEXOPS_ISA_NAMESPACE=cpu_a -c csrc/$kernel/cpu.cc -o "$work/a_$kernel.o" &
  g++ $flags -I"$work/b" -DALEXOPS_ISA_NAMESPACE=cpu_b -c "$work/b/$kernel/cpu.cc" -o "$work/b_$kernel.o" &
  wait
done
g++ $flags -Icsrc -DALEXOPS_BENCH_AB scripts/cpu_kernel_bench.cc "$work"/a_*.o "$work"/b_*.o -o "$out" -lpthread
echo "built $out (A: this checkout, B: with $(basename "$patch"))"
