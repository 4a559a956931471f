// The ops, declared once: attributes, dtypes and shape functions.
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/padding.h"

namespace alexops {

using ::tensorflow::shape_inference::DimensionHandle;
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

// The max-pool after the LRN: window and strides as [rows, cols], TensorFlow's paddings.
#define ALEXOPS_POOL_ATTRS                 \
  Attr("ksize: list(int) = [3, 3]")        \
      .Attr("strides: list(int) = [2, 2]") \
      .Attr(::tensorflow::GetPaddingAttrString() + " = 'VALID'")

// The pooled shape of rank-4 `x`, by TensorFlow's own output-size rules (an error where an
// output size would be negative).
absl::Status PooledShape(InferenceContext* c, ShapeHandle x, ShapeHandle* pooled) {
  std::vector<int32_t> ksize, strides;
  std::string padding_name;
  TF_RETURN_IF_ERROR(c->GetAttr("ksize", &ksize));
  TF_RETURN_IF_ERROR(c->GetAttr("strides", &strides));
  TF_RETURN_IF_ERROR(c->GetAttr("padding", &padding_name));
  if (ksize.size() != 2 || strides.size() != 2)
    return absl::InvalidArgumentError("ksize and strides must have 2 entries (rows, cols)");
  for (int i = 0; i < 2; ++i)
    if (ksize[i] < 1 || strides[i] < 1)
      return absl::InvalidArgumentError("ksize and strides must be >= 1");
  const auto padding = padding_name == "SAME" ? ::tensorflow::SAME : ::tensorflow::VALID;
  DimensionHandle rows, cols;
  TF_RETURN_IF_ERROR(::tensorflow::shape_inference::GetWindowedOutputSizeFromDims(
      c, c->Dim(x, 1), ksize[0], strides[0], padding, &rows));
  TF_RETURN_IF_ERROR(::tensorflow::shape_inference::GetWindowedOutputSizeFromDims(
      c, c->Dim(x, 2), ksize[1], strides[1], padding, &cols));
  *pooled = c->MakeShape({c->Dim(x, 0), rows, cols, c->Dim(x, 3)});
  return absl::OkStatus();
}

REGISTER_OP("AlexOps>LrnReluMaxPool")
    .Input("x: T")
    .Output("pooled: T")
    .ALEXOPS_LRN_ATTRS
    .ALEXOPS_POOL_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x, pooled;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      TF_RETURN_IF_ERROR(PooledShape(c, x, &pooled));
      c->set_output(0, pooled);
      return absl::OkStatus();
    })
    .Doc(R"doc(
AlexNet's block in one op: max_pool2d(LRN(relu(x))) on NHWC x, the LRN as in AlexOps>LrnRelu,
the max-pool as tf.nn.max_pool2d's (ksize and strides as [rows, cols], VALID or SAME). The
LRN output is never stored.
)doc");

REGISTER_OP("AlexOps>LrnReluMaxPoolGrad")
    .Input("x: T")
    .Input("dpooled: T")
    .Output("dx: T")
    .ALEXOPS_LRN_ATTRS
    .ALEXOPS_POOL_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x, dpooled, pooled, merged;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &dpooled));
      TF_RETURN_IF_ERROR(PooledShape(c, x, &pooled));
      TF_RETURN_IF_ERROR(c->Merge(pooled, dpooled, &merged));
      c->set_output(0, x);
      return absl::OkStatus();
    })
    .Doc(R"doc(
Gradient of AlexOps>LrnReluMaxPool: dx given x and dpooled. Each dpooled entry goes to its
window's first maximum in row-major order; the LRN is recomputed from x.
)doc");

#undef ALEXOPS_POOL_ATTRS
#undef ALEXOPS_LRN_ATTRS

}  // namespace alexops
