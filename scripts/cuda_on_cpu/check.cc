// The CUDA launchers of lrn_relu and lrn_relu_max_pool, run on the CPU (cuda_on_cpu.h), against
// the CPU kernels on small random problems in every dtype: forward and backward, every kernel
// lrn_relu has, radii across the register kernel's limits, and pools of several windows,
// strides and paddings. Built and run by scripts/cuda_on_cpu/run.sh. Prints one line per
// case that fails and exits 1 if any does.
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "lrn_relu/cpu.h"
#include "lrn_relu/cuda.h"
#include "lrn_relu_max_pool/cpu.h"
#include "lrn_relu_max_pool/cuda.h"

using namespace alexops;

namespace {

int failures = 0, cases = 0;

template <typename T>
double as_double(T v) {
  return double(to_acc(v));
}

template <typename T>
T from_double(double d) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    return T(d);
  } else {
    T t;
    store(float(d), &t);
    return t;
  }
}

// Normal random values; with `specials`, about one in 50 is NaN, +inf or -inf instead (they
// must propagate as in the composite, on both devices alike).
bool specials = false;

template <typename T>
std::vector<T> random_tensor(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  std::uniform_int_distribution<int> pick(0, 149);
  const double special[] = {std::nan(""), HUGE_VAL, -HUGE_VAL};
  std::vector<T> v(n);
  for (auto& e : v) {
    const int k = pick(rng);
    e = from_double<T>(specials && k < 3 ? special[k] : normal(rng));
  }
  return v;
}

// Relative tolerance of the two devices' results: a few units in the last place of T (the GPU's
// powers differ from the CPU's in the last bits, and a 16-bit result may round the other way).
template <typename T>
double tolerance() {
  if constexpr (std::is_same_v<T, double>) return 1e-12;
  else if constexpr (std::is_same_v<T, float>) return 2e-5;
  else if constexpr (std::is_same_v<T, half_bits>) return 4e-3;
  else return 2e-2;
}

template <typename T>
void expect_close(const std::string& what, const std::vector<T>& cuda, const std::vector<T>& cpu) {
  ++cases;
  double largest = 0;  // of the finite values
  for (const T& v : cpu)
    if (std::isfinite(as_double(v))) largest = std::max(largest, std::fabs(as_double(v)));
  const double tol = tolerance<T>();
  size_t bad = 0, first_bad = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    const double a = as_double(cuda[i]), b = as_double(cpu[i]);
    // NaN where the CPU has NaN, the same infinity where it has one; else close.
    const bool same = std::isfinite(b) ? std::fabs(a - b) <= tol * (std::fabs(b) + largest)
                                       : (std::isnan(b) ? std::isnan(a) : a == b);
    if (!same) {
      if (bad++ == 0) first_bad = i;
    }
  }
  if (bad) {
    ++failures;
    std::printf("FAIL %s: %zu of %zu elements differ; first at %zu: cuda %g, cpu %g\n", what.c_str(), bad, cpu.size(),
                first_bad, as_double(cuda[first_bad]), as_double(cpu[first_bad]));
  }
}

void expect_ok(const std::string& what, const Status& status) {
  if (!status.ok()) {
    ++failures;
    std::printf("FAIL %s: %s\n", what.c_str(), status.message().c_str());
  }
}

template <typename T>
const char* dtype_name() {
  if constexpr (std::is_same_v<T, float>) return "float32";
  else if constexpr (std::is_same_v<T, double>) return "float64";
  else if constexpr (std::is_same_v<T, half_bits>) return "float16";
  else return "bfloat16";
}

template <typename T>
void check_lrn_relu(int64_t pixels, int64_t C, const LrnParams& p) {
  const auto x = random_tensor<T>(pixels * C, unsigned(C * 31 + p.depth_radius));
  const auto dy = random_tensor<T>(pixels * C, unsigned(C * 17 + 5));
  std::vector<T> cpu_y(x.size()), cpu_dx(x.size());
  expect_ok("cpu forward", lrn_relu_forward_cpu<T>(p, x.data(), cpu_y.data(), pixels, C, serial_for));
  expect_ok("cpu backward", lrn_relu_backward_cpu<T>(p, x.data(), dy.data(), cpu_dx.data(), pixels, C, serial_for));
  CudaRegisterLayout layout;
  const bool registers = cuda_register_layout(C, p.depth_radius, int(sizeof(T)), &layout);
  for (CudaKernel kernel : {CudaKernel::kTiled, CudaKernel::kRegisters}) {
    if (kernel == CudaKernel::kRegisters && !registers) continue;
    const std::string name = std::string("lrn_relu ") + dtype_name<T>() + " C=" + std::to_string(C) +
                             " R=" + std::to_string(p.depth_radius) + " beta=" + std::to_string(p.beta) +
                             (kernel == CudaKernel::kTiled ? " tiled" : " registers") + (specials ? " NaN/inf" : "");
    std::vector<T> y(x.size()), dx(x.size());
    expect_ok(name, lrn_relu_forward_cuda<T>(p, x.data(), y.data(), pixels, C, nullptr, kernel));
    expect_ok(name, lrn_relu_backward_cuda<T>(p, x.data(), dy.data(), dx.data(), pixels, C, nullptr, kernel));
    expect_close(name + " forward", y, cpu_y);
    expect_close(name + " backward", dx, cpu_dx);
  }
}

template <typename T>
void check_pool(int64_t batch, int64_t rows, int64_t cols, int64_t C, int64_t radius, int64_t window, int64_t stride,
                bool same, float beta = 0.75f, bool relu = true) {
  const LrnParams p{radius, 1.0f, 0.1f, beta, relu};
  PoolParams pool;
  pool.window_rows = pool.window_cols = window;
  pool.stride_rows = pool.stride_cols = stride;
  pool.same_padding = same;
  PoolGeometry g;
  expect_ok("geometry", pool_geometry(batch, rows, cols, C, pool, &g));
  const std::string name = std::string("lrn_relu_max_pool ") + dtype_name<T>() + " " + std::to_string(batch) + "x" +
                           std::to_string(rows) + "x" + std::to_string(cols) + "x" + std::to_string(C) + " R=" +
                           std::to_string(radius) + " k" + std::to_string(window) + "s" + std::to_string(stride) +
                           (same ? " SAME" : " VALID") + " beta=" + std::to_string(beta) + (relu ? "" : " no relu") +
                           (specials ? " NaN/inf" : "");
  const auto x = random_tensor<T>(g.input_pixels() * C, unsigned(rows * 7 + cols + C));
  const auto dpooled = random_tensor<T>(g.output_pixels() * C, unsigned(radius + 3));
  std::vector<T> cpu_pooled(dpooled.size()), cpu_dx(x.size()), pooled(dpooled.size()), dx(x.size());
  expect_ok("cpu pool forward", lrn_relu_max_pool_forward_cpu<T>(p, g, x.data(), cpu_pooled.data(), serial_for));
  expect_ok("cpu pool backward",
            lrn_relu_max_pool_backward_cpu<T>(p, g, x.data(), dpooled.data(), cpu_dx.data(), serial_for));
  const Status forward = lrn_relu_max_pool_forward_cuda<T>(p, g, x.data(), pooled.data(), nullptr);
  const Status backward = lrn_relu_max_pool_backward_cuda<T>(p, g, x.data(), dpooled.data(), dx.data(), nullptr);
  // Version 1 refuses rows whose buffers would not fit in an SM's shared memory (float64 at
  // AlexNet's [27, 27, 192]), with this InvalidArgument; version 2 must take every case here.
  for (const Status* status : {&forward, &backward})
    if (std::getenv("ALEXOPS_CUDA_KERNEL") && !status->ok() && status->message().find("too wide") != std::string::npos) {
      std::printf("refused, as version 1 does: %s: %s\n", name.c_str(), status->message().c_str());
      return;
    }
  expect_ok(name, forward);
  expect_ok(name, backward);
  expect_close(name + " forward", pooled, cpu_pooled);
  expect_close(name + " backward", dx, cpu_dx);
}

// Pixels per lrn_relu case: enough that both kernels' blocks loop over several tiles or
// warps' worth of pixels (run.sh caps the grid at 2 blocks) for C = 64 and 192, not a round number.
constexpr int64_t kPixels = 201;

template <typename T>
void check_dtype(bool pools_only) {
  if (!pools_only) {
    for (int64_t C : {64, 192, 13, 16})
      for (int64_t R : {0, 2, 4, 9})
        for (float beta : {0.75f, 0.6f}) check_lrn_relu<T>(kPixels, C, LrnParams{R, 1.0f, 0.1f, beta, true});
    check_lrn_relu<T>(21, 64, LrnParams{4, 2.0f, 1e-4f, 0.75f, false});  // relu off
  }
  // (batch, rows, cols, C, R, window, stride, SAME)
  check_pool<T>(2, 13, 13, 64, 4, 3, 2, false);  // AlexNet-like
  check_pool<T>(1, 9, 11, 192, 4, 3, 2, true);
  check_pool<T>(1, 7, 6, 13, 9, 2, 1, true);  // odd C, R > 8
  check_pool<T>(3, 5, 5, 3, 1, 5, 3, false);
  check_pool<T>(1, 2, 3, 8, 0, 3, 2, true);  // an image smaller than the window
  check_pool<T>(2, 8, 9, 32, 2, 3, 1, false);  // stride 1: every element in up to 9 windows
  check_pool<T>(1, 7, 27, 192, 4, 3, 2, false, 0.5f, false);  // AlexNet's lrn2 width, relu off
  check_pool<T>(1, 5, 13, 64, 7, 3, 2, false);  // windows reaching 8 channels (RMAX = 8)
  check_pool<T>(1, 6, 56, 64, 4, 3, 2, true, 1.0f);  // AlexNet's lrn1 width
  check_pool<T>(2, 10, 8, 64, 2, 2, 3, false);  // stride past the window: rows and columns no window holds
  check_pool<T>(1, 9, 7, 32, 1, 1, 2, true);  // 1x1 windows
  specials = true;
  if (!pools_only) {
    check_lrn_relu<T>(kPixels, 64, LrnParams{4, 1.0f, 0.1f, 0.75f, true});
    check_lrn_relu<T>(kPixels, 13, LrnParams{2, 1.0f, 0.1f, 0.75f, false});
  }
  check_pool<T>(2, 13, 13, 64, 4, 3, 2, false);
  check_pool<T>(1, 7, 6, 13, 2, 3, 2, true);
  specials = false;
}

}  // namespace

// `check pools` checks lrn_relu_max_pool alone (run.sh: again with ALEXOPS_CUDA_KERNEL=tiled, its version 1).
int main(int argc, char** argv) {
  const bool pools_only = argc > 1 && std::string(argv[1]) == "pools";
  check_dtype<float>(pools_only);
  check_dtype<double>(pools_only);
  check_dtype<half_bits>(pools_only);
  check_dtype<bfloat16_bits>(pools_only);
  std::printf("%d cases, %d failed\n", cases, failures);
  return failures ? 1 : 0;
}
