#include "model/sharded_checkpoint.h"

#include <glog/logging.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "model/checkpoint.h"
#include "model/llama_core.h"
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

// The model architecture of a checkpoint as rank `tp_rank` of `tp_size` holds it: what
// tp_placement() needs to split or join each tensor.
CoreSpec checkpoint_spec(const config::CheckpointManifest& manifest, int tp_rank, int tp_size) {
  ModelOptions options;
  options.shard.tp_rank = tp_rank;
  options.shard.tp_size = tp_size;
  CoreSpec spec = CoreSpec::from(manifest.model(), HeadKind::kLanguageModel, 0, options);
  spec.n_attributes = manifest.attributes_size();
  return spec;
}

enum class TensorKind { kWeight, kExpAvg, kExpAvgSq };

// Reads tensors of a checkpoint written at any (TP, PP, DP, ZeRO-1) layout: a rank's own slice
// straight from its TP rank's file when the TP size matches, else the single-rank tensor joined
// from every TP rank's part and sliced again (TP resharding).
class ShardedCheckpointReader {
 public:
  ShardedCheckpointReader(const fs::path& directory, const config::CheckpointManifest& manifest)
      : directory_(directory),
        manifest_(manifest),
        saved_spec_(checkpoint_spec(manifest, 0, std::max(1, manifest.parallel().tp()))) {
    // Which file holds each tensor (and moment piece) of each saved TP rank.
    for (const config::CheckpointShard& shard : manifest.shards()) {
      const SafetensorsFile& weights = file(shard.file());
      for (const SafetensorsEntry& entry : weights.entries()) {
        if (!weight_files_.count(entry.name)) names_.push_back(entry.name);
        weight_files_[entry.name][shard.tp_rank()] = shard.file();
      }
      for (const std::string& name : shard.optimizer_files()) index_moments(shard.tp_rank(), name);
    }
  }

  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return weight_files_.count(name) > 0; }
  bool has_moments(const std::string& name) const { return moment_files_.count(name) > 0; }

  // The single-rank tensor.
  Tensor full(const std::string& name, TensorKind kind) {
    const TpPlacement placement = tp_placement(saved_spec_, name);
    if (placement.split == TpSplit::kReplicated) return part(name, kind, 0);
    std::vector<Tensor> parts;
    for (int rank = 0; rank < saved_spec_.shard.tp_size; ++rank) {
      parts.push_back(part(name, kind, rank));
    }
    return tp_join(parts, placement);
  }

  // What rank `shard` holds of the tensor, TP padding included.
  Tensor local(const std::string& name, TensorKind kind, const ModelShard& shard) {
    const CoreSpec spec = checkpoint_spec(manifest_, shard.tp_rank, shard.tp_size);
    const TpPlacement placement = tp_placement(spec, name);
    const TpPlacement saved = tp_placement(saved_spec_, name);
    if (placement.split == TpSplit::kReplicated) return full(name, kind);
    if (shard.tp_size != saved_spec_.shard.tp_size || placement.split != saved.split) {
      return tp_slice(full(name, kind), placement, shard.tp_rank, shard.tp_size);
    }
    const Tensor valid = part(name, kind, shard.tp_rank);
    Tensor padded =
        Tensor::zeros(Shape(tp_local_shape(placement, shard.tp_rank, shard.tp_size)), DType::kF32);
    CHECK_LE(valid.numel(), padded.numel()) << name;
    std::copy_n(valid.f32(), valid.numel(), padded.f32());
    return padded;
  }

 private:
  struct StoredPiece {
    std::string file;
    int64_t offset = 0;
  };

  const SafetensorsFile& file(const std::string& name) {
    auto& open = files_[name];
    if (open == nullptr) open = std::make_unique<SafetensorsFile>(directory_ / name);
    return *open;
  }

  void index_moments(int tp_rank, const std::string& file_name) {
    const SafetensorsFile& moments = file(file_name);
    const auto metadata = moments.metadata().find(kPieceOffsetsKey);
    const nlohmann::json offsets = metadata == moments.metadata().end()
                                       ? nlohmann::json::object()
                                       : nlohmann::json::parse(metadata->second);
    const std::string prefix = kMomentPrefix;
    for (const SafetensorsEntry& entry : moments.entries()) {
      if (entry.name.rfind(prefix, 0) != 0) continue;
      const std::string name = entry.name.substr(prefix.size());
      moment_files_[name][tp_rank].push_back({file_name, offsets.value(name, int64_t{0})});
    }
  }

  // Saved TP rank `rank`'s part without padding (tp_valid_part), in the local shape's rows.
  Tensor part(const std::string& name, TensorKind kind, int rank) {
    const TpPlacement placement = tp_placement(saved_spec_, name);
    const int tp_size = saved_spec_.shard.tp_size;
    if (kind == TensorKind::kWeight) {
      const auto& by_rank = weight_files_.at(name);
      const auto found = by_rank.find(rank);
      if (found == by_rank.end()) {
        throw UserError("checkpoint " + directory_.string() + " has no tp rank " +
                        std::to_string(rank) + " shard of " + name);
      }
      return file(found->second).read(name);
    }
    // Moments: the flattened local tensor from its pieces (one, or one per ZeRO-1 slice). A
    // replicated tensor has the stored weight's shape.
    const std::vector<int64_t> shape =
        placement.split == TpSplit::kReplicated
            ? file(weight_files_.at(name).begin()->second).entry(name).shape
            : tp_local_shape(placement, rank, tp_size);
    Tensor local = Tensor::zeros(Shape(shape), DType::kF32);
    Tensor flat = local.reshape(Shape{local.numel()});
    const std::string prefix = kind == TensorKind::kExpAvg ? kMomentPrefix : kSquarePrefix;
    int64_t filled = 0;
    for (const StoredPiece& piece : moment_files_.at(name)[rank]) {
      Tensor stored = file(piece.file).read(prefix + name);
      filled += copy_overlap(stored.reshape(Shape{stored.numel()}), piece.offset, flat, 0);
    }
    if (filled != local.numel()) {
      throw UserError("checkpoint " + directory_.string() + " lacks optimizer state (" + prefix +
                      ") for part of " + name + " (tp rank " + std::to_string(rank) + ")");
    }
    return tp_valid_part(local, placement, rank, tp_size);
  }

  fs::path directory_;
  const config::CheckpointManifest& manifest_;
  CoreSpec saved_spec_;
  std::vector<std::string> names_;                                  // in file order
  std::map<std::string, std::map<int, std::string>> weight_files_;  // name -> tp rank -> file
  std::map<std::string, std::map<int, std::vector<StoredPiece>>> moment_files_;
  std::map<std::string, std::unique_ptr<SafetensorsFile>> files_;
};

}  // namespace

void save_sharded_checkpoint(ProcessGrid* grid, const fs::path& directory,
                             config::CheckpointManifest manifest, const std::string& tokenizer_path,
                             const RankCheckpoint& rank) {
  const int tp = grid ? grid->tp_rank() : 0, pp = grid ? grid->pp_rank() : 0;
  const int dp = grid ? grid->dp_rank() : 0;
  const fs::path temporary = shared_temporary_directory(grid, directory);

  // Every rank writes its part: weights once per (tp, pp), moments once or per dp slice.
  config::CheckpointManifest unused;
  const CoreSpec spec = checkpoint_spec(manifest, tp, grid ? grid->tp_size() : 1);
  std::vector<NamedTensor> weights;
  for (const NamedTensor& named : named_tensors(*rank.parameters)) {
    // TP padding rows are internal (DESIGN §4): only the real rows are stored.
    weights.push_back({named.name, tp_valid_part(named.tensor, tp_placement(spec, named.name), tp,
                                                 spec.shard.tp_size)});
  }
  write_checkpoint_shard(temporary, tp, pp, dp, weights, nullptr, &unused);
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

int load_sharded_weights(const fs::path& directory, const config::CheckpointManifest& manifest,
                         ParameterSet& parameters, const ModelShard& shard,
                         const std::function<bool(const std::string&)>& optional) {
  ShardedCheckpointReader reader(directory, manifest);
  std::vector<std::string> missing;
  int loaded = 0;
  for (Parameter& parameter : parameters) {
    if (!reader.contains(parameter.name)) {
      if (!optional || !optional(parameter.name)) missing.push_back(parameter.name);
      continue;
    }
    const Tensor local = reader.local(parameter.name, TensorKind::kWeight, shard);
    if (!(local.shape() == parameter.value.shape())) {
      throw UserError("checkpoint " + directory.string() + ": " + parameter.name + " has shape " +
                      local.shape().str() + " on this rank, the model expects " +
                      parameter.value.shape().str());
    }
    parameter.value.copy_from(local);
    ++loaded;
  }
  if (!missing.empty()) {
    throw UserError("checkpoint " + directory.string() +
                    " lacks parameters: " + join_names(missing));
  }
  return loaded;
}

void load_sharded_checkpoint(const fs::path& directory, const config::CheckpointManifest& manifest,
                             ParameterSet& parameters, std::vector<MomentPiece>& moments,
                             const ModelShard& shard) {
  load_sharded_weights(directory, manifest, parameters, shard);

  // Each moment piece: this rank's local moment tensor, flattened, at the piece's offset.
  ShardedCheckpointReader reader(directory, manifest);
  std::vector<std::string> incomplete;
  for (MomentPiece& piece : moments) {
    const std::string& name = piece.name;
    if (!reader.has_moments(name)) {
      incomplete.push_back(name);
      continue;
    }
    copy_overlap(reader.local(name, TensorKind::kExpAvg, shard), 0, piece.exp_avg, piece.offset);
    copy_overlap(reader.local(name, TensorKind::kExpAvgSq, shard), 0, piece.exp_avg_sq,
                 piece.offset);
  }
  if (!incomplete.empty()) {
    throw UserError("checkpoint " + directory.string() +
                    " lacks optimizer state (exp_avg) for: " + join_names(incomplete));
  }
}

std::vector<NamedTensor> read_full_tensors(const fs::path& directory,
                                           const config::CheckpointManifest& manifest) {
  ShardedCheckpointReader reader(directory, manifest);
  std::vector<NamedTensor> tensors;
  for (const std::string& name : reader.names()) {
    tensors.push_back({name, reader.full(name, TensorKind::kWeight)});
  }
  return tensors;
}

}  // namespace steerlm
