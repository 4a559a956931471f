"""The op-level benchmark, one loop for every backend: for each of AlexNet's two LRN shapes,
check every implementation against the float64 reference (and fused against stock on the
whole batch), then time them and the yardsticks (a copy, a ReLU) side by side, pass by pass.

A backend says how to run things on its device:
  name, description           what it is and what it runs on
  unsupported                 exception types meaning "this implementation has no such
                              dtype or device here" (it is left out, with a message)
  inputs(shape, dtype)        input sets [(x, dy)], enough to rotate past the caches
  implementations(dtype)      {impl: (forward(batch), forward_backward(batch))}: the LRN
                              implementations, checked; each takes an input set and
                              returns what it computed (y; y and dx) in the backend's arrays
  yardsticks(shape, dtype)    the same for "copy" and "relu", not checked
  passes(inputs)              [(pass name, tensors moved, input sets, which of the two)]
  head(batch, n)              an input set of the first n images of another
  x_and_dy(batch)             an input set's x and dy
  to_numpy(results, dtype)    a list of float64 NumPy arrays from a sequence of results
  time(steps, settings, label, log, inputs)   {impl: Stats}
"""
import numpy as np

from alexops.alexnet import LRN_PARAMS, POOL_PARAMS
from alexops.bench import agreement, report
from alexops.reference import (lrn_relu_grad_reference, lrn_relu_max_pool_grad_reference, lrn_relu_max_pool_reference,
                               lrn_relu_reference, pool_windows)

# [rows, cols, depth] of the LRN inputs after AlexNet's conv1 and conv2.
OP_SHAPES = {"lrn1": (56, 56, 64), "lrn2": (27, 27, 192)}
# Images checked against the float64 reference (NumPy is slow on the whole batch).
REFERENCE_IMAGES = 2
# The fraction of a block's dx that may go to another member of its window than the
# reference's (or fused's) choice, where the window's two largest LRN outputs are within a
# rounding of each other (agreement.check_agreement's near_ties). In float32, 3 of 12.8
# million elements of lrn1's block; in float16, where stock's CPU LRN rounds less exactly than
# the float64 reference rounded to float16, 18 of 401,408 (4.5e-5) and 14 of 279,936 (5e-5)
# of stock's dx on two images of lrn1 and lrn2 (2026-11-28). bfloat16 is taken as float16.
BLOCK_NEAR_TIES = {"float16": 2e-4, "bfloat16": 2e-4, "float32": 1e-5, "float64": 1e-5}
# The dx elements one near tie can change: the window's gradient moves from one pixel to
# another, which changes dx at those two pixels over the LRN's channel window (2 to 6 of them
# beyond float32's tolerance, in a NumPy simulation at AlexNet's parameters). float32's
# fraction above is 1.4 elements of one lrn2 image (139,968): without this floor one tie would
# refuse a --batch 1 run, or any run whose two images checked against the float64 reference
# held one.
ONE_NEAR_TIE = 2 * (2 * LRN_PARAMS["depth_radius"] + 1)


_FLOAT32_LRN = {k: (float(np.float32(v)) if isinstance(v, float) else v) for k, v in LRN_PARAMS.items()}


def reference_results(x, dy, dtype):
    """y and dx of the write-up's LRN in float64, with the op's float32 attributes."""
    return lrn_relu_reference(x, **_FLOAT32_LRN), lrn_relu_grad_reference(x, dy, **_FLOAT32_LRN)


def block_reference_results(x, dpooled, dtype):
    """pooled and dx of the write-up's ReLU + LRN + max-pool block in float64 (the LRN output
    rounded to the dtype first, as the composite stores it)."""
    if dtype == "bfloat16":
        import ml_dtypes

        storage = ml_dtypes.bfloat16
    else:
        storage = np.dtype(dtype).type
    return (lrn_relu_max_pool_reference(x, **_FLOAT32_LRN, **POOL_PARAMS, storage=storage),
            lrn_relu_max_pool_grad_reference(x, dpooled, **_FLOAT32_LRN, **POOL_PARAMS, storage=storage))


def pooled_shape(shape):
    rows, cols, _ = pool_windows(shape[1], shape[2], **POOL_PARAMS)
    return (shape[0], rows, cols, shape[3])


def checked_implementations(backend, shape, dtype, inputs, log, impls=None, reference=reference_results,
                            near_ties=0.0):
    """The backend's implementations that agree with the reference; others raise
    AgreementError. Those the backend cannot run in this dtype are left out (never fused).
    near_ties: the fraction of elements allowed to differ at a near tie of a max-pool, and
    never fewer than ONE_NEAR_TIE (agreement.check_agreement): for the whole-batch check of
    the fused implementations against stock, and for stock's own check against the reference,
    whose LRN rounds differently from stock's. The fused implementations must match the reference exactly."""
    impls = backend.implementations(dtype) if impls is None else impls
    small = backend.head(inputs[0], REFERENCE_IMAGES)
    ref_y, ref_dx = reference(*backend.to_numpy(backend.x_and_dy(small), dtype), dtype)
    what = f"{list(shape)} {dtype}"
    for impl, (forward, forward_backward) in list(impls.items()):
        try:
            agreement.check_agreement(f"{impl} forward on {what} vs the float64 reference", [ref_y],
                                      backend.to_numpy([forward(small)], dtype), dtype)
            agreement.check_agreement(f"{impl} forward+backward on {what} vs the float64 reference", [ref_y, ref_dx],
                                      backend.to_numpy(forward_backward(small), dtype), dtype,
                                      near_ties=0.0 if impl.startswith("fused") else near_ties,
                                      one_near_tie=ONE_NEAR_TIE)
        except backend.unsupported as error:
            if impl.startswith("fused"):
                raise
            log(f"  {impl}: not timed, no {dtype} LRN here ({type(error).__name__})")
            del impls[impl]
    stock = next((impl for impl in report.STOCK_IMPLS if impl in impls), None)
    fused = [impl for impl in impls if impl.startswith("fused")]
    if stock:
        for impl in fused:
            agreement.check_agreement(f"{impl} vs {stock} forward+backward on {what}",
                                      backend.to_numpy(impls[stock][1](inputs[0]), dtype),
                                      backend.to_numpy(impls[impl][1](inputs[0]), dtype), dtype,
                                      near_ties=near_ties, one_near_tie=ONE_NEAR_TIE)
    return impls


def run_op_level(backend, settings, log):
    dtype = settings["dtype"]
    rows = []
    for name, (height, width, channels) in settings["op_shapes"].items():
        shape = (settings["batch"], height, width, channels)
        inputs = backend.inputs(shape, dtype)
        impls = checked_implementations(backend, shape, dtype, inputs, log)
        yardsticks = backend.yardsticks(shape, dtype)
        kinds = {**{impl: "yardstick" for impl in yardsticks}, **{impl: "lrn" for impl in impls}}
        everything = {**yardsticks, **impls}
        tensor_bytes = int(np.prod(shape)) * np.dtype(np.float16 if dtype == "bfloat16" else dtype).itemsize
        for pass_name, tensors, pass_inputs, which in backend.passes(inputs):
            steps = {impl: (lambda batch, fns=fns: fns[which](batch)) for impl, fns in everything.items()}
            stats = backend.time(steps, settings, f"op {name} {pass_name}", log, pass_inputs)
            rows += [report.op_row(name, shape, pass_name, impl, stats[impl], tensor_bytes, tensors, kinds[impl])
                     for impl in everything]
    return rows


def run_block_level(backend, settings, log):
    """AlexNet's whole ReLU + LRN + max-pool block on the same two shapes: stock, the fused LRN
    followed by the framework's max-pool, and the fused block. GB/s counts the block's least
    traffic: x in and the pooled tensor out forward (about 1.23 tensors), and x, dpooled in
    and dx out more for forward+backward (about 3.5)."""
    dtype = settings["dtype"]
    rows = []
    for name, (height, width, channels) in settings["op_shapes"].items():
        shape = (settings["batch"], height, width, channels)
        pooled = pooled_shape(shape)
        inputs = backend.block_inputs(shape, pooled, dtype)
        # dx goes through a max-pool: see agreement.check_agreement's near_ties.
        impls = checked_implementations(backend, shape, dtype, inputs, log, backend.block_implementations(dtype),
                                        block_reference_results, near_ties=BLOCK_NEAR_TIES[dtype])
        x_bytes = int(np.prod(shape)) * np.dtype(np.float16 if dtype == "bfloat16" else dtype).itemsize
        pooled_fraction = float(np.prod(pooled)) / float(np.prod(shape))
        for pass_name, tensors, which in (("forward", 1 + pooled_fraction, 0),
                                          ("forward+backward", 3 + 2 * pooled_fraction, 1)):
            steps = {impl: (lambda batch, fns=fns: fns[which](batch)) for impl, fns in impls.items()}
            stats = backend.time(steps, settings, f"block {name} {pass_name}", log, inputs)
            rows += [dict(report.op_row(name + "+pool", shape, pass_name, impl, stats[impl], x_bytes, tensors),
                          level="block") for impl in impls]
    return rows
