// CPU ReLU + LRN + max-pool. The LRN of each input row (a run of W pixels) comes from the
// same machinery as lrn_relu (common/lrn_rows_cpu.h), rounded to T as the composite stores
// it; the pooling runs over those rows a vector of channels at a time.
//
// Forward: a range of output rows keeps the LRN rows its windows need in a small cache (as
// many rows as a window is tall), so each input row's LRN is computed once per range.
// Backward: a range owns a run of input rows of one image. Output row by output row, it
// recomputes the LRN rows the windows need, routes each dpooled entry to its window's first
// maximum (as TensorFlow's CPU max-pool gradient picks it) when that falls in its rows (into
// a ring of dy rows, as many as a window is tall), and as soon as an input row can get no
// more, runs the LRN gradient over it: the rows a range touches stay in cache between the
// passes, and so do the norms the row cache kept when it computed the row's LRN, which the
// gradient then takes instead of computing N again. Ranges write disjoint rows of dx, so
// they need no locks.
#include "lrn_relu_max_pool/cpu.h"

#include <cstring>
#include <optional>
#include <type_traits>

#include "common/lrn_rows_cpu.h"

namespace alexops {
namespace {

// Rough cycles per element, for the scheduler's shard sizes only.
constexpr int64_t kCyclesPerElement = 24;
// Ranges the backward splits a batch into, at least: images are split into runs of rows
// when there are fewer images than this.
constexpr int64_t kMinBackwardUnits = 16;

// The smallest finite value of T, as its arithmetic type: where a max starts (TensorFlow's).
template <typename T>
Acc<T> lowest_value() {
  if constexpr (std::is_same_v<T, half_bits>) return to_acc(half_bits{0xFBFFu});         // -65504
  else if constexpr (std::is_same_v<T, bfloat16_bits>) return to_acc(bfloat16_bits{0xFF7Fu});  // -3.39e38
  else return std::numeric_limits<T>::lowest();
}

// The LRN of whole input rows, by (image, row): `slots` rows at a time, a row's slot being
// its index modulo slots, so any `slots` consecutive rows are held together. With keep_norms
// (the backward's cache) it also keeps each held row's KeptNorms, so that the row's LRN
// gradient need not compute N again.
template <PowerKind kKind, typename T, typename A = Acc<T>>
class LrnRowCache {
 public:
  LrnRowCache(const LrnParams& p, const PoolGeometry& g, const T* x, int64_t slots, bool keep_norms = false)
      : p_(p), g_(g), x_(x), row_elements_(g.cols * g.channels), slots_(slots),
        rows_(size_t(slots * row_elements_)), tags_(size_t(slots)),
        scratch_(g.channels, effective_radius(p.depth_radius, g.channels), /*backward=*/false),
        kept_row_elements_(keep_norms ? g.cols * scratch_.Cv : 0),
        kept_r_(size_t(slots * kept_row_elements_)), kept_power_(kept_r_.size()), kept_inverse_(kept_r_.size()),
        kept_wide_(keep_norms ? size_t(slots * g.cols) : 0) {}

  // y = LRN(relu(x)) of input row ih of image n, rounded to T.
  const T* row(int64_t n, int64_t ih) {
    const int64_t slot = ih % slots_, tag = n * g_.rows + ih;
    T* out = rows_.data() + slot * row_elements_;
    if (tags_[size_t(slot)] != tag + 1) {  // tags hold row + 1: 0 is "empty"
      const std::optional<KeptNorms<A>> keep = kept_in(slot);
      forward_pixels<kKind>(p_, x_ + tag * row_elements_, out, g_.channels, 0, g_.cols, &scratch_,
                            keep ? &*keep : nullptr);
      tags_[size_t(slot)] = tag + 1;
    }
    return out;
  }

  // The KeptNorms of input row ih of image n while it is held (with keep_norms), else none.
  std::optional<KeptNorms<A>> kept(int64_t n, int64_t ih) {
    const int64_t slot = ih % slots_;
    if (tags_[size_t(slot)] != n * g_.rows + ih + 1) return std::nullopt;
    return kept_in(slot);
  }

 private:
  const LrnParams& p_;
  const PoolGeometry& g_;
  const T* x_;
  int64_t row_elements_, slots_;
  Buffer<T> rows_;
  Buffer<int64_t> tags_;
  BlockScratch<A> scratch_;
  int64_t kept_row_elements_;  // 0 without keep_norms
  Buffer<A> kept_r_, kept_power_, kept_inverse_;
  Buffer<char> kept_wide_;

  // Where slot's KeptNorms live (with keep_norms), else none.
  std::optional<KeptNorms<A>> kept_in(int64_t slot) {
    if (kept_row_elements_ == 0) return std::nullopt;
    const int64_t at = slot * kept_row_elements_;
    return KeptNorms<A>{kept_r_.data() + at, kept_power_.data() + at, kept_inverse_.data() + at,
                        kept_wide_.data() + slot * g_.cols};
  }
};

// Output rows [begin, end) of the whole batch (row index n * out_rows + oh).
template <PowerKind kKind, typename T, typename A = Acc<T>>
void forward_rows(const LrnParams& p, const PoolGeometry& g, const T* x, T* pooled, int64_t begin, int64_t end) {
  using V = Simd<A>;
  using Vec = typename V::Vec;
  const int64_t C = g.channels;
  LrnRowCache<kKind, T> cache(p, g, x, g.max_window_rows());
  const Vec lowest = Vec{} + lowest_value<T>();
  Buffer<const T*> rows(size_t(g.max_window_rows()));
  for (int64_t unit = begin; unit < end; ++unit) {
    const int64_t n = unit / g.out_rows, oh = unit - n * g.out_rows;
    const int64_t r0 = g.row_begin(oh), r1 = g.row_end(oh);
    for (int64_t ih = r0; ih < r1; ++ih) rows[size_t(ih - r0)] = cache.row(n, ih);
    T* out_row = pooled + unit * g.out_cols * C;
    for (int64_t ow = 0; ow < g.out_cols; ++ow) {
      const int64_t c0 = g.col_begin(ow), c1 = g.col_end(ow);
      for_each_vector_group<A>(C, [&](auto vectors, int64_t c, int64_t lanes) {
        constexpr int64_t K = decltype(vectors)::value;
        Vec best[K];
        for (int64_t k = 0; k < K; ++k) best[k] = lowest;
        for (int64_t i = 0; i < r1 - r0; ++i)
          for (int64_t iw = c0; iw < c1; ++iw)
            for (int64_t k = 0; k < K; ++k) {
              const Vec v = load_row_vector(rows[size_t(i)] + iw * C, c + k * V::kLanes, lanes);
              best[k] = v > best[k] ? v : best[k];  // a NaN is never greater: skipped
            }
        for (int64_t k = 0; k < K; ++k) store_row_vector(out_row + ow * C, c + k * V::kLanes, lanes, best[k]);
      });
    }
  }
}

// The dy rows a backward range is still gathering, in A, `slots` rows at a time (a row's
// slot being its index modulo slots), and the LRN gradient of a row once it is complete.
// Every slot is zero again once the rows gathered in it are finished.
template <PowerKind kKind, typename T, typename A = Acc<T>>
class GradientRows {
 public:
  GradientRows(const LrnParams& p, const PoolGeometry& g, const T* x, T* dx, int64_t slots)
      : p_(p), g_(g), x_(x), dx_(dx), row_elements_(g.cols * g.channels), slots_(slots),
        dy_(size_t(slots * row_elements_)), rounded_(std::is_same_v<T, A> ? 0 : size_t(row_elements_)),
        scratch_(g.channels, effective_radius(p.depth_radius, g.channels), /*backward=*/true) {}

  A* dy_row(int64_t ih) { return dy_.data() + (ih % slots_) * row_elements_; }

  // dx of row ih of image n from its dy (rounded to T, as the composite has it); its slot is
  // cleared. Where `cache` still holds the row, from the norms it kept; else from x.
  void finish(int64_t n, int64_t ih, LrnRowCache<kKind, T>& cache) {
    A* dy = dy_row(ih);
    const int64_t pixel = (n * g_.rows + ih) * g_.cols, C = g_.channels;
    const T* dy_in_t;
    if constexpr (std::is_same_v<T, A>) {
      dy_in_t = dy;
    } else {
      for_each_vector<A>(row_elements_, [&](int64_t i, int64_t n) {  // (one element at a time: float16 1.3x slower, AVX-512)
        store_row_vector(rounded_.data(), i, n, load_row_vector(dy, i, n));
      });
      dy_in_t = rounded_.data();
    }
    const std::optional<KeptNorms<A>> kept = cache.kept(n, ih);
    if (kept) backward_pixels_from_kept(p_, *kept, dy_in_t, dx_ + pixel * C, C, 0, g_.cols, scratch_);
    else backward_pixels<kKind>(p_, x_ + pixel * C, dy_in_t, dx_ + pixel * C, C, 0, g_.cols, &scratch_);
    std::memset(static_cast<void*>(dy), 0, size_t(row_elements_) * sizeof(A));
  }

 private:
  const LrnParams& p_;
  const PoolGeometry& g_;
  const T* x_;
  T* dx_;
  int64_t row_elements_, slots_;
  Buffer<A> dy_;
  Buffer<T> rounded_;
  BlockScratch<A> scratch_;
};

// Input rows [a, b) of image n: their dx. `cache` and `gradient` are the range's (made once
// per range: sized for whole rows, they would cost more to make per run of a few rows than
// the run itself).
template <PowerKind kKind, typename T, typename A = Acc<T>>
void backward_rows(const PoolGeometry& g, const T* dpooled, int64_t n, int64_t a, int64_t b,
                   LrnRowCache<kKind, T>& cache, GradientRows<kKind, T>& gradient) {
  using V = Simd<A>;
  using Vec = typename V::Vec;
  using Index = typename std::conditional<sizeof(A) == 4, int32_t, int64_t>::type;
  typedef Index IndexVec __attribute__((vector_size(sizeof(Vec))));
  const int64_t C = g.channels;
  int64_t next_to_finish = a;
  if (g.out_rows > 0 && g.out_cols > 0) {
    Buffer<const T*> rows(size_t(g.max_window_rows()));  // the window's LRN rows
    Buffer<A*> dy_rows(size_t(g.max_window_rows()));     // the dy rows of those this range owns
    const int64_t oh_begin = g.first_out_row(a), oh_end = g.last_out_row(b - 1) + 1;
    for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
      const int64_t r0 = g.row_begin(oh), r1 = g.row_end(oh);
      // Rows of this range above this window have had all their windows: finish them.
      for (; next_to_finish < std::min(r0, b); ++next_to_finish) gradient.finish(n, next_to_finish, cache);
      for (int64_t ih = r0; ih < r1; ++ih) rows[size_t(ih - r0)] = cache.row(n, ih);
      const int64_t own0 = std::max(r0, a), own1 = std::min(r1, b);  // the window's rows this range owns
      for (int64_t ih = own0; ih < own1; ++ih) dy_rows[size_t(ih - own0)] = gradient.dy_row(ih);
      const T* dp_row = dpooled + (n * g.out_rows + oh) * g.out_cols * C;
      for (int64_t ow = 0; ow < g.out_cols; ++ow) {
        const int64_t c0 = g.col_begin(ow), c1 = g.col_end(ow), width = c1 - c0;
        // The first maxima of K vectors of channels (for_each_vector_group), then their routing.
        for_each_vector_group<A>(C, [&](auto vectors, int64_t c, int64_t lanes) {
          constexpr int64_t K = decltype(vectors)::value;
          // Where TensorFlow's CPU max-pool gradient sends the window's gradient: its first
          // element whatever its value (a NaN there keeps it; a window of nothing but NaN or
          // the lowest value sends it there), replaced by each later one strictly greater.
          // (The forward's max starts from the lowest value instead, as its value does.)
          Vec best[K];
          IndexVec where[K];
          for (int64_t k = 0; k < K; ++k)
            best[k] = load_row_vector(rows[0] + c0 * C, c + k * V::kLanes, lanes), where[k] = IndexVec{};
          for (int64_t i = 0; i < r1 - r0; ++i)
            for (int64_t iw = c0; iw < c1; ++iw) {
              const IndexVec here = IndexVec{} + Index(i * width + (iw - c0));
              for (int64_t k = 0; k < K; ++k) {
                const Vec v = load_row_vector(rows[size_t(i)] + iw * C, c + k * V::kLanes, lanes);
                const auto greater = v > best[k];
                best[k] = greater ? v : best[k];
                where[k] = greater ? here : where[k];
              }
            }
          for (int64_t k = 0; k < K; ++k) {
            const Vec grad = load_row_vector(dp_row + ow * C, c + k * V::kLanes, lanes);
            for (int64_t ih = own0; ih < own1; ++ih) {
              A* dy = dy_rows[size_t(ih - own0)] + c + k * V::kLanes;
              for (int64_t iw = c0; iw < c1; ++iw) {
                const Vec routed = where[k] == Index((ih - r0) * width + (iw - c0)) ? grad : Vec{};
                A* target = dy + iw * C;
                if (lanes == V::kLanes) V::store(target, V::load(target) + routed);
                else for (int64_t l = 0; l < lanes; ++l) target[l] += routed[l];
              }
            }
          }
        });
      }
    }
  }
  for (; next_to_finish < b; ++next_to_finish) gradient.finish(n, next_to_finish, cache);
}

}  // namespace

#ifndef ALEXOPS_ISA_NAMESPACE
#error "ALEXOPS_ISA_NAMESPACE must name the instruction-set level this file is built for (see common/cpu_isa.h)"
#endif
// This level's entry points; the public ones (cpu.h) dispatch to them (cpu_dispatch.cc).
namespace ALEXOPS_ISA_NAMESPACE {

// (The arguments are validated by the dispatcher.)
template <typename T>
CpuKernelResult lrn_relu_max_pool_forward_cpu(const LrnParams& p, const PoolGeometry& g, const T* x, T* pooled,
                                              const ParallelFor& parallel_for) {
  CpuKernelResult status = CpuKernelResult::kOk;
  if (g.output_pixels() == 0 || g.channels == 0) return status;
  const int64_t cost = g.out_cols * g.channels * g.max_window_rows() * g.max_window_cols() * kCyclesPerElement;
  with_power_kind(p.beta, [&](auto kind) {
    status = guarded_parallel_for(g.batch * g.out_rows, cost, parallel_for, [&](int64_t begin, int64_t end) {
      forward_rows<decltype(kind)::value>(p, g, x, pooled, begin, end);
    });
  });
  return status;
}

template <typename T>
CpuKernelResult lrn_relu_max_pool_backward_cpu(const LrnParams& p, const PoolGeometry& g, const T* x,
                                               const T* dpooled, T* dx, const ParallelFor& parallel_for) {
  CpuKernelResult status = CpuKernelResult::kOk;
  if (g.input_pixels() == 0 || g.channels == 0) return status;
  // Units: runs of rows of one image, as few as keep kMinBackwardUnits ranges.
  const int64_t runs_per_image = std::clamp<int64_t>((kMinBackwardUnits + g.batch - 1) / std::max<int64_t>(1, g.batch),
                                                      1, g.rows);
  const int64_t run_rows = (g.rows + runs_per_image - 1) / runs_per_image;
  const int64_t runs = (g.rows + run_rows - 1) / run_rows;
  const int64_t cost = run_rows * g.cols * g.channels * kCyclesPerElement * 4;
  with_power_kind(p.beta, [&](auto kind) {
    status = guarded_parallel_for(g.batch * runs, cost, parallel_for, [&](int64_t begin, int64_t end) {
      constexpr PowerKind kKind = decltype(kind)::value;
      LrnRowCache<kKind, T> cache(p, g, x, g.max_window_rows(), /*keep_norms=*/true);
      GradientRows<kKind, T> gradient(p, g, x, dx, g.max_window_rows());
      for (int64_t unit = begin; unit < end; ++unit) {
        const int64_t n = unit / runs, a = (unit - n * runs) * run_rows;
        backward_rows(g, dpooled, n, a, std::min(g.rows, a + run_rows), cache, gradient);
      }
    });
  });
  return status;
}

#define ALEXOPS_INSTANTIATE_POOL_CPU(T)                                                                    \
  template CpuKernelResult lrn_relu_max_pool_forward_cpu<T>(const LrnParams&, const PoolGeometry&, const T*, T*, \
                                                            const ParallelFor&);                               \
  template CpuKernelResult lrn_relu_max_pool_backward_cpu<T>(const LrnParams&, const PoolGeometry&, const T*,    \
                                                             const T*, T*, const ParallelFor&);
ALEXOPS_INSTANTIATE_POOL_CPU(float)
ALEXOPS_INSTANTIATE_POOL_CPU(double)
ALEXOPS_INSTANTIATE_POOL_CPU(half_bits)
ALEXOPS_INSTANTIATE_POOL_CPU(bfloat16_bits)
#undef ALEXOPS_INSTANTIATE_POOL_CPU

}  // namespace ALEXOPS_ISA_NAMESPACE
}  // namespace alexops
