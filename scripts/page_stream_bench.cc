// How fast one core streams a large tensor in, by how its pages lie and how it prefetches:
// the measurement behind the float32 prefetch distances in csrc/common/lrn_rows_cpu.h
// (kFloatL1PrefetchBytes, kFloatL2PrefetchBytes). It sums three 48 MiB buffers in turn, a
// 64-byte line at a time (AVX-512 loads and adds), and prints the median and best GB/s of 30
// passes. Pages:
//   huge  madvise(MADV_HUGEPAGE), as NumPy does for its large arrays (transparent huge pages
//         in "madvise" mode, as on these machines);
//   4k    plain 4 KiB pages, as TensorFlow's CPU allocator leaves its tensors.
// Prefetch: none; l1 D (prefetcht0 D bytes ahead, each line); l1+l2 D1 D2 (prefetcht0 D1
// and prefetcht2 D2 ahead, each line). Build and run (x86-64 with AVX-512):
//   g++ -O2 -mavx512f -std=c++17 scripts/page_stream_bench.cc -o /tmp/page_stream_bench
//   /tmp/page_stream_bench 4k l1 4096; /tmp/page_stream_bench 4k l1+l2 1024 8192
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

constexpr size_t kBytes = size_t(48) << 20;
constexpr size_t kPage = 4096;

char* map_bytes(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("mmap");
    std::exit(1);
  }
  return static_cast<char*>(p);
}

// A buffer of kBytes whose pages lie as `pages` says, filled with ones.
char* make_buffer(const char* pages) {
  char* buffer = map_bytes(kBytes);
  if (!std::strcmp(pages, "huge")) madvise(buffer, kBytes, MADV_HUGEPAGE);
  for (size_t i = 0; i < kBytes; i += sizeof(float)) *reinterpret_cast<float*>(buffer + i) = 1.0f;
  return buffer;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || (std::strcmp(argv[2], "none") && argc < 4) || (!std::strcmp(argv[2], "l1+l2") && argc < 5)) {
    std::fprintf(stderr, "usage: %s huge|4k none|l1 D|l1+l2 D1 D2\n", argv[0]);
    return 2;
  }
  const bool l1 = std::strcmp(argv[2], "none") != 0, l2 = !std::strcmp(argv[2], "l1+l2");
  const size_t d1 = l1 ? size_t(std::atol(argv[3])) : 0, d2 = l2 ? size_t(std::atol(argv[4])) : 0;
  char* buffers[3];
  for (auto& b : buffers) b = make_buffer(argv[1]);
  std::vector<double> seconds;
  __m512 sum = _mm512_setzero_ps();
  for (int pass = 0; pass < 30; ++pass) {
    const char* b = buffers[pass % 3];
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < kBytes; i += 64) {
      if (l1) _mm_prefetch(b + i + d1, _MM_HINT_T0);  // (past the end: a prefetch never faults)
      if (l2) _mm_prefetch(b + i + d2, _MM_HINT_T2);
      sum = _mm512_add_ps(sum, _mm512_load_ps(reinterpret_cast<const float*>(b + i)));
    }
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  float lanes[16];
  _mm512_storeu_ps(lanes, sum);
  std::printf("%s pages, prefetch %s %s %s: median %.1f GB/s, best %.1f GB/s (sum %g)\n", argv[1], argv[2],
              l1 ? argv[3] : "", l2 ? argv[4] : "", kBytes / seconds[15] / 1e9, kBytes / seconds[0] / 1e9,
              double(lanes[0]));
  return 0;
}
