// CUDA rotary embedding against runtime/kernels/rope in float64 on the same bf16 inputs.
// Tolerance: one bf16 rounding of each output (2^-8 relative with margin) plus 1e-6 of the
// inputs' scale for the f32 products. The inverse undoes the forward within two roundings.
#include "runtime/cuda/rope.h"

#include <gtest/gtest.h>

#include <ostream>

#include "runtime/kernels/rope.h"
#include "tests/gpu/gpu_test_util.h"

namespace steerlm {
namespace {

using namespace gpu_testing;

struct RopeCase {
  int64_t rows, heads, head_size, row_stride;
};
void PrintTo(const RopeCase& c, std::ostream* out) {
  *out << "N" << c.rows << "_H" << c.heads << "_HS" << c.head_size << "_stride" << c.row_stride;
}

class CudaRopeTest : public ::testing::TestWithParam<RopeCase> {};

TEST_P(CudaRopeTest, BothDirectionsMatchFloat64) {
  SKIP_WITHOUT_GPU();
  const auto [rows, heads, head_size, row_stride] = GetParam();
  const int64_t n = rows * row_stride;
  const double theta = 10000.0;
  const std::vector<float> x = random_bf16_values(n, 20);
  std::vector<int32_t> positions(rows);
  for (int64_t i = 0; i < rows; ++i) positions[i] = static_cast<int32_t>((i * 977) % 8192);

  Tensor d_positions = device_i32(positions);
  for (auto direction : {kernels::RopeDirection::kForward, kernels::RopeDirection::kBackward}) {
    std::vector<double> expected = to_doubles(x);
    kernels::rope_apply(expected.data(), rows, heads, head_size, row_stride, positions.data(),
                        theta, direction);
    Tensor d_x = device_bf16(x);
    cuda::launch_rope(device_ptr<uint16_t>(d_x), rows, heads, head_size, row_stride,
                      device_ptr<int32_t>(d_positions), theta, direction, stream());
    expect_close(host_values(d_x, n), expected, kBf16Relative, 1e-6,
                 direction == kernels::RopeDirection::kForward ? "forward" : "inverse");
  }

  // Forward then inverse is the identity up to the two bf16 roundings.
  Tensor d_x = device_bf16(x);
  cuda::launch_rope(device_ptr<uint16_t>(d_x), rows, heads, head_size, row_stride,
                    device_ptr<int32_t>(d_positions), theta, kernels::RopeDirection::kForward,
                    stream());
  cuda::launch_rope(device_ptr<uint16_t>(d_x), rows, heads, head_size, row_stride,
                    device_ptr<int32_t>(d_positions), theta, kernels::RopeDirection::kBackward,
                    stream());
  expect_close(host_values(d_x, n), to_doubles(x), 0, 2 * kBf16Relative, "round trip");
}

// The last case rotates q and k inside a fused (q, k, v) row, leaving v alone.
INSTANTIATE_TEST_SUITE_P(Shapes, CudaRopeTest,
                         ::testing::Values(RopeCase{1, 1, 2, 2}, RopeCase{17, 3, 64, 192},
                                           RopeCase{300, 8, 128, 1024},
                                           RopeCase{33, 6, 32, 9 * 32}));

}  // namespace
}  // namespace steerlm
