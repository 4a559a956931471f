#!/usr/bin/env bash
# The CPU kernels are built once per instruction-set level (csrc/common/cpu_isa.h). A function
# that two levels' objects both define by name (an inline function of a shared header, a
# template instantiation) is kept once by the linker, and the one kept could be the AVX-512
# build of it, called from the baseline path on a CPU without AVX-512: SIGILL.
#
# This checks the objects of the levels above baseline: every function they define with a
# shared name (not in their own cpu_<level> namespace, not internal) must use no AVX or
# AVX-512 instruction. Usage: scripts/check_cpu_isa_objects.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
failed=0
checked=0
objects=$(find "$build" -path '*alexops_cpu_avx*.dir*' -name '*.o' | sort)
[ -n "$objects" ] || { echo "FAIL: no avx2/avx512/avx512bf16 kernel objects under $build"; exit 1; }
for object in $objects; do
  level=$(basename "$(dirname "$(dirname "$(dirname "$object")")")" .dir)  # alexops_cpu_avx2
  level=${level#alexops_}
  # Defined, non-local functions (T: global, W: weak), by mangled name.
  for symbol in $(nm --defined-only "$object" | awk '$2 == "T" || $2 == "W" {print $3}'); do
    case "$symbol" in *"${#level}${level}"*) continue ;; esac  # in its own namespace (mangled "10cpu_avx512")
    checked=$((checked + 1))
    if objdump -d --no-show-raw-insn --disassemble="$symbol" "$object" |
        grep -qE '^\s+[0-9a-f]+:\s+v[a-z]|%[yz]mm|%k[0-7]'; then
      echo "FAIL: $(echo "$symbol" | c++filt) in $object uses AVX instructions under a shared name"
      failed=1
    fi
  done
done
echo "checked $(echo "$objects" | wc -l) avx2/avx512/avx512bf16 kernel objects: $checked functions with shared names"
exit $failed
