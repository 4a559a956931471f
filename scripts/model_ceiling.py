"""How fast the write-up's AlexNet could get from its LRN blocks alone (issue 13's model targets).

The harness's model level times stock, fused and fused_pool. This times stock and fused_pool
beside two networks that are not AlexNet, whose blocks after conv1 and conv2 cost less than
any LRN block can, with the same weights and inputs, in one interleaved run (each step runs
every variant once, in a new random order, as the harness does):
  - relu_pool: ReLU then the 3x3/2 max-pool, no LRN: an LRN that costs nothing (the "LRN for
    free" goal), with the ReLU and pool still paid;
  - crop: the pooled shape cut from the convolution's output (its first rows and columns, a
    plain slice): a block that only copies a pooled tensor's worth of its input, whose
    gradient only writes dpooled into a dense dx of zeros. (A strided slice, every second row
    and column, ran slower than relu_pool: TensorFlow's CPU strided slice is slow.)
stock / relu_pool and stock / crop are then about the most the model can gain over stock by
making its two blocks cheaper, however it is done: where they fall short of a target, no LRN
kernel meets it on that machine. The ceilings are computed in the same run as fused_pool's
ratio, so a slow spell of the host moves them together.

    python scripts/model_ceiling.py [--steps 100] [--burn-in 10] [--batch 64]
"""
import argparse

import tensorflow as tf

from alexops import alexnet
from alexops.bench import tf_backend
from alexops.bench.compare import describe_cpu
from alexops.bench.timing import time_host

VARIANTS = ("stock", "fused_pool", "relu_pool", "crop")


def _crop(x):
    """x's first rows and columns, as many as a 3x3/2 VALID max-pool gives."""
    rows, cols = (alexnet._pooled(size) for size in x.shape[1:3])
    return x[:, :rows, :cols, :]


CEILINGS = {
    "relu_pool": lambda x: (alexnet._max_pool(tf.nn.relu(x)), None),
    "crop": lambda x: (_crop(x), None),
}
_network_block = alexnet.relu_lrn_pool


def _block_with_ceilings(x, lrn):
    """AlexNet's block after conv1 and conv2, or one of the CEILINGS in its place."""
    return CEILINGS[lrn](x) if lrn in CEILINGS else _network_block(x, lrn)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--burn-in", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    if args.steps < 1 or args.burn_in < 0 or args.batch < 1:
        parser.error("--steps and --batch must be at least 1, --burn-in at least 0")

    alexnet.relu_lrn_pool = _block_with_ceilings  # AlexNet.__call__ looks it up per call
    print(f"{describe_cpu()}; TensorFlow {tf.__version__}; AlexNet to pool5, float32, batch {args.batch}, "
          f"{args.steps} timed steps after {args.burn_in}")
    with tf.device("/CPU:0"):
        model = alexnet.AlexNet()
        images = [tf.random.stateless_normal([args.batch, *alexnet.IMAGE_SHAPE], seed=[i, 0]) for i in range(2)]
        steps = {lrn: tf_backend.model_steps(model, lrn) for lrn in VARIANTS}
        for lrn in VARIANTS[1:]:  # every variant's pool5 has stock's shape
            assert steps[lrn]["forward"](images[0]).shape == steps["stock"]["forward"](images[0]).shape, lrn
        for pass_name in ("forward", "forward+backward"):
            stats = time_host({lrn: steps[lrn][pass_name] for lrn in VARIANTS}, args.steps, args.burn_in,
                              pass_name, print, images)
            stock = stats["stock"].median
            print(f"{pass_name}, median ms (stock / variant):")
            for lrn in VARIANTS:
                median = stats[lrn].median
                print(f"  {lrn:<11} {median:9.1f}  ({stock / median:.3f}x)  sd {stats[lrn].sd:.1f}")


if __name__ == "__main__":
    main()
