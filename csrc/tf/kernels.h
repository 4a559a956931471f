// The OpKernels, shared by CPU (kernels.cc) and GPU (kernels_gpu.cc) registration.
// They validate, allocate (forwarding an input buffer when TensorFlow allows it) and hand
// raw pointers to a device's launcher; the math lives in csrc/lrn_relu/.
#pragma once

#include "common/numeric.h"
#include "common/params.h"
#include "common/status.h"
#include "lrn_relu_max_pool/pooling.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace alexops {

namespace tf = ::tensorflow;

// TensorFlow element type -> the core's storage type with the same bits.
template <typename T> struct CoreType { using type = T; };
template <> struct CoreType<Eigen::half> { using type = half_bits; };
template <> struct CoreType<Eigen::bfloat16> { using type = bfloat16_bits; };

// Each device specialises these: run the kernels on the op's device and return their status.
template <typename Device, typename T>
struct LrnReluMaxPoolLauncher {
  static absl::Status Forward(tf::OpKernelContext* ctx, const LrnParams& p, const PoolGeometry& g, const T* x,
                              T* pooled);
  static absl::Status Backward(tf::OpKernelContext* ctx, const LrnParams& p, const PoolGeometry& g, const T* x,
                               const T* dpooled, T* dx);
};

template <typename Device, typename T>
struct LrnReluLauncher {
  static absl::Status Forward(tf::OpKernelContext* ctx, const LrnParams& p, const T* x, T* y,
                              int64_t n_pixels, int64_t channels);
  static absl::Status Backward(tf::OpKernelContext* ctx, const LrnParams& p, const T* x,
                               const T* dy, T* dx, int64_t n_pixels, int64_t channels);
};

// The core's status as TensorFlow's.
inline absl::Status ToAbsl(const Status& status) {
  switch (status.code()) {
    case Status::Code::kOk: return absl::OkStatus();
    case Status::Code::kInvalidArgument: return absl::InvalidArgumentError(status.message());
    case Status::Code::kResourceExhausted: return absl::ResourceExhaustedError(status.message());
    case Status::Code::kInternal: break;
  }
  return absl::InternalError(status.message());
}

inline absl::Status ReadLrnParams(tf::OpKernelConstruction* ctx, LrnParams* p) {
  TF_RETURN_IF_ERROR(ctx->GetAttr("depth_radius", &p->depth_radius));
  TF_RETURN_IF_ERROR(ctx->GetAttr("bias", &p->bias));
  TF_RETURN_IF_ERROR(ctx->GetAttr("alpha", &p->alpha));
  TF_RETURN_IF_ERROR(ctx->GetAttr("beta", &p->beta));
  TF_RETURN_IF_ERROR(ctx->GetAttr("relu", &p->relu));
  return ToAbsl(validate(*p, 0, 0));
}

// Rank-4 check at run time too: shape functions see unknown ranks in some graphs.
inline absl::Status CheckNhwc(const tf::Tensor& t, const char* name) {
  if (t.dims() != 4)
    return absl::InvalidArgumentError(std::string(name) + " must be 4-D NHWC, got shape " +
                                      t.shape().DebugString());
  return absl::OkStatus();
}

// Both ops read the same attributes once, at construction.
class LrnReluOpBase : public tf::OpKernel {
 public:
  explicit LrnReluOpBase(tf::OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ReadLrnParams(ctx, &params_));
  }

 protected:
  LrnParams params_;
};

template <typename Device, typename T>
class LrnReluOp : public LrnReluOpBase {
 public:
  using LrnReluOpBase::LrnReluOpBase;

  void Compute(tf::OpKernelContext* ctx) override {
    const tf::Tensor& x = ctx->input(0);
    OP_REQUIRES_OK(ctx, CheckNhwc(x, "x"));
    tf::Tensor* y = nullptr;
    // The kernels read a tile before writing it, so y may reuse x's buffer.
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({0}, 0, x.shape(), &y));
    if (x.NumElements() == 0) return;
    const int64_t channels = x.dim_size(3);
    OP_REQUIRES_OK(ctx, (LrnReluLauncher<Device, T>::Forward(
                            ctx, params_, x.flat<T>().data(), y->flat<T>().data(),
                            x.NumElements() / channels, channels)));
  }
};

template <typename Device, typename T>
class LrnReluGradOp : public LrnReluOpBase {
 public:
  using LrnReluOpBase::LrnReluOpBase;

  void Compute(tf::OpKernelContext* ctx) override {
    const tf::Tensor& x = ctx->input(0);
    const tf::Tensor& dy = ctx->input(1);
    OP_REQUIRES_OK(ctx, CheckNhwc(x, "x"));
    OP_REQUIRES_OK(ctx, CheckNhwc(dy, "dy"));
    OP_REQUIRES(ctx, x.shape() == dy.shape(),
                absl::InvalidArgumentError("x and dy must have the same shape, got x " +
                                           x.shape().DebugString() + " and dy " +
                                           dy.shape().DebugString()));
    tf::Tensor* dx = nullptr;
    // Each tile's x and dy are read before its dx is written, so dx may reuse either buffer.
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({1, 0}, 0, x.shape(), &dx));
    if (x.NumElements() == 0) return;
    const int64_t channels = x.dim_size(3);
    OP_REQUIRES_OK(ctx, (LrnReluLauncher<Device, T>::Backward(
                            ctx, params_, x.flat<T>().data(), dy.flat<T>().data(),
                            dx->flat<T>().data(), x.NumElements() / channels, channels)));
  }
};

// ---- ReLU + LRN + max-pool ----------------------------------------------------------------

// Reads the LRN attributes (the base) and the pool's; computes the geometry per input shape.
class LrnReluMaxPoolOpBase : public LrnReluOpBase {
 public:
  explicit LrnReluMaxPoolOpBase(tf::OpKernelConstruction* ctx) : LrnReluOpBase(ctx) {
    std::vector<int32_t> ksize, strides;
    std::string padding;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("ksize", &ksize));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("strides", &strides));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padding", &padding));
    OP_REQUIRES(ctx, ksize.size() == 2 && strides.size() == 2,
                absl::InvalidArgumentError("ksize and strides must have 2 entries (rows, cols)"));
    pool_ = PoolParams{ksize[0], ksize[1], strides[0], strides[1], padding == "SAME"};
  }

 protected:
  absl::Status Geometry(const tf::Tensor& x, PoolGeometry* g) const {
    TF_RETURN_IF_ERROR(CheckNhwc(x, "x"));
    return ToAbsl(pool_geometry(x.dim_size(0), x.dim_size(1), x.dim_size(2), x.dim_size(3), pool_, g));
  }
  static tf::TensorShape PooledShape(const PoolGeometry& g) {
    return tf::TensorShape({g.batch, g.out_rows, g.out_cols, g.channels});
  }

  PoolParams pool_;
};

template <typename Device, typename T>
class LrnReluMaxPoolOp : public LrnReluMaxPoolOpBase {
 public:
  using LrnReluMaxPoolOpBase::LrnReluMaxPoolOpBase;

  void Compute(tf::OpKernelContext* ctx) override {
    const tf::Tensor& x = ctx->input(0);
    PoolGeometry g;
    OP_REQUIRES_OK(ctx, Geometry(x, &g));
    tf::Tensor* pooled = nullptr;
    // No buffer forwarding: the output is smaller than x, and the kernel reads x throughout.
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, PooledShape(g), &pooled));
    if (pooled->NumElements() == 0) return;
    OP_REQUIRES_OK(ctx, (LrnReluMaxPoolLauncher<Device, T>::Forward(ctx, params_, g, x.flat<T>().data(),
                                                                    pooled->flat<T>().data())));
  }
};

template <typename Device, typename T>
class LrnReluMaxPoolGradOp : public LrnReluMaxPoolOpBase {
 public:
  using LrnReluMaxPoolOpBase::LrnReluMaxPoolOpBase;

  void Compute(tf::OpKernelContext* ctx) override {
    const tf::Tensor& x = ctx->input(0);
    const tf::Tensor& dpooled = ctx->input(1);
    PoolGeometry g;
    OP_REQUIRES_OK(ctx, Geometry(x, &g));
    OP_REQUIRES(ctx, dpooled.shape() == PooledShape(g),
                absl::InvalidArgumentError("dpooled must have the pooled shape " + PooledShape(g).DebugString() +
                                           ", got " + dpooled.shape().DebugString()));
    tf::Tensor* dx = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &dx));
    if (x.NumElements() == 0) return;
    OP_REQUIRES_OK(ctx, (LrnReluMaxPoolLauncher<Device, T>::Backward(ctx, params_, g, x.flat<T>().data(),
                                                                     dpooled.flat<T>().data(), dx->flat<T>().data())));
  }
};

// Registers the four ops for one device and one element type.
#define ALEXOPS_REGISTER_KERNELS(DEVICE_NAME, DEVICE_TYPE, ELEMENT_TYPE)                        \
  REGISTER_KERNEL_BUILDER(                                                                       \
      Name("AlexOps>LrnRelu").Device(DEVICE_NAME).TypeConstraint<ELEMENT_TYPE>("T"),             \
      ::alexops::LrnReluOp<DEVICE_TYPE, ELEMENT_TYPE>);                                          \
  REGISTER_KERNEL_BUILDER(                                                                       \
      Name("AlexOps>LrnReluGrad").Device(DEVICE_NAME).TypeConstraint<ELEMENT_TYPE>("T"),         \
      ::alexops::LrnReluGradOp<DEVICE_TYPE, ELEMENT_TYPE>);                                      \
  REGISTER_KERNEL_BUILDER(                                                                       \
      Name("AlexOps>LrnReluMaxPool").Device(DEVICE_NAME).TypeConstraint<ELEMENT_TYPE>("T"),      \
      ::alexops::LrnReluMaxPoolOp<DEVICE_TYPE, ELEMENT_TYPE>);                                   \
  REGISTER_KERNEL_BUILDER(                                                                       \
      Name("AlexOps>LrnReluMaxPoolGrad").Device(DEVICE_NAME).TypeConstraint<ELEMENT_TYPE>("T"),  \
      ::alexops::LrnReluMaxPoolGradOp<DEVICE_TYPE, ELEMENT_TYPE>);

}  // namespace alexops
