"""The harness's agreement check: implementations must agree before anything is timed."""
import numpy as np

# Largest difference allowed, relative to the largest magnitude: a few units of the storage
# type's precision (float32 and float64 also absorb the op's float32 attributes).
TOLERANCE = {"float16": 4e-3, "bfloat16": 3e-2, "float32": 1e-4, "float64": 1e-10}


class AgreementError(RuntimeError):
    pass


def check_agreement(what, expected, actual, dtype_name, tolerance=None, near_ties=0.0):
    """expected, actual: sequences of NumPy arrays; raises AgreementError on a mismatch.
    tolerance: relative to the largest magnitude; by default the dtype's.
    near_ties: the fraction of elements that may differ by more, for gradients through a
    max-pool compared between two implementations that round differently: where two members
    of a window are within a rounding of each other, each side may route the window's
    gradient to a different one (measured: 3 of 12.8 million elements of lrn1's block, whose
    LRN outputs differed by 2 ulp). A wrong kernel differs almost everywhere."""
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
        scale = float(np.max(np.abs(e))) or 1.0
        difference = np.abs(a - e) / scale
        outside = int(np.count_nonzero(~(difference <= tolerance)))  # NaN counts as outside
        if not np.isfinite(a).all() or outside > near_ties * e.size:
            allowed = f" in {outside} of {e.size} elements (near ties allow {int(near_ties * e.size)})" if near_ties else ""
            raise AgreementError(f"{what}: max relative difference {float(np.nanmax(difference)):.3g} exceeds "
                                 f"{tolerance:g}{allowed}; refusing to time a wrong answer")
