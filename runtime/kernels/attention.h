// Grouped-query causal self-attention over variable-length rows (padded or packed).
//
// Per row b, segments (T) says which sequence each token belongs to (0 = padding). A sequence is
// a maximal run of equal non-zero ids; token t attends to tokens s <= t of its own run, so
// padding and packed neighbours never see each other, and a padding token's output is zero.
// Query head h reads key/value head h / (NH / KVH).
//
// Scores and weighted sums are GEMMs per (b, h); softmax is row-wise. The probabilities are
// saved for the backward (B, NH, T, T).
#pragma once

#include <cstdint>

namespace steerlm::kernels {

struct AttentionShape {
  int64_t batch = 0;      // B
  int64_t seq_len = 0;    // T
  int64_t heads = 0;      // NH
  int64_t kv_heads = 0;   // KVH
  int64_t head_size = 0;  // HS
  int64_t q_stride = 0;   // elements between tokens of q/out: NH * HS when unfused
  int64_t kv_stride = 0;  // elements between tokens of k/v: KVH * HS when unfused
};

// q (B, T, NH, HS), k/v (B, T, KVH, HS) -> out (B, T, NH, HS), probs (B, NH, T, T).
template <typename T>
void attention_forward(const AttentionShape& shape, const T* q, const T* k, const T* v,
                       const int32_t* segments, T* probs, T* out);

// From dout (B, T, NH, HS): dq overwritten; dk and dv overwritten (summed over the query heads
// of each group in a fixed order). q, k, v, probs as saved by the forward.
template <typename T>
void attention_backward(const AttentionShape& shape, const T* dout, const T* q, const T* k,
                        const T* v, const T* probs, const int32_t* segments, T* dq, T* dk, T* dv);

// Decoding: row b has n_new[b] new queries at positions lengths[b].. (q (B, N, NH, HS), rows
// padded to N) attending to the first lengths[b] + i + 1 cached keys/values
// (cache_k/cache_v (B, KVH, max_len, HS), already holding the new tokens). out (B, N, NH, HS).
template <typename T>
void attention_forward_cached(int64_t batch, int64_t max_new, int64_t heads, int64_t kv_heads,
                              int64_t head_size, int64_t max_len, const T* q, const T* cache_k,
                              const T* cache_v, const int64_t* lengths, const int* n_new, T* out);

}  // namespace steerlm::kernels
