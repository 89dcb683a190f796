#include "model/sampling.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace steerlm {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

int32_t argmax(const float* logits, int64_t vocab_size) {
  int64_t best = 0;
  for (int64_t i = 1; i < vocab_size; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

}  // namespace

TokenSampler::TokenSampler(const SamplingOptions& options, uint64_t seed, uint64_t sequence_index)
    : options_(options) {
  // Mix the two so that neighbouring seeds and indices give unrelated streams.
  uint64_t mixer = seed;
  state_ = splitmix64(mixer) ^ (sequence_index * 0xd1b54a32d192ed03ULL);
}

double TokenSampler::uniform() {
  // The top 53 bits fill a double's mantissa exactly.
  return static_cast<double>(splitmix64(state_) >> 11) * 0x1.0p-53;
}

std::vector<double> TokenSampler::distribution(const float* logits, int64_t vocab_size) const {
  // Softmax at the temperature, in double, stabilised by the maximum.
  CHECK_GT(options_.temperature, 0.0f);
  std::vector<double> probabilities(vocab_size);
  float max_logit = *std::max_element(logits, logits + vocab_size);
  double total = 0;
  for (int64_t i = 0; i < vocab_size; ++i) {
    probabilities[i] =
        std::exp((static_cast<double>(logits[i]) - max_logit) / options_.temperature);
    total += probabilities[i];
  }
  for (double& p : probabilities) p /= total;

  // Tokens by decreasing probability (ties by id, so the order is deterministic).
  std::vector<int64_t> order(vocab_size);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return probabilities[a] > probabilities[b]; });

  // Keep the top k, then the smallest prefix whose mass reaches top_p (at least one token).
  int64_t keep = vocab_size;
  if (options_.top_k > 0) keep = std::min<int64_t>(keep, options_.top_k);
  if (options_.top_p < 1.0f) {
    double mass = 0;
    int64_t needed = 0;
    while (needed < keep) {
      mass += probabilities[order[needed++]];
      if (mass >= options_.top_p) break;
    }
    keep = std::max<int64_t>(needed, 1);
  }

  // Renormalise over the kept tokens.
  std::vector<double> kept(vocab_size, 0.0);
  double kept_mass = 0;
  for (int64_t rank = 0; rank < keep; ++rank) kept_mass += probabilities[order[rank]];
  for (int64_t rank = 0; rank < keep; ++rank)
    kept[order[rank]] = probabilities[order[rank]] / kept_mass;
  return kept;
}

int32_t TokenSampler::next(const float* logits, int64_t vocab_size) {
  if (options_.temperature <= 0) return argmax(logits, vocab_size);

  // Inverse-CDF draw over the kept distribution, in id order.
  std::vector<double> probabilities = distribution(logits, vocab_size);
  double draw = uniform();
  double cumulative = 0;
  int32_t last_kept = 0;
  for (int64_t i = 0; i < vocab_size; ++i) {
    if (probabilities[i] == 0) continue;
    cumulative += probabilities[i];
    last_kept = static_cast<int32_t>(i);
    if (draw < cumulative) return last_kept;
  }
  return last_kept;  // rounding left the draw just above the total
}

}  // namespace steerlm
