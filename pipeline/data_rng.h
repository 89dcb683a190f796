// The data pipeline's PRNG and hash: splitmix64 and FNV-1a. Both give the same numbers on every
// platform and standard library (std distributions and std::hash do not), which shuffles,
// splits, the synthetic dataset and cache keys rely on.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace steerlm {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform enough in [0, n) for n far below 2^64.
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }

 private:
  uint64_t state_;
};

// Fisher-Yates with SplitMix64.
template <typename T>
void shuffle_in_place(std::vector<T>* values, uint64_t seed) {
  SplitMix64 rng(seed);
  for (int64_t i = static_cast<int64_t>(values->size()) - 1; i > 0; --i) {
    std::swap((*values)[i], (*values)[rng.below(i + 1)]);
  }
}

// FNV-1a, 64 bit; `hash` chains several pieces.
inline uint64_t fnv1a(std::string_view bytes, uint64_t hash = 0xCBF29CE484222325ull) {
  for (unsigned char c : bytes) hash = (hash ^ c) * 0x100000001B3ull;
  return hash;
}

// Mixes seeds into one (for per-epoch, per-part streams).
inline uint64_t mix_seed(uint64_t a, uint64_t b) {
  return SplitMix64(a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull)).next();
}

}  // namespace steerlm
