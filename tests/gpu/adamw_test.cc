// CUDA AdamW against runtime/kernels/adamw (f32 kernel, same inputs). The device repeats the
// host's f32 operations one rounding at a time, so results agree to 1 ulp (2.4e-7 relative,
// allowing for the host compiler's choices); the bf16 copy is the rounded master weight, exactly.
#include "runtime/cuda/adamw.h"

#include <gtest/gtest.h>

#include "runtime/kernels/adamw.h"
#include "tests/gpu/gpu_test_util.h"

namespace steerlm {
namespace {

using namespace gpu_testing;

TEST(CudaAdamWTest, StepsMatchTheHostKernel) {
  SKIP_WITHOUT_GPU();
  const int64_t n = 100003;
  std::vector<float> weight = testing::random_floats(n, 70);
  std::vector<float> exp_avg(n, 0.0f), exp_avg_sq(n, 0.0f);
  Tensor d_weight = device_f32(weight), d_exp_avg = device_f32(exp_avg);
  Tensor d_exp_avg_sq = device_f32(exp_avg_sq);
  Tensor d_weight_bf16 = Tensor::empty({n}, DType::kBF16, kGpu);
  Tensor d_clip = device_f32({0.5f});  // a clip coefficient computed on the device

  for (int64_t step = 1; step <= 3; ++step) {
    const std::vector<float> grad = testing::random_floats(n, 70 + static_cast<uint32_t>(step));
    kernels::AdamWHyper hyper;
    hyper.lr = 1e-3;
    hyper.weight_decay = 0.1;
    hyper.step = step;
    // Step 2 clips on the host in the reference and through the device scalar on the GPU.
    const bool clipped = step == 2;
    hyper.grad_scale = clipped ? 0.5 : 1.0;
    kernels::adamw_update(weight.data(), grad.data(), exp_avg.data(), exp_avg_sq.data(), n, hyper);

    kernels::AdamWHyper device_hyper = hyper;
    device_hyper.grad_scale = 1.0;
    Tensor d_grad = device_f32(grad);
    cuda::launch_adamw_update(device_ptr<float>(d_weight), device_ptr<float>(d_grad),
                              device_ptr<float>(d_exp_avg), device_ptr<float>(d_exp_avg_sq), n,
                              clipped ? device_hyper : hyper,
                              clipped ? device_ptr<float>(d_clip) : nullptr,
                              device_ptr<uint16_t>(d_weight_bf16), stream());
    const std::string label = "step " + std::to_string(step);
    expect_close(host_values(d_weight, n), to_doubles(weight), 2.4e-7, 1e-12, label + " weight");
    expect_close(host_values(d_exp_avg, n), to_doubles(exp_avg), 2.4e-7, 1e-12, label + " m");
    expect_close(host_values(d_exp_avg_sq, n), to_doubles(exp_avg_sq), 2.4e-7, 1e-20, label + " v");
  }
  const std::vector<float> master = host_values(d_weight, n);
  const std::vector<float> copy = host_values(d_weight_bf16, n);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(copy[i], bf16_to_float(float_to_bf16(master[i]))) << i;
  }
}

}  // namespace
}  // namespace steerlm
