// Import of llama2.c's legacy checkpoint format (see model/convert.h for the layout).
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "model/checkpoint.h"
#include "model/convert.h"
#include "runtime/error.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;

// "ak42": the magic of llama2.c's newer export versions, which this importer does not read.
constexpr int32_t kVersionedExportMagic = 0x616b3432;

struct Llama2cHeader {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

// Sequential f32 reads from the file, each into a new host tensor.
class FloatReader {
 public:
  FloatReader(std::ifstream& in, const std::string& path) : in_(in), path_(path) {}
  Tensor read(const Shape& shape, const char* what) {
    Tensor tensor = Tensor::empty(shape, DType::kF32);
    in_.read(static_cast<char*>(tensor.raw()), static_cast<std::streamsize>(tensor.nbytes()));
    if (!in_) throw UserError(path_ + ": file ends inside " + what);
    return tensor;
  }
  void skip(int64_t floats) { in_.seekg(floats * 4, std::ios::cur); }

 private:
  std::ifstream& in_;
  std::string path_;
};

config::ModelConfig model_config(const Llama2cHeader& header, const std::string& path) {
  config::ModelConfig config;
  config.set_name(fs::path(path).stem().string());
  config.set_dim(header.dim);
  config.set_n_layers(header.n_layers);
  config.set_n_heads(header.n_heads);
  config.set_n_kv_heads(header.n_kv_heads);
  config.set_ffn_hidden(header.hidden_dim);
  config.set_vocab_size(std::abs(header.vocab_size));
  config.set_max_seq_len(header.seq_len);
  // run.c hard-codes both; model.py trains with these values.
  config.set_rope_theta(10000.0f);
  config.set_norm_eps(1e-5f);
  config.set_tie_embeddings(header.vocab_size > 0);
  return config;
}

// Bytes the header promises: used to reject files of another format before reading them.
int64_t expected_file_bytes(const Llama2cHeader& h) {
  int64_t head_size = h.dim / h.n_heads;
  int64_t kv_dim = h.n_kv_heads * head_size;
  int64_t vocab = std::abs(static_cast<int64_t>(h.vocab_size));
  int64_t floats = vocab * h.dim + int64_t{h.n_layers} * h.dim * 2 +
                   int64_t{h.n_layers} * h.dim * (2 * h.dim + 2 * kv_dim) +
                   int64_t{h.n_layers} * h.dim * h.hidden_dim * 3 + h.dim +
                   int64_t{h.seq_len} * head_size;  // freq_cis real and imag, HS/2 each
  if (h.vocab_size < 0) floats += vocab * h.dim;
  return static_cast<int64_t>(sizeof(Llama2cHeader)) + floats * 4;
}

Llama2cHeader read_header(std::ifstream& in, const std::string& path) {
  Llama2cHeader header{};
  in.read(reinterpret_cast<char*>(&header), sizeof(header));
  if (!in) throw UserError(path + ": too short for a llama2.c checkpoint header");
  if (header.dim == kVersionedExportMagic) {
    throw UserError(path +
                    ": a versioned llama2.c export (magic ak42); only the legacy format "
                    "that run.c reads is supported (export.py --version 0)");
  }
  bool sane = header.dim > 0 && header.hidden_dim > 0 && header.n_layers > 0 &&
              header.n_heads > 0 && header.n_kv_heads > 0 && header.vocab_size != 0 &&
              header.seq_len > 0 && header.dim % header.n_heads == 0 &&
              header.n_heads % header.n_kv_heads == 0 && (header.dim / header.n_heads) % 2 == 0;
  if (!sane) throw UserError(path + ": not a llama2.c checkpoint (implausible header)");
  int64_t actual = static_cast<int64_t>(fs::file_size(path));
  if (actual != expected_file_bytes(header)) {
    throw UserError(path + ": " + std::to_string(actual) + " bytes, but its header (dim " +
                    std::to_string(header.dim) + ", " + std::to_string(header.n_layers) +
                    " layers, vocab " + std::to_string(header.vocab_size) + ") needs " +
                    std::to_string(expected_file_bytes(header)) +
                    "; not a legacy llama2.c checkpoint");
  }
  return header;
}

}  // namespace

ConvertedModel import_llama2c(const std::string& bin_path, const std::string& tokenizer_path) {
  std::ifstream in(bin_path, std::ios::binary);
  if (!in) throw UserError("cannot read " + bin_path + ": " + std::strerror(errno));
  const Llama2cHeader h = read_header(in, bin_path);
  ConvertedModel model;
  *model.manifest.mutable_model() = model_config(h, bin_path);
  model.manifest.set_head(kHeadLanguageModel);
  model.manifest.mutable_provenance()->set_converted_from("llama2c " + bin_path);
  model.tokenizer_path = tokenizer_path;

  // Step 1: read the blocks in file order; each of rms_att..w3 stacks all layers.
  const int64_t L = h.n_layers, C = h.dim, F = h.hidden_dim, V = std::abs(h.vocab_size);
  const int64_t HS = C / h.n_heads, KV = int64_t{h.n_kv_heads} * HS;
  FloatReader reader(in, bin_path);
  Tensor embedding = reader.read({V, C}, "token_embedding");  // (V, C)
  Tensor rms_att = reader.read({L, C}, "rms_att");            // (L, C)
  Tensor wq = reader.read({L, C, C}, "wq");                   // (L, NH*HS, C), interleaved
  Tensor wk = reader.read({L, KV, C}, "wk");                  // (L, KVH*HS, C), interleaved
  Tensor wv = reader.read({L, KV, C}, "wv");                  // (L, KVH*HS, C)
  Tensor wo = reader.read({L, C, C}, "wo");                   // (L, C, NH*HS)
  Tensor rms_ffn = reader.read({L, C}, "rms_ffn");            // (L, C)
  Tensor w1 = reader.read({L, F, C}, "w1");                   // (L, F, C) gate
  Tensor w2 = reader.read({L, C, F}, "w2");                   // (L, C, F) down
  Tensor w3 = reader.read({L, F, C}, "w3");                   // (L, F, C) up
  Tensor rms_final = reader.read({C}, "rms_final");           // (C)
  reader.skip(int64_t{h.seq_len} * HS);  // freq_cis_real and freq_cis_imag: RoPE is recomputed
  Tensor classifier = h.vocab_size < 0 ? reader.read({V, C}, "wcls") : Tensor();  // (V, C)

  // Step 2: per-layer tensors under Hugging Face names, q/k rows into the rotate-half layout.
  std::map<std::string, Tensor> by_name;
  by_name["model.embed_tokens.weight"] = embedding;
  for (int64_t layer = 0; layer < L; ++layer) {
    std::string prefix = "model.layers." + std::to_string(layer) + ".";
    auto layer_of = [&](const Tensor& stacked) {
      std::vector<int64_t> dims = stacked.shape().to_vector();
      dims.erase(dims.begin());
      return stacked.slice(layer, layer + 1).reshape(Shape(dims)).clone();
    };
    by_name[prefix + "input_layernorm.weight"] = layer_of(rms_att);
    by_name[prefix + "self_attn.q_proj.weight"] =
        interleaved_to_rotate_half(layer_of(wq), h.n_heads);
    by_name[prefix + "self_attn.k_proj.weight"] =
        interleaved_to_rotate_half(layer_of(wk), h.n_kv_heads);
    by_name[prefix + "self_attn.v_proj.weight"] = layer_of(wv);
    by_name[prefix + "self_attn.o_proj.weight"] = layer_of(wo);
    by_name[prefix + "post_attention_layernorm.weight"] = layer_of(rms_ffn);
    by_name[prefix + "mlp.gate_proj.weight"] = layer_of(w1);
    by_name[prefix + "mlp.up_proj.weight"] = layer_of(w3);
    by_name[prefix + "mlp.down_proj.weight"] = layer_of(w2);
  }
  by_name["model.norm.weight"] = rms_final;
  if (classifier.defined()) by_name["lm_head.weight"] = classifier;

  // Step 3: the canonical parameter order.
  for (const auto& [name, shape] : llama_parameter_shapes(model.manifest.model())) {
    model.weights.push_back({name, by_name.at(name)});
  }
  return model;
}

}  // namespace steerlm
