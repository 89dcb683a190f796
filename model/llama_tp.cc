// Tensor parallelism inside the Llama computation (Megatron style, DESIGN §5; the split of each
// weight is in model/tp_layout.h). Every helper reduces to the single-rank kernel at TP = 1, so
// the f64 gradient checks and single-rank runs take exactly the code they always took.
//
// The communication points of one decoder layer, forward (backward mirrors them):
//   norm1 (replicated) -> q/k/v column-parallel [bwd: sum d_norm1 over TP] -> attention on the
//   local heads -> o_proj row-parallel [fwd: sum over TP] -> + residual
//   norm2 (replicated) -> gate/up column-parallel [bwd: sum d_norm2 over TP] -> SwiGLU ->
//   down_proj row-parallel [fwd: sum over TP] -> + residual
#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "model/llama_core.h"
#include "parallel/process_group.h"
#include "parallel/tp_mappings.h"
#include "runtime/kernels/blas.h"
#include "runtime/kernels/cross_entropy.h"
#include "runtime/kernels/embedding.h"

namespace steerlm {

namespace {

// A host f32 view for the communicators; TP runs in f32 only (the f64 core is single-rank).
template <typename T>
Tensor host_view(T* data, int64_t count) {
  if constexpr (std::is_same_v<T, float>) {
    return Tensor::wrap(data, Shape{count}, DType::kF32);
  } else {
    LOG(FATAL) << "tensor parallelism runs in f32 only";
    return Tensor();
  }
}

}  // namespace

template <typename T>
void LlamaCore<T>::tp_sum(T* data, int64_t count) {
  if (tp_ == nullptr || count == 0) return;
  Tensor view = host_view(data, count);
  tp_->all_reduce(view);
}

template <typename T>
void LlamaCore<T>::row_parallel_add(const T* input, int64_t n, int64_t k, const T* weight,
                                    T* residual) {
  const int64_t c = spec_.dim;
  if (tp_ == nullptr) {
    kernels::gemm<T>(Transpose::kNo, Transpose::kYes, n, c, k, T(1), input, k, weight, k, T(1),
                     residual, c);
    return;
  }
  // The partial products of this rank's input columns, summed over TP, then the residual.
  std::vector<T> partial(n * c, T(0));  // (N, C)
  kernels::gemm<T>(Transpose::kNo, Transpose::kYes, n, c, k, T(1), input, k, weight, k, T(0),
                   partial.data(), c);
  Tensor view = host_view(partial.data(), n * c);
  reduce_from_tp_region(*tp_, view);
  for (int64_t i = 0; i < n * c; ++i) residual[i] += partial[i];
}

template <typename T>
void LlamaCore<T>::remap_kv(int64_t n, std::vector<T>& k, std::vector<T>& v, KvHeadMap map) const {
  if (!spec_.kv_replicated) return;
  std::vector<T> mapped;
  for (std::vector<T>* tensor : {&k, &v}) {
    (this->*map)(*tensor, n, mapped);
    tensor->swap(mapped);
  }
}

template <typename T>
void LlamaCore<T>::expand_kv(int64_t n, std::vector<T>& k, std::vector<T>& v) const {
  remap_kv(n, k, v, &LlamaCore::expand_kv_heads);
}

template <typename T>
void LlamaCore<T>::fold_kv(int64_t n, std::vector<T>& d_k, std::vector<T>& d_v) const {
  remap_kv(n, d_k, d_v, &LlamaCore::fold_kv_heads);
}

template <typename T>
void LlamaCore<T>::expand_kv_heads(const std::vector<T>& full, int64_t n,
                                   std::vector<T>& expanded) const {
  // Local query head h is global head tp_rank * NHl + h; its kv head is that / (NH / KVH).
  const int64_t hs = spec_.head_size, group = spec_.n_heads / spec_.n_kv_heads;
  const int64_t full_width = spec_.n_kv_heads * hs, width = spec_.local_heads * hs;
  expanded.resize(n * width);
  for (int64_t row = 0; row < n; ++row) {
    for (int64_t h = 0; h < spec_.local_heads; ++h) {
      const int64_t kv = (spec_.shard.tp_rank * spec_.local_heads + h) / group;
      std::copy_n(full.data() + row * full_width + kv * hs, hs,
                  expanded.data() + row * width + h * hs);
    }
  }
}

template <typename T>
void LlamaCore<T>::fold_kv_heads(const std::vector<T>& expanded, int64_t n,
                                 std::vector<T>& full) const {
  const int64_t hs = spec_.head_size, group = spec_.n_heads / spec_.n_kv_heads;
  const int64_t full_width = spec_.n_kv_heads * hs, width = spec_.local_heads * hs;
  full.assign(n * full_width, T(0));
  for (int64_t row = 0; row < n; ++row) {
    for (int64_t h = 0; h < spec_.local_heads; ++h) {
      const int64_t kv = (spec_.shard.tp_rank * spec_.local_heads + h) / group;
      const T* source = expanded.data() + row * width + h * hs;
      T* target = full.data() + row * full_width + kv * hs;
      for (int64_t i = 0; i < hs; ++i) target[i] += source[i];
    }
  }
}

template <typename T>
void LlamaCore<T>::embed(const int32_t* tokens, int64_t n, T* out) {
  const int64_t c = spec_.dim;
  if (tp_ == nullptr) {
    kernels::embedding_forward(tokens, n, embed_.value, c, out);
    return;
  }
  // Rows of tokens in this rank's vocab range; the others come from their owners' sums.
  std::fill(out, out + n * c, T(0));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = tokens[i] - spec_.vocab_begin;
    if (row >= 0 && row < spec_.valid_vocab) std::copy_n(embed_.value + row * c, c, out + i * c);
  }
  Tensor view = host_view(out, n * c);
  reduce_from_tp_region(*tp_, view);
}

template <typename T>
void LlamaCore<T>::embed_backward(const int32_t* tokens, int64_t n, const T* dout) {
  const int64_t c = spec_.dim;
  if (tp_ == nullptr) {
    kernels::embedding_backward(tokens, n, dout, c, embed_.grad);
    return;
  }
  // The scatter-add of the tokens this rank owns, in token order like the kernel.
  std::vector<int32_t> local_tokens;
  std::vector<T> local_dout;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = tokens[i] - spec_.vocab_begin;
    if (row < 0 || row >= spec_.valid_vocab) continue;
    local_tokens.push_back(static_cast<int32_t>(row));
    local_dout.insert(local_dout.end(), dout + i * c, dout + (i + 1) * c);
  }
  kernels::embedding_backward(local_tokens.data(), static_cast<int64_t>(local_tokens.size()),
                              local_dout.data(), c, embed_.grad);
}

template <typename T>
double LlamaCore<T>::lm_cross_entropy(T* logits, const Batch& batch, int64_t n) {
  const int32_t* targets = batch.targets.i32();
  const float* mask = batch.loss_mask.f32();
  const int64_t width = spec_.valid_vocab;
  if (tp_ == nullptr) return kernels::cross_entropy_forward(logits, targets, mask, n, width);

  // Row maxima over the whole vocabulary (for a stable softmax), then the sums of exponentials
  // and the target logits, each reduced over TP.
  std::vector<T> row_max(n, -std::numeric_limits<T>::infinity());
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < width; ++j) row_max[i] = std::max(row_max[i], logits[i * width + j]);
  }
  Tensor max_view = host_view(row_max.data(), n);
  tp_->all_reduce(max_view, ReduceOp::kMax);
  std::vector<T> sums(2 * n, T(0));  // (N) sums of exponentials, then (N) target logits
  for (int64_t i = 0; i < n; ++i) {
    T* row = logits + i * width;
    for (int64_t j = 0; j < width; ++j) sums[i] += std::exp(row[j] - row_max[i]);
    const int64_t target = targets[i] - spec_.vocab_begin;
    if (target >= 0 && target < width) sums[n + i] = row[target];
  }
  tp_sum(sums.data(), 2 * n);

  // Loss of trained rows in row order; the logits become probabilities.
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    T* row = logits + i * width;
    for (int64_t j = 0; j < width; ++j) row[j] = std::exp(row[j] - row_max[i]) / sums[i];
    if (mask[i] != 0.0f) {
      total += mask[i] * (std::log(static_cast<double>(sums[i])) + row_max[i] - sums[n + i]);
    }
  }
  return total;
}

template <typename T>
void LlamaCore<T>::lm_cross_entropy_backward(T* probs, const Batch& batch, int64_t n, T scale) {
  const int32_t* targets = batch.targets.i32();
  const float* mask = batch.loss_mask.f32();
  const int64_t width = spec_.valid_vocab;
  if (tp_ == nullptr) {
    kernels::cross_entropy_backward(probs, targets, mask, n, width, scale);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    T* row = probs + i * width;
    const T weight = scale * static_cast<T>(mask[i]);
    for (int64_t j = 0; j < width; ++j) row[j] *= weight;
    const int64_t target = targets[i] - spec_.vocab_begin;
    if (target >= 0 && target < width) row[target] -= weight;
  }
}

template <typename T>
void LlamaCore<T>::gather_vocab(const std::vector<T>& local, int64_t n, T* out) {
  const int64_t vocab = spec_.vocab;
  if (tp_ == nullptr) {
    std::copy(local.begin(), local.end(), out);
    return;
  }
  // Pad each rank's block to Vl columns so the all-gather is uniform, then drop the padding.
  const int64_t block = spec_.local_vocab, tp = spec_.shard.tp_size;
  std::vector<T> padded(n * block, T(0)), gathered(tp * n * block);  // (N, Vl), (TP, N, Vl)
  for (int64_t i = 0; i < n; ++i) {
    std::copy_n(local.data() + i * spec_.valid_vocab, spec_.valid_vocab, padded.data() + i * block);
  }
  Tensor padded_view = host_view(padded.data(), n * block);
  Tensor gathered_view = host_view(gathered.data(), tp * n * block);
  tp_->all_gather(padded_view, gathered_view);
  for (int64_t r = 0; r < tp; ++r) {
    const int64_t columns = tp_valid_extent(vocab, static_cast<int>(r), static_cast<int>(tp));
    for (int64_t i = 0; i < n; ++i) {
      std::copy_n(gathered.data() + (r * n + i) * block, columns, out + i * vocab + r * block);
    }
  }
}

template class LlamaCore<float>;
template class LlamaCore<double>;

}  // namespace steerlm
