"""alexops: fused ReLU + Local Response Normalization (LRN) for TensorFlow, NumPy and CuPy.

`lrn_relu(x)` computes `tf.nn.lrn(tf.nn.relu(x))` in one pass over memory, on CPU and GPU,
with the same arguments and defaults as `tf.nn.lrn` (TensorFlow's alpha convention: alpha is
NOT divided by the window size 2*depth_radius+1).

What to import:
  alexops.lrn_relu                 the TensorFlow op (its gradient registered)
  alexops.lrn_relu_max_pool        ... and AlexNet's whole ReLU + LRN + max-pool block as one op
  alexops.ops                      both, and their gradient ops
  alexops.layers                   the Keras layer
  alexops.numpy, alexops.cupy      the same kernels on NumPy (CPU) and CuPy (GPU) arrays
  alexops.reference                the float64 NumPy reference everything is tested against
  alexops.alexnet                  the AlexNet of the original benchmark write-up
  alexops.bench                    the harness behind `python -m alexops.compare`

Importing alexops does not import TensorFlow: the TF op library loads on first use of the TF
API, so the NumPy and CuPy doors work where TF is absent.
"""
import importlib as _importlib
import importlib.util as _importlib_util
import sys as _sys
import warnings as _warnings

__version__ = "0.1.0"

_LAZY_SUBMODULES = ("ops", "layers", "numpy", "cupy", "alexnet", "reference", "bench", "_core", "_loader")
# What `from alexops import *` gives: the two ops and register_ops, not the submodules (each
# of which may import TensorFlow, Keras or CuPy).
__all__ = ["lrn_relu", "lrn_relu_max_pool", "register_ops", "__version__"]


def lrn_relu(x, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, name=None):
    """y = tf.nn.lrn(tf.nn.relu(x), depth_radius, bias, alpha, beta), fused; see alexops.ops."""
    from alexops import ops

    return ops.lrn_relu(x, depth_radius=depth_radius, bias=bias, alpha=alpha, beta=beta,
                        relu=relu, name=name)


def lrn_relu_max_pool(x, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, ksize=3, strides=2,
                      padding="VALID", name=None):
    """tf.nn.max_pool2d(tf.nn.lrn(tf.nn.relu(x), ...), ksize, strides, padding), fused: AlexNet's
    block in one op; see alexops.ops."""
    from alexops import ops

    return ops.lrn_relu_max_pool(x, depth_radius=depth_radius, bias=bias, alpha=alpha, beta=beta, relu=relu,
                                 ksize=ksize, strides=strides, padding=padding, name=name)


def register_ops():
    """Register, in this process, everything a saved model that uses alexops needs: the
    TensorFlow ops, their gradients and, where Keras is installed, the Keras layers. Imports
    TensorFlow. Raises ImportError (saying what to do) if the op library cannot load.

    `import alexops` calls it when TensorFlow or Keras is already imported. Call it yourself
    before `tf.saved_model.load` or `keras.models.load_model` when alexops was imported first.
    """
    from alexops import ops  # noqa: F401  (loads the op library, registers the gradients)

    if _importlib_util.find_spec("keras") is not None:
        from alexops import layers  # noqa: F401  (registers the layers for .keras files)


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return _importlib.import_module(f"alexops.{name}")
    raise AttributeError(f"module 'alexops' has no attribute {name!r}")


if "tensorflow" in _sys.modules or "keras" in _sys.modules:
    # TensorFlow is already paid for: register what saved models need. A build without the
    # op library (ALEXOPS_TF=off) or against another TensorFlow still serves alexops.numpy
    # and alexops.cupy, so warn; the TensorFlow API raises the loader's error when used.
    try:
        register_ops()
    except ImportError as _error:
        _warnings.warn(f"alexops: the TensorFlow ops are not registered: {_error}", stacklevel=2)
