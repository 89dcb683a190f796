// CUDA causal self-attention with a materialised softmax, mirroring runtime/kernels/attention.h:
// grouped-query heads (query head h reads KV head h / (NH / KVH)), segment masks (token t attends
// to tokens s <= t of its own run of equal non-zero segment ids; padding outputs zero), and the
// probabilities saved for the backward.
//
// Scores, P V and the backward products are cuBLASLt GEMMs (bf16 inputs, f32 accumulation) per
// (row b, position j in the KV group), batched over the KV heads; the masked softmax and its
// backward are row kernels in f32. Scores and dP are f32 in the workspace, P and dS bf16 (they
// feed bf16 GEMMs); dK and dV sum a group's query heads in f32, in head order, then round once.
#pragma once

#ifdef STEERLM_HAVE_CUDA

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "runtime/kernels/attention.h"
#include "runtime/tensor.h"

namespace steerlm::cuda {

using kernels::AttentionShape;

// Device scratch bytes for either direction.
size_t attention_workspace_bytes(const AttentionShape& shape);

// q (B, T, NH, HS), k/v (B, T, KVH, HS) bf16 with the shape's token strides, segments (B, T)
// int32 -> out (B, T, NH, HS) bf16 (q_stride), probs (B, NH, T, T) bf16, all on `device`.
void attention_forward(Device device, const AttentionShape& shape, const uint16_t* q,
                       const uint16_t* k, const uint16_t* v, const int32_t* segments,
                       uint16_t* probs, uint16_t* out, void* workspace, cudaStream_t stream);

// From dout (B, T, NH, HS) bf16: dq (q_stride), dk and dv (kv_stride) overwritten, bf16. q, k,
// v and probs as the forward saw and saved them.
void attention_backward(Device device, const AttentionShape& shape, const uint16_t* dout,
                        const uint16_t* q, const uint16_t* k, const uint16_t* v,
                        const uint16_t* probs, uint16_t* dq, uint16_t* dk, uint16_t* dv,
                        void* workspace, cudaStream_t stream);

}  // namespace steerlm::cuda

#endif  // STEERLM_HAVE_CUDA
