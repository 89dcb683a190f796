#include "model/sharded_checkpoint.h"

#include <glog/logging.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "model/checkpoint.h"
#include "parallel/process_grid.h"
#include "runtime/error.h"
#include "runtime/safetensors.h"

namespace steerlm {
namespace fs = std::filesystem;

namespace {

// The names model/checkpoint.cc gives the moments in optimizer files.
constexpr const char* kMomentPrefix = "exp_avg.";
constexpr const char* kSquarePrefix = "exp_avg_sq.";
constexpr const char* kPieceOffsetsKey = "piece_offsets";

// Rank 0 names and creates the temporary directory; every rank learns its name, which holds
// rank 0's pid and so differs between ranks' own checkpoint_temporary_directory().
fs::path shared_temporary_directory(ProcessGrid* grid, const fs::path& directory) {
  std::string name;
  if (grid == nullptr || grid->world_rank() == 0) {
    const fs::path temporary = checkpoint_temporary_directory(directory);
    std::error_code error;
    fs::remove_all(temporary, error);
    fs::create_directories(temporary, error);
    if (error) throw UserError("cannot create " + temporary.string() + ": " + error.message());
    name = temporary.string();
  }
  if (grid == nullptr) return name;

  // The path as its length, then its bytes one per i32.
  Tensor length = Tensor::from_ints({static_cast<int32_t>(name.size())}, Shape{1});
  grid->world().broadcast(length, 0);
  std::vector<int32_t> bytes(name.begin(), name.end());
  bytes.resize(length.i32()[0]);
  Tensor characters = Tensor::from_ints(bytes, Shape{length.i32()[0]});  // (path length) i32
  grid->world().broadcast(characters, 0);
  return std::string(characters.i32(), characters.i32() + characters.numel());
}

void write_moments(const fs::path& path, const RankCheckpoint& rank) {
  std::vector<NamedTensor> tensors;
  nlohmann::json offsets = nlohmann::json::object();
  for (const MomentPiece& piece : rank.moments) {
    tensors.push_back({kMomentPrefix + piece.name, piece.exp_avg});
    tensors.push_back({kSquarePrefix + piece.name, piece.exp_avg_sq});
    offsets[piece.name] = piece.offset;
  }
  std::map<std::string, std::string> metadata = {{"step", std::to_string(rank.optimizer_step)}};
  if (rank.moments_sharded_over_dp) metadata[kPieceOffsetsKey] = offsets.dump();
  write_safetensors(path, tensors, metadata);
}

// The shards of `manifest` written by TP rank `tp_rank`, after checking the TP size.
std::vector<const config::CheckpointShard*> shards_of_tp_rank(
    const fs::path& directory, const config::CheckpointManifest& manifest, int tp_rank,
    int tp_size) {
  if (manifest.parallel().tp() != tp_size) {
    // TODO(resharding): split or join TP slices once the model shards weights over TP.
    throw UserError("checkpoint " + directory.string() +
                    " was written with parallel.tp=" + std::to_string(manifest.parallel().tp()) +
                    " but this run has tp=" + std::to_string(tp_size) +
                    "; TP resharding is not built yet");
  }
  std::vector<const config::CheckpointShard*> shards;
  for (const config::CheckpointShard& shard : manifest.shards()) {
    if (shard.tp_rank() == tp_rank) shards.push_back(&shard);
  }
  return shards;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

// Copies the overlap of a stored piece [stored_offset, + stored numel) into `piece`'s tensor
// (elements [piece_offset, + numel)); returns the elements copied.
int64_t copy_overlap(const Tensor& stored, int64_t stored_offset, Tensor& piece,
                     int64_t piece_offset) {
  const int64_t begin = std::max(stored_offset, piece_offset);
  const int64_t end = std::min(stored_offset + stored.numel(), piece_offset + piece.numel());
  if (begin >= end) return 0;
  std::copy(stored.f32() + (begin - stored_offset), stored.f32() + (end - stored_offset),
            piece.f32() + (begin - piece_offset));
  return end - begin;
}

void load_moments(const fs::path& directory,
                  const std::vector<const config::CheckpointShard*>& shards,
                  std::vector<MomentPiece>& moments) {
  std::vector<int64_t> filled(moments.size(), 0);
  for (const config::CheckpointShard* shard : shards) {
    for (const std::string& name : shard->optimizer_files()) {
      SafetensorsFile file(directory / name);
      const auto metadata = file.metadata().find(kPieceOffsetsKey);
      const nlohmann::json offsets = metadata == file.metadata().end()
                                         ? nlohmann::json::object()
                                         : nlohmann::json::parse(metadata->second);
      for (size_t i = 0; i < moments.size(); ++i) {
        MomentPiece& piece = moments[i];
        if (!file.contains(kMomentPrefix + piece.name)) continue;
        const int64_t offset = offsets.value(piece.name, int64_t{0});
        filled[i] += copy_overlap(file.read(kMomentPrefix + piece.name), offset, piece.exp_avg,
                                  piece.offset);
        copy_overlap(file.read(kSquarePrefix + piece.name), offset, piece.exp_avg_sq, piece.offset);
      }
    }
  }
  std::vector<std::string> incomplete;
  for (size_t i = 0; i < moments.size(); ++i) {
    if (filled[i] != moments[i].exp_avg.numel()) incomplete.push_back(moments[i].name);
  }
  if (!incomplete.empty()) {
    throw UserError("checkpoint " + directory.string() +
                    " lacks optimizer state (exp_avg) for: " + join_names(incomplete));
  }
}

}  // namespace

void save_sharded_checkpoint(ProcessGrid* grid, const fs::path& directory,
                             config::CheckpointManifest manifest, const std::string& tokenizer_path,
                             const RankCheckpoint& rank) {
  const int tp = grid ? grid->tp_rank() : 0, pp = grid ? grid->pp_rank() : 0;
  const int dp = grid ? grid->dp_rank() : 0;
  const fs::path temporary = shared_temporary_directory(grid, directory);

  // Every rank writes its part: weights once per (tp, pp), moments once or per dp slice.
  config::CheckpointManifest unused;
  write_checkpoint_shard(temporary, tp, pp, dp, named_tensors(*rank.parameters), nullptr, &unused);
  if (rank.moments_sharded_over_dp || dp == 0) {
    write_moments(temporary / optimizer_shard_file(tp, pp, dp), rank);
  }
  if (grid != nullptr) grid->world().barrier();  // all files are in place

  // Rank 0 lists every shard, writes the manifest and publishes the directory.
  if (grid == nullptr || grid->world_rank() == 0) {
    const int tp_size = grid ? grid->tp_size() : 1, pp_size = grid ? grid->pp_size() : 1;
    const int moment_files = rank.moments_sharded_over_dp && grid ? grid->dp_size() : 1;
    manifest.mutable_parallel()->set_tp(tp_size);
    manifest.mutable_parallel()->set_pp(pp_size);
    manifest.clear_shards();
    for (int stage = 0; stage < pp_size; ++stage) {
      for (int tp_rank = 0; tp_rank < tp_size; ++tp_rank) {
        config::CheckpointShard* shard = manifest.add_shards();
        shard->set_tp_rank(tp_rank);
        shard->set_pp_rank(stage);
        shard->set_file(model_shard_file(tp_rank, stage));
        for (int d = 0; d < moment_files; ++d) {
          shard->add_optimizer_files(optimizer_shard_file(tp_rank, stage, d));
        }
      }
    }
    manifest.set_optimizer_step(rank.optimizer_step);
    finish_checkpoint(temporary, directory, manifest, tokenizer_path);
  }
  if (grid != nullptr) grid->world().barrier();  // nobody reads or rewrites it before it exists
}

void load_sharded_checkpoint(const fs::path& directory, const config::CheckpointManifest& manifest,
                             ParameterSet& parameters, std::vector<MomentPiece>& moments) {
  // TODO(tp): pass this rank's TP coordinates once the model splits weights over TP.
  const std::vector<const config::CheckpointShard*> shards =
      shards_of_tp_rank(directory, manifest, 0, 1);

  // Weights: every tensor of every stage's file that this rank holds, by name.
  std::set<std::string> loaded;
  for (const config::CheckpointShard* shard : shards) {
    SafetensorsFile file(directory / shard->file());
    for (const SafetensorsEntry& entry : file.entries()) {
      Parameter* parameter = parameters.find(entry.name);
      if (parameter == nullptr) continue;
      file.read_into(entry.name, parameter->value);
      loaded.insert(entry.name);
    }
  }
  std::vector<std::string> missing;
  for (const Parameter& parameter : parameters) {
    if (!loaded.count(parameter.name)) missing.push_back(parameter.name);
  }
  if (!missing.empty()) {
    throw UserError("checkpoint " + directory.string() +
                    " lacks parameters: " + join_names(missing));
  }

  load_moments(directory, shards, moments);
}

}  // namespace steerlm
