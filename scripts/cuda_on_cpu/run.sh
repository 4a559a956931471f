#!/usr/bin/env bash
# Checks the CUDA kernels' logic without a GPU: builds the .cu files of csrc/ with g++ on top
# of cuda_on_cpu.h (each CUDA thread a std::thread) and runs check.cc, which compares their
# results with the CPU kernels' on small problems in every dtype. Slow (a thread per CUDA
# thread) and blind to speed; for races see below. A card's run stays the real check.
#   bash scripts/cuda_on_cpu/run.sh [CSRC_DIR]     # default: this checkout's csrc
#   CUDA_ON_CPU_SANITIZE=thread bash scripts/cuda_on_cpu/run.sh
# The second builds the kernels with ThreadSanitizer: two threads of a block that touch the
# same memory, one of them writing, with no barrier between them (a missing __syncthreads,
# a lane reading a neighbour's shared memory too early) fail the run, whatever the results.
# Kernels are launched with a grid of at most 2 blocks (ALEXOPS_CUDA_MAX_GRID_BLOCKS), so that
# every block loops over several units of work, as on a card only past 2^20 units: a barrier
# missing between one unit and the next shows there.
# Needs the CUDA toolkit's headers (no GPU, no libcudart) and g++ with C++20.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
csrc=$(cd "${1:-$repo/csrc}" && pwd)
cuda_include=$(dirname "$(dirname "$(command -v nvcc)")")/include
[ -f "$cuda_include/cuda_runtime.h" ] || cuda_include=/usr/local/cuda/include
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$csrc" "$work/csrc"
# Every launch `kernel<<<config>>>(args);` becomes cuda_on_cpu::launch(config, [&] { kernel(args); });
python3 - "$work/csrc" <<'PYEOF'
import pathlib, sys
for path in pathlib.Path(sys.argv[1]).rglob("*.cu*"):
    text = path.read_text()
    while "<<<" in text:
        at = text.index("<<<")
        start = text.rindex("\n", 0, at) + 1
        kernel = text[start:at].strip()
        close = text.index(">>>", at)
        config = text[at + 3:close]
        depth, i = 0, close + 3
        assert text[i] == "(", path
        for i in range(close + 3, len(text)):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            if depth == 0:
                break
        args = text[close + 4:i]
        indent = text[start:at][: len(text[start:at]) - len(text[start:at].lstrip())]
        text = text[:start] + f"{indent}cuda_on_cpu::launch({config}, [&] {{ {kernel}({args}); }})" + text[i + 1:]
    path.write_text(text)
PYEOF
# (-fno-strict-aliasing: the 16-bit packets reinterpret a uint4 as pairs, as device code may.)
sanitize=${CUDA_ON_CPU_SANITIZE:+-fsanitize=$CUDA_ON_CPU_SANITIZE}
flags="-std=c++20 -O1 -g $sanitize -DALEXOPS_CUDA_MAX_GRID_BLOCKS=2 -pthread -fno-math-errno -fno-strict-aliasing -I$work/csrc -I$cuda_include -include $here/cuda_on_cpu.h"
objects=()
for cu in lrn_relu/cuda.cu lrn_relu/cuda_float.cu lrn_relu/cuda_double.cu lrn_relu/cuda_half.cu \
          lrn_relu/cuda_bfloat16.cu lrn_relu_max_pool/cuda.cu lrn_relu_max_pool/cuda_float.cu \
          lrn_relu_max_pool/cuda_double.cu lrn_relu_max_pool/cuda_half.cu lrn_relu_max_pool/cuda_bfloat16.cu; do
  object="$work/$(echo "$cu" | tr / _).o"
  g++ $flags -x c++ -c "$work/csrc/$cu" -o "$object" &
  objects+=("$object")
done
# The CPU kernels, baseline level only (their dispatch then has no other), as the reference.
cpu_flags="-std=c++17 -O2 -pthread -fno-math-errno -I$work/csrc"
for kernel in lrn_relu lrn_relu_max_pool; do
  g++ $cpu_flags -DALEXOPS_ISA_NAMESPACE=cpu_baseline -c "$work/csrc/$kernel/cpu.cc" -o "$work/${kernel}_cpu.o" &
  g++ $cpu_flags -c "$work/csrc/$kernel/cpu_dispatch.cc" -o "$work/${kernel}_dispatch.o" &
  objects+=("$work/${kernel}_cpu.o" "$work/${kernel}_dispatch.o")
done
g++ $cpu_flags -c "$work/csrc/common/cpu_isa.cc" -o "$work/cpu_isa.o" &
objects+=("$work/cpu_isa.o")
wait
g++ -std=c++20 -O1 $sanitize -pthread -I$work/csrc "$here/check.cc" "${objects[@]}" -o "$work/check"
"$work/check"
echo "lrn_relu_max_pool's version 1 (ALEXOPS_CUDA_KERNEL=tiled):"
ALEXOPS_CUDA_KERNEL=tiled "$work/check" pools
# Version 2's backward takes bands of output rows; the small cases above get bands of one row.
# Bands of 4 are AlexNet's default at batch 64; bands of 3 leave a short last band more often.
for band_rows in 3 4; do
  echo "lrn_relu_max_pool's version 2, backward in bands of $band_rows output rows (ALEXOPS_CUDA_POOL_BAND_ROWS=$band_rows):"
  ALEXOPS_CUDA_POOL_BAND_ROWS=$band_rows "$work/check" pools
done
