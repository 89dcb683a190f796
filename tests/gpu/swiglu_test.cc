// CUDA SwiGLU against runtime/kernels/swiglu in float64 on the same bf16 inputs.
// Tolerance: the bf16 output rounding (2^-8 relative with margin) plus 1e-6 absolute.
#include "runtime/cuda/swiglu.h"

#include <gtest/gtest.h>

#include "runtime/kernels/swiglu.h"
#include "tests/gpu/gpu_test_util.h"

namespace steerlm {
namespace {

using namespace gpu_testing;

TEST(CudaSwigluTest, ForwardAndBackwardMatchFloat64) {
  SKIP_WITHOUT_GPU();
  for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{1 << 20} + 3}) {
    const std::vector<float> gate = random_bf16_values(n, 30, 6.0f);
    const std::vector<float> up = random_bf16_values(n, 31, 2.0f);
    const std::vector<float> dout = random_bf16_values(n, 32);
    std::vector<double> out(n), dgate(n), dup(n);
    kernels::swiglu_forward(to_doubles(gate).data(), to_doubles(up).data(), n, out.data());
    kernels::swiglu_backward(to_doubles(dout).data(), to_doubles(gate).data(),
                             to_doubles(up).data(), n, dgate.data(), dup.data());

    Tensor d_gate = device_bf16(gate), d_up = device_bf16(up), d_dout = device_bf16(dout);
    Tensor d_out = Tensor::empty({n}, DType::kBF16, kGpu);
    Tensor d_dgate = Tensor::empty({n}, DType::kBF16, kGpu);
    Tensor d_dup = Tensor::empty({n}, DType::kBF16, kGpu);
    cuda::launch_swiglu_forward(device_ptr<uint16_t>(d_gate), device_ptr<uint16_t>(d_up), n,
                                device_ptr<uint16_t>(d_out), stream());
    cuda::launch_swiglu_backward(device_ptr<uint16_t>(d_dout), device_ptr<uint16_t>(d_gate),
                                 device_ptr<uint16_t>(d_up), n, device_ptr<uint16_t>(d_dgate),
                                 device_ptr<uint16_t>(d_dup), stream());
    expect_close(host_values(d_out, n), out, kBf16Relative, 1e-6, "out");
    expect_close(host_values(d_dgate, n), dgate, kBf16Relative, 1e-6, "dgate");
    expect_close(host_values(d_dup, n), dup, kBf16Relative, 1e-6, "dup");
  }
}

}  // namespace
}  // namespace steerlm
