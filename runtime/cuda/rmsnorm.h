// CUDA RMSNorm, mirroring runtime/kernels/rmsnorm.h: y = x / sqrt(mean(x^2) + eps) * w per row
// of C channels. Activations and the weight are bf16, statistics and sums f32, the weight
// gradient f32 (DESIGN §5).
#pragma once

#ifdef STEERLM_HAVE_CUDA

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace steerlm::cuda {

enum class GradientWrite {
  kOverwrite,   // dx = d/dx
  kAccumulate,  // dx += d/dx (the residual stream's gradient)
};

// out (N, C) bf16, rstd (N) f32 = 1 / sqrt(mean(x^2) + eps), saved for the backward.
// x (N, C) bf16, weight (C) bf16.
void launch_rmsnorm_forward(const uint16_t* x, const uint16_t* weight, int64_t rows,
                            int64_t channels, double eps, uint16_t* out, float* rstd,
                            cudaStream_t stream);

// Device scratch bytes launch_rmsnorm_backward needs.
size_t rmsnorm_backward_workspace_bytes(int64_t rows, int64_t channels);

// dx (N, C) bf16 written or accumulated; dweight (C) f32 += sum over rows of dout * x * rstd,
// summed over fixed 64-row blocks and then block by block (deterministic, like the host).
void launch_rmsnorm_backward(const uint16_t* dout, const uint16_t* x, const uint16_t* weight,
                             const float* rstd, int64_t rows, int64_t channels, uint16_t* dx,
                             float* dweight, GradientWrite dx_write, void* workspace,
                             cudaStream_t stream);

}  // namespace steerlm::cuda

#endif  // STEERLM_HAVE_CUDA
