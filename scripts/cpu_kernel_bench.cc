// Microbenchmark of the CPU core alone (no TensorFlow, no Python), for tuning. It times
// lrn_relu's forward or backward over [N * 3136 * 64 / C pixels, C channels], or
// lrn_relu_max_pool's (3x3/2 VALID) over as many square images of AlexNet's sizes (56 x 56
// for C <= 64, 27 x 27 above; at least one) as fill those pixels, in ns per input element.
// N may be a fraction: N = 0.25 (200 KB a tensor) stays in a 512 KB L2 and shows the
// kernels' instruction cost; N = 64 is AlexNet's lrn1 size. It calls the kernels of one
// instruction-set level directly (no dispatch). Build them for this machine, from the
// repository root:
//   g++ -O3 -march=native -fno-math-errno -std=c++17 -Icsrc -DALEXOPS_ISA_NAMESPACE=cpu_native
//       scripts/cpu_kernel_bench.cc csrc/lrn_relu/cpu.cc csrc/lrn_relu_max_pool/cpu.cc
//       -o /tmp/cpu_kernel_bench -lpthread
//   C=64 /tmp/cpu_kernel_bench N forward|backward|pool-forward|pool-backward f32|f16|bf16 [threads]
// which prints the best of many runs. SETS=3 in the environment rotates the calls among three
// sets of inputs (see run()).
//
// A/B mode, for comparing two versions of the kernels on a noisy machine: build the kernel
// files of each version into their own namespace, cpu_a and cpu_b, and this file with
// ALEXOPS_BENCH_AB; then calls of A and B alternate (in turn first), and it prints each one's
// median and the median of the B/A ratios of neighbouring calls, which slow spells of the
// machine move far less than the best runs of two separate processes, then whether B's output
// is A's byte for byte (scripts/cpu_kernel_ab.sh does all of this for a patch):
//   F="-O3 -march=native -fno-math-errno -std=c++17"
//   for f in lrn_relu lrn_relu_max_pool; do
//     g++ $F -I<A>/csrc -DALEXOPS_ISA_NAMESPACE=cpu_a -c <A>/csrc/$f/cpu.cc -o /tmp/a_$f.o
//     g++ $F -I<B>/csrc -DALEXOPS_ISA_NAMESPACE=cpu_b -c <B>/csrc/$f/cpu.cc -o /tmp/b_$f.o
//   done
//   g++ $F -Icsrc -DALEXOPS_BENCH_AB scripts/cpu_kernel_bench.cc /tmp/a_*.o /tmp/b_*.o -o /tmp/ab -lpthread
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "common/cpu_isa.h"
#include "lrn_relu/cpu.h"
#include "lrn_relu/cpu_levels.h"
#include "lrn_relu_max_pool/cpu_levels.h"

#define ALEXOPS_DECLARE_KERNELS(ns)          \
  namespace alexops {                        \
  namespace ns {                             \
  ALEXOPS_LRN_RELU_LEVEL_KERNELS             \
  ALEXOPS_LRN_RELU_MAX_POOL_LEVEL_KERNELS    \
  }                                          \
  }
#ifdef ALEXOPS_BENCH_AB
ALEXOPS_DECLARE_KERNELS(cpu_a)
ALEXOPS_DECLARE_KERNELS(cpu_b)
#else
ALEXOPS_DECLARE_KERNELS(cpu_native)
#endif

using namespace alexops;

namespace {

enum class Mode { kForward, kBackward, kPoolForward, kPoolBackward, kRelu, kReluBackward };

// The yardstick of issue 14 ("LRN for free"): the ReLU the fused op replaces, as plain loops
// the compiler vectorizes, over the same threads: out = max(x, 0), and its gradient
// out = x > 0 ? dy : 0. Elementwise on the bits for the 16-bit types (a sign bit set: 0).
template <typename T>
bool positive(T v) {
  if constexpr (std::is_same_v<T, float>) return v > 0;
  else return !(v.bits & 0x8000) && v.bits != 0;
}
template <typename T>
void relu_forward(const T* x, T* out, int64_t n, const ParallelFor& parallel_for) {
  parallel_for(n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = positive(x[i]) ? x[i] : T{};
  });
}
template <typename T>
void relu_backward(const T* x, const T* dy, T* out, int64_t n, const ParallelFor& parallel_for) {
  parallel_for(n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T d = dy[i];  // read unconditionally, so that the loop vectorizes
      out[i] = positive(x[i]) ? d : T{};
    }
  });
}

void two_threads(int64_t n, int64_t, const RangeFn& fn) {
  const int64_t half = n / 2;
  std::thread other(fn, half, n);
  fn(0, half);
  other.join();
}

template <typename T>
T from_float(float f) {
  if constexpr (std::is_same_v<T, float>) {
    return f;
  } else {
    T t;
    store(f, &t);
    return t;
  }
}

#ifdef ALEXOPS_BENCH_AB
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
#endif

template <typename T>
struct Problem {
  Mode mode;
  int64_t pixels, C;
  PoolGeometry geometry;  // the pooled modes' images
  std::vector<T> x, dy, out;
  LrnParams p{4, 1.0, 0.001 / 9, 0.75, true};  // AlexNet's LRN
  ParallelFor parallel_for;

  Problem(Mode m, double N, int64_t channels, bool threads)
      : mode(m), pixels(int64_t(N * 56 * 56 * 64) / channels), C(channels),
        parallel_for(threads ? ParallelFor(two_threads) : ParallelFor(serial_for)) {
    if (mode == Mode::kPoolForward || mode == Mode::kPoolBackward) {
      const int64_t side = C <= 64 ? 56 : 27;
      pool_geometry(std::max<int64_t>(1, pixels / (side * side)), side, side, C, PoolParams{}, &geometry);
      pixels = geometry.input_pixels();
    }
    x.resize(pixels * C), dy.resize(pixels * C), out.resize(pixels * C);  // dy holds dpooled in the pooled modes
    std::mt19937 rng(0);
    std::normal_distribution<float> normal;
    for (auto& v : x) v = from_float<T>(normal(rng));
    for (auto& v : dy) v = from_float<T>(normal(rng));
  }

  // ns per input element of one call of `call`, which runs one version's kernel for `mode`.
  template <typename Call>
  double time(Call call) {
    const auto start = std::chrono::steady_clock::now();
    call(*this);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() * 1e9 / double(pixels * C);
  }
};

// call_<ns>(problem): the problem's kernel, as built into namespace ns.
#define ALEXOPS_BENCH_CALL(ns)                                                                                  \
  template <typename T>                                                                                         \
  void call_##ns(Problem<T>& q) {                                                                               \
    switch (q.mode) {                                                                                           \
      case Mode::kForward: ns::lrn_relu_forward_cpu<T>(q.p, q.x.data(), q.out.data(), q.pixels, q.C, q.parallel_for); break; \
      case Mode::kBackward:                                                                                     \
        ns::lrn_relu_backward_cpu<T>(q.p, q.x.data(), q.dy.data(), q.out.data(), q.pixels, q.C, q.parallel_for); \
        break;                                                                                                  \
      case Mode::kPoolForward:                                                                                  \
        ns::lrn_relu_max_pool_forward_cpu<T>(q.p, q.geometry, q.x.data(), q.out.data(), q.parallel_for);        \
        break;                                                                                                  \
      case Mode::kPoolBackward:                                                                                 \
        ns::lrn_relu_max_pool_backward_cpu<T>(q.p, q.geometry, q.x.data(), q.dy.data(), q.out.data(),           \
                                              q.parallel_for);                                                  \
        break;                                                                                                  \
      case Mode::kRelu: relu_forward<T>(q.x.data(), q.out.data(), q.pixels * q.C, q.parallel_for); break;       \
      case Mode::kReluBackward:                                                                                 \
        relu_backward<T>(q.x.data(), q.dy.data(), q.out.data(), q.pixels * q.C, q.parallel_for);               \
        break;                                                                                                  \
    }                                                                                                           \
  }
#ifdef ALEXOPS_BENCH_AB
ALEXOPS_BENCH_CALL(cpu_a)
ALEXOPS_BENCH_CALL(cpu_b)
#else
ALEXOPS_BENCH_CALL(cpu_native)
#endif

// SETS input sets (default 1), each call taking the next: with several, as in the harness
// (alexops/bench), a call's inputs are not the ones the call before it left in the caches.
template <typename T>
void run(Mode mode, double N, int64_t C, bool threads) {
  const int sets = std::max(1, std::getenv("SETS") ? std::atoi(std::getenv("SETS")) : 1);
  std::vector<std::unique_ptr<Problem<T>>> problems;
  for (int i = 0; i < sets; ++i) problems.push_back(std::make_unique<Problem<T>>(mode, N, C, threads));
  Problem<T>& problem = *problems[0];
  int64_t next_set = 0;
  const auto next = [&]() -> Problem<T>& { return *problems[size_t(next_set++ % sets)]; };
  const double size = double(problem.pixels * C) / (56 * 56 * 64);  // in lrn1 images (the pooled modes round N)
  const int calls = size < 16 ? int(300 / std::min(1.0, size)) : 25;
#ifdef ALEXOPS_BENCH_AB
  std::vector<double> a, b, ratio;
  for (int i = 0; i < calls; ++i) {
    double t[2];
    for (int k = 0; k < 2; ++k) {
      const bool run_b = (k == 0) == (i % 2 == 1);  // alternate which goes first
      t[run_b] = run_b ? next().time(call_cpu_b<T>) : next().time(call_cpu_a<T>);
    }
    a.push_back(t[0]);
    b.push_back(t[1]);
    ratio.push_back(t[1] / t[0]);
  }
  // Whether B changes the results: its output, byte for byte, against A's.
  call_cpu_a<T>(problem);
  const std::vector<T> a_out = problem.out;
  call_cpu_b<T>(problem);
  int64_t differ = 0;
  for (size_t i = 0; i < a_out.size(); ++i) differ += std::memcmp(&a_out[i], &problem.out[i], sizeof(T)) != 0;
  std::printf("A %.3f, B %.3f ns/element (medians), B/A %.3f (median of %d pairs), outputs %s", median(a), median(b),
              median(ratio), calls, differ ? "DIFFER" : "identical");
  if (differ) std::printf(" (%lld of %zu elements)", (long long)differ, a_out.size());
#else
  double best = 1e30;
  for (int i = 0; i < calls; ++i)
    best = std::min(best, next().time(call_cpu_native<T>));
  std::printf("%.3f ns/element (best run)", best);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage = "usage: C=64 %s N forward|backward|pool-forward|pool-backward|relu|relu-backward f32|f16|bf16 [threads]\n";
  if (argc < 4) {
    std::fprintf(stderr, usage, argv[0]);
    return 2;
  }
  const double N = std::atof(argv[1]);
  const char* what = argv[2];
  Mode mode;
  if (!std::strcmp(what, "forward")) mode = Mode::kForward;
  else if (!std::strcmp(what, "backward")) mode = Mode::kBackward;
  else if (!std::strcmp(what, "pool-forward")) mode = Mode::kPoolForward;
  else if (!std::strcmp(what, "pool-backward")) mode = Mode::kPoolBackward;
  else if (!std::strcmp(what, "relu")) mode = Mode::kRelu;
  else if (!std::strcmp(what, "relu-backward")) mode = Mode::kReluBackward;
  else {
    std::fprintf(stderr, usage, argv[0]);
    return 2;
  }
  const char* type = argv[3];
  const bool threads = argc > 4;
  const int64_t C = std::getenv("C") ? std::atoll(std::getenv("C")) : 64;
  if (!(N > 0)) {
    std::fprintf(stderr, "N must be positive\n");
    return 2;
  }
  if (!std::strcmp(type, "f32")) run<float>(mode, N, C, threads);
  else if (!std::strcmp(type, "f16")) run<half_bits>(mode, N, C, threads);
  else run<bfloat16_bits>(mode, N, C, threads);
  std::printf(": N=%g C=%lld %s %s %s\n", N, (long long)C, what, type, threads ? "2 threads" : "1 thread");
  return 0;
}
