// Counts read from the environment (ALEXOPS_NUM_THREADS, ALEXOPS_CUDA_POOL_BAND_ROWS): a value
// that is not a whole positive number up to `most` is ignored, with a line on stderr saying
// so, rather than half-read ("4x" as 4) or silently dropped.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace alexops {

// The count in environment variable `name`, or 0 where it is unset, empty or not a count.
inline long long positive_count_from_environment(const char* name, long long most) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return 0;
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  if (*end != '\0' || value < 1 || value > most) {
    std::fprintf(stderr, "alexops: %s=%s is not a whole number from 1 to %lld; ignored\n", name, text, most);
    return 0;
  }
  return value;
}

}  // namespace alexops
