// CUDA cross-entropy against runtime/kernels/cross_entropy in float64 on the same logits, for f32
// and bf16 logits, single-rank and split over two vocab-parallel shards (the all-reduces between
// the steps done on the host, as model/llama_tp.cc does over TP).
// Tolerances: the loss sums f32 exponentials (1e-5 relative); probabilities and gradients are one
// rounding of f32 values (bf16: 2^-8 relative; f32: 1e-5 relative), plus 1e-7 absolute.
#include "runtime/cuda/cross_entropy.h"

#include <gtest/gtest.h>

#include <utility>

#include "runtime/kernels/cross_entropy.h"
#include "tests/gpu/gpu_test_util.h"

namespace steerlm {
namespace {

using namespace gpu_testing;

constexpr int64_t kRows = 37;
constexpr int64_t kVocab = 1000;
constexpr float kScale = 0.25f;

struct Problem {
  std::vector<float> logits;     // (N, V), bf16-representable
  std::vector<int32_t> targets;  // (N)
  std::vector<float> mask;       // (N): 0, 1 and a fractional weight
};

Problem make_problem() {
  Problem problem{random_bf16_values(kRows * kVocab, 50, 8.0f), {}, {}};
  for (int64_t i = 0; i < kRows; ++i) {
    problem.targets.push_back(static_cast<int32_t>((i * 389 + 7) % kVocab));
    problem.mask.push_back(i % 4 == 1 ? 0.0f : (i % 4 == 2 ? 0.5f : 1.0f));
  }
  return problem;
}

// Rows with mask != 0 of (N, V) values, the ones both backends define after the forward.
std::vector<double> trained_rows(const std::vector<double>& values, const Problem& problem) {
  std::vector<double> kept;
  for (int64_t i = 0; i < kRows; ++i) {
    if (problem.mask[i] == 0.0f) continue;
    kept.insert(kept.end(), values.begin() + i * kVocab, values.begin() + (i + 1) * kVocab);
  }
  return kept;
}
std::vector<float> trained_rows(const std::vector<float>& values, const Problem& problem) {
  std::vector<double> kept = trained_rows(to_doubles(values), problem);
  return std::vector<float>(kept.begin(), kept.end());
}

// The host kernel in float64: probabilities (N, V) and the loss sum.
std::pair<std::vector<double>, double> host_forward(const Problem& problem) {
  std::vector<double> probs = to_doubles(problem.logits);
  const double loss = kernels::cross_entropy_forward(probs.data(), problem.targets.data(),
                                                     problem.mask.data(), kRows, kVocab);
  return {probs, loss};
}

template <typename T>
Tensor device_logits(const std::vector<float>& values) {
  if constexpr (std::is_same_v<T, float>) return device_f32(values);
  return device_bf16(values);
}

template <typename T>
class CudaCrossEntropyTest : public ::testing::Test {};
using LogitTypes = ::testing::Types<float, uint16_t>;
TYPED_TEST_SUITE(CudaCrossEntropyTest, LogitTypes);

template <typename T>
double value_relative() {
  return std::is_same_v<T, float> ? 1e-5 : kBf16Relative;
}

TYPED_TEST(CudaCrossEntropyTest, SingleRankMatchesFloat64) {
  SKIP_WITHOUT_GPU();
  using T = TypeParam;
  const Problem problem = make_problem();
  const auto [probs, loss] = host_forward(problem);

  Tensor d_logits = device_logits<T>(problem.logits);
  Tensor d_targets = device_i32(problem.targets), d_mask = device_f32(problem.mask);
  Tensor d_loss = Tensor::empty({2}, DType::kF32, kGpu);  // one f64
  Tensor workspace = device_workspace(cuda::cross_entropy_forward_workspace_bytes(kRows));
  cuda::launch_cross_entropy_forward(device_ptr<T>(d_logits), device_ptr<int32_t>(d_targets),
                                     device_ptr<float>(d_mask), kRows, kVocab, workspace.raw(),
                                     device_ptr<double>(d_loss), stream());
  EXPECT_NEAR(host_scalar<double>(d_loss), loss, 1e-5 * loss);
  const std::vector<float> device_probs = host_values(d_logits, kRows * kVocab);
  expect_close(trained_rows(device_probs, problem), trained_rows(probs, problem),
               value_relative<T>(), 1e-7, "probabilities");
  // Untrained rows are left as logits, as on the host.
  EXPECT_EQ(
      std::vector<float>(device_probs.begin() + kVocab, device_probs.begin() + 2 * kVocab),
      std::vector<float>(problem.logits.begin() + kVocab, problem.logits.begin() + 2 * kVocab));

  // Backward from the device's own probabilities.
  std::vector<double> dlogits = to_doubles(device_probs);
  kernels::cross_entropy_backward(dlogits.data(), problem.targets.data(), problem.mask.data(),
                                  kRows, kVocab, static_cast<double>(kScale));
  cuda::launch_cross_entropy_backward(device_ptr<T>(d_logits), device_ptr<int32_t>(d_targets),
                                      device_ptr<float>(d_mask), {kRows, kVocab, 0}, kScale,
                                      stream());
  expect_close(host_values(d_logits, kRows * kVocab), dlogits, value_relative<T>(), 1e-7,
               "d logits");
}

TYPED_TEST(CudaCrossEntropyTest, VocabParallelShardsMatchOneRank) {
  SKIP_WITHOUT_GPU();
  using T = TypeParam;
  const Problem problem = make_problem();
  const auto [probs, loss] = host_forward(problem);

  // Two shards of the vocabulary, as TP = 2 ranks would hold them.
  constexpr int kShards = 2;
  constexpr int64_t kWidth = kVocab / kShards;
  std::vector<Tensor> shards;
  for (int shard = 0; shard < kShards; ++shard) {
    std::vector<float> columns;
    for (int64_t i = 0; i < kRows; ++i) {
      const auto row = problem.logits.begin() + i * kVocab + shard * kWidth;
      columns.insert(columns.end(), row, row + kWidth);
    }
    shards.push_back(device_logits<T>(columns));
  }
  Tensor d_targets = device_i32(problem.targets), d_mask = device_f32(problem.mask);
  auto shape_of = [](int shard) { return cuda::CrossEntropyShape{kRows, kWidth, shard * kWidth}; };

  // Step 1 and the max all-reduce.
  std::vector<float> row_max(kRows, -INFINITY);
  Tensor d_row_max = Tensor::empty({kRows}, DType::kF32, kGpu);
  for (int shard = 0; shard < kShards; ++shard) {
    cuda::launch_cross_entropy_row_max(device_ptr<T>(shards[shard]), shape_of(shard),
                                       device_ptr<float>(d_row_max), stream());
    const std::vector<float> local = host_values(d_row_max, kRows);
    for (int64_t i = 0; i < kRows; ++i) row_max[i] = std::max(row_max[i], local[i]);
  }
  d_row_max = device_f32(row_max);

  // Step 2 and the sum all-reduce.
  std::vector<float> sums(2 * kRows, 0.0f);
  Tensor d_sums = Tensor::empty({2 * kRows}, DType::kF32, kGpu);
  for (int shard = 0; shard < kShards; ++shard) {
    cuda::launch_cross_entropy_sums(device_ptr<T>(shards[shard]), device_ptr<int32_t>(d_targets),
                                    shape_of(shard), device_ptr<float>(d_row_max),
                                    device_ptr<float>(d_sums), stream());
    const std::vector<float> local = host_values(d_sums, 2 * kRows);
    for (int64_t i = 0; i < 2 * kRows; ++i) sums[i] += local[i];
  }
  d_sums = device_f32(sums);

  // Step 3 on each shard: the same loss everywhere; probabilities by columns.
  Tensor d_loss = Tensor::empty({2}, DType::kF32, kGpu);
  Tensor workspace = device_workspace(cuda::cross_entropy_softmax_loss_workspace_bytes(kRows));
  std::vector<std::vector<float>> shard_probs;
  for (int shard = 0; shard < kShards; ++shard) {
    cuda::launch_cross_entropy_softmax_loss(
        device_ptr<T>(shards[shard]), device_ptr<float>(d_mask), shape_of(shard),
        device_ptr<float>(d_row_max), device_ptr<float>(d_sums), cuda::UntrainedRows::kNormalise,
        workspace.raw(), device_ptr<double>(d_loss), stream());
    EXPECT_NEAR(host_scalar<double>(d_loss), loss, 1e-5 * loss) << "shard " << shard;
    shard_probs.push_back(host_values(shards[shard], kRows * kWidth));
  }
  std::vector<float> joined(kRows * kVocab);
  for (int shard = 0; shard < kShards; ++shard) {
    for (int64_t i = 0; i < kRows; ++i) {
      std::copy_n(shard_probs[shard].begin() + i * kWidth, kWidth,
                  joined.begin() + i * kVocab + shard * kWidth);
    }
  }
  expect_close(trained_rows(joined, problem), trained_rows(probs, problem), value_relative<T>(),
               1e-7, "probabilities");

  // Step 4: each shard's gradient columns equal the one-rank gradient's.
  std::vector<double> dlogits = to_doubles(joined);
  kernels::cross_entropy_backward(dlogits.data(), problem.targets.data(), problem.mask.data(),
                                  kRows, kVocab, static_cast<double>(kScale));
  for (int shard = 0; shard < kShards; ++shard) {
    cuda::launch_cross_entropy_backward(device_ptr<T>(shards[shard]),
                                        device_ptr<int32_t>(d_targets), device_ptr<float>(d_mask),
                                        shape_of(shard), kScale, stream());
    const std::vector<float> local = host_values(shards[shard], kRows * kWidth);
    std::vector<double> expected;
    for (int64_t i = 0; i < kRows; ++i) {
      const auto row = dlogits.begin() + i * kVocab + shard * kWidth;
      expected.insert(expected.end(), row, row + kWidth);
    }
    expect_close(local, expected, value_relative<T>(), 1e-7, "d logits");
  }
}

}  // namespace
}  // namespace steerlm
