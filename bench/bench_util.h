// Helpers shared by the benchmarks: timing (on a shared machine the fastest of several runs is
// the least disturbed measurement) and the model config of a benchmark shape.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>

#include "configs/steerlm.pb.h"

namespace steerlm::bench {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Best of `reps` timings of fn() after one warm-up call (allocator, thread pools).
inline double best_seconds(int reps, const std::function<void()>& fn) {
  fn();
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, seconds_since(start));
  }
  return best;
}

// A Llama config of the given shape (the other fields at their defaults).
inline config::ModelConfig model_config(int dim, int layers, int heads, int kv_heads, int ffn,
                                        int vocab) {
  config::ModelConfig config;
  config.set_dim(dim);
  config.set_n_layers(layers);
  config.set_n_heads(heads);
  config.set_n_kv_heads(kv_heads);
  config.set_ffn_hidden(ffn);
  config.set_vocab_size(vocab);
  return config;
}

}  // namespace steerlm::bench
