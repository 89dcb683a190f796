// Finite-difference gradient checks in f64 of every layer kernel (runtime/kernels/): each
// kernel's output is reduced to a scalar with random weights r, so d(r . out)/d input from the
// backward must match central differences.
#include <gtest/gtest.h>

#include "runtime/kernels/attention.h"
#include "runtime/kernels/blas.h"
#include "runtime/kernels/cross_entropy.h"
#include "runtime/kernels/embedding.h"
#include "runtime/kernels/masked_mse.h"
#include "runtime/kernels/rmsnorm.h"
#include "runtime/kernels/rope.h"
#include "runtime/kernels/swiglu.h"
#include "tests/model/model_test_util.h"

namespace steerlm {
namespace {

using testing::all_indices;
using testing::dot;
using testing::expect_grad_matches;
using testing::random_values;

TEST(grad_kernels, Linear) {
  const int64_t rows = 5, in = 4, out = 3;
  std::vector<double> x = random_values(rows * in, 1), w = random_values(out * in, 2);
  const std::vector<double> r = random_values(rows * out, 3);
  auto loss = [&] {
    std::vector<double> y(rows * out);
    kernels::linear_forward(x.data(), w.data(), rows, in, out, y.data());
    return dot(r, y);
  };
  std::vector<double> dx(rows * in), dw(out * in, 0.0);
  kernels::linear_backward(r.data(), x.data(), w.data(), rows, in, out, dx.data(), dw.data(),
                           false);
  expect_grad_matches(x, loss, dx, all_indices(x.size()), "dx");
  expect_grad_matches(w, loss, dw, all_indices(w.size()), "dw");
}

TEST(grad_kernels, EmbeddingRepeatedTokens) {
  const int64_t vocab = 5, channels = 3;
  const std::vector<int32_t> tokens = {1, 4, 1, 0, 1};  // repeats accumulate
  std::vector<double> table = random_values(vocab * channels, 4);
  const std::vector<double> r = random_values(tokens.size() * channels, 5);
  auto loss = [&] {
    std::vector<double> out(tokens.size() * channels);
    kernels::embedding_forward(tokens.data(), tokens.size(), table.data(), channels, out.data());
    return dot(r, out);
  };
  std::vector<double> dtable(vocab * channels, 0.0);
  kernels::embedding_backward(tokens.data(), tokens.size(), r.data(), channels, dtable.data());
  expect_grad_matches(table, loss, dtable, all_indices(table.size()), "dtable");
  for (int64_t c = 0; c < channels; ++c) EXPECT_EQ(dtable[2 * channels + c], 0.0);
}

TEST(grad_kernels, RmsNorm) {
  const int64_t rows = 4, channels = 6;
  std::vector<double> x = random_values(rows * channels, 6), w = random_values(channels, 7);
  const std::vector<double> r = random_values(rows * channels, 8);
  auto loss = [&] {
    std::vector<double> out(rows * channels), rstd(rows);
    kernels::rmsnorm_forward(x.data(), w.data(), rows, channels, 1e-5, out.data(), rstd.data());
    return dot(r, out);
  };
  std::vector<double> out(rows * channels), rstd(rows), dx(rows * channels), dw(channels, 0.0);
  kernels::rmsnorm_forward(x.data(), w.data(), rows, channels, 1e-5, out.data(), rstd.data());
  kernels::rmsnorm_backward(r.data(), x.data(), w.data(), rstd.data(), rows, channels, dx.data(),
                            dw.data(), false);
  expect_grad_matches(x, loss, dx, all_indices(x.size()), "dx");
  expect_grad_matches(w, loss, dw, all_indices(w.size()), "dw");
}

TEST(grad_kernels, RopeAndRotateHalfLayout) {
  const int64_t rows = 3, heads = 2, head_size = 4;
  const std::vector<int32_t> positions = {0, 5, 17};
  std::vector<double> x = random_values(rows * heads * head_size, 9);
  const std::vector<double> r = random_values(x.size(), 10);
  auto loss = [&] {
    std::vector<double> y = x;
    kernels::rope_apply(y.data(), rows, heads, head_size, heads * head_size, positions.data(),
                        100.0, kernels::RopeDirection::kForward);
    return dot(r, y);
  };
  std::vector<double> dx = r;
  kernels::rope_apply(dx.data(), rows, heads, head_size, heads * head_size, positions.data(), 100.0,
                      kernels::RopeDirection::kBackward);
  expect_grad_matches(x, loss, dx, all_indices(x.size()), "dx");

  // Layout: element 1 pairs with element 3 (i + HS/2) at angle pos * theta^(-2/4).
  std::vector<double> unit(head_size, 0.0);
  unit[1] = 1.0;
  const int32_t position = 5;
  kernels::rope_apply(unit.data(), 1, 1, head_size, head_size, &position, 100.0,
                      kernels::RopeDirection::kForward);
  const double angle = 5.0 / 10.0;  // 100^(-1/2) = 0.1
  EXPECT_NEAR(unit[1], std::cos(angle), 1e-15);
  EXPECT_NEAR(unit[3], std::sin(angle), 1e-15);
  EXPECT_EQ(unit[0], 0.0);
  EXPECT_EQ(unit[2], 0.0);
}

TEST(grad_kernels, Swiglu) {
  const int64_t n = 7;
  std::vector<double> gate = random_values(n, 11, 2.0), up = random_values(n, 12);
  const std::vector<double> r = random_values(n, 13);
  auto loss = [&] {
    std::vector<double> out(n);
    kernels::swiglu_forward(gate.data(), up.data(), n, out.data());
    return dot(r, out);
  };
  std::vector<double> dgate(n), dup(n);
  kernels::swiglu_backward(r.data(), gate.data(), up.data(), n, dgate.data(), dup.data());
  expect_grad_matches(gate, loss, dgate, all_indices(n), "dgate");
  expect_grad_matches(up, loss, dup, all_indices(n), "dup");
}

// Row 0: one padded sequence (3 tokens + 2 padding); row 1: two packed sequences (2 + 3).
TEST(grad_kernels, AttentionPaddedAndPacked) {
  kernels::AttentionShape shape{2, 5, 4, 2, 3, 12, 6};
  const std::vector<int32_t> segments = {1, 1, 1, 0, 0, 1, 1, 2, 2, 2};
  const int64_t n = shape.batch * shape.seq_len;
  std::vector<double> q = random_values(n * 12, 14), k = random_values(n * 6, 15);
  std::vector<double> v = random_values(n * 6, 16);
  const std::vector<double> r = random_values(n * 12, 17);
  std::vector<double> probs(shape.batch * shape.heads * 25), out(n * 12);
  auto loss = [&] {
    kernels::attention_forward(shape, q.data(), k.data(), v.data(), segments.data(), probs.data(),
                               out.data());
    return dot(r, out);
  };
  loss();
  std::vector<double> dq(q.size()), dk(k.size()), dv(v.size());
  kernels::attention_backward(shape, r.data(), q.data(), k.data(), v.data(), probs.data(),
                              segments.data(), dq.data(), dk.data(), dv.data());
  expect_grad_matches(q, loss, dq, all_indices(q.size()), "dq");
  expect_grad_matches(k, loss, dk, all_indices(k.size()), "dk");
  expect_grad_matches(v, loss, dv, all_indices(v.size()), "dv");

  // Padding outputs are zero; the second packed sequence's first token sees only itself, so
  // its output for head h is exactly v at that token for head h's KV group.
  loss();
  for (int64_t c = 0; c < 12; ++c) EXPECT_EQ(out[3 * 12 + c], 0.0);
  for (int64_t h = 0; h < 4; ++h) {
    for (int64_t d = 0; d < 3; ++d) {
      EXPECT_NEAR(out[7 * 12 + h * 3 + d], v[7 * 6 + (h / 2) * 3 + d], 1e-15);
    }
  }
}

TEST(grad_kernels, CrossEntropyWithMask) {
  const int64_t rows = 4, vocab = 5;
  const std::vector<int32_t> targets = {2, 0, 4, 1};
  const std::vector<float> mask = {1, 0, 1, 1};
  std::vector<double> logits = random_values(rows * vocab, 18, 2.0);
  auto loss = [&] {
    std::vector<double> copy = logits;
    return kernels::cross_entropy_forward(copy.data(), targets.data(), mask.data(), rows, vocab);
  };
  // Reference: the masked sum of -log softmax[target], computed directly.
  double expected = 0;
  for (int64_t row = 0; row < rows; ++row) {
    if (mask[row] == 0) continue;
    double total = 0;
    for (int64_t i = 0; i < vocab; ++i) total += std::exp(logits[row * vocab + i]);
    expected += std::log(total) - logits[row * vocab + targets[row]];
  }
  EXPECT_NEAR(loss(), expected, 1e-12);

  std::vector<double> grad = logits;
  kernels::cross_entropy_forward(grad.data(), targets.data(), mask.data(), rows, vocab);
  kernels::cross_entropy_backward(grad.data(), targets.data(), mask.data(), rows, vocab, 1.0);
  expect_grad_matches(logits, loss, grad, all_indices(logits.size()), "dlogits");
  for (int64_t i = 0; i < vocab; ++i) EXPECT_EQ(grad[vocab + i], 0.0);  // masked row
}

TEST(grad_kernels, MaskedMseIgnoresMissing) {
  const int64_t sequences = 3, attributes = 3;
  const float m = kernels::kMissingAttribute;
  const std::vector<float> targets = {1, m, 3, m, m, m, 0, 2, 4};
  std::vector<double> predictions = {1.5, 9, 2, 7, 7, 7, 0.5, 2, 3};
  std::vector<double> grad(9);
  auto loss = [&] {
    std::vector<double> scratch(9);
    return kernels::masked_mse(predictions.data(), targets.data(), sequences, attributes,
                               scratch.data())
        .sum;
  };
  const kernels::MaskedMseSums sums =
      kernels::masked_mse(predictions.data(), targets.data(), sequences, attributes, grad.data());
  // Sequence 0: (0.25 + 1) / 2; sequence 1 has nothing; sequence 2: (0.25 + 0 + 1) / 3.
  EXPECT_EQ(sums.count, 2);
  EXPECT_NEAR(sums.sum, 1.25 / 2 + 1.25 / 3, 1e-15);
  expect_grad_matches(predictions, loss, grad, all_indices(9), "dpredictions");
  EXPECT_EQ(grad[1], 0.0);
  EXPECT_EQ(grad[4], 0.0);
}

}  // namespace
}  // namespace steerlm
