// Conversion pieces shared by every format: the Llama parameter list, the rotary row orders, and
// steerlm checkpoints as a source and a target.
#include "model/convert.h"

#include <glog/logging.h>

#include <cstring>

#include "model/checkpoint.h"
#include "model/sharded_checkpoint.h"
#include "runtime/error.h"

namespace steerlm {
namespace {

// Reorders rows within each head: output row (h, r) takes input row (h, source_row(r)).
template <typename SourceRow>
Tensor permute_head_rows(const Tensor& weight, int heads, SourceRow source_row) {
  CHECK_EQ(weight.ndim(), 2);
  CHECK_EQ(weight.dim(0) % (2 * heads), 0) << "rows " << weight.dim(0) << " heads " << heads;
  const int64_t head_size = weight.dim(0) / heads;
  const int64_t columns = weight.dim(1);
  Tensor permuted = Tensor::empty(weight.shape(), DType::kF32);  // (heads*HS, C) f32, cpu
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t r = 0; r < head_size; ++r) {
      const float* from = weight.f32() + (h * head_size + source_row(r, head_size)) * columns;
      std::memcpy(permuted.f32() + (h * head_size + r) * columns, from, columns * sizeof(float));
    }
  }
  return permuted;
}

}  // namespace

Tensor interleaved_to_rotate_half(const Tensor& weight, int heads) {
  // Rotate-half row j*HS/2 + i holds component j of interleaved pair i, i.e. row 2i + j.
  return permute_head_rows(weight, heads, [](int64_t row, int64_t head_size) {
    int64_t half = head_size / 2;
    return 2 * (row % half) + row / half;
  });
}

Tensor rotate_half_to_interleaved(const Tensor& weight, int heads) {
  // Interleaved row 2i + j holds rotate-half row j*HS/2 + i.
  return permute_head_rows(weight, heads, [](int64_t row, int64_t head_size) {
    return (row % 2) * (head_size / 2) + row / 2;
  });
}

std::vector<std::pair<std::string, Shape>> llama_parameter_shapes(
    const config::ModelConfig& config) {
  const int64_t dim = config.dim();
  const int64_t heads = config.n_heads();
  const int64_t kv_heads = config.n_kv_heads() > 0 ? config.n_kv_heads() : heads;
  const int64_t head_size = dim / heads;
  const int64_t ffn = config.ffn_hidden();
  const int64_t vocab = config.vocab_size();
  std::vector<std::pair<std::string, Shape>> shapes;
  shapes.push_back({"model.embed_tokens.weight", {vocab, dim}});
  for (int layer = 0; layer < config.n_layers(); ++layer) {
    std::string prefix = "model.layers." + std::to_string(layer) + ".";
    shapes.push_back({prefix + "input_layernorm.weight", {dim}});
    shapes.push_back({prefix + "self_attn.q_proj.weight", {heads * head_size, dim}});
    shapes.push_back({prefix + "self_attn.k_proj.weight", {kv_heads * head_size, dim}});
    shapes.push_back({prefix + "self_attn.v_proj.weight", {kv_heads * head_size, dim}});
    shapes.push_back({prefix + "self_attn.o_proj.weight", {dim, heads * head_size}});
    shapes.push_back({prefix + "post_attention_layernorm.weight", {dim}});
    shapes.push_back({prefix + "mlp.gate_proj.weight", {ffn, dim}});
    shapes.push_back({prefix + "mlp.up_proj.weight", {ffn, dim}});
    shapes.push_back({prefix + "mlp.down_proj.weight", {dim, ffn}});
  }
  shapes.push_back({"model.norm.weight", {dim}});
  if (!config.tie_embeddings()) shapes.push_back({"lm_head.weight", {vocab, dim}});
  return shapes;
}

ConvertedModel import_steerlm(const std::string& directory) {
  ConvertedModel model;
  model.manifest = read_checkpoint_manifest(directory);
  model.weights = read_full_tensors(directory, model.manifest);  // any TP/PP layout
  model.tokenizer_path = checkpoint_tokenizer_path(directory, model.manifest).string();
  if (!model.manifest.provenance().has_converted_from())
    model.manifest.mutable_provenance()->set_converted_from("steerlm " + directory);
  return model;
}

void export_steerlm(const ConvertedModel& model, const std::string& directory) {
  // A fresh checkpoint of the weights: no optimizer state, step 0.
  config::CheckpointManifest manifest = model.manifest;
  if (!manifest.has_head()) manifest.set_head(kHeadLanguageModel);
  std::string converted_from = manifest.provenance().converted_from();
  manifest.clear_optimizer_step();
  manifest.clear_provenance();
  manifest.mutable_provenance()->set_converted_from(converted_from);
  save_checkpoint(directory, manifest, model.tokenizer_path, model.weights);
}

}  // namespace steerlm
