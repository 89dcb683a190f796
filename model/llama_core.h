// The Llama computation templated on the scalar type: f32 for training and inference (behind
// LlamaModel), f64 for the finite-difference gradient checks. It owns no weights: it binds to
// parameter values and gradients by name through a lookup, so the same code runs on the
// ParameterSet's tensors or on f64 copies.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/llama.h"
#include "model/tp_layout.h"

namespace steerlm {

// Resolved architecture and shard of one rank.
struct CoreSpec {
  int64_t dim = 0;         // C
  int64_t n_layers = 0;    // L, of the whole model
  int64_t n_heads = 0;     // NH
  int64_t n_kv_heads = 0;  // KVH
  int64_t head_size = 0;   // HS
  int64_t ffn_hidden = 0;  // F
  int64_t vocab = 0;       // V
  double rope_theta = 10000;
  double norm_eps = 1e-5;
  bool tie_embeddings = false;
  HeadKind head = HeadKind::kLanguageModel;
  int64_t n_attributes = 0;  // A
  bool activation_recompute = false;
  ModelShard shard;  // layer_end resolved

  // This rank's part under tensor parallelism (all equal to the full sizes at TP = 1).
  int64_t local_heads = 0;     // NH / TP query heads
  int64_t local_kv_heads = 0;  // KVH / TP, or KVH when TP does not divide KVH (replicated)
  bool kv_replicated = false;  // every rank holds all of k_proj and v_proj
  int64_t attn_kv_heads = 0;   // k/v heads the attention kernel sees (local_heads if replicated)
  int64_t local_ffn = 0;       // F / TP
  int64_t local_vocab = 0;     // Vl = ceil(V / TP) rows of the vocab-split tables
  int64_t vocab_begin = 0;     // first vocab row of this rank
  int64_t valid_vocab = 0;     // rows of this rank that are real tokens (the rest is padding)

  // Validates the config (UserError naming the field) and resolves the shard.
  static CoreSpec from(const config::ModelConfig& config, HeadKind head, int n_attributes,
                       const ModelOptions& options);
};

enum class ParameterInit { kNormal, kOnes, kZeros };

struct ParameterInfo {
  std::string name;
  std::vector<int64_t> shape;  // this rank's shard
  bool weight_decay;
  ParameterInit init;
  TpPlacement placement;  // how the single-rank tensor is split over TP
};

// The TP placement of parameter `name` in the model of `spec` (tp_layout.h).
TpPlacement tp_placement(const CoreSpec& spec, const std::string& name);

// The parameters this shard holds, in registration order (names.md).
std::vector<ParameterInfo> parameter_layout(const CoreSpec& spec);

template <typename T>
struct ParameterView {
  T* value = nullptr;
  T* grad = nullptr;
};

template <typename T>
using ParameterLookup = std::function<ParameterView<T>(const std::string& name)>;

// Host storage of a parameter layout in any scalar type (f64 copies for gradient checks).
template <typename T>
class HostParameters {
 public:
  explicit HostParameters(const std::vector<ParameterInfo>& layout);
  // Copies values from an f32 ParameterSet with the same names.
  void copy_values_from(const ParameterSet& parameters);
  ParameterLookup<T> lookup();
  std::vector<T>& value(const std::string& name) { return values_.at(name); }
  std::vector<T>& grad(const std::string& name) { return grads_.at(name); }
  void zero_grad();

 private:
  std::map<std::string, std::vector<T>> values_;
  std::map<std::string, std::vector<T>> grads_;
};

// Everything one decoder layer's backward needs.
template <typename T>
struct LayerActivations {
  std::vector<T> input;             // (B*T, C) the layer input (residual stream)
  std::vector<T> norm1, rstd1;      // (B*T, C), (B*T)
  std::vector<T> q, k, v;           // (B*T, NH*HS), (B*T, KVH*HS) x2; q and k rotated
  std::vector<T> probs;             // (B, NH, T, T)
  std::vector<T> attn;              // (B*T, NH*HS) attention output before o_proj
  std::vector<T> residual;          // (B*T, C) input + attention
  std::vector<T> norm2, rstd2;      // (B*T, C), (B*T)
  std::vector<T> gate, up, hidden;  // (B*T, F) each; hidden = silu(gate) * up
};

template <typename T>
struct CoreActivations {
  Batch batch;                              // views of the micro-batch's tensors
  std::vector<LayerActivations<T>> layers;  // one per layer of the shard
  std::vector<T> final_input;               // (B*T, C)
  std::vector<T> final_norm, final_rstd;    // (B*T, C), (B*T)
  std::vector<T> head_buffer;  // LM: softmax (B*T, V); attribute: d(sum)/d predictions (S, A)
  std::vector<std::pair<int64_t, int64_t>> ends;  // attribute head: (row, position) per sequence
  std::vector<T> readout;                         // (S, C) final_norm at the sequence ends
  std::vector<T> output;                          // (B*T, C) shard output without the head
};

template <typename T>
class LlamaCore {
 public:
  // `tp` is the TP group when spec.shard.tp_size > 1 (f32 only), else null.
  LlamaCore(const CoreSpec& spec, const ParameterLookup<T>& lookup, ProcessGroup* tp = nullptr);

  const CoreSpec& spec() const { return spec_; }

  // Training forward (saved = what backward needs). hidden_in (B*T, C) replaces the embedding
  // on a shard without it.
  LossSums forward(const Batch& batch, CoreActivations<T>& saved, const T* hidden_in = nullptr);
  // Accumulates the gradient of loss_scale * sum into the bound gradients. grad_hidden_out
  // (B*T, C) replaces the head's gradient on a shard without it; grad_hidden_in (B*T, C)
  // receives the input gradient on a shard without the embedding.
  void backward(CoreActivations<T>& saved, T loss_scale, const T* grad_hidden_out = nullptr,
                T* grad_hidden_in = nullptr);

  // Logits (B*T, V) at every position, without saving activations.
  void logits(const Batch& batch, std::vector<T>& out);
  // Attribute predictions (S, A) at each sequence end.
  // A last PP stage reads hidden_in (B*T, C), its predecessor's output, instead of the tokens.
  void predict_attributes(const Batch& batch, std::vector<T>& out, const T* hidden_in = nullptr);

  // Decoding step; see LlamaModel::forward_cached. cache_k/cache_v (L_shard, B, KVH, max_len,
  // HS); tokens (B, N); logits_out (B, V) on the last stage. Under PP a stage without the
  // embedding reads hidden_in (B*N, C) and one without the head writes hidden_out (B*N, C).
  // Called during backward as each part of the shard has its gradients accumulated: the head
  // (kHeadPart), each local layer (its local index), the embedding (kEmbeddingPart).
  static constexpr int64_t kHeadPart = -1, kEmbeddingPart = -2;
  void set_backward_part_done(std::function<void(int64_t part)> hook) {
    backward_part_done_ = std::move(hook);
  }

  void forward_cached(T* cache_k, T* cache_v, int64_t max_len, std::vector<int64_t>& lengths,
                      const int32_t* tokens, int64_t batch, int64_t max_new,
                      const std::vector<int>& n_new, const T* hidden_in, T* hidden_out,
                      T* logits_out);

 private:
  struct LayerWeights {
    ParameterView<T> attn_norm, q, k, v, o, mlp_norm, gate, up, down;
  };

  int64_t local_layers() const { return spec_.shard.layer_end - spec_.shard.layer_begin; }
  // Runs embedding (or copies hidden_in) and the layers; leaves the shard output in x.
  void run_trunk(const Batch& batch, CoreActivations<T>& saved, bool save, const T* hidden_in,
                 std::vector<T>& x);
  void layer_forward(int64_t layer, const Batch& batch, std::vector<T>& x,
                     LayerActivations<T>& act);
  void layer_backward(int64_t layer, const Batch& batch, const LayerActivations<T>& act,
                      std::vector<T>& dx);
  // One layer of a decoding step on rows (B*N) at the given positions; appends their k/v to the
  // layer's cache for rows i < n_new[b].
  void layer_forward_cached(int64_t layer, std::vector<T>& x, const std::vector<int32_t>& positions,
                            T* cache_k, T* cache_v, int64_t max_len,
                            const std::vector<int64_t>& lengths, int64_t batch, int64_t max_new,
                            const std::vector<int>& n_new);
  LossSums head_forward(const Batch& batch, CoreActivations<T>& saved);
  void head_backward(CoreActivations<T>& saved, T loss_scale, std::vector<T>& dx);
  const T* output_weight() const;  // lm_head or the tied embedding (Vl, C)
  T* output_weight_grad() const;

  // Tensor parallelism (model/llama_tp.cc); each is a no-op or the plain kernel at TP = 1.
  // Sum over TP in place: the forward of a row-parallel output and the backward of a
  // column-parallel input (the gradient reaching the replicated norm before q/k/v, gate/up).
  void tp_sum(T* data, int64_t count);
  // residual (N, C) += input (N, K) W^T for the row-parallel W (C, K/TP):
  //   fwd: all-reduce of the partial products over TP, bwd: identity (linear_backward locally)
  void row_parallel_add(const T* input, int64_t n, int64_t k, const T* weight, T* residual);
  // Replicated k/v (TP does not divide KVH), in place on k and v: (N, KVH*HS) -> (N, NHl*HS),
  // the kv head of each local query head; fold is its backward (sums the query heads' gradients
  // per kv head). Both do nothing unless spec_.kv_replicated.
  void expand_kv(int64_t n, std::vector<T>& k, std::vector<T>& v) const;
  void fold_kv(int64_t n, std::vector<T>& d_k, std::vector<T>& d_v) const;
  void expand_kv_heads(const std::vector<T>& full, int64_t n, std::vector<T>& expanded) const;
  void fold_kv_heads(const std::vector<T>& expanded, int64_t n, std::vector<T>& full) const;
  // Applies one of the two maps above to k and to v in place (when kv_replicated).
  using KvHeadMap = void (LlamaCore::*)(const std::vector<T>&, int64_t, std::vector<T>&) const;
  void remap_kv(int64_t n, std::vector<T>& k, std::vector<T>& v, KvHeadMap map) const;
  // out (N, C) = rows of the vocab-split table (fwd: all-reduce over TP, bwd: identity).
  void embed(const int32_t* tokens, int64_t n, T* out);
  void embed_backward(const int32_t* tokens, int64_t n, const T* dout);
  // LM loss sum over logits (N, Vvalid) of this rank's vocab rows; in place they become the
  // softmax probabilities (vocab-parallel: max, sum of exponentials and target logit reduced
  // over TP). The backward turns them into d(scale * sum)/d logits.
  double lm_cross_entropy(T* logits, const Batch& batch, int64_t n);
  void lm_cross_entropy_backward(T* probs, const Batch& batch, int64_t n, T scale);
  // out (N, V) from this rank's logits (N, Vvalid): all-gather over TP, padding dropped.
  void gather_vocab(const std::vector<T>& local, int64_t n, T* out);

  CoreSpec spec_;
  ProcessGroup* tp_ = nullptr;
  std::function<void(int64_t part)> backward_part_done_;
  void part_done(int64_t part) {
    if (backward_part_done_) backward_part_done_(part);
  }
  ParameterView<T> embed_, final_norm_, lm_head_, attr_weight_, attr_bias_;
  std::vector<LayerWeights> layers_;
  LayerActivations<T> scratch_;  // layer internals when not saved (evaluation, recompute)
};

}  // namespace steerlm
