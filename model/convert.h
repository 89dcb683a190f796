// Weight conversion between steerlm checkpoints and other formats (`steerlm convert`).
//
// Every importer produces a ConvertedModel: the architecture, the weights under Hugging Face
// names in steerlm's layout (notes/names.md: (out, in) row-major, rotate-half rotary), host f32,
// and the tokenizer file. Every exporter takes one. So any --from/--to pair is an import followed
// by an export.
//
// Rotary layouts: Meta and llama2.c checkpoints rotate the pairs (2i, 2i+1) of each head
// ("interleaved"); Hugging Face and steerlm rotate the pairs (i, i + HS/2) ("rotate-half"). The
// two differ only by an order of the rows of q_proj and k_proj within each head, so a converter
// permutes those rows: within a head, interleaved row 2i+j becomes rotate-half row j*HS/2+i.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "configs/steerlm.pb.h"
#include "runtime/safetensors.h"

namespace steerlm {

struct ConvertedModel {
  // model (architecture), head, attributes, chat_template, provenance.converted_from.
  config::CheckpointManifest manifest;
  std::vector<NamedTensor> weights;  // Hugging Face names, host f32, steerlm's layout
  std::string tokenizer_path;
  int32_t bos_id =
      1;  // written to an exported config.json; the caller sets them from the tokenizer
  int32_t eos_id = 2;
};

// llama2.c's legacy .bin (run.c): 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size, seq_len; a negative vocab_size means an untied classifier), then f32 weights:
// token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq_cis_real,
// freq_cis_imag (unused) and wcls when untied. Each of rms_att..w3 holds all layers in a row.
ConvertedModel import_llama2c(const std::string& bin_path, const std::string& tokenizer_path);

// A Hugging Face Llama directory: config.json and model.safetensors, or shards listed in
// model.safetensors.index.json (F32, BF16 or F16). The tokenizer is `tokenizer_path`, or else the
// directory's tokenizer.model or tokenizer.bin.
ConvertedModel import_hf(const std::string& directory, const std::string& tokenizer_path);

// A steerlm checkpoint directory (single-rank layout).
ConvertedModel import_steerlm(const std::string& directory);

// Writes a steerlm checkpoint directory (atomically).
void export_steerlm(const ConvertedModel& model, const std::string& directory);

// Writes a Hugging Face Llama directory: config.json, model.safetensors and the tokenizer file
// (tokenizer.model for SentencePiece, tokenizer.bin for llama2.c), published atomically.
void export_hf(const ConvertedModel& model, const std::string& directory);

// The Hugging Face names and shapes of a Llama language model's parameters (notes/names.md).
std::vector<std::pair<std::string, Shape>> llama_parameter_shapes(
    const config::ModelConfig& config);

// Reorders the rows of a q_proj/k_proj weight (heads*HS, C) between the rotary layouts.
Tensor interleaved_to_rotate_half(const Tensor& weight, int heads);
Tensor rotate_half_to_interleaved(const Tensor& weight, int heads);

}  // namespace steerlm
