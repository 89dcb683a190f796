// CUDA AdamW; runtime/kernels/adamw.cc is the reference. The _rn intrinsics keep every multiply
// and add a separate rounding, as the host's x86-64 build computes them.
#include <cmath>

#include "runtime/cuda/adamw.h"
#include "runtime/cuda/kernel_util.cuh"

namespace steerlm::cuda {
namespace {

struct AdamWConstants {  // the host kernel's f32 constants, computed the same way
  float lr, beta1, beta2, eps, decay, scale, bias1, bias2_sqrt;
};

__global__ void adamw_kernel(float* weight, const float* grad, float* exp_avg, float* exp_avg_sq,
                             int64_t n, AdamWConstants k, const float* grad_scale,
                             uint16_t* weight_bf16) {
  const float scale = grad_scale == nullptr ? k.scale : __fmul_rn(k.scale, *grad_scale);
  for (int64_t i = detail::global_index(); i < n; i += detail::global_stride()) {
    const float g = __fmul_rn(grad[i], scale);
    const float m =
        __fadd_rn(__fmul_rn(k.beta1, exp_avg[i]), __fmul_rn(__fsub_rn(1.0f, k.beta1), g));
    const float v = __fadd_rn(__fmul_rn(k.beta2, exp_avg_sq[i]),
                              __fmul_rn(__fmul_rn(__fsub_rn(1.0f, k.beta2), g), g));
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    const float denominator = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), k.bias2_sqrt), k.eps);
    const float step = __fdiv_rn(__fmul_rn(k.lr, __fdiv_rn(m, k.bias1)), denominator);
    const float updated = __fsub_rn(__fmul_rn(weight[i], k.decay), step);
    weight[i] = updated;
    if (weight_bf16 != nullptr) weight_bf16[i] = float_to_bf16(updated);
  }
}

}  // namespace

void launch_adamw_update(float* weight, const float* grad, float* exp_avg, float* exp_avg_sq,
                         int64_t n, const kernels::AdamWHyper& hyper, const float* grad_scale,
                         uint16_t* weight_bf16, cudaStream_t stream) {
  if (n == 0) return;
  const double step = static_cast<double>(hyper.step);
  const AdamWConstants constants{static_cast<float>(hyper.lr),
                                 static_cast<float>(hyper.beta1),
                                 static_cast<float>(hyper.beta2),
                                 static_cast<float>(hyper.eps),
                                 static_cast<float>(1.0 - hyper.lr * hyper.weight_decay),
                                 static_cast<float>(hyper.grad_scale),
                                 static_cast<float>(1.0 - std::pow(hyper.beta1, step)),
                                 static_cast<float>(std::sqrt(1.0 - std::pow(hyper.beta2, step)))};
  adamw_kernel<<<detail::grid_for(n), detail::kThreads, 0, stream>>>(
      weight, grad, exp_avg, exp_avg_sq, n, constants, grad_scale, weight_bf16);
  CUDA_CHECK_LAUNCH();
}

}  // namespace steerlm::cuda
