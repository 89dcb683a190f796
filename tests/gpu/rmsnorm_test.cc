// CUDA RMSNorm against runtime/kernels/rmsnorm in float64 on the same bf16 inputs.
// Tolerances: out and dx are bf16 (two roundings, 2^-8 relative) plus, for dx, 2^-8 of the row's
// largest term (its two terms cancel); rstd is an f32 sum of squares (2e-5 relative); dweight
// sums up to 257 f32 products of either sign (1e-4 relative plus 1e-4 of the largest element).
#include "runtime/cuda/rmsnorm.h"

#include <gtest/gtest.h>

#include <ostream>

#include "runtime/kernels/rmsnorm.h"
#include "tests/gpu/gpu_test_util.h"

namespace steerlm {
namespace {

using namespace gpu_testing;

struct RmsNormCase {
  int64_t rows, channels;
};
void PrintTo(const RmsNormCase& c, std::ostream* out) {
  *out << "N" << c.rows << "_C" << c.channels;
}

class CudaRmsNormTest : public ::testing::TestWithParam<RmsNormCase> {};

TEST_P(CudaRmsNormTest, ForwardAndBackwardMatchFloat64) {
  SKIP_WITHOUT_GPU();
  const auto [rows, channels] = GetParam();
  const int64_t n = rows * channels;
  const double eps = 1e-5;
  const std::vector<float> x = random_bf16_values(n, 10, 2.0f);
  const std::vector<float> weight = random_bf16_values(channels, 11);
  const std::vector<float> dout = random_bf16_values(n, 12);
  const std::vector<float> dx_start = random_bf16_values(n, 13);
  const std::vector<float> dweight_start = testing::random_floats(channels, 14);

  // Host float64: forward, then the backward accumulating into dx_start.
  std::vector<double> out(n), rstd(rows), dx = to_doubles(dx_start);
  std::vector<double> dweight = to_doubles(dweight_start);
  const std::vector<double> x64 = to_doubles(x), w64 = to_doubles(weight);
  kernels::rmsnorm_forward(x64.data(), w64.data(), rows, channels, eps, out.data(), rstd.data());
  kernels::rmsnorm_backward(to_doubles(dout).data(), x64.data(), w64.data(), rstd.data(), rows,
                            channels, dx.data(), dweight.data(), true);

  // Device.
  Tensor d_x = device_bf16(x), d_w = device_bf16(weight), d_dout = device_bf16(dout);
  Tensor d_out = Tensor::empty({n}, DType::kBF16, kGpu);
  Tensor d_rstd = Tensor::empty({rows}, DType::kF32, kGpu);
  Tensor d_dx = device_bf16(dx_start), d_dweight = device_f32(dweight_start);
  Tensor workspace = device_workspace(cuda::rmsnorm_backward_workspace_bytes(rows, channels));
  cuda::launch_rmsnorm_forward(device_ptr<uint16_t>(d_x), device_ptr<uint16_t>(d_w), rows, channels,
                               eps, device_ptr<uint16_t>(d_out), device_ptr<float>(d_rstd),
                               stream());
  cuda::launch_rmsnorm_backward(device_ptr<uint16_t>(d_dout), device_ptr<uint16_t>(d_x),
                                device_ptr<uint16_t>(d_w), device_ptr<float>(d_rstd), rows,
                                channels, device_ptr<uint16_t>(d_dx), device_ptr<float>(d_dweight),
                                cuda::GradientWrite::kAccumulate, workspace.raw(), stream());

  expect_close(host_values(d_out, n), out, kBf16Relative, 1e-6, "out");
  expect_close(host_values(d_rstd, rows), rstd, 2e-5, 0, "rstd");
  expect_close(host_values(d_dx, n), dx, kBf16Relative, kBf16Relative * max_abs(dx), "dx");
  expect_close(host_values(d_dweight, channels), dweight, 1e-4, 1e-4 * max_abs(dweight), "dweight");

  // Overwriting dx drops the starting values.
  cuda::launch_rmsnorm_backward(device_ptr<uint16_t>(d_dout), device_ptr<uint16_t>(d_x),
                                device_ptr<uint16_t>(d_w), device_ptr<float>(d_rstd), rows,
                                channels, device_ptr<uint16_t>(d_dx), device_ptr<float>(d_dweight),
                                cuda::GradientWrite::kOverwrite, workspace.raw(), stream());
  std::vector<double> dx_only(n, 0.0), unused(channels, 0.0);
  kernels::rmsnorm_backward(to_doubles(dout).data(), x64.data(), w64.data(), rstd.data(), rows,
                            channels, dx_only.data(), unused.data(), false);
  expect_close(host_values(d_dx, n), dx_only, kBf16Relative, kBf16Relative * max_abs(dx_only),
               "dx overwritten");
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaRmsNormTest,
                         ::testing::Values(RmsNormCase{1, 1}, RmsNormCase{3, 33},
                                           RmsNormCase{130, 256}, RmsNormCase{257, 2049}));

}  // namespace
}  // namespace steerlm
