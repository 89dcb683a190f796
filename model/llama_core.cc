#include "model/llama_core.h"

#include <glog/logging.h>

#include <algorithm>

#include "runtime/error.h"
#include "runtime/kernels/attention.h"
#include "runtime/kernels/blas.h"
#include "runtime/kernels/cross_entropy.h"
#include "runtime/kernels/embedding.h"
#include "runtime/kernels/masked_mse.h"
#include "runtime/kernels/rmsnorm.h"
#include "runtime/kernels/rope.h"
#include "runtime/kernels/swiglu.h"

namespace steerlm {

namespace {

void require(bool ok, const std::string& field, const std::string& message) {
  if (!ok) throw UserError("model config: " + field + ": " + message);
}

std::string layer_prefix(int64_t layer) {
  return "model.layers." + std::to_string(layer) + ".";
}

// This rank's head, FFN and vocab ranges under TP (DESIGN §5); UserError when TP cannot split
// the model evenly.
void resolve_tp_sizes(CoreSpec& spec) {
  const int tp = spec.shard.tp_size, rank = spec.shard.tp_rank;
  CHECK(tp >= 1 && rank >= 0 && rank < tp) << "tp rank " << rank << " of " << tp;
  require(
      spec.n_heads % tp == 0, "n_heads",
      std::to_string(spec.n_heads) + " heads do not split over parallel.tp=" + std::to_string(tp));
  require(
      spec.ffn_hidden % tp == 0, "ffn_hidden",
      std::to_string(spec.ffn_hidden) + " does not split over parallel.tp=" + std::to_string(tp));
  spec.local_heads = spec.n_heads / tp;
  spec.kv_replicated = spec.n_kv_heads % tp != 0;
  spec.local_kv_heads = spec.kv_replicated ? spec.n_kv_heads : spec.n_kv_heads / tp;
  spec.attn_kv_heads = spec.kv_replicated ? spec.local_heads : spec.local_kv_heads;
  spec.local_ffn = spec.ffn_hidden / tp;
  spec.local_vocab = tp_local_extent(spec.vocab, tp);
  spec.vocab_begin = rank * spec.local_vocab;
  spec.valid_vocab = tp_valid_extent(spec.vocab, rank, tp);
}

}  // namespace

CoreSpec CoreSpec::from(const config::ModelConfig& config, HeadKind head, int n_attributes,
                        const ModelOptions& options) {
  // Architecture checks: each names the field to fix.
  require(config.dim() > 0, "dim", "must be positive, got " + std::to_string(config.dim()));
  require(config.n_layers() > 0, "n_layers", "must be positive");
  require(config.n_heads() > 0 && config.dim() % config.n_heads() == 0, "n_heads",
          "must be positive and divide dim " + std::to_string(config.dim()));
  const int kv_heads = config.n_kv_heads() == 0 ? config.n_heads() : config.n_kv_heads();
  require(kv_heads > 0 && config.n_heads() % kv_heads == 0, "n_kv_heads",
          "must divide n_heads " + std::to_string(config.n_heads()));
  require((config.dim() / config.n_heads()) % 2 == 0, "n_heads", "head size must be even (RoPE)");
  require(config.ffn_hidden() > 0, "ffn_hidden", "must be positive");
  require(config.vocab_size() > 0, "vocab_size", "must be positive");
  require(head != HeadKind::kAttribute || n_attributes > 0, "n_attributes",
          "the attribute head needs at least one attribute");

  CoreSpec spec;
  spec.dim = config.dim();
  spec.n_layers = config.n_layers();
  spec.n_heads = config.n_heads();
  spec.n_kv_heads = kv_heads;
  spec.head_size = config.dim() / config.n_heads();
  spec.ffn_hidden = config.ffn_hidden();
  spec.vocab = config.vocab_size();
  spec.rope_theta = config.rope_theta();
  spec.norm_eps = config.norm_eps();
  spec.tie_embeddings = config.tie_embeddings();
  spec.head = head;
  spec.n_attributes = head == HeadKind::kAttribute ? n_attributes : 0;
  spec.activation_recompute = options.activation_recompute;
  spec.shard = options.shard;
  if (spec.shard.layer_end < 0) spec.shard.layer_end = static_cast<int>(spec.n_layers);
  CHECK(spec.shard.layer_begin >= 0 && spec.shard.layer_begin <= spec.shard.layer_end &&
        spec.shard.layer_end <= spec.n_layers)
      << "bad layer range [" << spec.shard.layer_begin << ", " << spec.shard.layer_end << ")";
  resolve_tp_sizes(spec);
  // TODO(pp): tied embeddings across PP stages need the embedding gradient all-reduced between
  // the first and last stage; refused until the PP schedule provides that group.
  CHECK(!spec.tie_embeddings || spec.shard.has_embedding == spec.shard.has_final)
      << "tied embeddings split across pipeline stages are not supported yet";
  return spec;
}

TpPlacement tp_placement(const CoreSpec& spec, const std::string& name) {
  const int64_t c = spec.dim, hs = spec.head_size;
  auto ends_with = [&](const char* suffix) {
    const std::string tail(suffix);
    return name.size() >= tail.size() &&
           name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
  };
  if (name == "model.embed_tokens.weight" || name == "lm_head.weight") {
    return {TpSplit::kRows, {spec.vocab, c}};
  }
  if (ends_with("self_attn.q_proj.weight")) return {TpSplit::kRows, {spec.n_heads * hs, c}};
  if (ends_with("self_attn.k_proj.weight") || ends_with("self_attn.v_proj.weight")) {
    return {spec.kv_replicated ? TpSplit::kReplicated : TpSplit::kRows, {spec.n_kv_heads * hs, c}};
  }
  if (ends_with("self_attn.o_proj.weight")) return {TpSplit::kColumns, {c, spec.n_heads * hs}};
  if (ends_with("mlp.gate_proj.weight") || ends_with("mlp.up_proj.weight")) {
    return {TpSplit::kRows, {spec.ffn_hidden, c}};
  }
  if (ends_with("mlp.down_proj.weight")) return {TpSplit::kColumns, {c, spec.ffn_hidden}};
  if (name == "attribute_head.weight") return {TpSplit::kReplicated, {spec.n_attributes, c}};
  if (name == "attribute_head.bias") return {TpSplit::kReplicated, {spec.n_attributes}};
  CHECK(ends_with("layernorm.weight") || name == "model.norm.weight") << "unknown " << name;
  return {TpSplit::kReplicated, {c}};
}

std::vector<ParameterInfo> parameter_layout(const CoreSpec& spec) {
  // Names in registration order, then each one's TP placement gives its local shape.
  std::vector<std::pair<std::string, ParameterInit>> names;
  if (spec.shard.has_embedding)
    names.push_back({"model.embed_tokens.weight", ParameterInit::kNormal});
  for (int64_t layer = spec.shard.layer_begin; layer < spec.shard.layer_end; ++layer) {
    const std::string prefix = layer_prefix(layer);
    names.push_back({prefix + "input_layernorm.weight", ParameterInit::kOnes});
    for (const char* projection : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
      names.push_back({prefix + "self_attn." + projection + ".weight", ParameterInit::kNormal});
    }
    names.push_back({prefix + "post_attention_layernorm.weight", ParameterInit::kOnes});
    for (const char* projection : {"gate_proj", "up_proj", "down_proj"}) {
      names.push_back({prefix + "mlp." + projection + ".weight", ParameterInit::kNormal});
    }
  }
  if (spec.shard.has_final) {
    names.push_back({"model.norm.weight", ParameterInit::kOnes});
    if (spec.head == HeadKind::kLanguageModel && !spec.tie_embeddings) {
      names.push_back({"lm_head.weight", ParameterInit::kNormal});
    }
    if (spec.head == HeadKind::kAttribute) {
      names.push_back({"attribute_head.weight", ParameterInit::kNormal});
      names.push_back({"attribute_head.bias", ParameterInit::kZeros});
    }
  }

  // Weight decay applies to matrices only, not to norms and biases.
  std::vector<ParameterInfo> layout;
  for (const auto& [name, init] : names) {
    const TpPlacement placement = tp_placement(spec, name);
    const bool matrix = placement.global_shape.size() == 2;
    layout.push_back({name, tp_local_shape(placement, spec.shard.tp_rank, spec.shard.tp_size),
                      matrix && init == ParameterInit::kNormal, init, placement});
  }
  return layout;
}

// ---- HostParameters ---------------------------------------------------------------------------

template <typename T>
HostParameters<T>::HostParameters(const std::vector<ParameterInfo>& layout) {
  for (const ParameterInfo& info : layout) {
    int64_t numel = 1;
    for (int64_t dim : info.shape) numel *= dim;
    values_[info.name].assign(numel, T(0));
    grads_[info.name].assign(numel, T(0));
  }
}

template <typename T>
void HostParameters<T>::copy_values_from(const ParameterSet& parameters) {
  for (auto& [name, values] : values_) {
    const std::vector<float> source = parameters.at(name).value.to_floats();
    CHECK_EQ(source.size(), values.size()) << name;
    std::copy(source.begin(), source.end(), values.begin());
  }
}

template <typename T>
ParameterLookup<T> HostParameters<T>::lookup() {
  return [this](const std::string& name) {
    CHECK(values_.count(name)) << "no parameter named " << name;
    return ParameterView<T>{values_.at(name).data(), grads_.at(name).data()};
  };
}

template <typename T>
void HostParameters<T>::zero_grad() {
  for (auto& [name, grad] : grads_) std::fill(grad.begin(), grad.end(), T(0));
}

// ---- LlamaCore: construction ------------------------------------------------------------------

template <typename T>
LlamaCore<T>::LlamaCore(const CoreSpec& spec, const ParameterLookup<T>& lookup, ProcessGroup* tp)
    : spec_(spec), tp_(spec.shard.tp_size > 1 ? tp : nullptr) {
  CHECK(spec_.shard.tp_size == 1 || tp_ != nullptr) << "a TP shard needs its TP group";
  if (spec_.shard.has_embedding ||
      (spec_.shard.has_final && spec_.tie_embeddings && spec_.head == HeadKind::kLanguageModel)) {
    embed_ = lookup("model.embed_tokens.weight");
  }
  for (int64_t layer = spec_.shard.layer_begin; layer < spec_.shard.layer_end; ++layer) {
    const std::string prefix = layer_prefix(layer);
    layers_.push_back(LayerWeights{
        lookup(prefix + "input_layernorm.weight"), lookup(prefix + "self_attn.q_proj.weight"),
        lookup(prefix + "self_attn.k_proj.weight"), lookup(prefix + "self_attn.v_proj.weight"),
        lookup(prefix + "self_attn.o_proj.weight"),
        lookup(prefix + "post_attention_layernorm.weight"), lookup(prefix + "mlp.gate_proj.weight"),
        lookup(prefix + "mlp.up_proj.weight"), lookup(prefix + "mlp.down_proj.weight")});
  }
  if (!spec_.shard.has_final) return;
  final_norm_ = lookup("model.norm.weight");
  if (spec_.head == HeadKind::kLanguageModel && !spec_.tie_embeddings) {
    lm_head_ = lookup("lm_head.weight");
  }
  if (spec_.head == HeadKind::kAttribute) {
    attr_weight_ = lookup("attribute_head.weight");
    attr_bias_ = lookup("attribute_head.bias");
  }
}

template <typename T>
const T* LlamaCore<T>::output_weight() const {
  return spec_.tie_embeddings ? embed_.value : lm_head_.value;
}

template <typename T>
T* LlamaCore<T>::output_weight_grad() const {
  return spec_.tie_embeddings ? embed_.grad : lm_head_.grad;
}

template class HostParameters<float>;
template class HostParameters<double>;
template class LlamaCore<float>;
template class LlamaCore<double>;

}  // namespace steerlm
