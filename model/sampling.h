// Choosing the next token from logits: greedy, or sampled with temperature, top-k and top-p.
//
// Sampling is reproducible: each sequence owns a TokenSampler seeded from (seed, sequence index),
// so a sequence's tokens depend only on its own logits, the seed and its index, never on which
// other sequences share its batch. The random stream is a counter-based hash (splitmix64) turned
// into doubles by hand, because std::uniform_real_distribution differs between standard
// libraries.
#pragma once

#include <cstdint>
#include <vector>

namespace steerlm {

struct SamplingOptions {
  float temperature = 0;  // 0 (or less): greedy argmax
  int top_k = 0;          // keep the k most likely tokens; 0: all
  float top_p = 1.0f;     // keep the smallest set whose probability reaches p; 1: all
};

class TokenSampler {
 public:
  TokenSampler(const SamplingOptions& options, uint64_t seed, uint64_t sequence_index);

  // The next token from logits (V). Greedy picks the lowest id among equal maxima.
  int32_t next(const float* logits, int64_t vocab_size);

  // The probabilities sampling draws from (V), after temperature, top-k and top-p; zeros outside
  // the kept set. Exposed for tests.
  std::vector<double> distribution(const float* logits, int64_t vocab_size) const;

 private:
  double uniform();  // in [0, 1)

  SamplingOptions options_;
  uint64_t state_;
};

}  // namespace steerlm
