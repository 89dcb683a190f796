// CUDA embedding against runtime/kernels/embedding: the lookup is a copy (exact); the backward
// adds the same bf16 gradients in the same token order in f32 (exact against the f32 kernel).
#include "runtime/cuda/embedding.h"

#include <gtest/gtest.h>

#include <ostream>

#include "runtime/kernels/embedding.h"
#include "tests/gpu/gpu_test_util.h"

namespace steerlm {
namespace {

using namespace gpu_testing;

// Token ids with repeats (so the scatter-add accumulates), some outside [begin, begin + rows).
std::vector<int32_t> tokens_for(int64_t n, int64_t vocab, uint32_t seed) {
  std::vector<float> draws = testing::random_floats(n, seed);
  std::vector<int32_t> tokens(n);
  for (int64_t i = 0; i < n; ++i) {
    tokens[i] = static_cast<int32_t>((draws[i] + 1.0f) * 0.5f * static_cast<float>(vocab));
    tokens[i] = std::min<int32_t>(tokens[i], static_cast<int32_t>(vocab - 1));
    if (i % 5 == 0) tokens[i] = 3;  // a frequent token
  }
  return tokens;
}

struct EmbeddingCase {
  int64_t tokens, channels, vocab, shard_begin, shard_rows;
};
void PrintTo(const EmbeddingCase& c, std::ostream* out) {
  *out << "N" << c.tokens << "_C" << c.channels << "_V" << c.vocab << "_rows" << c.shard_begin
       << "+" << c.shard_rows;
}

class CudaEmbeddingTest : public ::testing::TestWithParam<EmbeddingCase> {};

TEST_P(CudaEmbeddingTest, ForwardAndBackwardMatchTheHostKernel) {
  SKIP_WITHOUT_GPU();
  const EmbeddingCase c = GetParam();
  const std::vector<int32_t> tokens = tokens_for(c.tokens, c.vocab, 1);
  const std::vector<float> table = random_bf16_values(c.shard_rows * c.channels, 2);
  const std::vector<float> dout = random_bf16_values(c.tokens * c.channels, 3);
  const std::vector<float> dtable_start = testing::random_floats(c.shard_rows * c.channels, 4);

  // Host reference on the shard's tokens only (TP: the others are another rank's).
  std::vector<int32_t> local_tokens;
  std::vector<float> local_dout;
  std::vector<float> expected_out(c.tokens * c.channels, 0.0f);
  for (int64_t i = 0; i < c.tokens; ++i) {
    const int64_t row = tokens[i] - c.shard_begin;
    if (row < 0 || row >= c.shard_rows) continue;
    const int32_t local = static_cast<int32_t>(row);
    kernels::embedding_forward(&local, 1, table.data(), c.channels,
                               expected_out.data() + i * c.channels);
    local_tokens.push_back(local);
    local_dout.insert(local_dout.end(), dout.begin() + i * c.channels,
                      dout.begin() + (i + 1) * c.channels);
  }
  std::vector<float> expected_dtable = dtable_start;
  kernels::embedding_backward(local_tokens.data(), static_cast<int64_t>(local_tokens.size()),
                              local_dout.data(), c.channels, expected_dtable.data());

  // Device.
  const cuda::EmbeddingShape shape{c.tokens, c.channels, c.shard_rows, c.shard_begin};
  Tensor d_tokens = device_i32(tokens), d_table = device_bf16(table), d_dout = device_bf16(dout);
  Tensor d_out = Tensor::empty({c.tokens * c.channels}, DType::kBF16, kGpu);
  Tensor d_dtable = device_f32(dtable_start);
  Tensor workspace = device_workspace(cuda::embedding_backward_workspace_bytes(c.tokens));
  cuda::launch_embedding_forward(shape, device_ptr<int32_t>(d_tokens),
                                 device_ptr<uint16_t>(d_table), device_ptr<uint16_t>(d_out),
                                 stream());
  cuda::launch_embedding_backward(shape, device_ptr<int32_t>(d_tokens),
                                  device_ptr<uint16_t>(d_dout), device_ptr<float>(d_dtable),
                                  workspace.raw(), stream());

  EXPECT_EQ(host_values(d_out, c.tokens * c.channels), expected_out);
  EXPECT_EQ(host_values(d_dtable, c.shard_rows * c.channels), expected_dtable);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaEmbeddingTest,
                         ::testing::Values(EmbeddingCase{1, 8, 16, 0, 16},
                                           EmbeddingCase{300, 96, 50, 0, 50},
                                           EmbeddingCase{4099, 257, 1000, 0, 1000},
                                           EmbeddingCase{500, 64, 100, 50, 50}));  // TP shard 2

}  // namespace
}  // namespace steerlm
