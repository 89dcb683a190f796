// Fused ("flash-style") causal attention: the same operation as runtime/cuda/attention.h, with
// the same grouped-query heads and segment masks, without the (B, NH, T, T) probabilities. The
// forward keeps a running maximum and sum per query row (online softmax) and saves only the
// row's log-sum-exp; the backward recomputes P from it.
//
// Work split: one warp per query row (forward, dQ) or per key row (dK, dV), 8 rows per block;
// K/V (or Q/dO) tiles of 32 rows in shared memory, one lane per tile row for the dot products
// and one lane per head column for the accumulations. dK and dV loop over the group's query
// heads and the queries in a fixed order, so results are deterministic (no atomics).
// f32 accumulation on CUDA cores, HS <= 128.
// TODO(flash-attention): tensor-core MMA tiles; this version is correct-first and memory-light,
// not yet faster than the cuBLASLt materialised path.
#pragma once

#ifdef STEERLM_HAVE_CUDA

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "runtime/kernels/attention.h"

namespace steerlm::cuda {

constexpr int64_t kFlashMaxHeadSize = 128;

// Device scratch bytes for either direction.
size_t flash_attention_workspace_bytes(const kernels::AttentionShape& shape);

// q (B, T, NH, HS), k/v (B, T, KVH, HS) bf16 with the shape's token strides, segments (B, T)
// int32 -> out (B, T, NH, HS) bf16 (q_stride), lse (B, NH, T) f32 = log sum_s exp(score) per
// query row, +inf for padding (whose output is zero), saved for the backward.
void launch_flash_attention_forward(const kernels::AttentionShape& shape, const uint16_t* q,
                                    const uint16_t* k, const uint16_t* v, const int32_t* segments,
                                    uint16_t* out, float* lse, void* workspace,
                                    cudaStream_t stream);

// From dout (B, T, NH, HS) bf16 and the forward's out and lse: dq (q_stride), dk and dv
// (kv_stride) overwritten, bf16.
void launch_flash_attention_backward(const kernels::AttentionShape& shape, const uint16_t* dout,
                                     const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                     const uint16_t* out, const float* lse, const int32_t* segments,
                                     uint16_t* dq, uint16_t* dk, uint16_t* dv, void* workspace,
                                     cudaStream_t stream);

}  // namespace steerlm::cuda

#endif  // STEERLM_HAVE_CUDA
