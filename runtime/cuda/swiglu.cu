// CUDA SwiGLU kernels; runtime/kernels/swiglu.cc is the reference.
#include "runtime/cuda/kernel_util.cuh"
#include "runtime/cuda/swiglu.h"

namespace steerlm::cuda {
namespace {

__global__ void swiglu_forward_kernel(const uint16_t* gate, const uint16_t* up, uint16_t* out,
                                      int64_t n) {
  for (int64_t i = detail::global_index(); i < n; i += detail::global_stride()) {
    const float g = bf16_to_float(gate[i]);
    const float sigmoid = 1.0f / (1.0f + expf(-g));
    out[i] = float_to_bf16(g * sigmoid * bf16_to_float(up[i]));
  }
}

__global__ void swiglu_backward_kernel(const uint16_t* dout, const uint16_t* gate,
                                       const uint16_t* up, uint16_t* dgate, uint16_t* dup,
                                       int64_t n) {
  for (int64_t i = detail::global_index(); i < n; i += detail::global_stride()) {
    const float g = bf16_to_float(gate[i]);
    const float u = bf16_to_float(up[i]);
    const float d = bf16_to_float(dout[i]);
    const float sigmoid = 1.0f / (1.0f + expf(-g));
    // d silu / dg = sigmoid * (1 + g * (1 - sigmoid)).
    dgate[i] = float_to_bf16(d * u * sigmoid * (1.0f + g * (1.0f - sigmoid)));
    dup[i] = float_to_bf16(d * g * sigmoid);
  }
}

}  // namespace

void launch_swiglu_forward(const uint16_t* gate, const uint16_t* up, int64_t n, uint16_t* out,
                           cudaStream_t stream) {
  if (n == 0) return;
  swiglu_forward_kernel<<<detail::grid_for(n), detail::kThreads, 0, stream>>>(gate, up, out, n);
  CUDA_CHECK_LAUNCH();
}

void launch_swiglu_backward(const uint16_t* dout, const uint16_t* gate, const uint16_t* up,
                            int64_t n, uint16_t* dgate, uint16_t* dup, cudaStream_t stream) {
  if (n == 0) return;
  swiglu_backward_kernel<<<detail::grid_for(n), detail::kThreads, 0, stream>>>(dout, gate, up,
                                                                               dgate, dup, n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace steerlm::cuda
