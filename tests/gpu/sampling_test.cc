// Device argmax against the host's greedy rule (lowest id among equal maxima, as TokenSampler in
// model/sampling.cc), f32 and bf16 logits, exactly; and the host copy used for sampling.
#include "runtime/cuda/sampling.h"

#include <gtest/gtest.h>

#include "tests/gpu/gpu_test_util.h"

namespace steerlm {
namespace {

using namespace gpu_testing;

int32_t host_argmax(const float* logits, int64_t vocab) {
  int64_t best = 0;
  for (int64_t i = 1; i < vocab; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

TEST(CudaSamplingTest, ArgmaxPicksTheLowestIdAmongMaxima) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 9, vocab = 32003;
  std::vector<float> logits = random_bf16_values(rows * vocab, 90, 4.0f);
  // Ties: row 1 has its maximum twice, row 2 everywhere, row 3 at the last id.
  logits[1 * vocab + 7] = logits[1 * vocab + 30000] = 9.0f;
  std::fill(logits.begin() + 2 * vocab, logits.begin() + 3 * vocab, -1.5f);
  logits[3 * vocab + vocab - 1] = 100.0f;
  std::vector<int32_t> expected;
  for (int64_t i = 0; i < rows; ++i) expected.push_back(host_argmax(&logits[i * vocab], vocab));

  Tensor tokens = Tensor::empty({rows}, DType::kI32, kGpu);
  Tensor d_f32 = device_f32(logits), d_bf16 = device_bf16(logits);
  cuda::launch_argmax(device_ptr<float>(d_f32), rows, vocab, device_ptr<int32_t>(tokens), stream());
  std::vector<float> got = host_values(tokens, rows);
  EXPECT_EQ(std::vector<int32_t>(got.begin(), got.end()), expected) << "f32";
  cuda::launch_argmax(device_ptr<uint16_t>(d_bf16), rows, vocab, device_ptr<int32_t>(tokens),
                      stream());
  got = host_values(tokens, rows);
  EXPECT_EQ(std::vector<int32_t>(got.begin(), got.end()), expected) << "bf16";
  EXPECT_EQ(expected[1], 7);
  EXPECT_EQ(expected[2], 0);

  // The rows come back exactly for host sampling.
  std::vector<float> host(rows * vocab);
  cuda::copy_logits_to_host(device_ptr<uint16_t>(d_bf16), rows, vocab, host.data(), stream());
  EXPECT_EQ(host, logits);
  cuda::copy_logits_to_host(device_ptr<float>(d_f32), rows, vocab, host.data(), stream());
  EXPECT_EQ(host, logits);
}

}  // namespace
}  // namespace steerlm
