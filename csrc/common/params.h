// The parameters of one LRN(+ReLU) call, shared by every device and every front door.
// Framework-neutral: no TensorFlow, Python or CUDA types here.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "common/status.h"

namespace alexops {

// y_c = r_c * (bias + alpha * sum_{|j-c|<=R} r_j^2)^(-beta), r = relu(x) or x.
// TensorFlow's convention: alpha is NOT divided by the window size 2R+1. bias, alpha and
// beta are float32, as tf.nn.lrn's attributes are: every door rounds them to float32, so a
// float64 call computes with the same values on each (widened exactly).
struct LrnParams {
  int64_t depth_radius = 5;
  float bias = 1.0f;
  float alpha = 1.0f;
  float beta = 0.5f;
  bool relu = true;
};

// Beta values with cheap exact forms of N^(-beta); anything else goes through pow().
enum class PowerKind { kHalf, kThreeQuarters, kOne, kGeneral };

inline PowerKind power_kind(float beta) {
  if (beta == 0.5f) return PowerKind::kHalf;
  if (beta == 0.75f) return PowerKind::kThreeQuarters;
  if (beta == 1.0f) return PowerKind::kOne;
  return PowerKind::kGeneral;
}

// Calls fn(std::integral_constant<PowerKind, K>{}) for the K matching beta, so the inner
// loops are compiled once per cheap form of N^(-beta).
template <typename Fn>
inline void with_power_kind(float beta, Fn&& fn) {
  switch (power_kind(beta)) {
    case PowerKind::kHalf: return fn(std::integral_constant<PowerKind, PowerKind::kHalf>{});
    case PowerKind::kThreeQuarters: return fn(std::integral_constant<PowerKind, PowerKind::kThreeQuarters>{});
    case PowerKind::kOne: return fn(std::integral_constant<PowerKind, PowerKind::kOne>{});
    case PowerKind::kGeneral: return fn(std::integral_constant<PowerKind, PowerKind::kGeneral>{});
  }
}

// A radius of C-1 already covers every channel of every window, so larger radii are
// clamped to it: the result is identical and the padded buffers stay O(C).
inline int64_t effective_radius(int64_t depth_radius, int64_t channels) {
  return depth_radius < channels - 1 ? depth_radius : (channels > 0 ? channels - 1 : 0);
}

// Ok when the parameters and sizes are usable; otherwise InvalidArgument with a message
// that names the offending argument. Every launcher calls this before anything else.
inline Status validate(const LrnParams& p, int64_t n_pixels, int64_t channels) {
  if (p.depth_radius < 0)
    return Status::InvalidArgument("depth_radius must be >= 0, got " + std::to_string(p.depth_radius));
  if (n_pixels < 0 || channels < 0)
    return Status::InvalidArgument("tensor sizes must be non-negative");
  return Status::Ok();
}

}  // namespace alexops
