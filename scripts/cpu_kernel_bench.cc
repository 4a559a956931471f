// Microbenchmark of the CPU core alone (no TensorFlow, no Python), for tuning: the best of
// many runs of the forward or backward over [N * 3136 * 64 / C pixels, C channels], in ns per
// element. Small N keeps the data in L2 (the kernels' instruction cost); N = 64 is AlexNet's
// lrn1 size. It calls the kernels of one instruction-set level directly (no dispatch): build
// them for this machine, from the repository root:
//   g++ -O3 -march=native -fno-math-errno -std=c++17 -Icsrc -DALEXOPS_ISA_NAMESPACE=cpu_native \
//       scripts/cpu_kernel_bench.cc csrc/lrn_relu/cpu.cc -o /tmp/cpu_kernel_bench -lpthread
//   C=64 /tmp/cpu_kernel_bench N forward|backward f32|f16|bf16 [threads]
// (Compare two versions by building both and alternating their runs: this machine is noisy.)
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

namespace alexops {
namespace cpu_native {
template <typename T>
CpuKernelResult lrn_relu_forward_cpu(const LrnParams&, const T*, T*, int64_t, int64_t, const ParallelFor&);
template <typename T>
CpuKernelResult lrn_relu_backward_cpu(const LrnParams&, const T*, const T*, T*, int64_t, int64_t, const ParallelFor&);
}  // namespace cpu_native
}  // namespace alexops

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

template <typename T>
double best_ns_per_element(int64_t N, int64_t C, bool backward, bool threads) {
  const int64_t pixels = N * 56 * 56 * 64 / C;
  std::vector<T> x(pixels * C), dy(pixels * C), out(pixels * C);
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  for (auto& v : x) v = from_float<T>(normal(rng));
  for (auto& v : dy) v = from_float<T>(normal(rng));
  const LrnParams p{4, 1.0, 0.001 / 9, 0.75, true};  // AlexNet's LRN
  const ParallelFor pf = threads ? ParallelFor(two_threads) : ParallelFor(serial_for);
  double best = 1e30;
  for (int run = 0; run < (N < 16 ? 300 : 25); ++run) {
    const auto start = std::chrono::steady_clock::now();
    if (backward) cpu_native::lrn_relu_backward_cpu<T>(p, x.data(), dy.data(), out.data(), pixels, C, pf);
    else cpu_native::lrn_relu_forward_cpu<T>(p, x.data(), out.data(), pixels, C, pf);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best * 1e9 / double(pixels * C);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: C=64 %s N forward|backward f32|f16|bf16 [threads]\n", argv[0]);
    return 2;
  }
  const int64_t N = std::atoll(argv[1]);
  const bool backward = argv[2][0] == 'b';
  const char* type = argv[3];
  const bool threads = argc > 4;
  const int64_t C = std::getenv("C") ? std::atoll(std::getenv("C")) : 64;
  double ns;
  if (!std::strcmp(type, "f32")) ns = best_ns_per_element<float>(N, C, backward, threads);
  else if (!std::strcmp(type, "f16")) ns = best_ns_per_element<half_bits>(N, C, backward, threads);
  else ns = best_ns_per_element<bfloat16_bits>(N, C, backward, threads);
  std::printf("%.3f ns/element (best run): N=%lld C=%lld %s %s %s\n", ns, (long long)N, (long long)C,
              backward ? "backward" : "forward", type, threads ? "2 threads" : "1 thread");
  return 0;
}
