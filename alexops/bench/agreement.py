"""The harness's agreement check: implementations must agree before anything is timed."""
import numpy as np

# Largest difference allowed, relative to the largest magnitude: a few units of the storage
# type's precision (float32 and float64 also absorb the op's float32 attributes).
TOLERANCE = {"float16": 4e-3, "bfloat16": 3e-2, "float32": 1e-4, "float64": 1e-10}


class AgreementError(RuntimeError):
    pass


def check_agreement(what, expected, actual, dtype_name, tolerance=None):
    """expected, actual: sequences of NumPy arrays; raises AgreementError on a mismatch.
    tolerance: relative to the largest magnitude; by default the dtype's."""
    tolerance = TOLERANCE[dtype_name] if tolerance is None else tolerance
    expected, actual = list(expected), list(actual)
    if len(expected) != len(actual):
        raise AgreementError(f"{what}: {len(actual)} results where {len(expected)} were expected")
    for e, a in zip(expected, actual):
        e = np.asarray(e, dtype=np.float64)
        a = np.asarray(a, dtype=np.float64)
        if e.shape != a.shape:
            raise AgreementError(f"{what}: shape {a.shape} where {e.shape} was expected")
        scale = float(np.max(np.abs(e))) if e.size else 0.0
        error = float(np.max(np.abs(a - e))) / (scale or 1.0) if e.size else 0.0
        if not np.isfinite(a).all() or error > tolerance:
            raise AgreementError(f"{what}: max relative difference {error:.3g} exceeds {tolerance:g}; "
                                 "refusing to time a wrong answer")
