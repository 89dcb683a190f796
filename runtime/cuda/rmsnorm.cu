// CUDA RMSNorm kernels; runtime/kernels/rmsnorm.cc is the reference.
#include "runtime/cuda/kernel_util.cuh"
#include "runtime/cuda/rmsnorm.h"

namespace steerlm::cuda {
namespace {

using detail::block_reduce;
using detail::kThreads;
using detail::SumOp;

constexpr int64_t kRowBlock = 64;  // rows per dweight partial sum, as on the host

// One block per row (strided over rows).
__global__ void rmsnorm_forward_kernel(const uint16_t* x, const uint16_t* weight, int64_t rows,
                                       int64_t channels, float eps, uint16_t* out, float* rstd) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const uint16_t* in = x + row * channels;  // (C)
    float sum_sq = 0.0f;
    for (int64_t c = threadIdx.x; c < channels; c += blockDim.x) {
      const float value = bf16_to_float(in[c]);
      sum_sq += value * value;
    }
    sum_sq = block_reduce(sum_sq, SumOp{}, 0.0f);
    const float inv = 1.0f / sqrtf(sum_sq / static_cast<float>(channels) + eps);
    if (threadIdx.x == 0) rstd[row] = inv;
    uint16_t* y = out + row * channels;  // (C)
    for (int64_t c = threadIdx.x; c < channels; c += blockDim.x) {
      y[c] = float_to_bf16(bf16_to_float(in[c]) * inv * bf16_to_float(weight[c]));
    }
  }
}

// dx of one row per block: dx = inv * (dout * w - xhat * mean(dout * w * xhat)).
__global__ void rmsnorm_dx_kernel(const uint16_t* dout, const uint16_t* x, const uint16_t* weight,
                                  const float* rstd, int64_t rows, int64_t channels, uint16_t* dx,
                                  GradientWrite dx_write) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const uint16_t* in = x + row * channels;       // (C)
    const uint16_t* grad = dout + row * channels;  // (C)
    const float inv = rstd[row];
    float dot = 0.0f;
    for (int64_t c = threadIdx.x; c < channels; c += blockDim.x) {
      dot += bf16_to_float(grad[c]) * bf16_to_float(weight[c]) * bf16_to_float(in[c]) * inv;
    }
    const float mean_dot = block_reduce(dot, SumOp{}, 0.0f) / static_cast<float>(channels);
    uint16_t* out_grad = dx + row * channels;  // (C)
    for (int64_t c = threadIdx.x; c < channels; c += blockDim.x) {
      const float xhat = bf16_to_float(in[c]) * inv;
      float value = inv * (bf16_to_float(grad[c]) * bf16_to_float(weight[c]) - xhat * mean_dot);
      if (dx_write == GradientWrite::kAccumulate) value += bf16_to_float(out_grad[c]);
      out_grad[c] = float_to_bf16(value);
    }
  }
}

// partial (blocks, C): for row block blockIdx.y, each thread sums one channel over its rows.
__global__ void rmsnorm_dweight_partial_kernel(const uint16_t* dout, const uint16_t* x,
                                               const float* rstd, int64_t rows, int64_t channels,
                                               float* partial) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * kRowBlock;
  const int64_t end = begin + kRowBlock < rows ? begin + kRowBlock : rows;
  float total = 0.0f;
  for (int64_t row = begin; row < end; ++row) {
    total += bf16_to_float(dout[row * channels + c]) *
             (bf16_to_float(x[row * channels + c]) * rstd[row]);
  }
  partial[blockIdx.y * channels + c] = total;
}

// dweight (C) += the row blocks' partials in block order.
__global__ void rmsnorm_dweight_sum_kernel(const float* partial, int64_t blocks, int64_t channels,
                                           float* dweight) {
  for (int64_t c = detail::global_index(); c < channels; c += detail::global_stride()) {
    float total = dweight[c];
    for (int64_t block = 0; block < blocks; ++block) total += partial[block * channels + c];
    dweight[c] = total;
  }
}

int64_t row_blocks(int64_t rows) {
  return (rows + kRowBlock - 1) / kRowBlock;
}

}  // namespace

void launch_rmsnorm_forward(const uint16_t* x, const uint16_t* weight, int64_t rows,
                            int64_t channels, double eps, uint16_t* out, float* rstd,
                            cudaStream_t stream) {
  if (rows == 0) return;
  rmsnorm_forward_kernel<<<detail::grid_for_rows(rows), kThreads, 0, stream>>>(
      x, weight, rows, channels, static_cast<float>(eps), out, rstd);
  CUDA_CHECK_LAUNCH();
}

size_t rmsnorm_backward_workspace_bytes(int64_t rows, int64_t channels) {
  return static_cast<size_t>(row_blocks(rows) * channels) * sizeof(float);
}

void launch_rmsnorm_backward(const uint16_t* dout, const uint16_t* x, const uint16_t* weight,
                             const float* rstd, int64_t rows, int64_t channels, uint16_t* dx,
                             float* dweight, GradientWrite dx_write, void* workspace,
                             cudaStream_t stream) {
  if (rows == 0) return;

  // Input gradient, one row per block.
  rmsnorm_dx_kernel<<<detail::grid_for_rows(rows), kThreads, 0, stream>>>(
      dout, x, weight, rstd, rows, channels, dx, dx_write);
  CUDA_CHECK_LAUNCH();

  // Weight gradient: fixed row blocks, then their sum in block order.
  const int64_t blocks = row_blocks(rows);
  auto* partial = static_cast<float*>(workspace);  // (blocks, C), device
  const dim3 grid(static_cast<unsigned>((channels + kThreads - 1) / kThreads),
                  static_cast<unsigned>(blocks));
  rmsnorm_dweight_partial_kernel<<<grid, kThreads, 0, stream>>>(dout, x, rstd, rows, channels,
                                                                partial);
  CUDA_CHECK_LAUNCH();
  rmsnorm_dweight_sum_kernel<<<detail::grid_for(channels), kThreads, 0, stream>>>(
      partial, blocks, channels, dweight);
  CUDA_CHECK_LAUNCH();
}

}  // namespace steerlm::cuda
