import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


def pytest_report_header(config):
    """Which build of the kernels is under test (CI tests more than one)."""
    try:
        from alexops import _core
    except ImportError as error:
        return f"alexops._core: not importable ({error})"
    return f"alexops._core: {_core.__file__}"


def pytest_collection_modifyitems(config, items):
    """Skip `gpu` tests cleanly when there is no usable CUDA device through CuPy."""
    from helpers import gpu_unavailable_reason

    reason = gpu_unavailable_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
