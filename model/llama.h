// The Llama model on one rank: embedding -> L x [RMSNorm -> GQA causal attention with RoPE ->
// residual -> RMSNorm -> SwiGLU -> residual] -> final RMSNorm -> head (DESIGN §1, §5).
//
// Forward and backward are explicit per layer (no autograd). The model holds one ModelShard:
// a contiguous layer range, plus the embedding (first PP stage) and/or the final norm and heads
// (last PP stage); by default the whole model. Parameters live in a ParameterSet with Hugging
// Face names (notes/names.md); initial values depend only on (seed, name, global element index).
//
// A training step on a single stage:
//   LlamaModel model(config, HeadKind::kLanguageModel, 0, seed);
//   model.parameters().zero_grad();
//   for (const Batch& micro : micro_batches) {           // gradient accumulation
//     Activations saved;
//     LossSums sums = model.forward(micro, saved);
//     model.backward(saved, 1.0f / global_count);          // grads of sum / global count
//   }
//   optimizer.step(model.parameters(), step);              // model/optimizer.h
//
// Variable lengths: a Batch row holds one sequence followed by padding, or several packed
// sequences. `segments` says which sequence each token belongs to (0 = padding) and
// `positions` restarts at 0 for each sequence; a token attends only to earlier tokens of its
// own segment, so results do not depend on padding or packing.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "configs/steerlm.pb.h"
#include "model/parameters.h"
#include "model/tp_layout.h"
#include "runtime/tensor.h"

namespace steerlm {

enum class HeadKind {
  kLanguageModel,  // lm_head (or the tied embedding) + cross-entropy over a loss mask
  kAttribute,      // attribute_head (C -> A, with bias) + masked MSE, read at each sequence's end
};

// The part of the model one rank holds. TP/PP layouts fill it in from the process grid.
struct ModelShard {
  int layer_begin = 0;
  int layer_end = -1;         // exclusive; -1 means through the last layer
  bool has_embedding = true;  // the first PP stage
  bool has_final = true;      // the last PP stage: final norm and the head
  int tp_rank = 0;
  int tp_size = 1;
};

class ProcessGroup;

struct ModelOptions {
  float init_std = 0.02f;             // ModelSection.init_std; norms start at 1, biases at 0
  bool activation_recompute = false;  // ModelSection.activation_recompute: keep only layer inputs
  ModelShard shard;
  // The TP group (grid.tp()) the shard's partial results are reduced over; needed when
  // shard.tp_size > 1 and must outlive the model.
  ProcessGroup* tp_group = nullptr;
};

// One micro-batch. All tensors are on the host; B rows of T tokens.
struct Batch {
  Tensor tokens;     // (B, T) i32: input ids; padding holds any valid id
  Tensor positions;  // (B, T) i32: position of the token within its own sequence (RoPE)
  Tensor segments;   // (B, T) i32: sequence id within the row (>= 1), 0 for padding
  // Language-model head only:
  Tensor targets;    // (B, T) i32: the next token of each position (any valid id where untrained)
  Tensor loss_mask;  // (B, T) f32: 1 where the target is trained, 0 elsewhere
  // Attribute head only: one row per sequence, in reading order (row by row, left to right).
  Tensor attribute_targets;  // (S, A) f32; -100 marks a missing value

  int64_t batch_size() const { return tokens.dim(0); }
  int64_t seq_len() const { return tokens.dim(1); }
};

// Builds a right-padded batch (one sequence per row, rows padded with token 0 to `seq_len`),
// with positions 0.. and segment 1 per row; targets/loss_mask/attribute_targets left undefined.
Batch make_padded_batch(const std::vector<std::vector<int32_t>>& sequences, int64_t seq_len);

// The (row, position) of the last token of every sequence in the batch, in reading order: where
// the attribute head reads. Sequences end where the segment id changes or the row ends.
std::vector<std::pair<int64_t, int64_t>> sequence_ends(const Batch& batch);

// Loss as a sum and a count, so that accumulation and DP give exactly sum/count over the global
// batch (DESIGN §5).
struct LossSums {
  double sum = 0;     // LM: summed token cross-entropy; attribute: summed per-sequence masked MSE
  int64_t count = 0;  // LM: trained tokens; attribute: sequences with at least one target
  // Attribute head only, per attribute (A): summed squared errors and how many targets.
  std::vector<double> attribute_squared_error;
  std::vector<int64_t> attribute_count;
  double mean() const { return count > 0 ? sum / static_cast<double>(count) : 0.0; }
  LossSums& operator+=(const LossSums& other) {
    sum += other.sum;
    count += other.count;
    attribute_squared_error.resize(other.attribute_squared_error.size());
    attribute_count.resize(other.attribute_count.size());
    for (size_t a = 0; a < other.attribute_count.size(); ++a) {
      attribute_squared_error[a] += other.attribute_squared_error[a];
      attribute_count[a] += other.attribute_count[a];
    }
    return *this;
  }
};

template <typename T>
class LlamaCore;
template <typename T>
struct CoreActivations;

// What one micro-batch's forward saved for its backward. 1F1B keeps several alive at once.
class Activations {
 public:
  Activations();
  ~Activations();
  Activations(Activations&&) noexcept;
  Activations& operator=(Activations&&) noexcept;

  // (B, T, C) f32, cpu: the output hidden state of a shard without the final norm (PP send).
  Tensor hidden_out;

 private:
  friend class LlamaModel;
  std::unique_ptr<CoreActivations<float>> state_;
};

// Keys and values of past positions for decoding.
struct KvCache {
  int64_t batch_size = 0;
  int64_t max_len = 0;
  std::vector<int64_t> lengths;  // (B): positions already in the cache per sequence
  Tensor keys;                   // (L_shard * B, KVH, max_len, HS) f32, cpu; layer-major
  Tensor values;                 // (L_shard * B, KVH, max_len, HS) f32, cpu
};

class LlamaModel {
 public:
  // n_attributes is the attribute head's A (ignored for the LM head). Checks the config.
  LlamaModel(const config::ModelConfig& config, HeadKind head, int n_attributes, uint64_t seed,
             const ModelOptions& options = {});
  ~LlamaModel();
  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;

  const config::ModelConfig& config() const { return config_; }
  HeadKind head_kind() const { return head_; }
  int n_attributes() const { return n_attributes_; }
  const ModelShard& shard() const { return options_.shard; }
  ParameterSet& parameters() { return parameters_; }
  const ParameterSet& parameters() const { return parameters_; }

  // Training forward: returns this micro-batch's loss sums (zero unless the shard has the final
  // head) and fills `saved`. A shard without the embedding reads `hidden_in` (B, T, C) instead
  // of the tokens; a shard without the head leaves its output in saved.hidden_out.
  LossSums forward(const Batch& batch, Activations& saved, const Tensor& hidden_in = Tensor());
  // Accumulates into Parameter::grad the gradient of loss_scale * (this micro-batch's sum).
  // A shard without the head takes grad_hidden_out (B, T, C) instead. Returns the gradient of
  // hidden_in (B, T, C) for a shard without the embedding, else an undefined tensor.
  Tensor backward(Activations& saved, float loss_scale, const Tensor& grad_hidden_out = Tensor());

  // Forward without saving activations (validation, annotation).
  LossSums evaluate(const Batch& batch);
  // Logits (B, T, V) f32 at every position (LM head).
  Tensor logits(const Batch& batch);
  // Attribute predictions (S, A) f32 at the end of each sequence (attribute head).
  // A last PP stage reads hidden_in (B, T, C), the previous stage's output, instead.
  Tensor predict_attributes(const Batch& batch, const Tensor& hidden_in = Tensor());

  // Called during every backward with the parameters whose gradient this backward has just
  // finished adding to: the head's, then each layer's, then the embedding's. Lets the DP
  // gradient sync start while backward goes on (Trainer). Empty: no calls.
  using GradientsDoneHook = std::function<void(const std::vector<Parameter*>& done)>;
  void set_gradients_done_hook(GradientsDoneHook hook);

  // Sums over the TP group the gradients that each TP rank holds only a part of (k_proj and
  // v_proj when they are replicated over TP). Call once per optimizer step, after the backward
  // passes of every micro-batch and before the DP gradient sync; a no-op otherwise.
  void reduce_tp_partial_gradients();

  // How parameter `name` splits over TP (model/tp_layout.h): resharding, tests.
  TpPlacement tp_placement(const std::string& name) const;

  // Decoding with a KV cache.
  KvCache new_kv_cache(int64_t batch_size, int64_t max_len) const;
  // Appends new_tokens (B, N) i32 to each sequence: row b contributes its first n_new[b] tokens
  // (0 for a finished sequence) at positions cache.lengths[b]..; the rest of the row is ignored.
  // Returns the logits (B, V) f32 of each row's last new token (rows with n_new[b] == 0: zeros).
  // A PP stage without the embedding reads hidden_in (B, N, C); one without the head fills
  // *hidden_out (B, N, C) and returns an undefined tensor (PipelineSchedule::decode_step).
  Tensor forward_cached(KvCache& cache, const Tensor& new_tokens, const std::vector<int>& n_new,
                        const Tensor& hidden_in = Tensor(), Tensor* hidden_out = nullptr);

 private:
  void register_parameters();
  void initialise_parameters(uint64_t seed);

  config::ModelConfig config_;
  HeadKind head_;
  int n_attributes_;
  ModelOptions options_;
  ParameterSet parameters_;
  std::unique_ptr<LlamaCore<float>> core_;
};

}  // namespace steerlm
