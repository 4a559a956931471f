#!/usr/bin/env bash
# The CPU kernels on AArch64, from an x86-64 Debian machine: built by CMakeLists.txt with
# Debian's cross compiler (aarch64-linux-gnu-g++; its generic level, 128-bit vectors), and run
# under qemu-aarch64 (user mode) with Debian's arm64 Python and PyPI's aarch64 wheels of NumPy,
# ml_dtypes, pytest and hypothesis: tests/test_core.py, test_reference.py and
# test_core_max_pool.py, the kernels against the float64 reference.
# TensorFlow's glue (csrc/tf) gets a syntax check against the host's TF headers, where TF is
# installed; TF itself is not run on AArch64.
#
# What qemu does not model: the Arm memory model (threads run on the host's, stronger one), and
# FPCR's flush-to-zero, which qemu 7.2 did not apply consistently (common/float_env.h's AArch64
# path is compiled here, not tested).
#
#   bash scripts/aarch64_check.sh [WORK_DIR]    (default /tmp/alexops-aarch64; kept between runs)
#
# It installs the cross compiler and qemu with apt-get where they are missing, and unpacks (does
# not install) Debian's arm64 packages into WORK_DIR/sysroot: the first run needs root and
# Debian's package index; later runs reuse WORK_DIR. Exit status 2: the tools could not be had.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/alexops-aarch64}
host_python=${PYTHON:-$repo/.venv/bin/python}  # the host's: pip download, pybind11's and TF's headers
py=3.11                                         # Debian 12's Python, and the wheels' ABI
mkdir -p "$work"
work=$(cd "$work" && pwd)

missing=()
command -v aarch64-linux-gnu-g++ >/dev/null || missing+=(g++-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
if ((${#missing[@]})); then
  echo "installing ${missing[*]}"
  { apt-get install -y -qq "${missing[@]}" || { apt-get update -qq && apt-get install -y -qq "${missing[@]}"; }; } \
    >"$work/apt.log" 2>&1 || { tail -5 "$work/apt.log"; echo "aarch64 check: could not install ${missing[*]}"; exit 2; }
fi

# Debian's arm64 Python and what it loads, unpacked; the C and C++ runtimes from the cross
# compiler's. (No libmpdec: the decimal module is not needed.)
sysroot=$work/sysroot
if [ ! -x "$sysroot/usr/bin/python$py" ]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    { dpkg --add-architecture arm64 && apt-get update -qq; } || { echo "aarch64 check: no arm64 package index"; exit 2; }
  fi
  rm -rf "$work/debs" && mkdir -p "$work/debs"
  packages=(python$py-minimal libpython$py-minimal libpython$py-stdlib libpython$py-dev libexpat1 zlib1g libffi8
            libssl3 libbz2-1.0 liblzma5 libsqlite3-0 libuuid1 libncursesw6 libtinfo6 libreadline8 libdb5.3 libgdbm6
            libnsl2 libtirpc3 libcrypt1)
  (cd "$work/debs" && apt-get download "${packages[@]/%/:arm64}" >"$work/apt.log" 2>&1) ||
    { tail -5 "$work/apt.log"; echo "aarch64 check: could not download Debian's arm64 Python"; exit 2; }
  for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$sysroot"; done
  mkdir -p "$sysroot/lib/aarch64-linux-gnu"
  cp -an /usr/aarch64-linux-gnu/lib/*.so* "$sysroot/lib/aarch64-linux-gnu/"
  ln -sf aarch64-linux-gnu/ld-linux-aarch64.so.1 "$sysroot/lib/ld-linux-aarch64.so.1"
fi
# The interpreter under qemu, by a path that works as sys.executable too (the tests start
# fresh interpreters): -0 gives Python this wrapper's path as its argv[0].
cat >"$sysroot/usr/bin/python-qemu" <<EOF
#!/bin/sh
exec qemu-aarch64 -L "$sysroot" -0 "\$0" "$sysroot/usr/bin/python$py" "\$@"
EOF
chmod +x "$sysroot/usr/bin/python-qemu"
python="$sysroot/usr/bin/python-qemu"

site=$work/site
if [ ! -d "$site/numpy" ]; then
  rm -rf "$work/wheels" "$site" && mkdir -p "$work/wheels" "$site"
  versions=$("$host_python" -c "
from importlib.metadata import version
print(' '.join(f'{p}=={version(p)}' for p in ('numpy', 'ml_dtypes', 'pytest', 'hypothesis')))")
  # shellcheck disable=SC2086
  "$host_python" -m pip download -q -d "$work/wheels" --only-binary=:all: --python-version $py --implementation cp \
    --abi cp${py/./} --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 $versions \
    >"$work/pip.log" 2>&1 || { tail -5 "$work/pip.log"; echo "aarch64 check: could not download the wheels"; exit 2; }
  for wheel in "$work"/wheels/*.whl; do "$host_python" -m zipfile -e "$wheel" "$site"; done
fi

# From here on every tool is at hand: any failure is the check's, and exit status 2 (make's
# and pytest's, for some) must not read as "tools missing".
trap 'status=$?; if [ "$status" = 2 ]; then exit 1; fi' EXIT

# The sources as they are in the working tree (tracked and untracked, not ignored), built by
# CMakeLists.txt itself, cross-compiling: its branch for processors other than x86-64, with
# the NumPy door alone (the TF op library needs TF's libraries for the target).
src=$work/src
rm -rf "$src" "$work/build" && mkdir -p "$src"
git -C "$repo" ls-files -z -co --exclude-standard | tar -C "$repo" --no-recursion --null -T - -cf - | tar -C "$src" -xf -
cat >"$work/toolchain.cmake" <<EOF
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
EOF
# Python: the host's interpreter (for pybind11's CMake files), the target's headers (its
# pyconfig.h is under the multiarch directory, hence -idirafter) and extension suffix.
cmake -S "$src" -B "$work/build" -DCMAKE_TOOLCHAIN_FILE="$work/toolchain.cmake" -DALEXOPS_TF=off -DALEXOPS_CUDA=off \
  -DPython_EXECUTABLE="$host_python" -DPython_INCLUDE_DIR="$sysroot/usr/include/python$py" \
  -DPYTHON_MODULE_EXTENSION=".cpython-${py/./}-aarch64-linux-gnu.so" -DCMAKE_CXX_FLAGS="-idirafter $sysroot/usr/include" \
  -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$src/alexops" >"$work/cmake.log" || { cat "$work/cmake.log"; exit 1; }
grep -A4 "alexops build summary" "$work/cmake.log"
cmake --build "$work/build" --parallel "$(nproc)"
cd "$src"
cxx="aarch64-linux-gnu-g++ -std=c++17 -Icsrc"

if tf_flags=$("$host_python" -c "
import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'
import tensorflow as tf; print(' '.join(tf.sysconfig.get_compile_flags()))" 2>/dev/null); then
  for file in csrc/tf/ops.cc csrc/tf/kernels.cc; do
    # shellcheck disable=SC2086
    $cxx -O2 -w $tf_flags -fsyntax-only "$file"
  done
  echo "TensorFlow glue: compiles for AArch64 (the host's TF headers)"
else
  echo "TensorFlow glue: not checked (no TensorFlow in $host_python)"
fi

export PYTHONPATH="$site:$src"
"$python" -c "import platform, alexops._core as c; print('under qemu:', platform.machine(), 'kernels at', c.cpu_isa())"
"$python" -m pytest -q -p no:cacheprovider tests/test_core.py tests/test_reference.py \
  tests/test_core_max_pool.py
