// The row kernels of the materialised-softmax attention (runtime/cuda/attention.h): segment run
// starts, the masked softmax, its backward, and the narrowing of f32 sums to strided bf16 rows.
// The GEMMs around them are in attention.cc.
#pragma once

#ifdef STEERLM_HAVE_CUDA

#include <cuda_runtime.h>

#include <cstdint>

namespace steerlm::cuda {

// run_start (B, T) int32 = first index of the run of equal non-zero segment ids holding each
// token, or -1 for padding (segment 0). segments (B, T) int32.
void launch_attention_run_starts(const int32_t* segments, int64_t batch, int64_t seq_len,
                                 int32_t* run_start, cudaStream_t stream);

// For one batch row: scores (NH, T, T) f32 -> probs (NH, T, T) bf16, the softmax of row t over
// [run_start[t], t] and zero elsewhere (all zero for padding). run_start (T) of this row.
void launch_attention_softmax_forward(const float* scores, const int32_t* run_start, int64_t heads,
                                      int64_t seq_len, uint16_t* probs, cudaStream_t stream);

// For one batch row and one position j in the KV groups: dscores (KVH, T, T) bf16 =
// P * (dP - rowsum(dP * P)) * scale on s <= t, zero above. P of KV head g starts at
// probs + g * probs_head_stride (T, T) bf16; dprobs (KVH, T, T) f32.
void launch_attention_softmax_backward(const uint16_t* probs, int64_t probs_head_stride,
                                       const float* dprobs, int64_t kv_heads, int64_t seq_len,
                                       float scale, uint16_t* dscores, cudaStream_t stream);

// dst (rows, width) bf16 with row stride dst_stride = src (rows, width) f32, contiguous.
void launch_narrow_rows(const float* src, int64_t rows, int64_t width, int64_t dst_stride,
                        uint16_t* dst, cudaStream_t stream);

}  // namespace steerlm::cuda

#endif  // STEERLM_HAVE_CUDA
