"""alexops: fused ReLU + Local Response Normalization (LRN) for TensorFlow and CuPy.

`lrn_relu(x)` computes `tf.nn.lrn(tf.nn.relu(x))` in one pass over memory, on CPU and GPU,
with the same arguments and defaults as `tf.nn.lrn` (TensorFlow's alpha convention: alpha is
NOT divided by the window size 2*depth_radius+1).

Importing alexops does not import TensorFlow: the TF op library loads on first use of the TF
API, so the CuPy door (`alexops.cupy`) and the NumPy reference work where TF is absent.
"""
import importlib
import sys

__version__ = "0.1.0"

# The LRN of the AlexNet write-up (alpha in TensorFlow's convention: not divided by 2R+1).
ALEXNET_LRN_PARAMS = dict(depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75)

_LAZY_SUBMODULES = ("ops", "layers", "cupy", "alexnet", "compare", "reference", "_core", "_loader")


def lrn_relu(x, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, name=None):
    """y = tf.nn.lrn(tf.nn.relu(x), depth_radius, bias, alpha, beta), fused; see alexops.ops."""
    from alexops import ops

    return ops.lrn_relu(x, depth_radius=depth_radius, bias=bias, alpha=alpha, beta=beta,
                        relu=relu, name=name)


def register_ops():
    """Load the TensorFlow op library now (imports TensorFlow).

    Needed before `tf.saved_model.load` of a model that uses the ops when TensorFlow was
    imported after alexops; when TensorFlow is imported first, `import alexops` does it.
    """
    from alexops import _loader

    _loader.op_library()


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"alexops.{name}")
    raise AttributeError(f"module 'alexops' has no attribute {name!r}")


if "tensorflow" in sys.modules:
    # TensorFlow is already paid for: register the ops so SavedModels that use them load.
    register_ops()
