// Microbenchmark of the CPU core alone (no TensorFlow, no Python), for tuning: the forward or
// backward over [N * 3136 * 64 / C pixels, C channels], in ns per element. N may be a
// fraction: N = 0.25 (200 KB a tensor) stays in a 512 KB L2 and shows the kernels'
// instruction cost; N = 64 is AlexNet's lrn1 size. It calls the kernels of one instruction-
// set level directly (no dispatch). Build them for this machine, from the repository root:
//   g++ -O3 -march=native -fno-math-errno -std=c++17 -Icsrc -DALEXOPS_ISA_NAMESPACE=cpu_native
//       scripts/cpu_kernel_bench.cc csrc/lrn_relu/cpu.cc -o /tmp/cpu_kernel_bench -lpthread
//   C=64 /tmp/cpu_kernel_bench N forward|backward f32|f16|bf16 [threads]
// which prints the best of many runs.
//
// A/B mode, for comparing two versions of the kernels on a noisy machine: build the kernel
// file of each version into its own namespace, cpu_a and cpu_b, and this file with
// ALEXOPS_BENCH_AB; then calls of A and B alternate (in turn first), and it prints each one's
// median and the median of the B/A ratios of neighbouring calls, which slow spells of the
// machine move far less than the best runs of two separate processes:
//   F="-O3 -march=native -fno-math-errno -std=c++17"
//   g++ $F -I<A>/csrc -DALEXOPS_ISA_NAMESPACE=cpu_a -c <A>/csrc/lrn_relu/cpu.cc -o /tmp/a.o
//   g++ $F -I<B>/csrc -DALEXOPS_ISA_NAMESPACE=cpu_b -c <B>/csrc/lrn_relu/cpu.cc -o /tmp/b.o
//   g++ $F -Icsrc -DALEXOPS_BENCH_AB scripts/cpu_kernel_bench.cc /tmp/a.o /tmp/b.o -o /tmp/ab -lpthread
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "common/cpu_isa.h"
#include "lrn_relu/cpu.h"
#include "lrn_relu/cpu_levels.h"

#define ALEXOPS_DECLARE_KERNELS(ns) \
  namespace alexops {               \
  namespace ns {                    \
  ALEXOPS_LRN_RELU_LEVEL_KERNELS    \
  }                                 \
  }
#ifdef ALEXOPS_BENCH_AB
ALEXOPS_DECLARE_KERNELS(cpu_a)
ALEXOPS_DECLARE_KERNELS(cpu_b)
#else
ALEXOPS_DECLARE_KERNELS(cpu_native)
#endif

using namespace alexops;

namespace {

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
  int64_t pixels, C;
  std::vector<T> x, dy, out;
  LrnParams p{4, 1.0, 0.001 / 9, 0.75, true};  // AlexNet's LRN
  ParallelFor parallel_for;

  Problem(double N, int64_t channels, bool threads)
      : pixels(int64_t(N * 56 * 56 * 64) / channels), C(channels), x(pixels * C), dy(pixels * C), out(pixels * C),
        parallel_for(threads ? ParallelFor(two_threads) : ParallelFor(serial_for)) {
    std::mt19937 rng(0);
    std::normal_distribution<float> normal;
    for (auto& v : x) v = from_float<T>(normal(rng));
    for (auto& v : dy) v = from_float<T>(normal(rng));
  }

  // ns per element of one call.
  template <typename Forward, typename Backward>
  double time(Forward forward, Backward backward, bool is_backward) {
    const auto start = std::chrono::steady_clock::now();
    if (is_backward) backward(p, x.data(), dy.data(), out.data(), pixels, C, parallel_for);
    else forward(p, x.data(), out.data(), pixels, C, parallel_for);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() * 1e9 / double(pixels * C);
  }
};

template <typename T>
void run(double N, int64_t C, bool backward, bool threads) {
  Problem<T> problem(N, C, threads);
  const int calls = N < 16 ? int(300 / std::min(1.0, N)) : 25;
#ifdef ALEXOPS_BENCH_AB
  std::vector<double> a, b, ratio;
  for (int i = 0; i < calls; ++i) {
    double t[2];
    for (int k = 0; k < 2; ++k) {
      const bool run_b = (k == 0) == (i % 2 == 1);  // alternate which goes first
      t[run_b] = run_b ? problem.time(cpu_b::lrn_relu_forward_cpu<T>, cpu_b::lrn_relu_backward_cpu<T>, backward)
                       : problem.time(cpu_a::lrn_relu_forward_cpu<T>, cpu_a::lrn_relu_backward_cpu<T>, backward);
    }
    a.push_back(t[0]);
    b.push_back(t[1]);
    ratio.push_back(t[1] / t[0]);
  }
  std::printf("A %.3f, B %.3f ns/element (medians), B/A %.3f (median of %d pairs)", median(a), median(b),
              median(ratio), calls);
#else
  double best = 1e30;
  for (int i = 0; i < calls; ++i)
    best = std::min(best, problem.time(cpu_native::lrn_relu_forward_cpu<T>, cpu_native::lrn_relu_backward_cpu<T>,
                                       backward));
  std::printf("%.3f ns/element (best run)", best);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: C=64 %s N forward|backward f32|f16|bf16 [threads]\n", argv[0]);
    return 2;
  }
  const double N = std::atof(argv[1]);
  const bool backward = argv[2][0] == 'b';
  const char* type = argv[3];
  const bool threads = argc > 4;
  const int64_t C = std::getenv("C") ? std::atoll(std::getenv("C")) : 64;
  if (!(N > 0)) {
    std::fprintf(stderr, "N must be positive\n");
    return 2;
  }
  if (!std::strcmp(type, "f32")) run<float>(N, C, backward, threads);
  else if (!std::strcmp(type, "f16")) run<half_bits>(N, C, backward, threads);
  else run<bfloat16_bits>(N, C, backward, threads);
  std::printf(": N=%g C=%lld %s %s %s\n", N, (long long)C, backward ? "backward" : "forward", type,
              threads ? "2 threads" : "1 thread");
  return 0;
}
