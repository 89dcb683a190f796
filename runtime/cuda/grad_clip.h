// Global gradient-norm clipping on the device, mirroring model/optimizer.cc's AdamW:
//   norm = sqrt(sum over gradients of sum of squares)
//   coefficient = max_norm <= 0 ? 1 : min(1, max_norm / (norm + 1e-6))
// Each gradient's sum of squares comes from launch_reduce(Reduction::kSumSquares) in
// runtime/cuda/elementwise.h (f64, deterministic), written to its own slot of one device array;
// this combines the slots in order and leaves the norm and the coefficient on the device, so
// that AdamW (runtime/cuda/adamw.h) or launch_scale_by can apply it without a host round trip.
#pragma once

#ifdef STEERLM_HAVE_CUDA

#include <cuda_runtime.h>

#include <cstdint>

namespace steerlm::cuda {

// sum_squares (count) f64, device -> *norm (device f64), *coefficient (device f32).
void launch_clip_coefficient(const double* sum_squares, int64_t count, double max_norm,
                             double* norm, float* coefficient, cudaStream_t stream);

// x (n) f32 *= *scale (device f32), in place: clips a gradient by the coefficient.
void launch_scale_by(float* x, int64_t n, const float* scale, cudaStream_t stream);

}  // namespace steerlm::cuda

#endif  // STEERLM_HAVE_CUDA
