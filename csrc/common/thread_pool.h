// A persistent pool of threads for the doors that have none of their own (the pybind11
// module; TensorFlow brings its own). Sized to the CPUs this process may run on
// (sched_getaffinity), or ALEXOPS_NUM_THREADS, or set_num_threads().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "common/parallel.h"

namespace alexops {

class ThreadPool {
 public:
  // The most threads a pool takes, from set_num_threads or ALEXOPS_NUM_THREADS: far past any
  // machine's CPUs, short of a count whose start would exhaust the process's memory or threads.
  static constexpr int kMaxThreads = 1 << 16;

  // The process's pool, created on first use (again in a forked child, whose copy has no threads).
  static ThreadPool& instance();

  // Threads that work on one parallel_for, the calling thread included.
  int num_threads() const;
  // Resizes the pool; n < 1 means the default, n > kMaxThreads is taken as kMaxThreads (the
  // Python door refuses it). Returns the count in effect, which is lower when the system
  // refused to start some of the threads.
  int set_num_threads(int n);

  // A ParallelFor over this pool. The calling thread takes part. A call made while the pool
  // is busy with another one (a second Python thread, say) runs on its own thread alone.
  // An exception thrown by fn is caught on the thread that ran it and rethrown here, once
  // every range has finished.
  void parallel_for(int64_t n_units, int64_t cost_per_unit, const RangeFn& fn);

  ~ThreadPool();

 private:
  explicit ThreadPool(int n_threads);
  void start_workers(int n_workers);
  void stop_workers();
  void worker_loop();
  void run_ranges();

  std::mutex run_mutex_;  // held for the span of one parallel_for

  // The job in flight, guarded by mutex_.
  std::mutex mutex_;
  std::condition_variable work_ready_, work_done_;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  int busy_workers_ = 0;
  const RangeFn* fn_ = nullptr;
  int64_t n_units_ = 0, chunk_ = 1, next_unit_ = 0;
  std::exception_ptr error_;

  std::vector<std::thread> workers_;
  // workers_.size() + 1, for num_threads(), which a thread may call while another resizes the
  // pool (reading workers_ then would race with its clear and emplace_back).
  std::atomic<int> num_threads_{1};
};

}  // namespace alexops
