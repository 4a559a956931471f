// The two ops, declared once: attributes, dtypes and shape functions.
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace alexops {

using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

// Attributes shared by both ops; the names and defaults are those of tf.nn.lrn.
#define ALEXOPS_LRN_ATTRS                        \
  Attr("depth_radius: int >= 0 = 5")             \
      .Attr("bias: float = 1.0")                 \
      .Attr("alpha: float = 1.0")                \
      .Attr("beta: float = 0.5")                 \
      .Attr("relu: bool = true")                 \
      .Attr("T: {half, bfloat16, float, double} = DT_FLOAT")

REGISTER_OP("AlexOps>LrnRelu")
    .Input("x: T")
    .Output("y: T")
    .ALEXOPS_LRN_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      c->set_output(0, x);
      return absl::OkStatus();
    })
    .Doc(R"doc(
Fused ReLU + local response normalization over the last (channel) axis of NHWC x:
y = r * (bias + alpha * window_sum(r^2))^(-beta), r = relu(x) if relu else x.
alpha follows tf.nn.lrn: it is not divided by the window size 2*depth_radius+1.
)doc");

REGISTER_OP("AlexOps>LrnReluGrad")
    .Input("x: T")
    .Input("dy: T")
    .Output("dx: T")
    .ALEXOPS_LRN_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x, dy, merged;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &dy));
      TF_RETURN_IF_ERROR(c->Merge(x, dy, &merged));
      c->set_output(0, merged);
      return absl::OkStatus();
    })
    .Doc(R"doc(
Gradient of AlexOps>LrnRelu: dx given x and dy. The norm is recomputed from x, so the
forward output y is not an input.
)doc");

#undef ALEXOPS_LRN_ATTRS

}  // namespace alexops
