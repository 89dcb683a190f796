// Hugging Face Llama directories: import (config.json + safetensors, single or sharded) and
// export (config.json + model.safetensors + the tokenizer file).
#include <charconv>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "model/checkpoint.h"
#include "model/convert.h"
#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A config.json value with a default; a wrong type names the key.
template <typename T>
T config_value(const json& config, const std::string& key, const T& fallback,
               const fs::path& path) {
  if (!config.contains(key) || config[key].is_null()) return fallback;
  try {
    return config[key].get<T>();
  } catch (const json::exception&) {
    throw UserError(path.string() + ": \"" + key +
                    "\" has an unexpected type: " + config[key].dump());
  }
}

// Refuses config.json features steerlm's Llama does not implement, instead of loading wrongly.
void reject_unsupported(const json& config, const fs::path& path) {
  std::string model_type = config_value<std::string>(config, "model_type", "llama", path);
  if (model_type != "llama")
    throw UserError(path.string() + ": model_type \"" + model_type + "\" is not \"llama\"");
  if (config.contains("rope_scaling") && !config["rope_scaling"].is_null())
    throw UserError(path.string() + ": rope_scaling is not supported (steerlm uses plain RoPE)");
  for (const char* bias : {"attention_bias", "mlp_bias"}) {
    if (config_value<bool>(config, bias, false, path))
      throw UserError(path.string() + ": " + bias + " is true; steerlm's Llama has no biases");
  }
  std::string act = config_value<std::string>(config, "hidden_act", "silu", path);
  if (act != "silu") throw UserError(path.string() + ": hidden_act \"" + act + "\" is not silu");
}

config::ModelConfig read_hf_config(const fs::path& path) {
  json config;
  try {
    config = json::parse(read_file(path));
  } catch (const json::exception& error) {
    throw UserError(path.string() + ": malformed JSON: " + error.what());
  }
  reject_unsupported(config, path);
  config::ModelConfig model;
  model.set_name(path.parent_path().filename().string());
  model.set_dim(config_value<int>(config, "hidden_size", 0, path));
  model.set_n_layers(config_value<int>(config, "num_hidden_layers", 0, path));
  model.set_n_heads(config_value<int>(config, "num_attention_heads", 0, path));
  model.set_n_kv_heads(config_value<int>(config, "num_key_value_heads", model.n_heads(), path));
  model.set_ffn_hidden(config_value<int>(config, "intermediate_size", 0, path));
  model.set_vocab_size(config_value<int>(config, "vocab_size", 0, path));
  model.set_max_seq_len(config_value<int>(config, "max_position_embeddings", 2048, path));
  model.set_rope_theta(config_value<float>(config, "rope_theta", 10000.0f, path));
  model.set_norm_eps(config_value<float>(config, "rms_norm_eps", 1e-6f, path));
  model.set_tie_embeddings(config_value<bool>(config, "tie_word_embeddings", false, path));
  if (model.dim() <= 0 || model.n_layers() <= 0 || model.n_heads() <= 0 ||
      model.ffn_hidden() <= 0 || model.vocab_size() <= 0) {
    throw UserError(path.string() +
                    ": hidden_size, num_hidden_layers, num_attention_heads, "
                    "intermediate_size and vocab_size must all be positive");
  }
  int head_dim = config_value<int>(config, "head_dim", model.dim() / model.n_heads(), path);
  if (head_dim * model.n_heads() != model.dim())
    throw UserError(path.string() + ": head_dim " + std::to_string(head_dim) +
                    " is not hidden_size / num_attention_heads, which steerlm requires");
  return model;
}

// Tensor name -> file that holds it, for a single or sharded checkpoint.
std::map<std::string, fs::path> weight_files(const fs::path& directory) {
  std::map<std::string, fs::path> files;
  fs::path single = directory / "model.safetensors";
  fs::path index = directory / "model.safetensors.index.json";
  if (fs::exists(single)) {
    SafetensorsFile file(single);
    for (const SafetensorsEntry& entry : file.entries()) files[entry.name] = single;
  } else if (fs::exists(index)) {
    json map;
    try {
      map = json::parse(read_file(index)).at("weight_map");
      for (const auto& [name, file] : map.items())
        files[name] = directory / file.get<std::string>();
    } catch (const json::exception& error) {
      throw UserError(index.string() + ": malformed index: " + error.what());
    }
  } else {
    throw UserError(directory.string() +
                    " has neither model.safetensors nor "
                    "model.safetensors.index.json (PyTorch .bin weights are "
                    "not supported; save with safe_serialization=True)");
  }
  return files;
}

std::string find_tokenizer(const fs::path& directory, const std::string& given) {
  if (!given.empty()) return given;
  for (const char* name : {"tokenizer.model", "tokenizer.bin"}) {
    if (fs::exists(directory / name)) return (directory / name).string();
  }
  throw UserError(directory.string() +
                  " has no tokenizer.model or tokenizer.bin; pass "
                  "--tokenizer (steerlm reads SentencePiece .model and "
                  "llama2.c .bin tokenizers, not tokenizer.json)");
}

// A float as JSON with the float's shortest decimal form (1e-05, not 9.99999974e-06).
double json_float(float value) {
  char text[32];
  auto end = std::to_chars(text, text + sizeof(text), value).ptr;
  return std::stod(std::string(text, end));
}

json hf_config_json(const ConvertedModel& model) {
  const config::ModelConfig config = explicit_model_config(model.manifest.model());
  int kv_heads = config.n_kv_heads() > 0 ? config.n_kv_heads() : config.n_heads();
  return json{{"architectures", {"LlamaForCausalLM"}},
              {"model_type", "llama"},
              {"hidden_size", config.dim()},
              {"intermediate_size", config.ffn_hidden()},
              {"num_hidden_layers", config.n_layers()},
              {"num_attention_heads", config.n_heads()},
              {"num_key_value_heads", kv_heads},
              {"head_dim", config.dim() / config.n_heads()},
              {"vocab_size", config.vocab_size()},
              {"max_position_embeddings", config.max_seq_len()},
              {"rope_theta", json_float(config.rope_theta())},
              {"rms_norm_eps", json_float(config.norm_eps())},
              {"tie_word_embeddings", config.tie_embeddings()},
              {"hidden_act", "silu"},
              {"attention_bias", false},
              {"mlp_bias", false},
              {"rope_scaling", nullptr},
              {"bos_token_id", model.bos_id},
              {"eos_token_id", model.eos_id},
              {"torch_dtype", "float32"}};
}

}  // namespace

ConvertedModel import_hf(const std::string& directory, const std::string& tokenizer_path) {
  ConvertedModel model;
  *model.manifest.mutable_model() = read_hf_config(fs::path(directory) / "config.json");
  model.manifest.set_head(kHeadLanguageModel);
  model.manifest.mutable_provenance()->set_converted_from("hf " + directory);
  model.tokenizer_path = find_tokenizer(directory, tokenizer_path);

  // Each expected parameter from the file that holds it; extra tensors (rotary caches, a tied
  // lm_head copy) are ignored, missing ones are an error.
  std::map<std::string, fs::path> files = weight_files(directory);
  std::map<fs::path, std::unique_ptr<SafetensorsFile>> open;
  for (const auto& [name, shape] : llama_parameter_shapes(model.manifest.model())) {
    auto found = files.find(name);
    if (found == files.end()) throw UserError(directory + ": the checkpoint has no tensor " + name);
    auto& file = open[found->second];
    if (!file) file = std::make_unique<SafetensorsFile>(found->second);
    Tensor value = Tensor::empty(shape, DType::kF32);  // HF layout is steerlm's: no permutation
    file->read_into(name, value);
    model.weights.push_back({name, value});
  }
  return model;
}

void export_hf(const ConvertedModel& model, const std::string& directory) {
  if (model.manifest.head() == kHeadAttribute) {
    throw UserError(
        "an attribute model has no Hugging Face LlamaForCausalLM form; only language "
        "models export to hf");
  }
  // Everything goes into a temporary directory that is renamed into place at the end.
  fs::path temporary = checkpoint_temporary_directory(directory);
  std::error_code error;
  fs::remove_all(temporary, error);
  fs::create_directories(temporary, error);
  if (error) throw UserError("cannot create " + temporary.string() + ": " + error.message());

  write_file_atomic(temporary / "config.json", hf_config_json(model).dump(2) + "\n");
  write_safetensors(temporary / "model.safetensors", model.weights, {{"format", "pt"}});
  std::string tokenizer_name =
      fs::path(model.tokenizer_path).extension() == ".bin" ? "tokenizer.bin" : "tokenizer.model";
  write_file_atomic(temporary / tokenizer_name, read_file(model.tokenizer_path));
  fsync_path(temporary);
  publish_directory(temporary, directory);
}

}  // namespace steerlm
