#include "runtime/kernels/attention.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "runtime/kernels/blas.h"
#include "runtime/kernels/threading.h"

namespace steerlm::kernels {
namespace {

// First index of the run containing each token (run_start[t] <= t), or -1 for padding.
std::vector<int64_t> run_starts(const int32_t* segments, int64_t seq_len) {
  std::vector<int64_t> starts(seq_len, -1);  // (T)
  for (int64_t t = 0; t < seq_len; ++t) {
    if (segments[t] == 0) continue;
    starts[t] = (t > 0 && segments[t - 1] == segments[t]) ? starts[t - 1] : t;
  }
  return starts;
}

// Masked softmax of one score row in place: entries [begin, end) are kept, the rest zeroed.
template <typename T>
void softmax_range(T* row, int64_t length, int64_t begin, int64_t end) {
  if (begin < 0) {
    std::fill(row, row + length, T(0));
    return;
  }
  T max_score = -std::numeric_limits<T>::infinity();
  for (int64_t s = begin; s < end; ++s) max_score = std::max(max_score, row[s]);
  T total = 0;
  for (int64_t s = begin; s < end; ++s) {
    row[s] = std::exp(row[s] - max_score);
    total += row[s];
  }
  const T inv_total = T(1) / total;
  for (int64_t s = begin; s < end; ++s) row[s] *= inv_total;
  std::fill(row, row + begin, T(0));
  std::fill(row + end, row + length, T(0));
}

// One (row b, query head h) pair: scores, masked softmax, weighted sum of values.
template <typename T>
void attention_forward_head(const AttentionShape& shape, int64_t b, int64_t h, const T* q,
                            const T* k, const T* v, const std::vector<int64_t>& starts, T* probs,
                            T* out, bool parallel_rows) {
  const int64_t seq = shape.seq_len, hs = shape.head_size;
  const int64_t group = shape.heads / shape.kv_heads;
  const T scale = T(1) / std::sqrt(static_cast<T>(hs));
  const T* q_bh = q + b * seq * shape.q_stride + h * hs;             // (T, HS)
  const T* k_bg = k + b * seq * shape.kv_stride + (h / group) * hs;  // (T, HS)
  const T* v_bg = v + b * seq * shape.kv_stride + (h / group) * hs;  // (T, HS)
  T* p_bh = probs + (b * shape.heads + h) * seq * seq;               // (T, T)

  gemm<T>(Transpose::kNo, Transpose::kYes, seq, seq, hs, scale, q_bh, shape.q_stride, k_bg,
          shape.kv_stride, T(0), p_bh, seq);
#pragma omp parallel for schedule(static) if (parallel_rows && seq * seq > kMinParallelWork)
  for (int64_t t = 0; t < seq; ++t) softmax_range(p_bh + t * seq, seq, starts[t], t + 1);
  gemm<T>(Transpose::kNo, Transpose::kNo, seq, hs, seq, T(1), p_bh, seq, v_bg, shape.kv_stride,
          T(0), out + b * seq * shape.q_stride + h * hs, shape.q_stride);
}

// One (row b, KV head g) pair: every query head of the group in order, so dk/dv sum over the
// group's heads in a fixed order. dscores is (T, T) scratch.
template <typename T>
void attention_backward_group(const AttentionShape& shape, int64_t b, int64_t g, const T* dout,
                              const T* q, const T* k, const T* v, const T* probs, T* dq, T* dk,
                              T* dv, T* dscores, bool parallel_rows) {
  const int64_t seq = shape.seq_len, hs = shape.head_size;
  const int64_t group = shape.heads / shape.kv_heads;
  const T scale = T(1) / std::sqrt(static_cast<T>(hs));
  const int64_t kv_offset = b * seq * shape.kv_stride + g * hs;
  for (int64_t h = g * group; h < (g + 1) * group; ++h) {
    const int64_t q_offset = b * seq * shape.q_stride + h * hs;
    const T* p_bh = probs + (b * shape.heads + h) * seq * seq;  // (T, T)
    const T kv_beta = (h == g * group) ? T(0) : T(1);           // first head overwrites

    // dV += P^T dO; dP = dO V^T.
    gemm<T>(Transpose::kYes, Transpose::kNo, seq, hs, seq, T(1), p_bh, seq, dout + q_offset,
            shape.q_stride, kv_beta, dv + kv_offset, shape.kv_stride);
    gemm<T>(Transpose::kNo, Transpose::kYes, seq, seq, hs, T(1), dout + q_offset, shape.q_stride,
            v + kv_offset, shape.kv_stride, T(0), dscores, seq);

    // Softmax backward: dS = P * (dP - sum_s dP * P), times the score scale. Probabilities are
    // zero outside each token's run, so the mask needs no second look.
#pragma omp parallel for schedule(static) if (parallel_rows && seq * seq > kMinParallelWork)
    for (int64_t t = 0; t < seq; ++t) {
      const T* p_row = p_bh + t * seq;
      T* d_row = dscores + t * seq;
      T dot = 0;
      for (int64_t s = 0; s <= t; ++s) dot += p_row[s] * d_row[s];
      for (int64_t s = 0; s <= t; ++s) d_row[s] = p_row[s] * (d_row[s] - dot) * scale;
      std::fill(d_row + t + 1, d_row + seq, T(0));
    }

    // dQ = dS K; dK += dS^T Q.
    gemm<T>(Transpose::kNo, Transpose::kNo, seq, hs, seq, T(1), dscores, seq, k + kv_offset,
            shape.kv_stride, T(0), dq + q_offset, shape.q_stride);
    gemm<T>(Transpose::kYes, Transpose::kNo, seq, hs, seq, T(1), dscores, seq, q + q_offset,
            shape.q_stride, kv_beta, dk + kv_offset, shape.kv_stride);
  }
}

}  // namespace

template <typename T>
void attention_forward(const AttentionShape& shape, const T* q, const T* k, const T* v,
                       const int32_t* segments, T* probs, T* out) {
  std::vector<std::vector<int64_t>> starts(shape.batch);  // (B, T)
  for (int64_t b = 0; b < shape.batch; ++b) {
    starts[b] = run_starts(segments + b * shape.seq_len, shape.seq_len);
  }
  // Pairs in parallel when the kernels own the threads, else rows of each softmax.
  const bool pairs_parallel = kernels_own_threads();
  const int64_t pairs = shape.batch * shape.heads;
#pragma omp parallel for schedule(dynamic) if (pairs_parallel)
  for (int64_t pair = 0; pair < pairs; ++pair) {
    const int64_t b = pair / shape.heads, h = pair % shape.heads;
    attention_forward_head(shape, b, h, q, k, v, starts[b], probs, out, !pairs_parallel);
  }
}

template <typename T>
void attention_backward(const AttentionShape& shape, const T* dout, const T* q, const T* k,
                        const T* v, const T* probs, const int32_t* segments, T* dq, T* dk, T* dv) {
  const bool pairs_parallel = kernels_own_threads();
  const int64_t pairs = shape.batch * shape.kv_heads;
#pragma omp parallel if (pairs_parallel)
  {
    std::vector<T> dscores(shape.seq_len * shape.seq_len);  // (T, T) per thread
#pragma omp for schedule(dynamic)
    for (int64_t pair = 0; pair < pairs; ++pair) {
      attention_backward_group(shape, pair / shape.kv_heads, pair % shape.kv_heads, dout, q, k, v,
                               probs, dq, dk, dv, dscores.data(), !pairs_parallel);
    }
  }
  (void)segments;  // the saved probabilities already carry the mask
}

template <typename T>
void attention_forward_cached(int64_t batch, int64_t max_new, int64_t heads, int64_t kv_heads,
                              int64_t head_size, int64_t max_len, const T* q, const T* cache_k,
                              const T* cache_v, const int64_t* lengths, const int* n_new, T* out) {
  const int64_t group = heads / kv_heads;
  const int64_t q_stride = heads * head_size;
  const T scale = T(1) / std::sqrt(static_cast<T>(head_size));
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t n = n_new[b];
    const int64_t keys = lengths[b] + n;  // cached positions including the new ones
    if (n == 0) continue;
    CHECK_LE(keys, max_len) << "KV cache overflow";
    std::vector<T> scores(n * keys);  // (n, keys)
    for (int64_t h = 0; h < heads; ++h) {
      const T* q_bh = q + b * max_new * q_stride + h * head_size;                     // (n, HS)
      const int64_t cache_offset = (b * kv_heads + h / group) * max_len * head_size;  // (.., HS)
      gemm<T>(Transpose::kNo, Transpose::kYes, n, keys, head_size, scale, q_bh, q_stride,
              cache_k + cache_offset, head_size, T(0), scores.data(), keys);
      for (int64_t i = 0; i < n; ++i) {
        softmax_range(scores.data() + i * keys, keys, 0, lengths[b] + i + 1);
      }
      gemm<T>(Transpose::kNo, Transpose::kNo, n, head_size, keys, T(1), scores.data(), keys,
              cache_v + cache_offset, head_size, T(0), out + b * max_new * q_stride + h * head_size,
              q_stride);
    }
  }
}

#define STEERLM_INSTANTIATE_ATTENTION(T)                                                          \
  template void attention_forward<T>(const AttentionShape&, const T*, const T*, const T*,         \
                                     const int32_t*, T*, T*);                                     \
  template void attention_backward<T>(const AttentionShape&, const T*, const T*, const T*,        \
                                      const T*, const T*, const int32_t*, T*, T*, T*);            \
  template void attention_forward_cached<T>(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                            const T*, const T*, const T*, const int64_t*,         \
                                            const int*, T*);
STEERLM_INSTANTIATE_ATTENTION(float)
STEERLM_INSTANTIATE_ATTENTION(double)
#undef STEERLM_INSTANTIATE_ATTENTION

}  // namespace steerlm::kernels
