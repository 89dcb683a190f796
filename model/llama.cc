#include "model/llama.h"

#include <glog/logging.h>

#include <algorithm>

#include "model/llama_core.h"
#include "parallel/process_group.h"

namespace steerlm {

Batch make_padded_batch(const std::vector<std::vector<int32_t>>& sequences, int64_t seq_len) {
  const int64_t rows = static_cast<int64_t>(sequences.size());
  std::vector<int32_t> tokens(rows * seq_len, 0), positions(rows * seq_len, 0);
  std::vector<int32_t> segments(rows * seq_len, 0);
  for (int64_t row = 0; row < rows; ++row) {
    CHECK_LE(static_cast<int64_t>(sequences[row].size()), seq_len) << "sequence " << row;
    for (size_t t = 0; t < sequences[row].size(); ++t) {
      tokens[row * seq_len + t] = sequences[row][t];
      positions[row * seq_len + t] = static_cast<int32_t>(t);
      segments[row * seq_len + t] = 1;
    }
  }
  Batch batch;
  batch.tokens = Tensor::from_ints(tokens, {rows, seq_len});
  batch.positions = Tensor::from_ints(positions, {rows, seq_len});
  batch.segments = Tensor::from_ints(segments, {rows, seq_len});
  return batch;
}

std::vector<std::pair<int64_t, int64_t>> sequence_ends(const Batch& batch) {
  std::vector<std::pair<int64_t, int64_t>> ends;
  const int64_t rows = batch.batch_size(), seq_len = batch.seq_len();
  const int32_t* segments = batch.segments.i32();
  for (int64_t row = 0; row < rows; ++row) {
    const int32_t* segment = segments + row * seq_len;
    for (int64_t t = 0; t < seq_len; ++t) {
      const bool last = t + 1 == seq_len || segment[t + 1] != segment[t];
      if (segment[t] != 0 && last) ends.emplace_back(row, t);
    }
  }
  return ends;
}

// ---- Activations ------------------------------------------------------------------------------

Activations::Activations() : state_(std::make_unique<CoreActivations<float>>()) {}
Activations::~Activations() = default;
Activations::Activations(Activations&&) noexcept = default;
Activations& Activations::operator=(Activations&&) noexcept = default;

// ---- LlamaModel -------------------------------------------------------------------------------

LlamaModel::LlamaModel(const config::ModelConfig& config, HeadKind head, int n_attributes,
                       uint64_t seed, const ModelOptions& options)
    : config_(config), head_(head), n_attributes_(n_attributes), options_(options) {
  const CoreSpec spec = CoreSpec::from(config, head, n_attributes, options);
  options_.shard = spec.shard;

  // Register this shard's parameters, fill them from the seed, bind the computation to them.
  for (const ParameterInfo& info : parameter_layout(spec)) {
    Parameter& parameter = parameters_.add(info.name, Shape(info.shape), info.weight_decay);
    parameter.tp_duplicate = info.placement.split == TpSplit::kReplicated && spec.shard.tp_rank > 0;
  }
  initialise_parameters(seed);
  CHECK(spec.shard.tp_size == 1 || options.tp_group != nullptr)
      << "a TP shard (tp=" << spec.shard.tp_size << ") needs ModelOptions::tp_group";
  core_ = std::make_unique<LlamaCore<float>>(
      spec,
      [this](const std::string& name) {
        Parameter& parameter = parameters_.at(name);
        return ParameterView<float>{parameter.value.f32(), parameter.grad.f32()};
      },
      options.tp_group);
}

void LlamaModel::reduce_tp_partial_gradients() {
  const CoreSpec& spec = core_->spec();
  if (spec.shard.tp_size == 1 || !spec.kv_replicated) return;
  // Each rank's replicated k_proj/v_proj gradient holds only its query heads' share.
  for (Parameter& parameter : parameters_) {
    const bool partial = parameter.name.find("self_attn.k_proj") != std::string::npos ||
                         parameter.name.find("self_attn.v_proj") != std::string::npos;
    if (partial) options_.tp_group->all_reduce(parameter.grad);
  }
}

void LlamaModel::set_gradients_done_hook(GradientsDoneHook hook) {
  if (!hook) {
    core_->set_backward_part_done({});
    return;
  }
  // The parameters of each part, by name: a layer's share its prefix; the rest is the head.
  const ModelShard& shard = core_->spec().shard;  // layer_end resolved
  const int layer_begin = shard.layer_begin;
  const int64_t local_layers = shard.layer_end - shard.layer_begin;
  std::vector<std::vector<Parameter*>> layers(local_layers);
  std::vector<Parameter*> head, embedding;
  for (Parameter& parameter : parameters_) {
    if (parameter.name == "model.embed_tokens.weight") {
      embedding.push_back(&parameter);
      continue;
    }
    bool in_layer = false;
    for (int64_t l = 0; l < local_layers && !in_layer; ++l) {
      const std::string prefix = "model.layers." + std::to_string(layer_begin + l) + ".";
      in_layer = parameter.name.rfind(prefix, 0) == 0;
      if (in_layer) layers[l].push_back(&parameter);
    }
    if (!in_layer) head.push_back(&parameter);
  }
  core_->set_backward_part_done([hook, layers, head, embedding](int64_t part) {
    if (part == LlamaCore<float>::kHeadPart) return hook(head);
    if (part == LlamaCore<float>::kEmbeddingPart) return hook(embedding);
    hook(layers.at(part));
  });
}

TpPlacement LlamaModel::tp_placement(const std::string& name) const {
  return steerlm::tp_placement(core_->spec(), name);
}

LlamaModel::~LlamaModel() = default;

void LlamaModel::initialise_parameters(uint64_t seed) {
  const CoreSpec spec = CoreSpec::from(config_, head_, n_attributes_, options_);
  for (const ParameterInfo& info : parameter_layout(spec)) {
    Parameter& parameter = parameters_.at(info.name);
    float* values = parameter.value.f32();
    const int64_t n = parameter.value.numel();
    switch (info.init) {
      case ParameterInit::kOnes: std::fill(values, values + n, 1.0f); break;
      case ParameterInit::kZeros: std::fill(values, values + n, 0.0f); break;
      case ParameterInit::kNormal:
        // Each element from its single-rank index, so any TP split holds the same weights;
        // TP padding rows stay zero.
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; ++i) {
          const int64_t global =
              tp_global_index(info.placement, spec.shard.tp_rank, spec.shard.tp_size, i);
          values[i] =
              global < 0 ? 0.0f : init_normal_value(seed, info.name, global, options_.init_std);
        }
        break;
    }
  }
}

LossSums LlamaModel::forward(const Batch& batch, Activations& saved, const Tensor& hidden_in) {
  saved.hidden_out = Tensor();
  const float* input = hidden_in.defined() ? hidden_in.f32() : nullptr;
  const LossSums sums = core_->forward(batch, *saved.state_, input);
  if (!options_.shard.has_final) {
    std::vector<float>& output = saved.state_->output;
    saved.hidden_out = Tensor::from_floats(
        output, {batch.batch_size(), batch.seq_len(), static_cast<int64_t>(config_.dim())});
  }
  return sums;
}

Tensor LlamaModel::backward(Activations& saved, float loss_scale, const Tensor& grad_hidden_out) {
  const Batch& batch = saved.state_->batch;
  Tensor grad_hidden_in;
  if (!options_.shard.has_embedding) {
    grad_hidden_in =
        Tensor::empty({batch.batch_size(), batch.seq_len(), config_.dim()}, DType::kF32);
  }
  core_->backward(*saved.state_, loss_scale,
                  grad_hidden_out.defined() ? grad_hidden_out.f32() : nullptr,
                  grad_hidden_in.defined() ? grad_hidden_in.f32() : nullptr);
  return grad_hidden_in;
}

LossSums LlamaModel::evaluate(const Batch& batch) {
  // A training forward whose activations are dropped; the head needs the full final state.
  CoreActivations<float> state;
  const LossSums sums = core_->forward(batch, state);
  return sums;
}

Tensor LlamaModel::logits(const Batch& batch) {
  std::vector<float> out;
  core_->logits(batch, out);
  return Tensor::from_floats(out, {batch.batch_size(), batch.seq_len(), config_.vocab_size()});
}

Tensor LlamaModel::predict_attributes(const Batch& batch, const Tensor& hidden_in) {
  std::vector<float> out;
  core_->predict_attributes(batch, out, hidden_in.defined() ? hidden_in.f32() : nullptr);
  const int64_t sequences = static_cast<int64_t>(out.size()) / n_attributes_;
  return Tensor::from_floats(out, {sequences, n_attributes_});
}

KvCache LlamaModel::new_kv_cache(int64_t batch_size, int64_t max_len) const {
  const CoreSpec& spec = core_->spec();
  KvCache cache;
  cache.batch_size = batch_size;
  cache.max_len = max_len;
  cache.lengths.assign(batch_size, 0);
  // (L_shard * B, KVH, max_len, HS): tensors have at most 4 dimensions.
  const Shape shape({(spec.shard.layer_end - spec.shard.layer_begin) * batch_size,
                     spec.attn_kv_heads, max_len, spec.head_size});
  cache.keys = Tensor::zeros(shape, DType::kF32);
  cache.values = Tensor::zeros(shape, DType::kF32);
  return cache;
}

Tensor LlamaModel::forward_cached(KvCache& cache, const Tensor& new_tokens,
                                  const std::vector<int>& n_new, const Tensor& hidden_in,
                                  Tensor* hidden_out) {
  CHECK(new_tokens.ndim() == 2 && new_tokens.dim(0) == cache.batch_size &&
        static_cast<int64_t>(n_new.size()) == cache.batch_size)
      << "new_tokens " << new_tokens.shape().str() << " for a cache of batch " << cache.batch_size;
  const Shape hidden_shape{cache.batch_size, new_tokens.dim(1), config_.dim()};
  if (hidden_in.defined()) CHECK(hidden_in.shape() == hidden_shape) << hidden_in.shape().str();
  Tensor logits;
  float* logits_out = nullptr;
  if (options_.shard.has_final) {
    logits = Tensor::empty({cache.batch_size, config_.vocab_size()}, DType::kF32);
    logits_out = logits.f32();
  } else {
    CHECK(hidden_out != nullptr) << "a stage without the head needs hidden_out";
    *hidden_out = Tensor::empty(hidden_shape, DType::kF32);  // (B, N, C) f32, cpu
  }
  core_->forward_cached(cache.keys.f32(), cache.values.f32(), cache.max_len, cache.lengths,
                        new_tokens.i32(), cache.batch_size, new_tokens.dim(1), n_new,
                        hidden_in.defined() ? hidden_in.f32() : nullptr,
                        options_.shard.has_final ? nullptr : hidden_out->f32(), logits_out);
  return logits;
}

}  // namespace steerlm
