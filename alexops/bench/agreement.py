"""The harness's agreement check: implementations must agree before anything is timed."""
import numpy as np

# Largest difference allowed, relative to the largest magnitude: a few units of the storage
# type's precision (float32 and float64 also absorb the op's float32 attributes).
TOLERANCE = {"float16": 4e-3, "bfloat16": 3e-2, "float32": 1e-4, "float64": 1e-10}


class AgreementError(RuntimeError):
    pass


def _relative_difference(expected, actual):
    """|actual - expected| relative to expected's largest magnitude (both float64 arrays)."""
    return np.abs(actual - expected) / (float(np.max(np.abs(expected))) or 1.0)


def max_relative_difference(expected, actual):
    """The largest _relative_difference over sequences of arrays of the same shapes; inf where
    actual has a NaN or Inf."""
    worst = 0.0
    for e, a in zip(expected, actual):
        e, a = np.asarray(e, dtype=np.float64), np.asarray(a, dtype=np.float64)
        if a.size:
            worst = max(worst, float(np.max(_relative_difference(e, a))) if np.isfinite(a).all() else np.inf)
    return worst


def check_agreement(what, expected, actual, dtype_name, tolerance=None, near_ties=0.0, one_near_tie=0):
    """expected, actual: sequences of NumPy arrays; raises AgreementError on a mismatch.
    tolerance: relative to the largest magnitude; by default the dtype's.
    near_ties: the fraction of elements that may differ by more, for gradients through a
    max-pool compared between two implementations that round differently: where two members
    of a window are within a rounding of each other, each side may route the window's
    gradient to a different one (measured: 3 of 12.8 million elements of lrn1's block, whose
    LRN outputs differed by 2 ulp). A wrong kernel differs almost everywhere.
    one_near_tie: the elements one such tie can change; with near_ties, that many are allowed
    however small the arrays (a fraction of one image's elements is less than one tie's)."""
    tolerance = TOLERANCE[dtype_name] if tolerance is None else tolerance
    expected, actual = list(expected), list(actual)
    if len(expected) != len(actual):
        raise AgreementError(f"{what}: {len(actual)} results where {len(expected)} were expected")
    for e, a in zip(expected, actual):
        e = np.asarray(e, dtype=np.float64)
        a = np.asarray(a, dtype=np.float64)
        if e.shape != a.shape:
            raise AgreementError(f"{what}: shape {a.shape} where {e.shape} was expected")
        if not e.size:
            continue
        if not np.isfinite(e).all():
            raise AgreementError(f"{what}: the expected result itself has {np.count_nonzero(~np.isfinite(e))} NaN "
                                 f"or Inf of {e.size} elements; refusing to time it")
        non_finite = int(np.count_nonzero(~np.isfinite(a)))
        if non_finite:
            raise AgreementError(f"{what}: {non_finite} NaN or Inf of {a.size} elements where the expected result "
                                 "is finite; refusing to time a wrong answer")
        difference = _relative_difference(e, a)
        outside = int(np.count_nonzero(~(difference <= tolerance)))
        allowed_count = int(max(near_ties * e.size, one_near_tie)) if near_ties else 0
        if outside > allowed_count:
            allowed = f" in {outside} of {e.size} elements (near ties allow {allowed_count})" if near_ties else ""
            raise AgreementError(f"{what}: max relative difference {float(np.max(difference)):.3g} exceeds "
                                 f"{tolerance:g}{allowed}; refusing to time a wrong answer")
