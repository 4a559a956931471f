"""Build driver: all build logic lives in CMakeLists.txt; this only runs CMake.

Environment:
  ALEXOPS_CUDA=auto|on|off   CUDA kernels (auto: when nvcc is found)
  ALEXOPS_TF=auto|on|off     TensorFlow op library (auto: when tensorflow imports)
  CMAKE_ARGS                 extra arguments for the CMake configure step
  CMAKE_BUILD_PARALLEL_LEVEL parallel build jobs (default: the machine's CPU count)
  ALEXOPS_BUILD_DIR          where CMake builds (default: in setuptools' build directory)
  DEBUG=1                    a debug build
"""
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        package_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(os.environ.get("ALEXOPS_BUILD_DIR") or Path(self.build_temp) / "cmake").resolve()
        build_dir.mkdir(parents=True, exist_ok=True)
        config = "Debug" if os.environ.get("DEBUG") == "1" else "Release"
        args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={package_dir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DCMAKE_BUILD_TYPE={config}",
            f"-DALEXOPS_CUDA={os.environ.get('ALEXOPS_CUDA', 'auto')}",
            f"-DALEXOPS_TF={os.environ.get('ALEXOPS_TF', 'auto')}",
        ]
        args += shlex.split(os.environ.get("CMAKE_ARGS", ""))
        try:
            import ninja  # noqa: F401  (a build requirement; falls back to make without it)

            args += ["-G", "Ninja"]
            # pip's isolated build environment, the ninja in it included, is new on every build:
            # name this one, or a reused ALEXOPS_BUILD_DIR keeps the last (deleted) one and fails.
            ninja_program = shutil.which("ninja")
            if ninja_program:
                args.append(f"-DCMAKE_MAKE_PROGRAM={ninja_program}")
        except ImportError:
            pass
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 1))
        subprocess.run(["cmake", str(ROOT), *args], cwd=build_dir, check=True)
        subprocess.run(["cmake", "--build", ".", "--parallel", jobs], cwd=build_dir, check=True)
        if self.editable_mode:
            # setuptools copies only _core back into the source tree for `pip install -e`;
            # the op library, the benchmark's cuDNN module and the build record go with it.
            for pattern in ("_alexops_ops.so", "_build_info.py", "bench/_cudnn_baseline*.so"):
                for built in package_dir.glob(pattern):
                    shutil.copy2(built, ROOT / "alexops" / built.relative_to(package_dir))


setup(
    ext_modules=[CMakeExtension("alexops._core")],
    cmdclass={"build_ext": CMakeBuild},
)
