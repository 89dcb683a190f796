// Checkpoint directories (DESIGN §4).
//
//   DIR/manifest.pbtxt                     CheckpointManifest (protobuf text), format_version 1
//   DIR/tokenizer.model | tokenizer.bin    the tokenizer the model was trained with, copied
//   DIR/model_tp{t}_pp{p}.safetensors      the weights held by TP rank t of PP stage p, with
//                                          Hugging Face parameter names (notes/names.md)
//   DIR/optimizer_tp{t}_pp{p}_dp{d}.safetensors
//                                          AdamW state of that shard: "exp_avg.NAME" (m) and
//                                          "exp_avg_sq.NAME" (v); d > 0 only with ZeRO-1
//
// A tokenizer built into steerlm ("embedded:default") has no file; the manifest records its spec
// instead of a copy, and checkpoint_tokenizer_path() returns the spec.
//
// A save writes everything into DIR.tmp.<pid>, fsyncs each file, then renames it over DIR, so DIR
// is always either the previous checkpoint or the new one, never a mix.
//
// Saving (one rank):
//   config::CheckpointManifest manifest;           // model, head, attributes, step, states...
//   *manifest.mutable_model() = model.config();
//   save_checkpoint(dir, manifest, tokenizer_path, named_tensors(model.parameters()), &adam);
// Loading:
//   config::CheckpointManifest manifest = read_checkpoint_manifest(dir);
//   check_checkpoint_matches(dir, manifest, expected_config, expected_tokenizer);   // throws
//   load_checkpoint_parameters(dir, manifest, model.parameters());
//
// Sharded layouts: each rank writes its own shard file into the temporary directory with
// write_checkpoint_shard(), then rank 0 writes the manifest and publishes with
// finish_checkpoint() after a barrier. Loading into a different layout (resharding) comes with the
// parallelism issue; today a checkpoint must be loaded into the layout it was written from.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "configs/steerlm.pb.h"
#include "model/parameters.h"
#include "runtime/safetensors.h"

namespace steerlm {

inline constexpr int kCheckpointFormatVersion = 1;
inline constexpr const char* kManifestFileName = "manifest.pbtxt";
inline constexpr const char* kHeadLanguageModel = "language_model";
inline constexpr const char* kHeadAttribute = "attribute";

// AdamW state of one shard: moments named like their parameters, with their shapes.
struct OptimizerState {
  int64_t step = 0;
  std::vector<NamedTensor> exp_avg;     // m
  std::vector<NamedTensor> exp_avg_sq;  // v
};

// The parameters' current values as named tensors (views, no copy), in the set's order.
std::vector<NamedTensor> named_tensors(const ParameterSet& parameters);

std::string model_shard_file(int tp_rank, int pp_rank);
std::string optimizer_shard_file(int tp_rank, int pp_rank, int dp_rank);

// Single-rank save of a whole checkpoint into `directory`. Fills the manifest's format_version,
// shards, tokenizer_file/bytes, optimizer_step and provenance (keeping converted_from); the rest
// (model, head, attributes, chat_template, step, consumed_samples, data_loader_state, rng_state)
// is the caller's. The model config is written with every field explicit.
void save_checkpoint(const std::filesystem::path& directory,
                     const config::CheckpointManifest& manifest, const std::string& tokenizer_path,
                     const std::vector<NamedTensor>& weights,
                     const OptimizerState* optimizer = nullptr);

// The temporary directory a save of `directory` writes into (unique to this process).
std::filesystem::path checkpoint_temporary_directory(const std::filesystem::path& directory);
// Writes one shard's weights (and optimizer state) into `temporary`; records it in `manifest`.
void write_checkpoint_shard(const std::filesystem::path& temporary, int tp_rank, int pp_rank,
                            int dp_rank, const std::vector<NamedTensor>& weights,
                            const OptimizerState* optimizer, config::CheckpointManifest* manifest);
// Copies the tokenizer, writes the manifest and renames `temporary` over `directory`.
void finish_checkpoint(const std::filesystem::path& temporary,
                       const std::filesystem::path& directory, config::CheckpointManifest manifest,
                       const std::string& tokenizer_path);

// Reads DIR/manifest.pbtxt. Throws UserError when it is missing, malformed, or of another format
// version.
config::CheckpointManifest read_checkpoint_manifest(const std::filesystem::path& directory);

// Throws one UserError listing every difference between the checkpoint and what the caller
// expects: model config fields (the name is only a label and is not compared), the vocabulary
// size, and the tokenizer file's contents. An empty `expected_tokenizer_path` skips that check.
void check_checkpoint_matches(const std::filesystem::path& directory,
                              const config::CheckpointManifest& manifest,
                              const config::ModelConfig& expected_model,
                              const std::string& expected_tokenizer_path);

// Path of the checkpoint's tokenizer copy.
std::filesystem::path checkpoint_tokenizer_path(const std::filesystem::path& directory,
                                                const config::CheckpointManifest& manifest);

// Loads the single-rank shard into `parameters`, whose names and shapes must match the file's
// exactly (UserError listing missing, unexpected and mis-shaped tensors otherwise).
void load_checkpoint_parameters(const std::filesystem::path& directory,
                                const config::CheckpointManifest& manifest,
                                ParameterSet& parameters);
// Same for named tensors (e.g. a converter's weights), filled in place.
void load_checkpoint_tensors(const std::filesystem::path& directory,
                             const config::CheckpointManifest& manifest,
                             std::vector<NamedTensor>& tensors);
// All tensors of the single-rank shard as new host f32 tensors, in file order.
std::vector<NamedTensor> read_checkpoint_tensors(const std::filesystem::path& directory,
                                                 const config::CheckpointManifest& manifest);

// Loads the single-rank shard's optimizer state. Tensors already in `state` (by name) are filled
// in place and must match; when `state` is empty it is filled with new host tensors.
void load_checkpoint_optimizer(const std::filesystem::path& directory,
                               const config::CheckpointManifest& manifest, OptimizerState* state);

// `config` with every unset field set to its default, so the manifest says exactly what was
// used even if a default changes later.
config::ModelConfig explicit_model_config(const config::ModelConfig& config);

}  // namespace steerlm
