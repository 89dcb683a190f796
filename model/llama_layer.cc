// One decoder layer, forward and backward:
//   x -> RMSNorm -> q/k/v -> RoPE -> causal GQA attention -> o_proj -> + x = residual
//     -> RMSNorm -> gate/up -> SwiGLU -> down_proj -> + residual = output
#include <glog/logging.h>

#include <algorithm>

#include "model/llama_core.h"
#include "runtime/kernels/attention.h"
#include "runtime/kernels/blas.h"
#include "runtime/kernels/rmsnorm.h"
#include "runtime/kernels/rope.h"
#include "runtime/kernels/swiglu.h"

namespace steerlm {

namespace {

kernels::AttentionShape attention_shape(const CoreSpec& spec, const Batch& batch) {
  kernels::AttentionShape shape;
  shape.batch = batch.batch_size();
  shape.seq_len = batch.seq_len();
  shape.heads = spec.local_heads;
  shape.kv_heads = spec.attn_kv_heads;
  shape.head_size = spec.head_size;
  shape.q_stride = spec.local_heads * spec.head_size;
  shape.kv_stride = spec.attn_kv_heads * spec.head_size;
  return shape;
}

}  // namespace

// x (B*T, C) in, layer output out in x; act receives every intermediate.
template <typename T>
void LlamaCore<T>::layer_forward(int64_t layer, const Batch& batch, std::vector<T>& x,
                                 LayerActivations<T>& act) {
  const LayerWeights& w = layers_[layer];
  const int64_t n = batch.batch_size() * batch.seq_len();
  const int64_t c = spec_.dim, f = spec_.local_ffn;
  const int64_t q_width = spec_.local_heads * spec_.head_size;
  const int64_t kv_width = spec_.local_kv_heads * spec_.head_size;  // k/v weight rows held
  const int32_t* positions = batch.positions.i32();
  act.input = x;
  act.norm1.resize(n * c), act.rstd1.resize(n), act.q.resize(n * q_width);
  act.k.resize(n * kv_width), act.v.resize(n * kv_width), act.attn.resize(n * q_width);
  act.probs.resize(batch.batch_size() * spec_.local_heads * batch.seq_len() * batch.seq_len());
  act.norm2.resize(n * c), act.rstd2.resize(n);
  act.gate.resize(n * f), act.up.resize(n * f), act.hidden.resize(n * f);

  // Attention block: norm, projections, rotary, attention, output projection, residual.
  kernels::rmsnorm_forward(x.data(), w.attn_norm.value, n, c, spec_.norm_eps, act.norm1.data(),
                           act.rstd1.data());
  kernels::linear_forward(act.norm1.data(), w.q.value, n, c, q_width, act.q.data());
  kernels::linear_forward(act.norm1.data(), w.k.value, n, c, kv_width, act.k.data());
  kernels::linear_forward(act.norm1.data(), w.v.value, n, c, kv_width, act.v.data());
  kernels::rope_apply(act.q.data(), n, spec_.local_heads, spec_.head_size, q_width, positions,
                      spec_.rope_theta, kernels::RopeDirection::kForward);
  kernels::rope_apply(act.k.data(), n, spec_.local_kv_heads, spec_.head_size, kv_width, positions,
                      spec_.rope_theta, kernels::RopeDirection::kForward);
  // Attention reads one k/v head per local query head; act.k/v keep that expanded form.
  expand_kv(n, act.k, act.v);
  kernels::attention_forward(attention_shape(spec_, batch), act.q.data(), act.k.data(),
                             act.v.data(), batch.segments.i32(), act.probs.data(), act.attn.data());
  act.residual = x;
  row_parallel_add(act.attn.data(), n, q_width, w.o.value, act.residual.data());

  // MLP block: norm, gate/up, SwiGLU, down projection, residual.
  kernels::rmsnorm_forward(act.residual.data(), w.mlp_norm.value, n, c, spec_.norm_eps,
                           act.norm2.data(), act.rstd2.data());
  kernels::linear_forward(act.norm2.data(), w.gate.value, n, c, f, act.gate.data());
  kernels::linear_forward(act.norm2.data(), w.up.value, n, c, f, act.up.data());
  kernels::swiglu_forward(act.gate.data(), act.up.data(), n * f, act.hidden.data());
  x = act.residual;
  row_parallel_add(act.hidden.data(), n, f, w.down.value, x.data());
}

// dx (B*T, C): the gradient of the layer output in, of the layer input out.
template <typename T>
void LlamaCore<T>::layer_backward(int64_t layer, const Batch& batch, const LayerActivations<T>& act,
                                  std::vector<T>& dx) {
  const LayerWeights& w = layers_[layer];
  const int64_t n = batch.batch_size() * batch.seq_len();
  const int64_t c = spec_.dim, f = spec_.local_ffn;
  const int64_t q_width = spec_.local_heads * spec_.head_size;
  const int64_t kv_width = spec_.local_kv_heads * spec_.head_size;
  const int64_t attn_kv_width = spec_.attn_kv_heads * spec_.head_size;
  const int32_t* positions = batch.positions.i32();
  std::vector<T> d_hidden(n * f), d_gate(n * f), d_up(n * f);  // (B*T, F)
  std::vector<T> d_norm(n * c);                                // (B*T, C)

  // MLP block backward; dx becomes the gradient of the residual stream after attention.
  kernels::linear_backward(dx.data(), act.hidden.data(), w.down.value, n, f, c, d_hidden.data(),
                           w.down.grad, false);
  kernels::swiglu_backward(d_hidden.data(), act.gate.data(), act.up.data(), n * f, d_gate.data(),
                           d_up.data());
  kernels::linear_backward(d_gate.data(), act.norm2.data(), w.gate.value, n, c, f, d_norm.data(),
                           w.gate.grad, false);
  kernels::linear_backward(d_up.data(), act.norm2.data(), w.up.value, n, c, f, d_norm.data(),
                           w.up.grad, true);
  tp_sum(d_norm.data(), n * c);  // column-parallel gate/up: bwd all-reduce over TP
  kernels::rmsnorm_backward(d_norm.data(), act.residual.data(), w.mlp_norm.value, act.rstd2.data(),
                            n, c, dx.data(), w.mlp_norm.grad, true);

  // Attention block backward.
  std::vector<T> d_attn(n * q_width), d_q(n * q_width);           // (B*T, NH*HS)
  std::vector<T> d_k(n * attn_kv_width), d_v(n * attn_kv_width);  // (B*T, KVHa*HS)
  kernels::linear_backward(dx.data(), act.attn.data(), w.o.value, n, q_width, c, d_attn.data(),
                           w.o.grad, false);
  kernels::attention_backward(attention_shape(spec_, batch), d_attn.data(), act.q.data(),
                              act.k.data(), act.v.data(), act.probs.data(), batch.segments.i32(),
                              d_q.data(), d_k.data(), d_v.data());
  kernels::rope_apply(d_q.data(), n, spec_.local_heads, spec_.head_size, q_width, positions,
                      spec_.rope_theta, kernels::RopeDirection::kBackward);
  // Back from one k/v head per query head to the kv heads the weights produce.
  fold_kv(n, d_k, d_v);
  kernels::rope_apply(d_k.data(), n, spec_.local_kv_heads, spec_.head_size, kv_width, positions,
                      spec_.rope_theta, kernels::RopeDirection::kBackward);
  kernels::linear_backward(d_q.data(), act.norm1.data(), w.q.value, n, c, q_width, d_norm.data(),
                           w.q.grad, false);
  kernels::linear_backward(d_k.data(), act.norm1.data(), w.k.value, n, c, kv_width, d_norm.data(),
                           w.k.grad, true);
  kernels::linear_backward(d_v.data(), act.norm1.data(), w.v.value, n, c, kv_width, d_norm.data(),
                           w.v.grad, true);
  tp_sum(d_norm.data(), n * c);  // column-parallel q/k/v: bwd all-reduce over TP
  kernels::rmsnorm_backward(d_norm.data(), act.input.data(), w.attn_norm.value, act.rstd1.data(), n,
                            c, dx.data(), w.attn_norm.grad, true);
}

template class LlamaCore<float>;
template class LlamaCore<double>;

}  // namespace steerlm
