// The CPU thread pool (csrc/common/thread_pool.cc) under ThreadSanitizer: several threads run
// parallel_for at once (one gets the pool, the others run alone), while one resizes the pool
// and one reads its size, as Python threads may through the NumPy door. Each call must fill
// its own array exactly, and TSan fails the run on any data race. CI builds and runs it:
//   g++ -std=c++17 -O1 -g -fsanitize=thread -Icsrc scripts/thread_pool_check.cc
//       csrc/common/thread_pool.cc -o /tmp/thread_pool_check -lpthread && /tmp/thread_pool_check
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include "common/thread_pool.h"

int main() {
  using alexops::ThreadPool;
  ThreadPool& pool = ThreadPool::instance();
  constexpr int kCallers = 4, kCallsEach = 40;
  constexpr int64_t kUnits = 4096;
  std::atomic<int> callers_left{kCallers}, wrong{0};

  std::vector<std::thread> callers;
  for (int caller = 0; caller < kCallers; ++caller) {
    callers.emplace_back([&, caller] {
      std::vector<int64_t> out(kUnits);
      for (int call = 0; call < kCallsEach; ++call) {
        const int64_t tag = caller * 1000 + call;
        // Enough cycles a unit that the pool, not the calling thread alone, takes the call.
        pool.parallel_for(kUnits, 1000, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) out[size_t(i)] = tag * kUnits + i;
        });
        for (int64_t i = 0; i < kUnits; ++i) wrong += out[size_t(i)] != tag * kUnits + i;
      }
      --callers_left;
    });
  }
  std::thread resizer([&] {
    for (int n = 0; callers_left > 0; ++n) pool.set_num_threads(n % 3);  // the default, 1, 2
  });
  int bad_counts = 0;
  while (callers_left > 0) {
    const int n = pool.num_threads();
    bad_counts += n < 1 || n > ThreadPool::kMaxThreads;
  }
  for (auto& caller : callers) caller.join();
  resizer.join();
  pool.set_num_threads(0);
  std::printf("thread pool: %d callers x %d calls, resized throughout: %d wrong elements, %d bad counts\n", kCallers,
              kCallsEach, wrong.load(), bad_counts);
  return wrong == 0 && bad_counts == 0 ? 0 : 1;
}
