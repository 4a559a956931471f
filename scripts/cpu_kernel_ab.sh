#!/usr/bin/env bash
# Builds scripts/cpu_kernel_bench.cc in A/B mode: A = the kernels of this checkout, B = the
# same with PATCH applied (for example one of scripts/experiments/), both for this machine.
#   bash scripts/cpu_kernel_ab.sh scripts/experiments/bf16-truncating-store.patch /tmp/ab
#   C=64 /tmp/ab 64 forward bf16 threads     # arguments as cpu_kernel_bench.cc's (pool-forward,
#                                            # pool-backward time lrn_relu_max_pool)
# PATCH "none" compares the same code built two ways: A_FLAGS and B_FLAGS (default
# -march=native for both) replace the target flags, for example two of CMakeLists.txt's
# instruction-set levels on a new CPU, to check that the level picked at run time is the fastest:
#   A_FLAGS="-march=x86-64-v3 -mtune=generic" \
#   B_FLAGS="-march=x86-64-v4 -mavx512bf16 -mtune=icelake-server" bash scripts/cpu_kernel_ab.sh none /tmp/ab
set -euo pipefail
patch=$1; out=${2:-/tmp/cpu_kernel_ab}
[ "$patch" = none ] || patch=$(realpath "$patch")
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r csrc "$work/b"
[ "$patch" = none ] || (cd "$work/b" && patch -s -p2 < "$patch")  # the patches name a/csrc/...
common="-O3 -fno-math-errno -std=c++17"
a_flags="$common ${A_FLAGS:--march=native}"
b_flags="$common ${B_FLAGS:--march=native}"
for kernel in lrn_relu lrn_relu_max_pool; do
  g++ $a_flags -Icsrc -DALEXOPS_ISA_NAMESPACE=cpu_a -c csrc/$kernel/cpu.cc -o "$work/a_$kernel.o" & a=$!
  g++ $b_flags -I"$work/b" -DALEXOPS_ISA_NAMESPACE=cpu_b -c "$work/b/$kernel/cpu.cc" -o "$work/b_$kernel.o" & b=$!
  # A compile error stops here: a bare `wait` returns 0, and under set -e a failure before the
  # last command of an && list would not stop the script either.
  wait $a
  wait $b
done
# The driver itself uses no level's instructions, so that it runs wherever A and B both do.
g++ $common -Icsrc -DALEXOPS_BENCH_AB scripts/cpu_kernel_bench.cc "$work"/a_*.o "$work"/b_*.o -o "$out" -lpthread
if [ "$patch" = none ]; then
  echo "built $out (A: $a_flags, B: $b_flags)"
else
  echo "built $out (A: this checkout, B: with $(basename "$patch"))"
fi
