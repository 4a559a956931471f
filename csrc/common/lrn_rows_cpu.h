// The per-pixel-row machinery of the CPU LRN kernels, shared by every op that computes an
// LRN(+ReLU) over channels (lrn_relu, lrn_relu_max_pool). Each pixel's C channels are
// contiguous in NHWC, so a pixel is processed as one row, a vector of channels at a time
// (cpu_simd.h): loaded and converted to the arithmetic type, windowed, and converted and
// stored once.
//
// Window sums over a row padded with R zeros at both ends, so edges need no clipping:
//  - R <= kDirectMaxRadius: the 2R+1 shifted rows are added directly. Per element that is
//    at most 17 vector adds, cheaper than any scan for the radii LRN is used with.
//  - larger R: blocks of W = 2R+1 (van Herk / Gil-Werman, for sums). Every window is a
//    block suffix plus the next block's prefix: O(1) work per element for any radius.
// Either way each sum holds only terms inside its window (squares, or the backward's
// t_c), so a large value that has left the window leaves no rounding debris, which a
// running add/subtract sum would. (The CUDA kernels make the same choice; see cuda.cu.)
//
// Everything here is in an unnamed namespace: each kernel file gets its own copy, compiled
// for its own instruction-set level (cpu_isa.h). For the same reason the scratch memory is
// a Buffer, not a std::vector, whose out-of-line functions would be shared by name between
// the levels' copies: the linker keeps one, which could then run where its target does not.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <optional>
#include <string>
#include <utility>

#include "common/cpu_isa.h"
#include "common/cpu_simd.h"
#include "common/float_env.h"
#include "common/numeric.h"
#include "common/parallel.h"
#include "common/params.h"
#include "common/status.h"

namespace alexops {
namespace {

using namespace cpu_simd;

// A zero-filled array of trivially copyable T (see the top of this file).
template <typename T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t n) { resize(n); }
  ~Buffer() { std::free(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  // n elements: zeros when newly allocated; kept (with their values) when it already had room.
  void resize(size_t n) {
    if (n > capacity_) {
      T* grown = static_cast<T*>(std::calloc(n, sizeof(T)));
      if (grown == nullptr) throw std::bad_alloc();
      std::free(data_);
      data_ = grown;
      capacity_ = n;
    }
    size_ = n;
  }
  void fill_zero() { std::memset(static_cast<void*>(data_), 0, size_ * sizeof(T)); }
  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }

 private:
  T* data_ = nullptr;
  size_t size_ = 0, capacity_ = 0;
};

constexpr int64_t kDirectMaxRadius = 8;
// Pixels per phase (see BlockScratch): up to 16, fewer when their scratch rows would not fit
// in half of a 48 KiB L1 (15-20% faster backward at C = 192 than 16 pixels, measured with
// scripts/cpu_kernel_bench.cc).
constexpr int64_t kMaxBlockPixels = 16;
constexpr int64_t kScratchBytes = 24 * 1024;
// The kernels bring their input streams (x, dy) towards the core ahead of use, in one of two
// ways (the hardware prefetchers alone left a large tensor 2x slower per element than one in
// L2):
//  - by block (prefetch_rows): at the start of each block of pixels, every line of the block
//    kPrefetchBytes ahead. 16-32 KiB ahead measured 10-25% faster with
//    scripts/cpu_kernel_bench.cc on an AVX2 AMD EPYC (asking for the outputs too was slower).
//  - by vector (kPrefetchEachVector, prefetch_vector_ahead): each vector load of an input
//    stream also asks for the address kVectorPrefetchBytes further on in it, so the requests
//    are spread among the arithmetic instead of issued in one burst, which can fill the
//    core's miss buffers and stall it with the arithmetic waiting behind. On an AVX-512 Xeon,
//    two threads, AlexNet's tensors, float32, B/A against by block: forward 0.75-0.82,
//    backward 0.67-0.69, lrn_relu_max_pool forward 0.84-0.91, backward 0.91-0.98 (4 KiB ahead;
//    2 KiB and 8-24 KiB were 3-5% slower). The register kernels ask for their outputs' lines
//    too, for writing: forward 0.89-1.02, backward 0.95-0.97 more. Not measured on AVX2, which
//    keeps blocks: the AMD machines that run that level are where those were measured. On an
//    AVX-512 AMD Zen 4 by block was 1.00-1.37x slower than by vector, every kernel and dtype.
//    float32 input streams ask twice: for L1 kFloatL1PrefetchBytes ahead, and for L2
//    kFloatL2PrefetchBytes ahead. TensorFlow's tensors lie in 4 KiB pages (NumPy's large
//    arrays get transparent huge pages), where one request 4 KiB ahead streamed 12-13 GB/s
//    into a core of that Xeon, the two 15-16 GB/s, against 19-21 GB/s in huge pages
//    (scripts/page_stream_bench.cc). B/A against one request 4 KiB ahead, float32, AlexNet's
//    tensors, two threads: through TensorFlow (scripts/tf_op_ab.py, three runs' medians at
//    both shapes) lrn_relu forward 0.92-0.98, forward+backward 0.93-1.00, lrn_relu_max_pool
//    forward 0.93-1.01, forward+backward 0.92-1.02; the kernels alone (cpu_kernel_bench.cc,
//    SETS=3), over two hours of that machine, forward 0.94-0.99, backward 0.97-1.05, pooled
//    forward 0.94-0.99, pooled backward 0.97-1.00. The 16-bit streams keep one request (with
//    two, kernels alone: 0.98-1.04, the pooled forwards slower). On an AVX-512 AMD Zen 4
//    (kernels alone), one request against two: lrn_relu forward 0.88-0.99, backward 0.96-1.02,
//    pooled forward 0.97-1.08, pooled backward 1.01-1.07: two kept (the pooled kernels lose
//    with one).
constexpr int64_t kPrefetchBytes = 24 * 1024;
constexpr int64_t kVectorPrefetchBytes = 4 * 1024;
constexpr int64_t kFloatL1PrefetchBytes = 1024;
constexpr int64_t kFloatL2PrefetchBytes = 8 * 1024;
constexpr bool kPrefetchEachVector =
#if defined(__AVX512F__)
    true;
#else
    false;
#endif

// With kPrefetchEachVector, asks for the address kVectorPrefetchBytes past p in its stream (at
// the end of a tensor that may be past it: a prefetch never faults), to be read, or with
// kForWrite written (an output's line then arrives owned, before the store that needs it). A
// float input stream asks for L1 and for L2 at its own distances (see kFloatL2PrefetchBytes).
template <bool kForWrite = false, typename T>
ALEXOPS_INLINE void prefetch_vector_ahead(const T* p) {
  if constexpr (!kPrefetchEachVector) return;
  const auto ahead = [p](int64_t bytes) {
    return reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) + uintptr_t(bytes));
  };
  if constexpr (!kForWrite && std::is_same_v<T, float>) {
    __builtin_prefetch(ahead(kFloatL1PrefetchBytes), 0, 3);  // prefetcht0
    __builtin_prefetch(ahead(kFloatL2PrefetchBytes), 0, 1);  // prefetcht2
  } else {
    __builtin_prefetch(ahead(kVectorPrefetchBytes), kForWrite, 3);
  }
}

// N^(-beta) and 1/N for one vector of norms N. Float vectors on targets with a reciprocal-
// sqrt estimate take it for N^(-1/2), unchecked: it is right for positive normal N, and the
// pixels with other N are redone in double (FloatRowCheck). Other
// targets and double take exact vector sqrt and divide, whose special values are IEEE's:
// 0^(-beta) = inf, inf^(-beta) = 0, a negative N^(-beta) is NaN. Either way N^(-3/4) is
// q * sqrt(q), q = N^(-1/2): in that order no intermediate is smaller
// than the result, so it stays right wherever the result is a normal number (through 1/N
// it would not: 1/N is subnormal for N > 2^126, where N^(-3/4) is still ~1e-29).
template <PowerKind kKind, typename A, bool kRefine = true>
ALEXOPS_INLINE void norm_powers(typename Simd<A>::Vec n, A beta, typename Simd<A>::Vec& power,
                                typename Simd<A>::Vec& inverse) {
  using Vec = typename Simd<A>::Vec;
  if constexpr (kKind == PowerKind::kHalf || kKind == PowerKind::kThreeQuarters) {
    Vec q;  // N^-1/2
    if constexpr (kHasFastReciprocalSqrt<A>) {
      q = fast_reciprocal_sqrt<A, kRefine>(n);
      inverse = q * q;
      if constexpr (kKind == PowerKind::kHalf) {
        power = q;
      } else {
        // An exact sqrt of q, faster than a second estimate and its Newton step, and exact:
        // 7-9% on an AVX2 Zen (scripts/cpu_kernel_bench.cc); on an AVX-512 Xeon (two threads,
        // AlexNet's tensors) forward 0.93-0.94, backward 0.94-0.95, lrn_relu_max_pool forward
        // 0.88-0.94, and no slower for the 16-bit types, which skip the Newton steps.
        power = q * vector_sqrt<A>(q);
      }
    } else {
      for (int64_t i = 0; i < Simd<A>::kLanes; ++i) q[i] = A(1) / std::sqrt(n[i]);
      inverse = A(1) / n;
      if constexpr (kKind == PowerKind::kHalf) {
        power = q;
      } else {
        Vec root_q;
        for (int64_t i = 0; i < Simd<A>::kLanes; ++i) root_q[i] = std::sqrt(q[i]);
        power = q * root_q;
      }
    }
  } else if constexpr (kKind == PowerKind::kOne) {
    inverse = A(1) / n;
    power = inverse;
  } else {
    inverse = A(1) / n;
    Vec powered{};  // filled lane by lane: whole, so that no caller's vector is half-written
    for (int64_t i = 0; i < Simd<A>::kLanes; ++i) powered[i] = std::pow(n[i], -beta);
    power = powered;
  }
}

// The float norms N that FloatRowCheck trusts, for one call's parameters: N is right to 2^-40
// of itself, and its powers are normal numbers, in [floor, ceiling]. Outside it:
//  - below the floor (N <= 0 too): the squares or alpha * sum that went subnormal lost their
//    low bits (x ~ 1e-21 with bias 0), and a subnormal N defeats the reciprocal-sqrt
//    estimate where it reads it as 0 (AVX2) and not where it does not (AVX-512, exact sqrt);
//  - above the forward's ceiling: N^(-beta) is subnormal (N > 2^(124/beta), so only for beta
//    near 1 and above: |x| ~ 1e13 at beta 1.5), or N = inf (the sum of squares overflowed,
//    |x| ~ 1e20), while y = r N^(-beta) would be a normal number;
//  - above the backward's ceiling: t = dy r N^(-beta-1) underflows while dx does not: 2^40,
//    where N^(-beta-1) is 2^-70 at AlexNet's beta 0.75; lower for larger beta, at that margin.
// The floor: a square or alpha * sum below 2^-126 is off by up to 2^-150, so a float N is
// off by up to (1 + |alpha| (2R + 1)) 2^-150 in all; above the floor that is under 2^-40 of
// N. (AlexNet's LRN: ~1e-30; the bias keeps N above it.)
struct NormRange {
  float floor, forward_ceiling, backward_ceiling;
  float window_width;  // 2R + 1: a window of t overflows where t (2R + 1) would
  // The backward's factor 2 alpha beta (gradient_from_terms) is subnormal in float (alpha under
  // ~1e-38) and has lost digits: every pixel's backward runs in double.
  bool backward_all_in_double;
  // alpha is 0: a NaN N may come from finite inputs, 0 * inf where the sum of squares overflowed
  // (|x| ~ 2e19), while in double N is bias. Rows with a NaN N are redone in double.
  bool nan_norms_in_double;
};

// The backward's factor 2 alpha beta, in A, as gradient_from_terms and the check use it.
template <typename A>
A two_alpha_beta(const LrnParams& p) {
  return A(2) * A(p.alpha) * A(p.beta);
}

inline NormRange norm_range(const LrnParams& p, int64_t R) {
  const double beta = p.beta, largest = std::numeric_limits<float>::max(), two_to_40 = std::ldexp(1.0, 40);
  const double floor = std::ldexp(1.0 + std::fabs(double(p.alpha)) * (2.0 * double(R) + 1.0), -110);
  const double forward_ceiling = beta > 0 ? std::min(largest, std::exp2(124.0 / beta)) : largest;
  const double backward_ceiling = beta > -1 ? std::min(two_to_40, std::exp2(70.0 / (beta + 1))) : two_to_40;
  const float factor = two_alpha_beta<float>(p);
  return {float(std::min(floor, largest)), float(forward_ceiling), float(backward_ceiling), float(2 * R + 1),
          factor != 0 && std::fabs(factor) < std::numeric_limits<float>::min(), p.alpha == 0.0f};
}

// Watches one float row's norms N for the pixels float arithmetic gets wrong, to be redone in
// double (PixelInDouble): N outside NormRange; and in the backward, a t = dy r N^(-beta-1)
// whose window would not be finite (add_gradient_terms): t overflows for N just above the
// floor (x ~ 1e-16 with bias 0: N^(-beta-1) ~ 1e55), while dx, the difference of two such
// terms times r, is ~1e23. (A NaN t, from a NaN input, is redone too: NaN in double.)
// A NaN N is not flagged: it comes from a NaN input, and is NaN in double too; but where alpha
// is 0 it may come from an overflowed sum (NormRange::nan_norms_in_double), and is. One min
// and one max per vector; for a general beta (a scalar pow per lane anyway) also a sum of
// power * 0, NaN once some N^(-beta) overflowed (or N is NaN); with alpha 0, a sum of N * 0.
// The lanes past C count too: their N is bias, so with bias below the floor a row whose C is
// not a whole number of vectors is redone in double, more slowly but rightly. A no-op for
// double.
template <typename A>
struct FloatRowCheck {
  using V = Simd<A>;
  static constexpr bool kTracked = std::is_same_v<A, float>;

  explicit FloatRowCheck(const NormRange& range) : range_(range) {}

  template <PowerKind kKind>
  ALEXOPS_INLINE void add(typename V::Vec norm, typename V::Vec power) {
    if constexpr (kTracked) {
      least_ = norm < least_ ? norm : least_;  // minps, maxps: a NaN norm is skipped
      greatest_ = norm > greatest_ ? norm : greatest_;
      if constexpr (kKind == PowerKind::kGeneral) poisoned_ = power * A(0) + poisoned_;
      else if (range_.nan_norms_in_double) poisoned_ = norm * A(0) + poisoned_;
    }
  }

  // The backward's t = dy r N^(-beta-1), of the norms added (or, with none added, of norms
  // checked before).
  ALEXOPS_INLINE void add_gradient_terms(typename V::Vec t) {
    if constexpr (kTracked) terms_ = (t * A(range_.window_width)) * A(0) + terms_;  // NaN once inf or NaN
  }

  bool forward_needs_double() const { return outside(A(range_.forward_ceiling)); }
  bool backward_needs_double() const {
    if constexpr (!kTracked) return false;
    return range_.backward_all_in_double || outside(A(range_.backward_ceiling)) || any_lane_nonzero<A>(terms_);
  }

 private:
  NormRange range_;
  typename V::Vec least_ = typename V::Vec{} + std::numeric_limits<A>::infinity();
  typename V::Vec greatest_ = typename V::Vec{} - std::numeric_limits<A>::infinity();
  typename V::Vec poisoned_{}, terms_{};

  bool outside(A ceiling) const {
    if constexpr (!kTracked) return false;
    return any_lane_nonzero<A>(least_ < A(range_.floor)) || any_lane_nonzero<A>(greatest_ > ceiling) ||
           any_lane_nonzero<A>(poisoned_);
  }
};

// One pixel in double precision with direct window sums, for the float pixels FloatRowCheck
// flags (rare: bias ~0 with tiny inputs, |x| beyond ~1e19, ~1e13 at beta 1.5, or ~1e6 in the
// backward). There float intermediates lose the answer while the answer itself is a normal
// number: squares of x ~ 1e-21 are subnormal (a few bits left) though y = x N^(-1/2) ~ 1;
// t = dy r N^(-beta-1) underflows for N ~ 1e38 (~1e-48) though dx, r times a window of t, is
// ~1e-29. In double every intermediate keeps its value. O(C * R) work.
struct PixelInDouble {
  Buffer<double> rows;  // r, N, and the backward's g and t

  // r <- the pixel's relu(x) (from the float scratch row, where it is exact), N <- its norms.
  void norms(const LrnParams& p, int64_t R, const float* r_in, int64_t C) {
    rows.resize(4 * C);
    double* r = rows.data();
    double* n = r + C;
    for (int64_t c = 0; c < C; ++c) r[c] = r_in[c];
    for (int64_t c = 0; c < C; ++c) {
      double squares = 0;
      for (int64_t j = std::max<int64_t>(0, c - R); j <= std::min(C - 1, c + R); ++j) squares += r[j] * r[j];
      n[c] = double(p.bias) + double(p.alpha) * squares;
    }
  }

  template <typename T>
  void forward(const LrnParams& p, int64_t R, const float* r_in, T* y, int64_t C) {
    norms(p, R, r_in, C);
    const double* r = rows.data();
    const double* n = r + C;
    for (int64_t c = 0; c < C; ++c) store(float(r[c] * std::pow(n[c], -double(p.beta))), y + c);
  }

  // dy: T, or float (a 16-bit dy kept aside, exactly, where dx overwrites it).
  template <typename D, typename T>
  void backward(const LrnParams& p, int64_t R, const float* r_in, const D* dy, T* dx, int64_t C) {
    norms(p, R, r_in, C);
    const double* r = rows.data();
    const double* n = r + C;
    double* g = rows.data() + 2 * C;
    double* t = rows.data() + 3 * C;
    for (int64_t c = 0; c < C; ++c) {
      g[c] = double(to_acc(dy[c])) * std::pow(n[c], -double(p.beta));
      t[c] = g[c] * r[c] / n[c];
    }
    const double two_alpha_beta = 2.0 * double(p.alpha) * double(p.beta);
    for (int64_t c = 0; c < C; ++c) {
      double window = 0;
      for (int64_t j = std::max<int64_t>(0, c - R); j <= std::min(C - 1, c + R); ++j) window += t[j];
      const double d_r = g[c] - two_alpha_beta * r[c] * window;
      store(float(p.relu && !(r[c] > 0) ? 0.0 : d_r), dx + c);  // ReluGrad: 0 at x <= 0
    }
  }
};

// Scratch rows for one thread and one block of pixels, each a whole number of vectors long
// (lanes past C hold zeros). Padded rows keep R zeros before and after the channels. The
// forward needs r and squares; the backward g and t too.
//
// Pixels go through each phase a block at a time because the window sums read rows that the
// previous phase wrote, at unaligned offsets: read straight after the write, every such load
// waits on the store buffer (failed store-to-load forwarding), which cost more than all the
// arithmetic. A block's worth of other work in between lets the stores land.
template <typename A>
struct BlockScratch {
  using V = Simd<A>;
  BlockScratch(int64_t channels, int64_t radius, bool backward)
      : C(channels), R(radius), Cv((channels + V::kLanes - 1) / V::kLanes * V::kLanes),
        padded_stride(Cv + 2 * radius), direct(radius <= kDirectMaxRadius),
        block_pixels(std::clamp<int64_t>(kScratchBytes / (2 * sizeof(A) * (Cv + padded_stride)), 1,
                                         kMaxBlockPixels)),
        r(block_pixels * Cv), g(backward ? block_pixels * Cv : 0), squares(block_pixels * padded_stride),
        t(backward ? block_pixels * padded_stride : 0), sums(direct ? 0 : Cv), prefix(direct ? 0 : padded_stride),
        suffix(direct ? 0 : padded_stride), wide(backward ? block_pixels : 0) {}
  int64_t C, R, Cv, padded_stride;
  bool direct;             // window sums by direct addition (else by block scans)
  int64_t block_pixels;    // pixels per phase
  Buffer<A> r;        // relu(x)
  Buffer<A> g;        // dy * N^(-beta)
  Buffer<A> squares;  // padded r^2
  Buffer<A> t;        // padded dy * r * N^(-beta-1)
  Buffer<A> sums, prefix, suffix;  // the block-scan path's rows
  Buffer<char> wide;  // backward: pixels to redo in double (FloatRowCheck)
  PixelInDouble in_double;
  A* r_row(int64_t i) { return r.data() + i * Cv; }
  A* g_row(int64_t i) { return g.data() + i * Cv; }
  A* squares_row(int64_t i) { return squares.data() + i * padded_stride; }  // starts at the pad
  A* t_row(int64_t i) { return t.data() + i * padded_stride; }              // starts at the pad
};

// Window sums of one padded row: window(c) = padded[c] + ... + padded[c + 2R], a vector at a
// time: direct addition for small radii, block scans for larger ones (see the top of this file).
template <typename A, int64_t kWidth = 0>
struct WindowSums {
  using V = Simd<A>;
  BlockScratch<A>& s;
  const A* padded;

  WindowSums(BlockScratch<A>& scratch, const A* row) : s(scratch), padded(row) {
    if (!s.direct) block_scans();
  }

  ALEXOPS_INLINE typename V::Vec window(int64_t c) const {
    if (!s.direct) return V::load(s.sums.data() + c);
    // kWidth, where known when compiling (the common radii), lets the loop unroll: 20% faster
    // than a loop over a width known at run time (scripts/cpu_kernel_bench.cc, R = 4).
    const int64_t width = kWidth ? kWidth : 2 * s.R + 1;
    typename V::Vec even = V::load(padded + c), odd{};  // two chains of dependent adds
    int64_t k = 1;
    for (; k + 1 < width; k += 2) {
      odd += V::load(padded + c + k);
      even += V::load(padded + c + k + 1);
    }
    if (k < width) odd += V::load(padded + c + k);
    return even + odd;
  }

  void block_scans() const {
    const int64_t width = 2 * s.R + 1, rows = s.C + 2 * s.R;
    A* pre = s.prefix.data();
    A* suf = s.suffix.data();
    for (int64_t b0 = 0; b0 < rows; b0 += width) {
      const int64_t b1 = std::min(b0 + width, rows);
      A acc = 0;
      for (int64_t i = b0; i < b1; ++i) pre[i] = acc += padded[i];
      acc = 0;
      for (int64_t i = b1 - 1; i >= b0; --i) suf[i] = acc += padded[i];
    }
    for (int64_t c = 0; c < s.C; ++c)
      s.sums[c] = (c % width == 0) ? pre[c + 2 * s.R] : suf[c] + pre[c + 2 * s.R];
  }
};

// Calls fn(std::integral_constant<int64_t, W>) with the window's width W where it is one of
// the common ones (radius 2, 4: AlexNet's, 5: tf.nn.lrn's default) and computed directly, in
// float; else with W = 0 (the width read at run time). Each W is a copy of the loops.
template <typename A, typename Fn>
ALEXOPS_INLINE void with_window_width(const BlockScratch<A>& s, Fn&& fn) {
  if constexpr (std::is_same_v<A, float>) {
    if (s.direct && s.R == 4) return fn(std::integral_constant<int64_t, 9>{});
    if (s.direct && s.R == 5) return fn(std::integral_constant<int64_t, 11>{});
    if (s.direct && s.R == 2) return fn(std::integral_constant<int64_t, 5>{});
  }
  fn(std::integral_constant<int64_t, 0>{});
}

// Brings rows [first, last) of `data` (C elements each) towards the core ahead of use, where
// the kernels prefetch by block (see kPrefetchBytes).
template <typename T>
void prefetch_rows(const T* data, int64_t first, int64_t last, int64_t C) {
  if constexpr (kPrefetchEachVector) return;
  const char* begin = reinterpret_cast<const char*>(data + first * C);
  const char* end = reinterpret_cast<const char*>(data + last * C);
  for (const char* line = begin; line < end; line += 64) __builtin_prefetch(line, 0, 3);
}

// The pixels [first, last) whose inputs to prefetch while block [block, block + n) runs.
inline std::pair<int64_t, int64_t> prefetch_range(int64_t block, int64_t n, int64_t end, int64_t row_bytes) {
  const int64_t ahead = std::max(n, kPrefetchBytes / row_bytes);
  const int64_t first = std::min(end, block + ahead);
  return {first, std::min(end, first + n)};
}

// Row i of the block: r <- relu(x) (or x), squares <- padded r^2.
template <typename T, typename A>
void load_and_square(BlockScratch<A>& s, int64_t i, const T* x, bool relu) {
  using V = Simd<A>;
  A* r = s.r_row(i);
  A* sq = s.squares_row(i) + s.R;
  for_each_vector<A>(s.C, [&](int64_t c, int64_t n) {
    prefetch_vector_ahead(x + c);
    typename V::Vec v = load_row_vector(x, c, n);
    if (relu) v = relu_vector<A>(v);  // NaN passes through, as in tf.nn.relu
    V::store(r + c, v);
    V::store(sq + c, v * v);
  });
}

// The window sums of one vector of channels, of width kWidth = 2R + 1 (R <= kLanes), from
// the squares of that vector and of its neighbours either side, shifted in registers
// (lanes_shifted): no scratch row, no loads. Two chains of adds, as WindowSums::window.
template <int64_t kWidth, typename A, int... I>
ALEXOPS_INLINE typename Simd<A>::Vec window_from_shifts(typename Simd<A>::Vec prev, typename Simd<A>::Vec cur,
                                                        typename Simd<A>::Vec next, std::integer_sequence<int, I...>) {
  constexpr int R = int(kWidth - 1) / 2;
  typename Simd<A>::Vec even = lanes_shifted<-R, A>(prev, cur, next), odd = lanes_shifted<1 - R, A>(prev, cur, next);
  (((I % 2 ? odd : even) += lanes_shifted<I + 2 - R, A>(prev, cur, next)), ...);  // shifts 2 - R to R
  return even + odd;
}

// The window sums of a row's vectors, in registers, streamed: push() each vector's squares in
// channel order (then zeros past the row); after the push of vector v + 1, window() is vector
// v's sums of width kWidth = 2R + 1 (R <= kLanes).
//  - Where a shift across the vector's halves costs more than the others (AVX2), and for
//    widths up to 7: the 2R + 1 shifted vectors added (window_from_shifts).
//  - Else (AVX-512, widths of 9 and more): from partial sums. Level k holds, in each lane, the
//    sum of the 2^k squares that end there; level k + 1 is level k plus level k shifted by
//    2^k. A window is then a few shifted levels (9 = 8 + 1): 5 shifts and 4 adds a vector
//    where the 9 shifted vectors take 8 of each. On an AVX-512 Xeon (B/A, two threads,
//    AlexNet's tensors, float32, with kWindowsInRegisters there) the forward took 0.88-0.92,
//    the pooled forward 0.80-0.87; on an AVX2 AMD EPYC, the levels (up to 4, as the halves
//    allow) were 1.06-1.13x slower than the shifts (scripts/experiments/
//    windows-from-partial-sums.patch, with its measurements in BENCHMARKS.md). On an AVX-512
//    AMD Zen 4 the shifts instead of the levels took B/A 0.97-1.14 in the forwards, 1.03-1.10
//    in the backward, 0.98-1.04 in the pooled backward: mostly slower.
//    Every sum still holds only squares inside its window (see the top of this file).
template <int64_t kWidth, typename A>
class WindowStream {
  using Vec = typename Simd<A>::Vec;
  static constexpr int R = int(kWidth - 1) / 2;
  static constexpr int kHalf = int(Simd<A>::kLanes) / 2;
  static constexpr bool kPartialSums = kShiftsAreOneInstruction && kWidth >= 9;
  static constexpr int floor_log2(int n) { return n > 1 ? 1 + floor_log2(n / 2) : 0; }
  static constexpr int kTop = kPartialSums ? std::min(floor_log2(int(kWidth)), floor_log2(kHalf)) : 0;
  static_assert(kWidth % 2 == 1 && R >= 1 && R <= Simd<A>::kLanes, "a window of 2R + 1 channels, 1 <= R <= kLanes");

  // Levels of vectors v - 1, v and v + 1. (Those no window reads are dropped by the compiler.)
  Vec prev_[kTop + 1], cur_[kTop + 1], next_[kTop + 1];

  template <int k>
  ALEXOPS_INLINE void build_level() {
    if constexpr (k <= kTop) {
      next_[k] = next_[k - 1] + lanes_shifted<-(1 << (k - 1)), A>(cur_[k - 1], next_[k - 1], Vec{});
      build_level<k + 1>();
    }
  }
  // The sum of the window's channels from `covered` below its last (c + R) down to its first.
  template <int covered>
  ALEXOPS_INLINE Vec sum_of_levels() const {
    constexpr int remaining = int(kWidth) - covered;
    constexpr int k = std::min(kTop, floor_log2(remaining));
    const Vec term = lanes_shifted<R - covered, A>(prev_[k], cur_[k], next_[k]);
    if constexpr (remaining == (1 << k)) return term;
    else return term + sum_of_levels<covered + (1 << k)>();
  }
  template <int k = 0>
  ALEXOPS_INLINE void advance(Vec squares) {
    if constexpr (k <= kTop) {
      prev_[k] = cur_[k], cur_[k] = next_[k];
      advance<k + 1>(squares);
    } else {
      next_[0] = squares;
      build_level<1>();
    }
  }

 public:
  WindowStream() {
    for (int k = 0; k <= kTop; ++k) prev_[k] = cur_[k] = next_[k] = Vec{};
  }
  ALEXOPS_INLINE void push(Vec squares) { advance(squares); }
  ALEXOPS_INLINE Vec window() const {
    if constexpr (kPartialSums) return sum_of_levels<0>();
    else return window_from_shifts<kWidth, A>(prev_[0], cur_[0], next_[0], std::make_integer_sequence<int, int(kWidth) - 2>{});
  }
};

// What a forward can keep for the backward of the same pixels, so that the backward need not
// compute N again (lrn_relu_max_pool's backward, which needs the forward's y for its argmax
// anyway). Per pixel: r = relu(x), N^(-beta) and 1/N (rows of BlockScratch::Cv, lanes past C
// zero), exactly as backward_pixels computes them, and whether the backward must redo the
// pixel in double (FloatRowCheck).
template <typename A>
struct KeptNorms {
  A* r;
  A* power;
  A* inverse;
  char* wide;
};

// Whether forward_pixels takes each pixel's windows from registers (forward_pixel_in_registers)
// instead of from a scratch row of squares: where the target shifts float lanes
// (kHasLaneShifts) and a window of width kWidth reaches at most one vector either side; for
// float tensors, and on AVX-512 for the 16-bit ones too.
// Measured with scripts/cpu_kernel_bench.cc on an AVX2 AMD EPYC (B/A, AlexNet's tensors, two
// threads): lrn_relu forward 0.90-0.95, lrn_relu_max_pool forward 0.85-0.91 and backward
// 0.81-0.91 (its rows' norms come from this forward); in L2, one thread, 0.97-1.03. There the
// 16-bit types keep the scratch rows: streamed, they were 3-14% slower one vector at a time
// and 1-10% slower two at a time. On an AVX-512 Xeon, with the 9 shifted vectors: 0.96-0.99
// forward and 0.92-0.96 pooled at AlexNet's sizes, though 1.07-1.11x slower in L2; the 16-bit
// types, once the inputs were prefetched a vector at a time (kPrefetchEachVector), forward
// 0.92-0.96, lrn_relu_max_pool forward 0.94-1.05 and backward 0.85-0.97. On an AVX-512 AMD
// Zen 4 the 16-bit types' scratch rows were 1.05-1.40x slower (float16 at C = 64: 0.95-1.03).
template <typename T, typename A, int64_t kWidth>
constexpr bool kWindowsInRegisters = (std::is_same_v<T, float> || kShiftsAreOneInstruction) &&
                                     std::is_same_v<A, float> && kHasLaneShifts<A> && kWidth != 0 &&
                                     (kWidth - 1) / 2 <= Simd<A>::kLanes;

// Whether a forward's output powers N^(-beta) are refined (fast_reciprocal_sqrt): all but a
// bfloat16 output's (which matters on AVX-512 only; elsewhere the estimate is always refined).
// The bare 14-bit estimate of N^(-1/2) has an error in N^(-beta) under 2^-13, far below
// bfloat16's ulp (2^-8): it changed 33 of 12.8 million rounded outputs (with a second estimate
// for N^(-1/4) then, since replaced by an exact sqrt). Against float16's ulp (2^-11) it changed
// 5.6% of them, and so which of two near-equal outputs lrn_relu_max_pool routes the gradient
// to. What a forward keeps for the backward (KeptNorms) is always refined.
template <typename T>
constexpr bool kRefineOutputPowers = !std::is_same_v<T, bfloat16_bits>;

// Whether backward_pixels (and backward_pixels_from_kept) run each pixel in one pass in
// registers (backward_pixel_in_registers): on AVX-512 (32 registers, every shift one
// instruction), for every storage type of float arithmetic, where a window reaches at most one
// vector either side. There, at AlexNet's sizes, two threads: float32 B/A 0.89-0.93 (the
// pooled backward 0.91-0.94); float16 0.90-0.98 (pooled 0.86-0.88), bfloat16 0.96-1.02 (pooled
// 0.88-0.91), against their scratch rows (which their forward then still took). On an AVX2
// AMD EPYC (16 registers, 9 shifted vectors a window) the same pass was 1.27-1.34x slower for
// float32 (scripts/experiments/backward-streamed-in-registers.patch). On an AVX-512 AMD Zen 4
// the scratch rows were 1.00-1.37x slower than this pass, every dtype.
template <typename T, typename A, int64_t kWidth>
constexpr bool kBackwardInRegisters = std::is_same_v<A, float> && kHasLaneShifts<A> && kShiftsAreOneInstruction &&
                                      kWidth != 0 && (kWidth - 1) / 2 <= Simd<A>::kLanes;

// forward_pixels for one pixel (in -> out, which may be the same) in one pass over its
// vectors: each vector's squares stay in registers while the windows of it and its neighbours
// are summed (WindowStream), so nothing goes through scratch but relu(x), kept in s's
// first r row for the rare redo in double. With keep (kKeep), the pixel's KeptNorms go to
// its kept_pixel'th rows.
template <PowerKind kKind, int64_t kWidth, bool kKeep, typename T, typename A>
ALEXOPS_INLINE void forward_pixel_in_registers(const LrnParams& p, BlockScratch<A>& s, const T* in, T* out,
                                               const KeptNorms<A>* keep, int64_t kept_pixel, const NormRange& range) {
  using V = Simd<A>;
  using Vec = typename V::Vec;
  constexpr int64_t L = V::kLanes;
  const int64_t C = s.C;
  const A bias = A(p.bias), alpha = A(p.alpha), beta = A(p.beta);
  const bool relu = p.relu;
  A* const r = s.r_row(0);
  const int64_t kept_at = kept_pixel * s.Cv;
  A *const kept_r = kKeep ? keep->r + kept_at : nullptr, *const kept_power = kKeep ? keep->power + kept_at : nullptr,
           *const kept_inverse = kKeep ? keep->inverse + kept_at : nullptr;
  FloatRowCheck<A> check(range);
  // Vector c's output from its r and norms, for the caller to store.
  const auto output = [&](int64_t c, Vec r_c, Vec norm) {
    Vec power, inverse;
    norm_powers<kKind, A, kRefineOutputPowers<T>>(norm, beta, power, inverse);
    check.template add<kKind>(norm, power);
    V::store(r + c, r_c);
    prefetch_vector_ahead</*kForWrite=*/true>(out + c);
    const Vec y = r_c * power;
    if constexpr (kKeep) {
      if constexpr (!kRefineOutputPowers<T> && kUnrefinedEstimateDiffers) norm_powers<kKind, A>(norm, beta, power, inverse);
      V::store(kept_r + c, r_c);
      V::store(kept_power + c, power);
      V::store(kept_inverse + c, inverse);
    }
    return y;
  };
  // relu(x) (or x) of the n channels at c; NaN passes, as in tf.nn.relu.
  const auto r_at = [&](int64_t c, int64_t n) {
    prefetch_vector_ahead(in + c);
    const Vec v = load_row_vector(in, c, n);
    return relu ? relu_vector<A>(v) : v;
  };
  WindowStream<kWidth, A> windows;
  // After the push of the next vector's squares, the current vector's norms.
  const auto norms_after = [&](Vec r_next) {
    windows.push(r_next * r_next);
    return bias + alpha * windows.window();
  };
  Vec r_cur = r_at(0, std::min(L, C));
  windows.push(r_cur * r_cur);
  int64_t c = 0;
  // Two vectors at a time while both are whole: their chains (window, power, product) side by
  // side, and their outputs stored as a pair. Against two at a time only while the two after
  // them were whole too (which left C = 64's last two and C = 192's one at a time), AVX-512
  // Xeon, two threads, AlexNet's C: float32 forward 1.01, lrn_relu_max_pool forward 0.96;
  // float16 0.93-0.95 and 0.95-0.97, bfloat16 0.98-1.01 and 1.00-1.01.
  for (; c + 2 * L <= C; c += 2 * L) {
    const Vec r1 = r_at(c + L, L), r2 = c + 2 * L < C ? r_at(c + 2 * L, std::min(L, C - c - 2 * L)) : Vec{};
    const Vec norm0 = norms_after(r1), norm1 = norms_after(r2);
    const Vec y0 = output(c, r_cur, norm0);
    VecIO<T>::store_pair(out + c, y0, output(c + L, r1, norm1));
    r_cur = r2;
  }
  for (; c < C; c += L) {  // then one at a time; past the row, r is 0
    const Vec r_next = c + L < C ? r_at(c + L, std::min(L, C - c - L)) : Vec{};
    store_row_vector(out, c, std::min(L, C - c), output(c, r_cur, norms_after(r_next)));
    r_cur = r_next;
  }
  // (The kept powers are refined, as the backward's are: the output's, or for a bfloat16 output
  // computed again above.)
  if constexpr (kKeep) keep->wide[kept_pixel] = check.backward_needs_double();
  if (check.forward_needs_double()) s.in_double.forward(p, s.R, r, out, C);
}

// LRN(+ReLU) of pixels [begin, end) of x (C channels each), forward into the same pixels of
// y, which may equal x. With backward_pixels, the unit every kernel builds on: lrn_relu runs
// them over its pixels, lrn_relu_max_pool over the rows its windows need.
// `scratch` (made for the forward, or the backward, of these C and radius) lets a caller
// that runs many short runs keep one; by default each call makes its own.
// `keep`, where given, gets the KeptNorms of pixels [begin, end), the first at its rows' start.
template <PowerKind kKind, typename T, typename A = Acc<T>>
void forward_pixels(const LrnParams& p, const T* x, T* y, int64_t C, int64_t begin, int64_t end,
                    BlockScratch<A>* scratch = nullptr, const KeptNorms<A>* keep = nullptr) {
  using V = Simd<A>;
  using Vec = typename V::Vec;
  std::optional<BlockScratch<A>> own;
  if (!scratch) scratch = &own.emplace(C, effective_radius(p.depth_radius, C), /*backward=*/false);
  BlockScratch<A>& s = *scratch;
  const A bias = A(p.bias), alpha = A(p.alpha), beta = A(p.beta);
  const NormRange range = norm_range(p, s.R);  // (FloatRowCheck)
  // Keeping or not is known when compiling each copy of the loop: as a run-time branch in
  // the grouped loop below it cost registers both ways (the pooled forward 14% slower).
  const auto with_keep = [&](auto fn) {
    if (keep) fn(std::true_type{});
    else fn(std::false_type{});
  };
  with_keep([&](auto keeping) {
  constexpr bool kKeep = decltype(keeping)::value;
  with_window_width(s, [&](auto width) {
  constexpr int64_t kWidth = decltype(width)::value;
  for (int64_t first = begin; first < end; first += s.block_pixels) {
    const int64_t n_pixels = std::min(s.block_pixels, end - first);
    const auto [ahead, ahead_end] = prefetch_range(first, n_pixels, end, C * int64_t(sizeof(T)));
    prefetch_rows(x, ahead, ahead_end, C);
    if constexpr (kWindowsInRegisters<T, A, kWidth>) {
      for (int64_t i = 0; i < n_pixels; ++i) {
        const int64_t pixel = first + i;
        forward_pixel_in_registers<kKind, kWidth, kKeep>(p, s, x + pixel * C, y + pixel * C, keep, pixel - begin, range);
      }
      continue;
    }
    for (int64_t i = 0; i < n_pixels; ++i) load_and_square(s, i, x + (first + i) * C, p.relu);
    for (int64_t i = 0; i < n_pixels; ++i) {
      const WindowSums<A, kWidth> squares(s, s.squares_row(i));
      const A* r = s.r_row(i);
      T* out = y + (first + i) * C;
      FloatRowCheck<A> check(range);
      const int64_t kept_pixel = first + i - begin;
      // Up to four vectors side by side (for_each_vector_group): each is one long chain of
      // dependent operations (window, power, product). 5-13% faster than one at a time on an
      // AVX2 Zen (scripts/cpu_kernel_bench.cc); two for bfloat16, whose store needs registers
      // of its own (four were 6% slower than two there).
      constexpr int64_t kGroup = std::is_same_v<T, bfloat16_bits> ? 2 : 4;
      for_each_vector_group<A, kGroup>(C, [&](auto vectors, int64_t c0, int64_t n) {
        constexpr int64_t K = decltype(vectors)::value;
        Vec norm[K], power[K], inverse[K];
        for (int64_t k = 0; k < K; ++k) norm[k] = bias + alpha * squares.window(c0 + k * V::kLanes);
        for (int64_t k = 0; k < K; ++k) norm_powers<kKind, A, kRefineOutputPowers<T>>(norm[k], beta, power[k], inverse[k]);
        for (int64_t k = 0; k < K; ++k) {
          const int64_t c = c0 + k * V::kLanes;
          check.template add<kKind>(norm[k], power[k]);
          const Vec rc = V::load(r + c);
          store_row_vector(out, c, n, rc * power[k]);
          if constexpr (kKeep) {
            Vec kept_power = power[k], kept_inverse = inverse[k];
            // The backward's powers are refined whatever T is (as in backward_pixels).
            if constexpr (!kRefineOutputPowers<T> && kUnrefinedEstimateDiffers) norm_powers<kKind, A>(norm[k], beta, kept_power, kept_inverse);
            const int64_t at = kept_pixel * s.Cv + c;
            V::store(keep->r + at, rc);
            V::store(keep->power + at, kept_power);
            V::store(keep->inverse + at, kept_inverse);
          }
        }
      });
      // (The kept powers' norms are the output's: one check for both.)
      if constexpr (kKeep) keep->wide[kept_pixel] = check.backward_needs_double();
      if constexpr (FloatRowCheck<A>::kTracked) {
        if (check.forward_needs_double()) s.in_double.forward(p, s.R, r, out, C);  // over the row
      }
    }
  }
  });
  });
}

// The backward's second phase, for one vector of n channels: g = dy * N^(-beta), the first
// term of dL/dr, and t = dy * r * N^(-beta-1), checked (FloatRowCheck::add_gradient_terms).
// The lanes of t past C are the padding of its windows, so they are set to exact zeros: there
// r and dy are 0, but N may be 0 or negative (bias <= 0), and 0 * inf or 0 * NaN is NaN.
template <typename A, typename Vec = typename Simd<A>::Vec>
ALEXOPS_INLINE void gradient_terms(int64_t n, Vec dy, Vec r, Vec power, Vec inverse, FloatRowCheck<A>& check, Vec& g,
                                   Vec& t) {
  g = dy * power;
  t = first_lanes<A>(g * r * inverse, n);
  check.add_gradient_terms(t);
}

// gradient_terms into a pixel's g and t rows (t past its padding), at channel c.
template <typename A, typename Vec = typename Simd<A>::Vec>
ALEXOPS_INLINE void store_gradient_terms(A* g, A* t, int64_t c, int64_t n, Vec dy, Vec r, Vec power, Vec inverse,
                                         FloatRowCheck<A>& check) {
  Vec scaled, terms;
  gradient_terms<A>(n, dy, r, power, inverse, check, scaled, terms);
  Simd<A>::store(t + c, terms);
  Simd<A>::store(g + c, scaled);
}

// The backward's third phase: dx of the block's n_pixels pixels from their g and t rows.
// r_rows holds their r (rows of s.Cv), wide which of them to redo in double; dy and dx point
// at the block's first pixel.
template <int64_t kWidth, typename T, typename A>
ALEXOPS_INLINE void gradient_from_terms(const LrnParams& p, BlockScratch<A>& s, int64_t n_pixels, const A* r_rows,
                                        const char* wide, const T* dy, T* dx) {
  using V = Simd<A>;
  using Vec = typename V::Vec;
  const A factor = two_alpha_beta<A>(p);
  const int64_t C = s.C;
  for (int64_t i = 0; i < n_pixels; ++i) {
    T* out = dx + i * C;
    const A* r = r_rows + i * s.Cv;
    if constexpr (FloatRowCheck<A>::kTracked) {
      if (wide[i]) {
        s.in_double.backward(p, s.R, r, dy + i * C, out, C);
        continue;
      }
    }
    const WindowSums<A, kWidth> scaled_dy(s, s.t_row(i));
    const A* g = s.g_row(i);
    for_each_vector<A>(C, [&](int64_t c, int64_t n) {
      const Vec rc = V::load(r + c);
      const Vec d_r = V::load(g + c) - factor * rc * scaled_dy.window(c);
      store_row_vector(out, c, n, p.relu ? (rc > A(0) ? d_r : Vec{}) : d_r);  // ReluGrad: 0 at x <= 0
    });
  }
}

// The backward's last step in registers, streamed: push() each vector's g = dy N^(-beta),
// t = g r / N and r in channel order; after the push of vector j, vector j - 1's dx is ready
// (g - 2 alpha beta r window(t), through ReluGrad), its window of t needing vector j's t.
// finish() gives the last vector's.
template <int64_t kWidth, typename A>
class GradientStream {
  using Vec = typename Simd<A>::Vec;
  WindowStream<kWidth, A> terms_;
  Vec g_prev_{}, r_prev_{};
  A factor_;
  bool relu_;

 public:
  explicit GradientStream(const LrnParams& p) : factor_(two_alpha_beta<A>(p)), relu_(p.relu) {}
  ALEXOPS_INLINE Vec push(Vec g, Vec t, Vec r) {
    terms_.push(t);
    const Vec r_prev = r_prev_, d_r = g_prev_ - factor_ * r_prev * terms_.window();
    g_prev_ = g, r_prev_ = r;
    return relu_ ? (r_prev > A(0) ? d_r : Vec{}) : d_r;  // ReluGrad: 0 at x <= 0
  }
  ALEXOPS_INLINE Vec finish() { return push(Vec{}, Vec{}, Vec{}); }
};

// The register backwards' redo of one pixel in double, from its dy: kept_dy (in A, exact) where
// dx has overwritten dy, else dy.
template <typename T, typename A>
void redo_backward_in_double(const LrnParams& p, BlockScratch<A>& s, const A* r, const A* kept_dy, const T* dy, T* dx) {
  if (kept_dy) s.in_double.backward(p, s.R, r, kept_dy, dx, s.C);
  else s.in_double.backward(p, s.R, r, dy, dx, s.C);
}

// backward_pixels for one pixel in one pass over its vectors (kBackwardInRegisters): vector
// j's norms come after the push of vector j + 1's squares, and its dx (GradientStream) after
// the push of vector j + 1's t, so dx runs one vector behind g and t, and two behind x: dx may
// be x or dy. Nothing goes through scratch but relu(x), for the rare redo in double (and
// where dx is dy, dy, which the redo reads again).
template <PowerKind kKind, int64_t kWidth, typename T, typename A>
ALEXOPS_INLINE void backward_pixel_in_registers(const LrnParams& p, BlockScratch<A>& s, const T* x, const T* dy,
                                                T* dx, const NormRange& range) {
  using V = Simd<A>;
  using Vec = typename V::Vec;
  constexpr int64_t L = V::kLanes;
  const int64_t C = s.C;
  const A bias = A(p.bias), alpha = A(p.alpha), beta = A(p.beta);
  const bool relu = p.relu;
  A* const r_row = s.r_row(0);
  A* const kept_dy = dx == dy ? s.g_row(0) : nullptr;
  FloatRowCheck<A> check(range);
  const auto r_of = [&](int64_t c) {  // relu(x) (or x) of the vector at channel c; zeros past the row
    if (c >= C) return Vec{};
    prefetch_vector_ahead(x + c);
    const Vec v = load_row_vector(x, c, std::min(L, C - c));
    return relu ? relu_vector<A>(v) : v;  // NaN passes, as in tf.nn.relu
  };
  WindowStream<kWidth, A> squares;
  GradientStream<kWidth, A> gradient(p);
  Vec r_cur = r_of(0);
  squares.push(r_cur * r_cur);
  // g and t of the vector at c (n channels) from its r and norms.
  const auto terms_of = [&](int64_t c, int64_t n, Vec r_c, Vec norm, Vec& g, Vec& t) {
    Vec power, inverse;
    norm_powers<kKind, A>(norm, beta, power, inverse);
    check.template add<kKind>(norm, power);
    prefetch_vector_ahead(dy + c);
    const Vec dy_c = load_row_vector(dy, c, n);
    if (kept_dy) V::store(kept_dy + c, dy_c);
    gradient_terms<A>(n, dy_c, r_c, power, inverse, check, g, t);
  };
  int64_t c = 0;
  // Two vectors at a time while both are whole, as in forward_pixel_in_registers: each
  // vector's chain of dependent operations is long (window, powers, t, window, dx), and side by
  // side they overlap. B/A 0.92-0.94 against one at a time (AVX-512 Xeon, float32), and
  // 0.92-0.98 against two at a time only while the two after them were whole too (16-bit types
  // 0.91-0.98). Each step's two dx (its first vector's predecessor, and its first) go as a pair.
  for (; c + 2 * L <= C; c += 2 * L) {
    const Vec r1 = r_of(c + L), r2 = r_of(c + 2 * L);
    squares.push(r1 * r1);
    const Vec norm0 = bias + alpha * squares.window();
    squares.push(r2 * r2);
    const Vec norm1 = bias + alpha * squares.window();
    Vec g0, t0, g1, t1;
    terms_of(c, L, r_cur, norm0, g0, t0);
    terms_of(c + L, L, r1, norm1, g1, t1);
    const Vec dx0 = gradient.push(g0, t0, r_cur);
    prefetch_vector_ahead</*kForWrite=*/true>(dx + c);
    prefetch_vector_ahead</*kForWrite=*/true>(dx + c + L);
    const Vec dx1 = gradient.push(g1, t1, r1);
    if (c > 0) VecIO<T>::store_pair(dx + c - L, dx0, dx1);
    else VecIO<T>::store(dx + c, dx1);
    V::store(r_row + c, r_cur);
    V::store(r_row + c + L, r1);
    r_cur = r2;
  }
  for (; c < C; c += L) {  // then one at a time; past the row, r is 0
    const int64_t n = std::min(L, C - c);
    const Vec r_next = r_of(c + L);
    squares.push(r_next * r_next);
    Vec g, t;
    terms_of(c, n, r_cur, bias + alpha * squares.window(), g, t);
    const Vec dx_before = gradient.push(g, t, r_cur);
    prefetch_vector_ahead</*kForWrite=*/true>(dx + c);
    if (c > 0) VecIO<T>::store(dx + c - L, dx_before);
    V::store(r_row + c, r_cur);
    r_cur = r_next;
  }
  const int64_t last = (C - 1) / L * L;
  store_row_vector(dx, last, C - last, gradient.finish());
  if (check.backward_needs_double()) redo_backward_in_double(p, s, r_row, kept_dy, dy, dx);
}

// backward_pixels_from_kept for one pixel in one pass over its vectors (kBackwardInRegisters,
// as backward_pixel_in_registers): dx may be dy. Its r, N^(-beta) and 1/N rows are the
// forward's; `wide` says whether to redo it in double, and gets the check of its t.
template <int64_t kWidth, typename T, typename A>
ALEXOPS_INLINE void backward_pixel_from_kept_in_registers(const LrnParams& p, BlockScratch<A>& s, const A* r,
                                                          const A* power, const A* inverse, const T* dy, T* dx,
                                                          char& wide, const NormRange& range) {
  using V = Simd<A>;
  using Vec = typename V::Vec;
  constexpr int64_t L = V::kLanes;
  const int64_t C = s.C;
  A* const kept_dy = dx == dy ? s.g_row(0) : nullptr;
  FloatRowCheck<A> terms_check(range);  // its norms were checked in the forward (wide)
  GradientStream<kWidth, A> gradient(p);
  // g and t of the vector at c (n channels).
  const auto terms_of = [&](int64_t c, int64_t n, Vec r_c, Vec& g, Vec& t) {
    const Vec dy_c = load_row_vector(dy, c, n);
    if (kept_dy) V::store(kept_dy + c, dy_c);
    gradient_terms<A>(n, dy_c, r_c, V::load(power + c), V::load(inverse + c), terms_check, g, t);
  };
  int64_t c = 0;
  for (; c + 2 * L <= C; c += 2 * L) {  // two at a time where whole: B/A 0.96 (as in backward_pixel_in_registers)
    const Vec r0 = V::load(r + c), r1 = V::load(r + c + L);
    Vec g0, t0, g1, t1;
    terms_of(c, L, r0, g0, t0);
    terms_of(c + L, L, r1, g1, t1);
    const Vec dx0 = gradient.push(g0, t0, r0);
    const Vec dx1 = gradient.push(g1, t1, r1);
    if (c > 0) VecIO<T>::store_pair(dx + c - L, dx0, dx1);
    else VecIO<T>::store(dx + c, dx1);
  }
  for (; c < C; c += L) {
    const Vec r_c = V::load(r + c);
    Vec g, t;
    terms_of(c, std::min(L, C - c), r_c, g, t);
    const Vec dx_before = gradient.push(g, t, r_c);
    if (c > 0) VecIO<T>::store(dx + c - L, dx_before);
  }
  const int64_t last = (C - 1) / L * L;
  store_row_vector(dx, last, C - last, gradient.finish());
  wide |= terms_check.backward_needs_double();
  if (wide) redo_backward_in_double(p, s, r, kept_dy, dy, dx);
}

// dx of pixels [begin, end) given their x and dy; dx may equal dy or x.
template <PowerKind kKind, typename T, typename A = Acc<T>>
void backward_pixels(const LrnParams& p, const T* x, const T* dy, T* dx, int64_t C, int64_t begin,
                     int64_t end, BlockScratch<A>* scratch = nullptr) {
  using V = Simd<A>;
  using Vec = typename V::Vec;
  std::optional<BlockScratch<A>> own;
  if (!scratch) scratch = &own.emplace(C, effective_radius(p.depth_radius, C), /*backward=*/true);
  BlockScratch<A>& s = *scratch;
  const A bias = A(p.bias), alpha = A(p.alpha), beta = A(p.beta);
  const NormRange range = norm_range(p, s.R);  // (FloatRowCheck)
  with_window_width(s, [&](auto width) {
  constexpr int64_t kWidth = decltype(width)::value;
  for (int64_t first = begin; first < end; first += s.block_pixels) {
    const int64_t n_pixels = std::min(s.block_pixels, end - first);
    // All of the block's x and dy are read (phases 1 and 2) before any of its dx is written
    // (phase 3): dx may share a buffer with either. (A pixel done in double reads its own dy
    // again in phase 3, before its own dx is written.) Both input streams are prefetched
    // ahead, as the forward's one is (by block: 10% faster at AlexNet's lrn1 size).
    const auto [ahead, ahead_end] = prefetch_range(first, n_pixels, end, C * int64_t(sizeof(T)));
    prefetch_rows(x, ahead, ahead_end, C);
    prefetch_rows(dy, ahead, ahead_end, C);
    if constexpr (kBackwardInRegisters<T, A, kWidth>) {
      for (int64_t pixel = first; pixel < first + n_pixels; ++pixel)
        backward_pixel_in_registers<kKind, kWidth>(p, s, x + pixel * C, dy + pixel * C, dx + pixel * C, range);
      continue;
    }
    for (int64_t i = 0; i < n_pixels; ++i) load_and_square(s, i, x + (first + i) * C, p.relu);
    for (int64_t i = 0; i < n_pixels; ++i) {
      const WindowSums<A, kWidth> squares(s, s.squares_row(i));
      const T* dy_row = dy + (first + i) * C;
      const A* r = s.r_row(i);
      A* g = s.g_row(i);
      A* t = s.t_row(i) + s.R;
      FloatRowCheck<A> check(range);
      for_each_vector_group<A>(C, [&](auto vectors, int64_t c0, int64_t n) {  // as in forward_pixels
        constexpr int64_t K = decltype(vectors)::value;
        Vec norm[K], power[K], inverse[K];
        for (int64_t k = 0; k < K; ++k) norm[k] = bias + alpha * squares.window(c0 + k * V::kLanes);
        for (int64_t k = 0; k < K; ++k) norm_powers<kKind, A>(norm[k], beta, power[k], inverse[k]);
        for (int64_t k = 0; k < K; ++k) {
          const int64_t c = c0 + k * V::kLanes;
          check.template add<kKind>(norm[k], power[k]);
          prefetch_vector_ahead(dy_row + c);
          store_gradient_terms<A>(g, t, c, n, load_row_vector(dy_row, c, n), V::load(r + c), power[k], inverse[k],
                                  check);
        }
      });
      s.wide[i] = check.backward_needs_double();
    }
    gradient_from_terms<kWidth>(p, s, n_pixels, s.r.data(), s.wide.data(), dy + first * C, dx + first * C);
  }
  });
}

// backward_pixels for pixels whose forward kept their norms (KeptNorms, the first pixel's at
// its rows' start): the same dx, bit for bit, without computing N again. dx may equal dy. Marks
// in kept.wide the pixels to redo in double for their t (FloatRowCheck::add_gradient_terms).
template <typename T, typename A>
void backward_pixels_from_kept(const LrnParams& p, const KeptNorms<A>& kept, const T* dy, T* dx, int64_t C,
                               int64_t begin, int64_t end, BlockScratch<A>& s) {
  using V = Simd<A>;
  const NormRange range = norm_range(p, s.R);  // (FloatRowCheck)
  with_window_width(s, [&](auto width) {
  constexpr int64_t kWidth = decltype(width)::value;
  for (int64_t first = begin; first < end; first += s.block_pixels) {
    const int64_t n_pixels = std::min(s.block_pixels, end - first), k0 = first - begin;
    if constexpr (kBackwardInRegisters<T, A, kWidth>) {
      for (int64_t i = 0; i < n_pixels; ++i) {
        const int64_t row = (k0 + i) * s.Cv;
        backward_pixel_from_kept_in_registers<kWidth>(p, s, kept.r + row, kept.power + row, kept.inverse + row,
                                                      dy + (first + i) * C, dx + (first + i) * C, kept.wide[k0 + i],
                                                      range);
      }
      continue;
    }
    for (int64_t i = 0; i < n_pixels; ++i) {
      const T* dy_row = dy + (first + i) * C;
      const int64_t row = (k0 + i) * s.Cv;
      const A *r = kept.r + row, *power = kept.power + row, *inverse = kept.inverse + row;
      A* g = s.g_row(i);
      A* t = s.t_row(i) + s.R;
      FloatRowCheck<A> terms_check(range);  // its norms were checked in the forward (kept.wide)
      for_each_vector<A>(C, [&](int64_t c, int64_t n) {
        store_gradient_terms<A>(g, t, c, n, load_row_vector(dy_row, c, n), V::load(r + c), V::load(power + c),
                                V::load(inverse + c), terms_check);
      });
      kept.wide[k0 + i] |= terms_check.backward_needs_double();
    }
    gradient_from_terms<kWidth>(p, s, n_pixels, kept.r + k0 * s.Cv, kept.wide + k0, dy + first * C, dx + first * C);
  }
  });
}

// Runs range_fn over parallel_for's ranges of [0, n_units). Every range runs with gradual
// underflow (float_env.h), and nothing it throws leaves its thread: a failed scratch
// allocation becomes the kOutOfMemory this returns.
template <typename Fn>
CpuKernelResult guarded_parallel_for(int64_t n_units, int64_t cost_per_unit, const ParallelFor& parallel_for,
                                     Fn&& range_fn) {
  std::atomic<bool> out_of_memory{false};
  parallel_for(n_units, cost_per_unit, [&](int64_t begin, int64_t end) {
    try {
      ScopedGradualUnderflow ieee_subnormals;
      range_fn(begin, end);
    } catch (const std::bad_alloc&) {
      out_of_memory = true;
    }
  });
  return out_of_memory ? CpuKernelResult::kOutOfMemory : CpuKernelResult::kOk;
}

}  // namespace
}  // namespace alexops
