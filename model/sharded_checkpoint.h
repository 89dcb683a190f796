// Checkpoints of a parallel layout (DESIGN §4, "Checkpoint directory"; model/checkpoint.h for
// the file names and the manifest).
//
// Saving is collective over the world: every (tp, pp) rank of dp replica 0 writes its weights
// with write_checkpoint_shard() into one temporary directory shared by all ranks; the optimizer
// moments go to optimizer_tp{t}_pp{p}_dp{d}.safetensors, written by dp rank 0 only, or by every
// dp rank under ZeRO-1 (each holds a different slice). After a barrier rank 0 writes the
// manifest, listing every shard, and publishes the directory.
//
// An optimizer file stores "exp_avg.NAME" and "exp_avg_sq.NAME" (m and v). Without ZeRO-1 they
// have the parameter's shape, as a single-rank save writes them. Under ZeRO-1 a file holds a
// 1-D piece of each parameter its slice touches; the metadata key "piece_offsets" is a JSON
// object NAME -> first element of the piece in the flattened parameter.
//
// Loading reads every shard file of the checkpoint and takes the tensors (and moment pieces)
// this rank holds, by name. So a checkpoint loads into any PP split, any DP size, with ZeRO-1
// on or off: PP resharding comes from the names alone. TP resharding joins each tensor's parts
// (model/tp_layout.h; weights are stored without TP padding rows) and slices it for the new TP.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "configs/steerlm.pb.h"
#include "model/checkpoint.h"
#include "model/llama.h"
#include "model/parameters.h"

namespace steerlm {

class ProcessGrid;

// Elements [offset, offset + numel) of one parameter's flattened AdamW moments, as held by this
// rank: the whole parameter (offset 0, the parameter's shape) or a ZeRO-1 slice (1-D).
struct MomentPiece {
  std::string name;
  int64_t offset = 0;
  Tensor exp_avg;     // m, f32, cpu (a view into the optimizer's state)
  Tensor exp_avg_sq;  // v, f32, cpu
};

// What one rank contributes to a save.
struct RankCheckpoint {
  const ParameterSet* parameters = nullptr;  // this stage's weights
  std::vector<MomentPiece> moments;          // this rank's optimizer state
  int64_t optimizer_step = 0;
  bool moments_sharded_over_dp = false;  // ZeRO-1: every dp rank writes its own file
};

// Collective over grid->world() (or single-process when grid is null). `manifest` carries the
// caller's fields (model, head, parallel layout, step, loader state ...); shards, optimizer_step
// and the rest of the bookkeeping are filled here. Returns once the directory is published.
void save_sharded_checkpoint(ProcessGrid* grid, const std::filesystem::path& directory,
                             config::CheckpointManifest manifest, const std::string& tokenizer_path,
                             const RankCheckpoint& rank);

// Fills this rank's parameters and moment pieces (in place) from any TP/PP/DP/ZeRO-1 layout of
// `directory`; `shard` says which TP slice this rank holds. Throws UserError when the checkpoint
// lacks a tensor or moment this rank needs (naming them), or a shape differs.
void load_sharded_checkpoint(const std::filesystem::path& directory,
                             const config::CheckpointManifest& manifest, ParameterSet& parameters,
                             std::vector<MomentPiece>& moments, const ModelShard& shard);

// Weights only (model.init_from, inference). Parameters the checkpoint lacks are an error unless
// `optional` says yes for their name (e.g. a fresh head). Returns how many were loaded.
int load_sharded_weights(const std::filesystem::path& directory,
                         const config::CheckpointManifest& manifest, ParameterSet& parameters,
                         const ModelShard& shard,
                         const std::function<bool(const std::string&)>& optional = {});

// Every weight of the checkpoint as the single-rank tensor (export, conversion, tests).
std::vector<NamedTensor> read_full_tensors(const std::filesystem::path& directory,
                                           const config::CheckpointManifest& manifest);

}  // namespace steerlm
