// CUDA AdamW on f32 master weights, mirroring runtime/kernels/adamw.h (decoupled weight decay as
// torch.optim.AdamW), with the bf16 working copy of the weights written in the same pass
// (DESIGN §5: bf16 weights for the forward and backward, f32 master weights and moments).
#pragma once

#ifdef STEERLM_HAVE_CUDA

#include <cuda_runtime.h>

#include <cstdint>

#include "runtime/kernels/adamw.h"

namespace steerlm::cuda {

// weight, exp_avg, exp_avg_sq (n) f32 updated in place from grad (n) f32:
//   g = grad * hyper.grad_scale * (*grad_scale, when not null)
// then the host kernel's update, operation for operation (no fused multiply-adds), so results
// equal the host's f32 update. grad_scale (device, 1 float) carries global-norm clipping computed
// on the device (runtime/cuda/grad_clip.h) without a host round trip. weight_bf16 (n), when not
// null, receives the updated weight rounded to bf16.
void launch_adamw_update(float* weight, const float* grad, float* exp_avg, float* exp_avg_sq,
                         int64_t n, const kernels::AdamWHyper& hyper, const float* grad_scale,
                         uint16_t* weight_bf16, cudaStream_t stream);

}  // namespace steerlm::cuda

#endif  // STEERLM_HAVE_CUDA
