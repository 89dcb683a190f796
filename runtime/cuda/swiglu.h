// CUDA SwiGLU activation, mirroring runtime/kernels/swiglu.h: h = silu(gate) * up with
// silu(g) = g * sigmoid(g). bf16 storage, f32 arithmetic.
#pragma once

#ifdef STEERLM_HAVE_CUDA

#include <cuda_runtime.h>

#include <cstdint>

namespace steerlm::cuda {

// out (n) = silu(gate) * up; gate, up, out bf16 (out may alias neither input).
void launch_swiglu_forward(const uint16_t* gate, const uint16_t* up, int64_t n, uint16_t* out,
                           cudaStream_t stream);

// dgate, dup (n) bf16 from dout (n) bf16; overwritten, not accumulated.
void launch_swiglu_backward(const uint16_t* dout, const uint16_t* gate, const uint16_t* up,
                            int64_t n, uint16_t* dgate, uint16_t* dup, cudaStream_t stream);

}  // namespace steerlm::cuda

#endif  // STEERLM_HAVE_CUDA
