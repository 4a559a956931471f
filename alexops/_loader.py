"""Lazy loading of the compiled libraries, with one clear error when they cannot load."""
import functools
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
_OP_LIBRARY = _PACKAGE_DIR / "_alexops_ops.so"
REBUILD_COMMAND = "pip install --no-build-isolation --force-reinstall --no-deps <path to the alexops source>"


def _not_built_error():
    return ImportError(
        f"alexops at {_PACKAGE_DIR} has no compiled libraries: this looks like an unbuilt source "
        "checkout shadowing the installed package (Python puts the current directory first). "
        "Build it in place with `pip install -e .`, or run from outside the source directory.")


def build_info():
    """The _build_info module CMake writes (TF version built against, CUDA, cuDNN)."""
    try:
        from alexops import _build_info
    except ImportError as error:
        raise _not_built_error() from error
    return _build_info


def build_summary():
    """One line on what this build holds, for benchmark headers."""
    info = build_info()
    parts = [f"CPU kernels {core().cpu_isa()} (built: {info.CPU_ISAS})", f"CUDA {'yes' if info.WITH_CUDA else 'no'}"]
    if info.WITH_TF:
        parts.append(f"TF ops built for {info.TF_VERSION}")
    return ", ".join(parts)


def _release(version):
    """'2.21.0rc1' -> (2, 21, 0): versions compared as numbers, never as strings."""
    from packaging.version import Version

    return Version(version).release


def _mismatch_message(built, installed, detail):
    return (
        f"alexops' TensorFlow op library could not be loaded: {detail}\n"
        f"  built against TensorFlow: {built or 'none (TensorFlow was not found at build time)'}\n"
        f"  installed TensorFlow:     {installed}\n"
        f"Rebuild alexops against the installed TensorFlow:\n  {REBUILD_COMMAND}"
    )


@functools.lru_cache(maxsize=None)
def op_library():
    """The loaded op library module (imports TensorFlow). Raises ImportError with the fix."""
    import tensorflow as tf

    built = build_info().TF_VERSION
    installed = tf.__version__
    if not _OP_LIBRARY.exists():
        raise ImportError(_mismatch_message(built, installed, f"{_OP_LIBRARY.name} is missing"))
    # A different minor release has a different C++ ABI: loading might "work" and crash later.
    if _release(built)[:2] != _release(installed)[:2]:
        raise ImportError(_mismatch_message(built, installed, "TensorFlow version mismatch"))
    try:
        return tf.load_op_library(str(_OP_LIBRARY))
    except (tf.errors.NotFoundError, OSError) as error:
        raise ImportError(_mismatch_message(built, installed, str(error))) from error


@functools.lru_cache(maxsize=None)
def core():
    """alexops._core, the pybind11 module (no TensorFlow)."""
    try:
        from alexops import _core
    except ImportError as error:
        raise _not_built_error() from error
    return _core
