// Row kernels of the materialised-softmax attention; runtime/kernels/attention.cc is the
// reference (softmax_range and the backward's row loop).
#include "runtime/cuda/attention_softmax.h"
#include "runtime/cuda/kernel_util.cuh"

namespace steerlm::cuda {
namespace {

using detail::block_reduce;
using detail::kThreads;

// run_start (B, T): first index of the run holding each token, or -1 for padding.
__global__ void run_starts_kernel(const int32_t* segments, int64_t batch, int64_t seq_len,
                                  int32_t* run_start) {
  for (int64_t index = detail::global_index(); index < batch * seq_len;
       index += detail::global_stride()) {
    const int64_t t = index % seq_len;
    const int32_t* row = segments + (index - t);  // (T)
    if (row[t] == 0) {
      run_start[index] = -1;
      continue;
    }
    int64_t start = t;
    while (start > 0 && row[start - 1] == row[t]) --start;
    run_start[index] = static_cast<int32_t>(start);
  }
}

// Masked softmax of one row of one head per block: scores (NH, T, T) f32 of row b -> probs
// (NH, T, T) bf16, entries outside [run_start, t] zero. Grid: (T, NH).
__global__ void softmax_forward_kernel(const float* scores, const int32_t* run_start,
                                       int64_t seq_len, uint16_t* probs) {
  const int64_t t = blockIdx.x, h = blockIdx.y;
  const float* row = scores + (h * seq_len + t) * seq_len;  // (T)
  uint16_t* p = probs + (h * seq_len + t) * seq_len;        // (T)
  const int64_t begin = run_start[t];
  if (begin < 0) {
    for (int64_t s = threadIdx.x; s < seq_len; s += blockDim.x) p[s] = 0;
    return;
  }
  float max_score = -INFINITY;
  for (int64_t s = begin + threadIdx.x; s <= t; s += blockDim.x)
    max_score = fmaxf(max_score, row[s]);
  max_score = block_reduce(max_score, detail::MaxOp{}, -INFINITY);
  float total = 0.0f;
  for (int64_t s = begin + threadIdx.x; s <= t; s += blockDim.x) total += expf(row[s] - max_score);
  const float inv_total = 1.0f / block_reduce(total, detail::SumOp{}, 0.0f);
  for (int64_t s = threadIdx.x; s < seq_len; s += blockDim.x) {
    const bool kept = s >= begin && s <= t;
    p[s] = float_to_bf16(kept ? expf(row[s] - max_score) * inv_total : 0.0f);
  }
}

// Softmax backward of one row per block: dS = P * (dP - sum_s dP * P) * scale for s <= t, else 0.
// probs (KVH..) rows at `probs` + (g * group_stride + t * T), dP and dS (KVH, T, T). Grid (T, KVH).
__global__ void softmax_backward_kernel(const uint16_t* probs, int64_t probs_head_stride,
                                        const float* dprobs, int64_t seq_len, float scale,
                                        uint16_t* dscores) {
  const int64_t t = blockIdx.x, g = blockIdx.y;
  const uint16_t* p = probs + g * probs_head_stride + t * seq_len;  // (T)
  const float* dp = dprobs + (g * seq_len + t) * seq_len;           // (T)
  uint16_t* ds = dscores + (g * seq_len + t) * seq_len;             // (T)
  float dot = 0.0f;
  for (int64_t s = threadIdx.x; s <= t; s += blockDim.x) dot += bf16_to_float(p[s]) * dp[s];
  dot = block_reduce(dot, detail::SumOp{}, 0.0f);
  for (int64_t s = threadIdx.x; s < seq_len; s += blockDim.x) {
    const float value = s <= t ? bf16_to_float(p[s]) * (dp[s] - dot) * scale : 0.0f;
    ds[s] = float_to_bf16(value);
  }
}

// dst (T, width) bf16 with row stride dst_stride = src (T, width) f32, contiguous.
__global__ void narrow_rows_kernel(const float* src, int64_t rows, int64_t width,
                                   int64_t dst_stride, uint16_t* dst) {
  for (int64_t i = detail::global_index(); i < rows * width; i += detail::global_stride()) {
    dst[(i / width) * dst_stride + i % width] = float_to_bf16(src[i]);
  }
}

}  // namespace

void launch_attention_run_starts(const int32_t* segments, int64_t batch, int64_t seq_len,
                                 int32_t* run_start, cudaStream_t stream) {
  if (batch * seq_len == 0) return;
  run_starts_kernel<<<detail::grid_for(batch * seq_len), kThreads, 0, stream>>>(segments, batch,
                                                                                seq_len, run_start);
  CUDA_CHECK_LAUNCH();
}

void launch_attention_softmax_forward(const float* scores, const int32_t* run_start, int64_t heads,
                                      int64_t seq_len, uint16_t* probs, cudaStream_t stream) {
  if (heads * seq_len == 0) return;
  const dim3 grid(static_cast<unsigned>(seq_len), static_cast<unsigned>(heads));
  softmax_forward_kernel<<<grid, kThreads, 0, stream>>>(scores, run_start, seq_len, probs);
  CUDA_CHECK_LAUNCH();
}

void launch_attention_softmax_backward(const uint16_t* probs, int64_t probs_head_stride,
                                       const float* dprobs, int64_t kv_heads, int64_t seq_len,
                                       float scale, uint16_t* dscores, cudaStream_t stream) {
  if (kv_heads * seq_len == 0) return;
  const dim3 grid(static_cast<unsigned>(seq_len), static_cast<unsigned>(kv_heads));
  softmax_backward_kernel<<<grid, kThreads, 0, stream>>>(probs, probs_head_stride, dprobs, seq_len,
                                                         scale, dscores);
  CUDA_CHECK_LAUNCH();
}

void launch_narrow_rows(const float* src, int64_t rows, int64_t width, int64_t dst_stride,
                        uint16_t* dst, cudaStream_t stream) {
  if (rows * width == 0) return;
  narrow_rows_kernel<<<detail::grid_for(rows * width), kThreads, 0, stream>>>(src, rows, width,
                                                                              dst_stride, dst);
  CUDA_CHECK_LAUNCH();
}

}  // namespace steerlm::cuda
