// CUDA masked MSE against runtime/kernels/masked_mse (f32 kernel, same inputs): the same f32
// operations in the same order, so the gradient is compared to 1e-6 relative and the f64 sum to
// 1e-12 relative (only library exp/log-free arithmetic is involved); the count is exact.
#include "runtime/cuda/masked_mse.h"

#include <gtest/gtest.h>

#include "runtime/kernels/masked_mse.h"
#include "tests/gpu/gpu_test_util.h"

namespace steerlm {
namespace {

using namespace gpu_testing;

TEST(CudaMaskedMseTest, MatchesTheHostKernel) {
  SKIP_WITHOUT_GPU();
  const int64_t sequences = 29, attributes = 9;
  const std::vector<float> predictions = testing::random_floats(sequences * attributes, 60);
  std::vector<float> targets = testing::random_floats(sequences * attributes, 61);
  for (int64_t i = 0; i < sequences * attributes; ++i) {
    if (i % 3 == 0) targets[i] = kernels::kMissingAttribute;
  }
  for (int64_t a = 0; a < attributes; ++a) targets[4 * attributes + a] = kernels::kMissingAttribute;

  std::vector<float> grad(sequences * attributes);
  const kernels::MaskedMseSums expected =
      kernels::masked_mse(predictions.data(), targets.data(), sequences, attributes, grad.data());

  Tensor d_predictions = device_f32(predictions), d_targets = device_f32(targets);
  Tensor d_grad = Tensor::empty({sequences * attributes}, DType::kF32, kGpu);
  Tensor d_sums = Tensor::empty({4}, DType::kF32, kGpu);  // one MaskedMseDeviceSums
  Tensor workspace = device_workspace(cuda::masked_mse_workspace_bytes(sequences));
  cuda::launch_masked_mse(device_ptr<float>(d_predictions), device_ptr<float>(d_targets), sequences,
                          attributes, device_ptr<float>(d_grad),
                          static_cast<cuda::MaskedMseDeviceSums*>(d_sums.raw()), workspace.raw(),
                          stream());
  const auto sums = host_scalar<cuda::MaskedMseDeviceSums>(d_sums);
  EXPECT_EQ(sums.count, expected.count);
  EXPECT_EQ(sums.count, sequences - 1);
  EXPECT_NEAR(sums.sum, expected.sum, 1e-12 * expected.sum);
  expect_close(host_values(d_grad, sequences * attributes), to_doubles(grad), 1e-6, 0, "grad");
}

}  // namespace
}  // namespace steerlm
