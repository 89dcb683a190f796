// Gradient clipping on the device against the host: per-tensor sums of squares
// (runtime/cuda/elementwise.h, f64) against kernels::sum_of_squares (1e-12 relative: both f64,
// summed in different orders), and the coefficient against model/optimizer.cc's formula.
#include "runtime/cuda/grad_clip.h"

#include <gtest/gtest.h>

#include <cmath>

#include "runtime/cuda/elementwise.h"
#include "runtime/kernels/adamw.h"
#include "tests/gpu/gpu_test_util.h"

namespace steerlm {
namespace {

using namespace gpu_testing;

TEST(CudaGradClipTest, NormAndCoefficientMatchTheHost) {
  SKIP_WITHOUT_GPU();
  const std::vector<int64_t> sizes = {1, 4097, 300001};
  std::vector<std::vector<float>> grads;
  std::vector<Tensor> device_grads;
  double total = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    grads.push_back(testing::random_floats(sizes[i], 80 + static_cast<uint32_t>(i)));
    device_grads.push_back(device_f32(grads.back()));
    total += kernels::sum_of_squares(grads.back().data(), sizes[i]);
  }
  const double norm = std::sqrt(total);

  // One slot per gradient, then the combination.
  const int64_t count = static_cast<int64_t>(sizes.size());
  Tensor slots = Tensor::empty({2 * count}, DType::kF32, kGpu);  // (count) f64
  Tensor partials = device_workspace(sizeof(double) * cuda::reduction_partials_count(sizes[2]));
  for (int64_t i = 0; i < count; ++i) {
    cuda::launch_reduce(cuda::Reduction::kSumSquares, device_grads[i].raw(), false, sizes[i],
                        device_ptr<double>(partials), device_ptr<double>(slots) + i, stream());
  }
  Tensor d_norm = Tensor::empty({2}, DType::kF32, kGpu);
  Tensor d_coefficient = Tensor::empty({1}, DType::kF32, kGpu);
  for (double max_norm : {0.0, 1.0, 1e9}) {
    cuda::launch_clip_coefficient(device_ptr<double>(slots), count, max_norm,
                                  device_ptr<double>(d_norm), device_ptr<float>(d_coefficient),
                                  stream());
    const double expected =
        max_norm <= 0 ? 1.0 : std::min(1.0, max_norm / (norm + 1e-6));  // AdamW::clip_coefficient
    EXPECT_NEAR(host_scalar<double>(d_norm), norm, 1e-12 * norm);
    EXPECT_NEAR(host_scalar<float>(d_coefficient), static_cast<float>(expected), 2e-7 * expected)
        << "max_norm " << max_norm;
  }

  // Scaling a gradient by the device coefficient (max_norm 1 clips these).
  cuda::launch_clip_coefficient(device_ptr<double>(slots), count, 1.0, device_ptr<double>(d_norm),
                                device_ptr<float>(d_coefficient), stream());
  const float coefficient = host_scalar<float>(d_coefficient);
  cuda::launch_scale_by(device_ptr<float>(device_grads[1]), sizes[1],
                        device_ptr<float>(d_coefficient), stream());
  std::vector<double> expected;
  for (float value : grads[1]) expected.push_back(static_cast<double>(value * coefficient));
  expect_close(host_values(device_grads[1], sizes[1]), expected, 0, 0, "clipped gradient");
}

}  // namespace
}  // namespace steerlm
