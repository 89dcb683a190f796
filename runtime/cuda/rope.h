// CUDA rotary position embedding, mirroring runtime/kernels/rope.h (Hugging Face rotate-half
// layout: element i of a head pairs with i + HS/2, rotated by position * theta^(-2i/HS)).
// Angles, cosines and sines in f64 as on the host; the rotation in f32; bf16 storage.
#pragma once

#ifdef STEERLM_HAVE_CUDA

#include <cuda_runtime.h>

#include <cstdint>

#include "runtime/kernels/rope.h"

namespace steerlm::cuda {

// In place on x (N, H, HS) bf16 with `row_stride` elements between rows (>= H * HS, so q and k
// rotate inside a fused qkv buffer): row n by positions[n] (N, int32, device). kForward rotates
// by +angle (the forward pass), kBackward by -angle (the inverse: gradients back to inputs).
void launch_rope(uint16_t* x, int64_t rows, int64_t heads, int64_t head_size, int64_t row_stride,
                 const int32_t* positions, double theta, kernels::RopeDirection direction,
                 cudaStream_t stream);

}  // namespace steerlm::cuda

#endif  // STEERLM_HAVE_CUDA
