// Shared helpers of the model tests: tiny configs, batches, and finite-difference checks.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "configs/steerlm.pb.h"
#include "model/llama.h"

namespace steerlm::testing {

// 2 layers, C=16, NH=4, KVH=2 (GQA), F=24, V=11: small enough for f64 finite differences.
inline config::ModelConfig tiny_config(bool tie_embeddings = false) {
  config::ModelConfig config;
  config.set_name("tiny-test");
  config.set_dim(16);
  config.set_n_layers(2);
  config.set_n_heads(4);
  config.set_n_kv_heads(2);
  config.set_ffn_hidden(24);
  config.set_vocab_size(11);
  config.set_rope_theta(10000.0f);
  config.set_norm_eps(1e-5f);
  config.set_tie_embeddings(tie_embeddings);
  return config;
}

inline std::vector<double> random_values(int64_t n, uint32_t seed, double scale = 1.0) {
  std::mt19937 generator(seed);
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<double> values(n);
  for (double& value : values) value = normal(generator);
  return values;
}

// Central differences of loss() w.r.t. x[i] for each i in `indices`, compared with analytic[i]
// to `tolerance` relative (absolute below 1).
inline void expect_grad_matches(std::vector<double>& x, const std::function<double()>& loss,
                                const std::vector<double>& analytic,
                                const std::vector<int64_t>& indices, const std::string& what,
                                double tolerance = 1e-6, double step = 1e-5) {
  for (int64_t i : indices) {
    const double saved = x[i];
    x[i] = saved + step;
    const double plus = loss();
    x[i] = saved - step;
    const double minus = loss();
    x[i] = saved;
    const double numeric = (plus - minus) / (2 * step);
    const double scale = std::max(1.0, std::max(std::abs(numeric), std::abs(analytic[i])));
    EXPECT_NEAR(analytic[i], numeric, tolerance * scale) << what << " element " << i;
  }
}

inline std::vector<int64_t> all_indices(int64_t n) {
  std::vector<int64_t> indices(n);
  for (int64_t i = 0; i < n; ++i) indices[i] = i;
  return indices;
}

// Up to `count` distinct indices spread over [0, n), including the ends.
inline std::vector<int64_t> sample_indices(int64_t n, int64_t count, uint32_t seed) {
  if (n <= count) return all_indices(n);
  std::mt19937 generator(seed);
  std::uniform_int_distribution<int64_t> pick(1, n - 2);
  std::vector<int64_t> indices = {0, n - 1};
  while (static_cast<int64_t>(indices.size()) < count) indices.push_back(pick(generator));
  return indices;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

}  // namespace steerlm::testing
