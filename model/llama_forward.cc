// The model around the layers: embedding, trunk, heads and losses, the training forward and
// backward, evaluation, and the KV-cache decoding step.
#include <glog/logging.h>

#include <algorithm>

#include "model/llama_core.h"
#include "runtime/kernels/attention.h"
#include "runtime/kernels/blas.h"
#include "runtime/kernels/cross_entropy.h"
#include "runtime/kernels/embedding.h"
#include "runtime/kernels/masked_mse.h"
#include "runtime/kernels/rmsnorm.h"
#include "runtime/kernels/rope.h"
#include "runtime/kernels/swiglu.h"

namespace steerlm {

// ---- Trunk and heads --------------------------------------------------------------------------

template <typename T>
void LlamaCore<T>::run_trunk(const Batch& batch, CoreActivations<T>& saved, bool save,
                             const T* hidden_in, std::vector<T>& x) {
  const int64_t n = batch.batch_size() * batch.seq_len();
  const int64_t c = spec_.dim;
  CHECK(batch.positions.defined() && batch.segments.defined()) << "batch without positions";

  // Input: the token embedding on the first stage, else the previous stage's output.
  x.resize(n * c);
  if (spec_.shard.has_embedding) {
    embed(batch.tokens.i32(), n, x.data());
  } else {
    CHECK(hidden_in != nullptr) << "a shard without the embedding needs hidden_in";
    std::copy(hidden_in, hidden_in + n * c, x.begin());
  }

  // Layers: save every intermediate, or with recompute only each layer's input.
  saved.layers.resize(save ? local_layers() : 0);
  for (int64_t layer = 0; layer < local_layers(); ++layer) {
    if (save && !spec_.activation_recompute) {
      layer_forward(layer, batch, x, saved.layers[layer]);
    } else {
      if (save) saved.layers[layer].input = x;
      layer_forward(layer, batch, x, scratch_);
    }
  }
}

template <typename T>
LossSums LlamaCore<T>::head_forward(const Batch& batch, CoreActivations<T>& saved) {
  const int64_t n = batch.batch_size() * batch.seq_len();
  const int64_t c = spec_.dim;
  LossSums sums;
  saved.final_norm.resize(n * c);
  saved.final_rstd.resize(n);
  kernels::rmsnorm_forward(saved.final_input.data(), final_norm_.value, n, c, spec_.norm_eps,
                           saved.final_norm.data(), saved.final_rstd.data());

  if (spec_.head == HeadKind::kLanguageModel) {
    // Logits of this rank's vocab rows, then softmax and summed token losses in place.
    CHECK(batch.targets.defined() && batch.loss_mask.defined()) << "LM batch without targets";
    saved.head_buffer.resize(n * spec_.valid_vocab);  // (B*T, Vvalid)
    kernels::linear_forward(saved.final_norm.data(), output_weight(), n, c, spec_.valid_vocab,
                            saved.head_buffer.data());
    sums.sum = lm_cross_entropy(saved.head_buffer.data(), batch, n);
    const float* mask = batch.loss_mask.f32();
    for (int64_t i = 0; i < n; ++i) sums.count += mask[i] != 0.0f;
    return sums;
  }

  // Attribute head: read each sequence's last token, predict, masked MSE.
  saved.ends = sequence_ends(batch);
  const int64_t s = static_cast<int64_t>(saved.ends.size());
  const int64_t a = spec_.n_attributes;
  CHECK(batch.attribute_targets.defined() && batch.attribute_targets.dim(0) == s &&
        batch.attribute_targets.dim(1) == a)
      << "attribute_targets must be (S=" << s << ", A=" << a << ")";
  saved.readout.resize(s * c);
  for (int64_t i = 0; i < s; ++i) {
    const int64_t row = saved.ends[i].first * batch.seq_len() + saved.ends[i].second;
    std::copy_n(saved.final_norm.data() + row * c, c, saved.readout.data() + i * c);
  }
  std::vector<T> predictions(s * a);  // (S, A)
  for (int64_t i = 0; i < s; ++i) std::copy_n(attr_bias_.value, a, predictions.data() + i * a);
  kernels::gemm<T>(Transpose::kNo, Transpose::kYes, s, a, c, T(1), saved.readout.data(), c,
                   attr_weight_.value, c, T(1), predictions.data(), a);
  saved.head_buffer.resize(s * a);
  const kernels::MaskedMseSums mse = kernels::masked_mse(
      predictions.data(), batch.attribute_targets.f32(), s, a, saved.head_buffer.data());
  sums.sum = mse.sum;
  sums.count = mse.count;

  // Each attribute's own squared errors, for the per-attribute training loss.
  const float* targets = batch.attribute_targets.f32();  // (S, A) f32, cpu; -100: missing
  sums.attribute_squared_error.assign(a, 0.0);
  sums.attribute_count.assign(a, 0);
  for (int64_t i = 0; i < s * a; ++i) {
    if (targets[i] == -100.0f) continue;
    const double error = static_cast<double>(predictions[i]) - targets[i];
    sums.attribute_squared_error[i % a] += error * error;
    sums.attribute_count[i % a] += 1;
  }
  return sums;
}

// dx (B*T, C) receives the gradient of the final norm's input.
template <typename T>
void LlamaCore<T>::head_backward(CoreActivations<T>& saved, T loss_scale, std::vector<T>& dx) {
  const Batch& batch = saved.batch;
  const int64_t n = batch.batch_size() * batch.seq_len();
  const int64_t c = spec_.dim;
  std::vector<T> d_norm(n * c, T(0));  // (B*T, C)

  if (spec_.head == HeadKind::kLanguageModel) {
    lm_cross_entropy_backward(saved.head_buffer.data(), batch, n, loss_scale);
    kernels::linear_backward(saved.head_buffer.data(), saved.final_norm.data(), output_weight(), n,
                             c, spec_.valid_vocab, d_norm.data(), output_weight_grad(), false);
    tp_sum(d_norm.data(), n * c);  // vocab-parallel head: bwd all-reduce over TP
  } else {
    const int64_t s = static_cast<int64_t>(saved.ends.size());
    const int64_t a = spec_.n_attributes;
    std::vector<T> d_pred(s * a), d_readout(s * c);  // (S, A), (S, C)
    for (int64_t i = 0; i < s * a; ++i) d_pred[i] = saved.head_buffer[i] * loss_scale;
    for (int64_t i = 0; i < s; ++i) {
      for (int64_t j = 0; j < a; ++j) attr_bias_.grad[j] += d_pred[i * a + j];
    }
    kernels::linear_backward(d_pred.data(), saved.readout.data(), attr_weight_.value, s, c, a,
                             d_readout.data(), attr_weight_.grad, false);
    for (int64_t i = 0; i < s; ++i) {
      const int64_t row = saved.ends[i].first * batch.seq_len() + saved.ends[i].second;
      std::copy_n(d_readout.data() + i * c, c, d_norm.data() + row * c);
    }
  }

  dx.resize(n * c);
  kernels::rmsnorm_backward(d_norm.data(), saved.final_input.data(), final_norm_.value,
                            saved.final_rstd.data(), n, c, dx.data(), final_norm_.grad, false);
}

// ---- Training forward / backward --------------------------------------------------------------

template <typename T>
LossSums LlamaCore<T>::forward(const Batch& batch, CoreActivations<T>& saved, const T* hidden_in) {
  saved.batch = batch;
  std::vector<T> x;  // (B*T, C)
  run_trunk(batch, saved, true, hidden_in, x);
  if (!spec_.shard.has_final) {
    saved.output = std::move(x);
    return LossSums{};
  }
  saved.final_input = std::move(x);
  return head_forward(batch, saved);
}

template <typename T>
void LlamaCore<T>::backward(CoreActivations<T>& saved, T loss_scale, const T* grad_hidden_out,
                            T* grad_hidden_in) {
  const Batch& batch = saved.batch;
  const int64_t n = batch.batch_size() * batch.seq_len();
  const int64_t c = spec_.dim;
  CHECK_EQ(static_cast<int64_t>(saved.layers.size()), local_layers())
      << "backward without a training forward";

  // Gradient of the shard output: from the head, or handed in by the next stage.
  std::vector<T> dx;  // (B*T, C)
  if (spec_.shard.has_final) {
    head_backward(saved, loss_scale, dx);
    part_done(kHeadPart);
  } else {
    CHECK(grad_hidden_out != nullptr) << "a shard without the head needs grad_hidden_out";
    dx.assign(grad_hidden_out, grad_hidden_out + n * c);
  }

  // Layers in reverse; with recompute, rebuild the layer's intermediates from its input first.
  for (int64_t layer = local_layers() - 1; layer >= 0; --layer) {
    if (spec_.activation_recompute) {
      std::vector<T> x = saved.layers[layer].input;
      layer_forward(layer, batch, x, scratch_);
      layer_backward(layer, batch, scratch_, dx);
    } else {
      layer_backward(layer, batch, saved.layers[layer], dx);
    }
    part_done(layer);
  }

  // Input gradient: into the embedding table, or out to the previous stage.
  if (spec_.shard.has_embedding) {
    embed_backward(batch.tokens.i32(), n, dx.data());
    part_done(kEmbeddingPart);
  } else {
    CHECK(grad_hidden_in != nullptr) << "a shard without the embedding needs grad_hidden_in";
    std::copy(dx.begin(), dx.end(), grad_hidden_in);
  }
  saved.layers.clear();
}

// ---- Evaluation -------------------------------------------------------------------------------

template <typename T>
void LlamaCore<T>::logits(const Batch& batch, std::vector<T>& out) {
  CHECK(spec_.head == HeadKind::kLanguageModel && spec_.shard.has_final)
      << "logits need the LM head";
  const int64_t n = batch.batch_size() * batch.seq_len();
  CoreActivations<T> state;
  std::vector<T> x;
  run_trunk(batch, state, false, nullptr, x);
  std::vector<T> normed(n * spec_.dim), rstd(n);
  kernels::rmsnorm_forward(x.data(), final_norm_.value, n, spec_.dim, spec_.norm_eps, normed.data(),
                           rstd.data());
  std::vector<T> local(n * spec_.valid_vocab);  // (B*T, Vvalid)
  kernels::linear_forward(normed.data(), output_weight(), n, spec_.dim, spec_.valid_vocab,
                          local.data());
  out.resize(n * spec_.vocab);
  gather_vocab(local, n, out.data());
}

template <typename T>
void LlamaCore<T>::predict_attributes(const Batch& batch, std::vector<T>& out, const T* hidden_in) {
  CHECK(spec_.head == HeadKind::kAttribute && spec_.shard.has_final) << "needs the attribute head";
  const int64_t c = spec_.dim, a = spec_.n_attributes;
  CoreActivations<T> state;
  std::vector<T> x;
  run_trunk(batch, state, false, hidden_in, x);
  const std::vector<std::pair<int64_t, int64_t>> ends = sequence_ends(batch);
  const int64_t s = static_cast<int64_t>(ends.size());
  std::vector<T> readout(s * c), rstd(s);  // (S, C): normalise only the rows read
  for (int64_t i = 0; i < s; ++i) {
    std::copy_n(x.data() + (ends[i].first * batch.seq_len() + ends[i].second) * c, c,
                readout.data() + i * c);
  }
  kernels::rmsnorm_forward(readout.data(), final_norm_.value, s, c, spec_.norm_eps, readout.data(),
                           rstd.data());
  out.resize(s * a);
  for (int64_t i = 0; i < s; ++i) std::copy_n(attr_bias_.value, a, out.data() + i * a);
  kernels::gemm<T>(Transpose::kNo, Transpose::kYes, s, a, c, T(1), readout.data(), c,
                   attr_weight_.value, c, T(1), out.data(), a);
}

// ---- Decoding with a KV cache -----------------------------------------------------------------

template <typename T>
void LlamaCore<T>::layer_forward_cached(int64_t layer, std::vector<T>& x,
                                        const std::vector<int32_t>& positions, T* cache_k,
                                        T* cache_v, int64_t max_len,
                                        const std::vector<int64_t>& lengths, int64_t batch,
                                        int64_t max_new, const std::vector<int>& n_new) {
  const LayerWeights& w = layers_[layer];
  const int64_t n = batch * max_new, c = spec_.dim, f = spec_.local_ffn, hs = spec_.head_size;
  const int64_t q_width = spec_.local_heads * hs, kv_width = spec_.local_kv_heads * hs;
  const int64_t kv_heads = spec_.attn_kv_heads, attn_kv_width = kv_heads * hs;
  std::vector<T> normed(n * c), rstd(n), q(n * q_width), k(n * kv_width), v(n * kv_width);
  std::vector<T> attn(n * q_width, T(0));

  // Attention: project and rotate the new tokens, append their k/v, attend over the cache.
  kernels::rmsnorm_forward(x.data(), w.attn_norm.value, n, c, spec_.norm_eps, normed.data(),
                           rstd.data());
  kernels::linear_forward(normed.data(), w.q.value, n, c, q_width, q.data());
  kernels::linear_forward(normed.data(), w.k.value, n, c, kv_width, k.data());
  kernels::linear_forward(normed.data(), w.v.value, n, c, kv_width, v.data());
  kernels::rope_apply(q.data(), n, spec_.local_heads, hs, q_width, positions.data(),
                      spec_.rope_theta, kernels::RopeDirection::kForward);
  kernels::rope_apply(k.data(), n, spec_.local_kv_heads, hs, kv_width, positions.data(),
                      spec_.rope_theta, kernels::RopeDirection::kForward);
  // The cache holds one k/v head per local query head (model/llama_tp.cc).
  expand_kv(n, k, v);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < n_new[b]; ++i) {
      for (int64_t g = 0; g < kv_heads; ++g) {
        const int64_t slot = ((b * kv_heads + g) * max_len + lengths[b] + i) * hs;
        const int64_t row = (b * max_new + i) * attn_kv_width + g * hs;
        std::copy_n(k.data() + row, hs, cache_k + slot);
        std::copy_n(v.data() + row, hs, cache_v + slot);
      }
    }
  }
  kernels::attention_forward_cached(batch, max_new, spec_.local_heads, kv_heads, hs, max_len,
                                    q.data(), cache_k, cache_v, lengths.data(), n_new.data(),
                                    attn.data());
  row_parallel_add(attn.data(), n, q_width, w.o.value, x.data());

  // MLP.
  std::vector<T> gate(n * f), up(n * f), hidden(n * f);
  kernels::rmsnorm_forward(x.data(), w.mlp_norm.value, n, c, spec_.norm_eps, normed.data(),
                           rstd.data());
  kernels::linear_forward(normed.data(), w.gate.value, n, c, f, gate.data());
  kernels::linear_forward(normed.data(), w.up.value, n, c, f, up.data());
  kernels::swiglu_forward(gate.data(), up.data(), n * f, hidden.data());
  row_parallel_add(hidden.data(), n, f, w.down.value, x.data());
}

template <typename T>
void LlamaCore<T>::forward_cached(T* cache_k, T* cache_v, int64_t max_len,
                                  std::vector<int64_t>& lengths, const int32_t* tokens,
                                  int64_t batch, int64_t max_new, const std::vector<int>& n_new,
                                  const T* hidden_in, T* hidden_out, T* logits_out) {
  CHECK(spec_.head == HeadKind::kLanguageModel) << "decoding needs the LM head";
  CHECK(spec_.shard.has_embedding || hidden_in != nullptr) << "a later stage needs hidden_in";
  CHECK(spec_.shard.has_final || hidden_out != nullptr) << "an earlier stage needs hidden_out";
  const int64_t n = batch * max_new, c = spec_.dim;
  std::vector<int32_t> positions(n);  // (B*N): rows past n_new[b] are ignored
  for (int64_t b = 0; b < batch; ++b) {
    CHECK(n_new[b] >= 0 && n_new[b] <= max_new) << "n_new[" << b << "] = " << n_new[b];
    CHECK_LE(lengths[b] + n_new[b], max_len) << "KV cache of " << max_len << " positions is full";
    for (int64_t i = 0; i < max_new; ++i) positions[b * max_new + i] = lengths[b] + i;
  }

  // Embed (or take the previous stage's output), run every layer against its cache slice.
  std::vector<T> x(n * c);  // (B*N, C)
  if (spec_.shard.has_embedding) {
    embed(tokens, n, x.data());
  } else {
    std::copy(hidden_in, hidden_in + n * c, x.begin());
  }
  const int64_t layer_cache = batch * spec_.attn_kv_heads * max_len * spec_.head_size;
  for (int64_t layer = 0; layer < local_layers(); ++layer) {
    layer_forward_cached(layer, x, positions, cache_k + layer * layer_cache,
                         cache_v + layer * layer_cache, max_len, lengths, batch, max_new, n_new);
  }
  if (!spec_.shard.has_final) {
    std::copy(x.begin(), x.end(), hidden_out);
    for (int64_t b = 0; b < batch; ++b) lengths[b] += n_new[b];
    return;
  }

  // Logits of each row's last new token, vocab-parallel under TP (every TP rank takes part).
  std::vector<T> last(batch * c, T(0)), rstd(1);  // (B, C)
  for (int64_t b = 0; b < batch; ++b) {
    if (n_new[b] == 0) continue;
    const T* row = x.data() + (b * max_new + n_new[b] - 1) * c;
    kernels::rmsnorm_forward(row, final_norm_.value, 1, c, spec_.norm_eps, last.data() + b * c,
                             rstd.data());
  }
  std::vector<T> local(batch * spec_.valid_vocab);  // (B, Vvalid)
  for (int64_t b = 0; b < batch; ++b) {
    // One row at a time, as single-rank decoding always did (the same GEMM shapes, bit for bit).
    kernels::linear_forward(last.data() + b * c, output_weight(), 1, c, spec_.valid_vocab,
                            local.data() + b * spec_.valid_vocab);
  }
  gather_vocab(local, batch, logits_out);
  for (int64_t b = 0; b < batch; ++b) {
    if (n_new[b] == 0)
      std::fill(logits_out + b * spec_.vocab, logits_out + (b + 1) * spec_.vocab, T(0));
    lengths[b] += n_new[b];
  }
}

template class LlamaCore<float>;
template class LlamaCore<double>;

}  // namespace steerlm
