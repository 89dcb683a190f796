// CUDA rotary embedding kernel; runtime/kernels/rope.cc is the reference.
#include <glog/logging.h>

#include "runtime/cuda/kernel_util.cuh"
#include "runtime/cuda/rope.h"

namespace steerlm::cuda {
namespace {

// One thread per rotated pair (row, head, i < HS/2).
__global__ void rope_kernel(uint16_t* x, int64_t rows, int64_t heads, int64_t head_size,
                            int64_t row_stride, const int32_t* positions, double theta,
                            float sign) {
  const int64_t half = head_size / 2;
  const int64_t pairs = rows * heads * half;
  for (int64_t index = detail::global_index(); index < pairs; index += detail::global_stride()) {
    const int64_t i = index % half;
    const int64_t head = (index / half) % heads;
    const int64_t row = index / (half * heads);
    // Angle in f64: a long position times a small frequency loses digits in f32.
    const double inv_freq =
        pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_size));
    double sin_value, cos_value;
    sincos(static_cast<double>(positions[row]) * inv_freq, &sin_value, &cos_value);
    const float c = static_cast<float>(cos_value);
    const float s = sign * static_cast<float>(sin_value);
    uint16_t* first = x + row * row_stride + head * head_size;  // (HS/2)
    uint16_t* second = first + half;                            // (HS/2)
    const float a = bf16_to_float(first[i]);
    const float b = bf16_to_float(second[i]);
    first[i] = float_to_bf16(a * c - b * s);
    second[i] = float_to_bf16(b * c + a * s);
  }
}

}  // namespace

void launch_rope(uint16_t* x, int64_t rows, int64_t heads, int64_t head_size, int64_t row_stride,
                 const int32_t* positions, double theta, kernels::RopeDirection direction,
                 cudaStream_t stream) {
  CHECK_EQ(head_size % 2, 0) << "rotary embedding needs an even head size";
  CHECK_GE(row_stride, heads * head_size) << "rows overlap";
  const int64_t pairs = rows * heads * (head_size / 2);
  if (pairs == 0) return;
  const float sign = direction == kernels::RopeDirection::kForward ? 1.0f : -1.0f;
  rope_kernel<<<detail::grid_for(pairs), detail::kThreads, 0, stream>>>(
      x, rows, heads, head_size, row_stride, positions, theta, sign);
  CUDA_CHECK_LAUNCH();
}

}  // namespace steerlm::cuda
