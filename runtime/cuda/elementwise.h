// Launchers for the CUDA elementwise and reduction kernels behind runtime/ops.h. Callers pass
// device pointers, element counts and a stream; runtime/ops.cc checks shapes, dtypes and devices
// before calling. Only compiled into CUDA builds (elementwise.cu).
#pragma once

#ifdef STEERLM_HAVE_CUDA

#include <cuda_runtime.h>

#include <cstdint>

namespace steerlm::cuda {

// out[i] = pattern, for 4-byte (f32, i32) and 2-byte (bf16) elements.
void launch_fill_32bit(uint32_t* out, uint32_t pattern, int64_t n, cudaStream_t stream);
void launch_fill_16bit(uint16_t* out, uint16_t pattern, int64_t n, cudaStream_t stream);

// f32 elementwise; out may alias an input.
void launch_add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream);
void launch_add_scaled(const float* x, float alpha, float* y, int64_t n, cudaStream_t stream);
void launch_multiply(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream);
void launch_scale(const float* x, float alpha, float* out, int64_t n, cudaStream_t stream);

// Conversions; f32 -> bf16 rounds to nearest even exactly as the host does (runtime/bf16.h).
void launch_f32_to_bf16(const float* source, uint16_t* destination, int64_t n, cudaStream_t stream);
void launch_bf16_to_f32(const uint16_t* source, float* destination, int64_t n, cudaStream_t stream);

enum class Reduction { kSum, kSumSquares, kMaxAbs };

// Reduces n elements of f32 (`is_bf16` false) or bf16 to one double, accumulated in double in an
// order fixed by n alone (deterministic run to run). Writes the result to *result_device, a
// device pointer, so callers can keep it on the device; nothing is synchronised.
// `partials_device` must hold reduction_partials_count(n) doubles.
int64_t reduction_partials_count(int64_t n);
void launch_reduce(Reduction reduction, const void* x, bool is_bf16, int64_t n,
                   double* partials_device, double* result_device, cudaStream_t stream);

}  // namespace steerlm::cuda

#endif  // STEERLM_HAVE_CUDA
