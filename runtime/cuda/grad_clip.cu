// CUDA gradient clipping; AdamW::clip_coefficient in model/optimizer.cc is the reference.
#include "runtime/cuda/grad_clip.h"
#include "runtime/cuda/kernel_util.cuh"

namespace steerlm::cuda {
namespace {

// One thread: the slots are one per parameter tensor, a few hundred at most, summed in order.
__global__ void clip_coefficient_kernel(const double* sum_squares, int64_t count, double max_norm,
                                        double* norm, float* coefficient) {
  double total = 0;
  for (int64_t i = 0; i < count; ++i) total += sum_squares[i];
  const double value = sqrt(total);
  *norm = value;
  const double clipped = max_norm / (value + 1e-6);
  *coefficient = static_cast<float>(max_norm <= 0 ? 1.0 : (clipped < 1.0 ? clipped : 1.0));
}

__global__ void scale_by_kernel(float* x, int64_t n, const float* scale) {
  const float factor = *scale;
  for (int64_t i = detail::global_index(); i < n; i += detail::global_stride()) x[i] *= factor;
}

}  // namespace

void launch_clip_coefficient(const double* sum_squares, int64_t count, double max_norm,
                             double* norm, float* coefficient, cudaStream_t stream) {
  clip_coefficient_kernel<<<1, 1, 0, stream>>>(sum_squares, count, max_norm, norm, coefficient);
  CUDA_CHECK_LAUNCH();
}

void launch_scale_by(float* x, int64_t n, const float* scale, cudaStream_t stream) {
  if (n == 0) return;
  scale_by_kernel<<<detail::grid_for(n), detail::kThreads, 0, stream>>>(x, n, scale);
  CUDA_CHECK_LAUNCH();
}

}  // namespace steerlm::cuda
