#include "model/checkpoint.h"

#include <glog/logging.h>
#include <google/protobuf/text_format.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <map>
#include <set>

#include "runtime/config.h"
#include "runtime/error.h"
#include "runtime/file_util.h"
#include "runtime/logging.h"

namespace steerlm {
namespace fs = std::filesystem;
using google::protobuf::FieldDescriptor;
using google::protobuf::Reflection;

namespace {

constexpr const char* kMomentPrefix = "exp_avg.";
constexpr const char* kSquarePrefix = "exp_avg_sq.";

bool is_embedded_tokenizer(const std::string& path) {
  return path.rfind("embedded:", 0) == 0;
}

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

// The name the tokenizer copy gets: fixed per kind, so tools can find it without the manifest.
std::string tokenizer_copy_name(const std::string& tokenizer_path) {
  std::string extension = fs::path(tokenizer_path).extension().string();
  return "tokenizer" + (extension.empty() ? std::string(".model") : extension);
}

void fill_provenance(config::CheckpointProvenance* provenance) {
  Provenance current = current_provenance();
  provenance->set_steerlm_version(current.steerlm_version);
  provenance->set_commit(current.commit);
  provenance->set_compiler(current.compiler);
  provenance->set_libraries(current.libraries);
  if (provenance->hosts_size() == 0) provenance->add_hosts(current.host);
  provenance->set_created_utc(utc_now());
}

// The single-rank shard of a manifest; resharding other layouts is not built yet.
const config::CheckpointShard& single_shard(const fs::path& directory,
                                            const config::CheckpointManifest& manifest) {
  int tp = manifest.parallel().tp();
  int pp = manifest.parallel().pp();
  if (tp != 1 || pp != 1 || manifest.shards_size() != 1) {
    // TODO(resharding): load a (tp, pp) checkpoint into another layout (parallelism issue).
    throw UserError("checkpoint " + directory.string() +
                    " was written with tp=" + std::to_string(tp) + " pp=" + std::to_string(pp) +
                    "; loading it into a single rank needs resharding, which is not built yet");
  }
  return manifest.shards(0);
}

// "(64, 32)" for a tensor entry of a file.
std::string entry_shape(const SafetensorsEntry& entry) {
  std::string text = "(";
  for (size_t i = 0; i < entry.shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(entry.shape[i]);
  return text + ")";
}

// Fills `tensors` from `file`, requiring the same names and shapes; lists all problems at once.
void fill_exactly(const SafetensorsFile& file, std::vector<NamedTensor*>& tensors) {
  std::vector<std::string> missing, misshaped;
  std::set<std::string> wanted;
  for (NamedTensor* named : tensors) {
    wanted.insert(named->name);
    if (!file.contains(named->name)) {
      missing.push_back(named->name);
    } else if (Shape(file.entry(named->name).shape) != named->tensor.shape()) {
      misshaped.push_back(named->name + " " + entry_shape(file.entry(named->name)) + " vs " +
                          named->tensor.shape().str());
    }
  }
  std::vector<std::string> unexpected;
  for (const SafetensorsEntry& entry : file.entries()) {
    if (!wanted.count(entry.name)) unexpected.push_back(entry.name);
  }
  if (!missing.empty() || !unexpected.empty() || !misshaped.empty()) {
    auto join = [](const std::vector<std::string>& names) {
      std::string text;
      for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
      return text;
    };
    std::string message = file.path().string() + " does not match the model:";
    if (!missing.empty()) message += " missing " + join(missing) + ";";
    if (!unexpected.empty()) message += " unexpected " + join(unexpected) + ";";
    if (!misshaped.empty()) message += " shape (file vs model) " + join(misshaped) + ";";
    message.pop_back();
    throw UserError(message);
  }
  for (NamedTensor* named : tensors) file.read_into(named->name, named->tensor);
}

}  // namespace

std::vector<NamedTensor> named_tensors(const ParameterSet& parameters) {
  std::vector<NamedTensor> tensors;
  for (const Parameter& parameter : parameters)
    tensors.push_back({parameter.name, parameter.value});
  return tensors;
}

std::string model_shard_file(int tp_rank, int pp_rank) {
  return "model_tp" + std::to_string(tp_rank) + "_pp" + std::to_string(pp_rank) + ".safetensors";
}

std::string optimizer_shard_file(int tp_rank, int pp_rank, int dp_rank) {
  return "optimizer_tp" + std::to_string(tp_rank) + "_pp" + std::to_string(pp_rank) + "_dp" +
         std::to_string(dp_rank) + ".safetensors";
}

config::ModelConfig explicit_model_config(const config::ModelConfig& config) {
  config::ModelConfig explicit_config = config;
  const Reflection* reflection = explicit_config.GetReflection();
  const auto* descriptor = explicit_config.GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    if (field->is_repeated() || reflection->HasField(explicit_config, field)) continue;
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        reflection->SetInt32(&explicit_config, field, field->default_value_int32());
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        reflection->SetFloat(&explicit_config, field, field->default_value_float());
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        reflection->SetBool(&explicit_config, field, field->default_value_bool());
        break;
      default: break;  // strings (the name) stay unset when not given
    }
  }
  return explicit_config;
}

fs::path checkpoint_temporary_directory(const fs::path& directory) {
  fs::path temporary = directory;
  temporary += ".tmp." + std::to_string(::getpid());
  return temporary;
}

void write_checkpoint_shard(const fs::path& temporary, int tp_rank, int pp_rank, int dp_rank,
                            const std::vector<NamedTensor>& weights,
                            const OptimizerState* optimizer, config::CheckpointManifest* manifest) {
  // Weights: one file per (tp, pp); DP replicas hold identical weights, so dp rank 0 writes them.
  config::CheckpointShard* shard = nullptr;
  for (auto& existing : *manifest->mutable_shards()) {
    if (existing.tp_rank() == tp_rank && existing.pp_rank() == pp_rank) shard = &existing;
  }
  if (shard == nullptr) {
    shard = manifest->add_shards();
    shard->set_tp_rank(tp_rank);
    shard->set_pp_rank(pp_rank);
    shard->set_file(model_shard_file(tp_rank, pp_rank));
  }
  if (dp_rank == 0) write_safetensors(temporary / shard->file(), weights, {{"format", "pt"}});
  if (optimizer == nullptr) return;

  // Optimizer state: m and v under prefixed names, the step in the metadata too.
  std::vector<NamedTensor> moments;
  for (const NamedTensor& m : optimizer->exp_avg)
    moments.push_back({kMomentPrefix + m.name, m.tensor});
  for (const NamedTensor& v : optimizer->exp_avg_sq)
    moments.push_back({kSquarePrefix + v.name, v.tensor});
  std::string file = optimizer_shard_file(tp_rank, pp_rank, dp_rank);
  write_safetensors(temporary / file, moments, {{"step", std::to_string(optimizer->step)}});
  shard->add_optimizer_files(file);
  manifest->set_optimizer_step(optimizer->step);
}

void finish_checkpoint(const fs::path& temporary, const fs::path& directory,
                       config::CheckpointManifest manifest, const std::string& tokenizer_path) {
  // The tokenizer copy, so the checkpoint is usable on its own.
  manifest.set_format_version(kCheckpointFormatVersion);
  if (is_embedded_tokenizer(tokenizer_path)) {
    // A tokenizer built into steerlm has no file to copy; its spec names it exactly.
    manifest.set_tokenizer_file(tokenizer_path);
    manifest.clear_tokenizer_bytes();
  } else if (!tokenizer_path.empty()) {
    std::string contents = read_file(tokenizer_path);
    std::string name = tokenizer_copy_name(tokenizer_path);
    write_file_atomic(temporary / name, contents);
    manifest.set_tokenizer_file(name);
    manifest.set_tokenizer_bytes(static_cast<int64_t>(contents.size()));
  }

  // The manifest, then the rename that publishes the whole directory at once.
  *manifest.mutable_model() = explicit_model_config(manifest.model());
  fill_provenance(manifest.mutable_provenance());
  std::string text;
  CHECK(google::protobuf::TextFormat::PrintToString(manifest, &text));
  write_file_atomic(temporary / kManifestFileName,
                    "# steerlm checkpoint manifest (config.CheckpointManifest)\n" + text);
  fsync_path(temporary);
  publish_directory(temporary, directory);
}

void save_checkpoint(const fs::path& directory, const config::CheckpointManifest& manifest,
                     const std::string& tokenizer_path, const std::vector<NamedTensor>& weights,
                     const OptimizerState* optimizer) {
  fs::path temporary = checkpoint_temporary_directory(directory);
  std::error_code error;
  fs::remove_all(temporary, error);
  fs::create_directories(temporary, error);
  if (error) throw UserError("cannot create " + temporary.string() + ": " + error.message());

  config::CheckpointManifest complete = manifest;
  complete.clear_shards();
  complete.mutable_parallel()->set_tp(1);
  complete.mutable_parallel()->set_pp(1);
  write_checkpoint_shard(temporary, 0, 0, 0, weights, optimizer, &complete);
  finish_checkpoint(temporary, directory, complete, tokenizer_path);
}

config::CheckpointManifest read_checkpoint_manifest(const fs::path& directory) {
  fs::path path = directory / kManifestFileName;
  if (!fs::exists(path)) {
    throw UserError(directory.string() + " is not a steerlm checkpoint: " + path.string() +
                    " does not exist");
  }
  config::CheckpointManifest manifest;
  FieldLocations locations;
  parse_config_file(path.string(), &manifest, &locations);
  if (manifest.format_version() != kCheckpointFormatVersion) {
    throw UserError(path.string() + ": format_version " +
                    std::to_string(manifest.format_version()) + " is not supported (expected " +
                    std::to_string(kCheckpointFormatVersion) + ")");
  }
  return manifest;
}

fs::path checkpoint_tokenizer_path(const fs::path& directory,
                                   const config::CheckpointManifest& manifest) {
  if (manifest.tokenizer_file().empty())
    throw UserError("checkpoint " + directory.string() + " has no tokenizer copy");
  if (is_embedded_tokenizer(manifest.tokenizer_file())) return manifest.tokenizer_file();
  return directory / manifest.tokenizer_file();
}

void check_checkpoint_matches(const fs::path& directory, const config::CheckpointManifest& manifest,
                              const config::ModelConfig& expected_model,
                              const std::string& expected_tokenizer_path) {
  std::vector<std::string> differences;

  // Model config, field by field with defaults made explicit; the vocabulary size gets its name.
  config::ModelConfig stored = explicit_model_config(manifest.model());
  config::ModelConfig expected = explicit_model_config(expected_model);
  const auto* descriptor = stored.GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    if (field->name() == "name" || field->is_repeated()) continue;
    std::string stored_value, expected_value;
    google::protobuf::TextFormat::PrintFieldValueToString(stored, field, -1, &stored_value);
    google::protobuf::TextFormat::PrintFieldValueToString(expected, field, -1, &expected_value);
    if (stored_value == expected_value) continue;
    std::string what = field->name() == "vocab_size" ? "vocabulary size (model.vocab_size)"
                                                     : "model." + field->name();
    differences.push_back(what + " is " + stored_value + " in the checkpoint but " +
                          expected_value + " is expected");
  }

  // Tokenizer: the copy must have the same bytes as the file the caller uses.
  if (!expected_tokenizer_path.empty()) {
    fs::path stored_path = checkpoint_tokenizer_path(directory, manifest);
    if (is_embedded_tokenizer(stored_path.string()) ||
        is_embedded_tokenizer(expected_tokenizer_path)) {
      if (stored_path.string() != expected_tokenizer_path) {
        differences.push_back("tokenizer is " + stored_path.string() + " in the checkpoint but " +
                              expected_tokenizer_path + " is expected");
      }
    } else if (std::string stored_bytes = read_file(stored_path),
               expected_bytes = read_file(expected_tokenizer_path);
               stored_bytes != expected_bytes) {
      differences.push_back("tokenizer " + stored_path.filename().string() + " (" +
                            std::to_string(stored_bytes.size()) + " bytes) differs from " +
                            expected_tokenizer_path + " (" + std::to_string(expected_bytes.size()) +
                            " bytes)");
    }
  }

  if (differences.empty()) return;
  std::string message = "checkpoint " + directory.string() + " does not match: ";
  for (size_t i = 0; i < differences.size(); ++i) message += (i ? "; " : "") + differences[i];
  throw UserError(message);
}

void load_checkpoint_tensors(const fs::path& directory, const config::CheckpointManifest& manifest,
                             std::vector<NamedTensor>& tensors) {
  SafetensorsFile file(directory / single_shard(directory, manifest).file());
  std::vector<NamedTensor*> targets;
  for (NamedTensor& named : tensors) targets.push_back(&named);
  fill_exactly(file, targets);
}

void load_checkpoint_parameters(const fs::path& directory,
                                const config::CheckpointManifest& manifest,
                                ParameterSet& parameters) {
  // Views share the parameters' storage, so filling them fills the parameters.
  std::vector<NamedTensor> views = named_tensors(parameters);
  load_checkpoint_tensors(directory, manifest, views);
}

std::vector<NamedTensor> read_checkpoint_tensors(const fs::path& directory,
                                                 const config::CheckpointManifest& manifest) {
  SafetensorsFile file(directory / single_shard(directory, manifest).file());
  std::vector<NamedTensor> tensors;
  for (const SafetensorsEntry& entry : file.entries())
    tensors.push_back({entry.name, file.read(entry.name, DType::kF32)});
  return tensors;
}

void load_checkpoint_optimizer(const fs::path& directory,
                               const config::CheckpointManifest& manifest, OptimizerState* state) {
  const config::CheckpointShard& shard = single_shard(directory, manifest);
  if (shard.optimizer_files_size() != 1) {
    throw UserError("checkpoint " + directory.string() + " has " +
                    std::to_string(shard.optimizer_files_size()) +
                    " optimizer files for its shard; one is expected (saved without ZeRO-1)");
  }
  SafetensorsFile file(directory / shard.optimizer_files(0));

  // Fresh state: one host tensor per stored moment, in file order.
  if (state->exp_avg.empty() && state->exp_avg_sq.empty()) {
    for (const SafetensorsEntry& entry : file.entries()) {
      bool square = entry.name.rfind(kSquarePrefix, 0) == 0;
      std::string name =
          entry.name.substr(square ? std::strlen(kSquarePrefix) : std::strlen(kMomentPrefix));
      (square ? state->exp_avg_sq : state->exp_avg).push_back({name, file.read(entry.name)});
    }
  } else {
    // Existing state: same names and shapes, filled in place.
    std::vector<NamedTensor> prefixed;
    for (const NamedTensor& m : state->exp_avg)
      prefixed.push_back({kMomentPrefix + m.name, m.tensor});
    for (const NamedTensor& v : state->exp_avg_sq)
      prefixed.push_back({kSquarePrefix + v.name, v.tensor});
    std::vector<NamedTensor*> targets;
    for (NamedTensor& named : prefixed) targets.push_back(&named);
    fill_exactly(file, targets);
  }
  state->step = manifest.optimizer_step();
}

}  // namespace steerlm
