#include "common/thread_pool.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <system_error>
#include <utility>

#include "common/environment.h"

namespace alexops {
namespace {

// Below this many cycles of work a parallel_for runs on the calling thread: waking the
// workers costs tens of microseconds.
constexpr int64_t kMinParallelCycles = 200000;
// Ranges per thread: a few, so a thread slowed by the machine's other work is not the tail.
constexpr int64_t kRangesPerThread = 4;

int default_thread_count() {
  // (A count the system cannot start is fine: start_workers stops where it refuses.)
  const long long from_environment = positive_count_from_environment("ALEXOPS_NUM_THREADS", ThreadPool::kMaxThreads);
  if (from_environment > 0) return int(from_environment);
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof cpus, &cpus) == 0) return std::max(1, CPU_COUNT(&cpus));
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

ThreadPool& ThreadPool::instance() {
  // A forked child inherits the pool object but none of its threads: it gets a new pool (the
  // old one is left as it is; its mutexes may have been held at the fork).
  static pid_t owner = 0;
  static ThreadPool* pool = nullptr;
  static std::mutex creation;
  std::lock_guard<std::mutex> lock(creation);
  if (pool == nullptr || owner != getpid()) {
    pool = new ThreadPool(default_thread_count());
    owner = getpid();
  }
  return *pool;
}

ThreadPool::ThreadPool(int n_threads) { start_workers(n_threads - 1); }

ThreadPool::~ThreadPool() { stop_workers(); }

int ThreadPool::num_threads() const { return num_threads_.load(); }

int ThreadPool::set_num_threads(int n) {
  std::lock_guard<std::mutex> run(run_mutex_);
  stop_workers();
  start_workers((n < 1 ? default_thread_count() : std::min(n, kMaxThreads)) - 1);
  return num_threads();
}

void ThreadPool::start_workers(int n_workers) {
  stopping_ = false;
  for (int i = 0; i < n_workers; ++i) {
    try {
      workers_.emplace_back([this] { worker_loop(); });
    } catch (const std::system_error&) {
      break;  // the system would not start another thread: work with those we have
    }
  }
  num_threads_.store(int(workers_.size()) + 1);
}

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (auto& worker : workers_) worker.join();
  workers_.clear();
}

// Takes ranges of the current job until none is left. Called with mutex_ held; runs fn
// without it.
void ThreadPool::run_ranges() {
  while (next_unit_ < n_units_) {
    const int64_t begin = next_unit_;
    const int64_t end = std::min(n_units_, begin + chunk_);
    next_unit_ = end;
    mutex_.unlock();
    std::exception_ptr error;
    try {
      (*fn_)(begin, end);
    } catch (...) {
      error = std::current_exception();
    }
    mutex_.lock();
    if (error && !error_) error_ = error;
  }
}

void ThreadPool::worker_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  uint64_t seen = generation_;
  for (;;) {
    work_ready_.wait(lock, [&] { return stopping_ || generation_ != seen; });
    if (stopping_) return;
    seen = generation_;
    ++busy_workers_;
    run_ranges();
    if (--busy_workers_ == 0) work_done_.notify_one();
  }
}

void ThreadPool::parallel_for(int64_t n_units, int64_t cost_per_unit, const RangeFn& fn) {
  if (n_units <= 0) return;
  std::unique_lock<std::mutex> run(run_mutex_, std::try_to_lock);
  if (!run.owns_lock() || workers_.empty() || n_units == 1 || n_units * cost_per_unit < kMinParallelCycles)
    return serial_for(n_units, cost_per_unit, fn);
  std::unique_lock<std::mutex> lock(mutex_);
  fn_ = &fn;
  n_units_ = n_units;
  next_unit_ = 0;
  chunk_ = std::max<int64_t>(1, n_units / (num_threads() * kRangesPerThread));
  error_ = nullptr;
  ++generation_;
  work_ready_.notify_all();
  run_ranges();
  work_done_.wait(lock, [&] { return busy_workers_ == 0; });
  fn_ = nullptr;
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

}  // namespace alexops
