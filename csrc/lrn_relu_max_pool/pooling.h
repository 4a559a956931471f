// The max-pool that follows the LRN in lrn_relu_max_pool: its window, strides and padding,
// and where its windows fall on an NHWC input (TensorFlow's rules). Framework-neutral,
// shared by the CPU and CUDA kernels and the doors.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace alexops {

struct PoolParams {
  int64_t window_rows = 3, window_cols = 3;
  int64_t stride_rows = 2, stride_cols = 2;
  bool same_padding = false;  // TensorFlow's "SAME"; else "VALID"
};

// An NHWC input of this shape, pooled.
struct PoolGeometry {
  int64_t batch = 0, rows = 0, cols = 0, channels = 0;  // the input
  int64_t out_rows = 0, out_cols = 0;                   // the pooled output
  int64_t pad_top = 0, pad_left = 0;                    // "SAME": padding before the first row and column
  PoolParams pool;  // as asked, or the smallest equivalent sizes (pool_axis)

  // The most input rows (columns) one window holds: what buffers of a window's rows need.
  int64_t max_window_rows() const { return std::min(pool.window_rows, rows); }
  int64_t max_window_cols() const { return std::min(pool.window_cols, cols); }

  // Input rows [row_begin(oh), row_end(oh)) of output row oh, clipped to the image (padding
  // takes no part in the max); the same for columns.
  int64_t row_begin(int64_t oh) const { return std::max<int64_t>(0, oh * pool.stride_rows - pad_top); }
  int64_t row_end(int64_t oh) const {
    return std::min(rows, oh * pool.stride_rows - pad_top + pool.window_rows);
  }
  int64_t col_begin(int64_t ow) const { return std::max<int64_t>(0, ow * pool.stride_cols - pad_left); }
  int64_t col_end(int64_t ow) const {
    return std::min(cols, ow * pool.stride_cols - pad_left + pool.window_cols);
  }
  // The output rows whose windows hold input row ih: [first_out_row(ih), last_out_row(ih)].
  int64_t first_out_row(int64_t ih) const {
    const int64_t reach = ih + pad_top - pool.window_rows + 1;  // the first window start that still holds ih
    return std::max<int64_t>(0, reach <= 0 ? 0 : (reach + pool.stride_rows - 1) / pool.stride_rows);
  }
  int64_t last_out_row(int64_t ih) const {
    return std::min(out_rows - 1, (ih + pad_top) / pool.stride_rows);
  }
  int64_t input_pixels() const { return batch * rows * cols; }
  int64_t output_pixels() const { return batch * out_rows * out_cols; }
};

// TensorFlow's output size along one axis (GetWindowedOutputSize): VALID gives
// (in - window + stride) / stride, which may not be negative; SAME gives ceil(in / stride),
// with (out - 1) * stride + window - in of padding, the smaller half before.
//
// Windows are clipped to the image, so a window far larger than the image (a SAME global
// pool, ksize >= the image) reaches no more of it than one about the image's size, and a
// stride larger than the image moves no window that exists (there is one at most). So
// *window, *stride and *pad_before become the smallest values that give every output the
// same input rows as the requested ones (row_begin, row_end, first_out_row and last_out_row
// are unchanged): each below 2 * in. Then the kernels may size buffers by the window, and
// the CUDA kernel's int arithmetic cannot overflow. Requested sizes near INT64_MAX do not
// overflow here either.
inline Status pool_axis(int64_t in, int64_t* window, int64_t* stride, bool same, const char* axis, int64_t* out,
                        int64_t* pad_before) {
  if (same) {
    *out = in == 0 ? 0 : (in - 1) / *stride + 1;
    const int64_t last_start = *out > 0 ? (*out - 1) * *stride : 0;  // the last window's start, < in
    if (*window >= last_start + in) {
      // Every window holds the whole axis: the smallest such window, padded to start at 0.
      *pad_before = last_start;
      *window = last_start + in;
    } else {
      *pad_before = std::max<int64_t>(0, last_start + *window - in) / 2;
      *window = std::min(*window, in + *pad_before);
    }
  } else {
    // (in - window + stride) / stride, in an order that cannot overflow for a huge stride.
    *out = in >= *window ? (in - *window) / *stride + 1 : (in - *window + *stride) / *stride;
    *pad_before = 0;
    if (*out < 0)
      return Status::InvalidArgument(std::string("computed output size would be negative along the ") + axis +
                                     ": input " + std::to_string(in) + ", window " + std::to_string(*window) +
                                     ", stride " + std::to_string(*stride) + " (VALID padding)");
    *window = std::max<int64_t>(1, std::min(*window, in));  // a window longer than the axis leaves no output
  }
  // With two outputs or more the stride is below in already; with one or none it moves nothing.
  *stride = std::max<int64_t>(1, std::min(*stride, in));
  return Status::Ok();
}

inline Status pool_geometry(int64_t batch, int64_t rows, int64_t cols, int64_t channels, const PoolParams& pool,
                            PoolGeometry* g) {
  if (pool.window_rows < 1 || pool.window_cols < 1)
    return Status::InvalidArgument("ksize must be >= 1, got [" + std::to_string(pool.window_rows) + ", " +
                                   std::to_string(pool.window_cols) + "]");
  if (pool.stride_rows < 1 || pool.stride_cols < 1)
    return Status::InvalidArgument("strides must be >= 1, got [" + std::to_string(pool.stride_rows) + ", " +
                                   std::to_string(pool.stride_cols) + "]");
  if (batch < 0 || rows < 0 || cols < 0 || channels < 0) return Status::InvalidArgument("sizes must be non-negative");
  *g = PoolGeometry{batch, rows, cols, channels, 0, 0, 0, 0, pool};
  Status status = pool_axis(rows, &g->pool.window_rows, &g->pool.stride_rows, pool.same_padding, "rows",
                            &g->out_rows, &g->pad_top);
  if (status.ok())
    status = pool_axis(cols, &g->pool.window_cols, &g->pool.stride_cols, pool.same_padding, "columns",
                       &g->out_cols, &g->pad_left);
  return status;
}

}  // namespace alexops
