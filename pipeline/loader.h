// The data loader (LoaderBatch: host vectors; pipeline/train_stage.cc makes model Batches): epochs,
// shuffling, global batches, and their sharding over data-parallel ranks and micro-batches (DESIGN
// §4 "Parallel layout", §5 "Equivalence"). No MPI inside: every rank builds the same loader and
// asks for its own shard.
//
//   DataLoader loader(data.train, data.part_weights, {config.train().global_batch_size(),
//                     config.train().seq_len(), config.train().seed(), config.data().packing()});
//   loader.restore(state_from_checkpoint);                    // optional
//   for (int step = ...) {
//     std::vector<LoaderBatch> micro = loader.next_step(dp_rank, dp_size, micro_batches);  // M
//     batches
//     ... forward/backward each; normalise by micro[m].global_trained_tokens ...
//     checkpoint.loader_state = loader.state();
//   }
//
// Global batch k is samples [k*G, (k+1)*G) of the endless stream epoch 0 ++ epoch 1 ++ ..., each
// epoch a seeded permutation, so no sample is ever dropped and the batch never depends on the
// layout. A global batch is sorted by length (so a micro-batch pads little) and cut into DP*M
// equal chunks of G/(DP*M) samples; rank r's micro-batch m is chunk m*DP + r, which spreads long
// and short chunks evenly over the ranks.
#pragma once

#include <cstdint>
#include <vector>

#include "pipeline/dataset.h"

namespace steerlm {

// The value in LoaderBatch::targets for positions that carry no loss.
constexpr int32_t kIgnoreTarget = -100;

// One micro-batch for the model. Letters: B rows, T positions (<= train.seq_len), S sequences
// (S == B unless packed), A attributes.
struct LoaderBatch {
  int64_t rows = 0;                      // B
  int64_t seq_len = 0;                   // T
  std::vector<int32_t> tokens;           // (B, T), cpu: input ids; 0 at padding
  std::vector<int32_t> targets;          // (B, T), cpu: next token id where trained, else -100
  std::vector<int32_t> positions;        // (B, T), cpu: position within its own sequence (RoPE)
  std::vector<int32_t> sequence_ids;     // (B, T), cpu: which sequence (0..S-1); -1 at padding.
                                         // Attention stays within equal ids (packing, padding).
  std::vector<int32_t> lengths;          // (S): tokens of each sequence
  std::vector<int32_t> last_token;       // (S): flat index row*T + t of each sequence's last token
  std::vector<float> attribute_targets;  // (S, A): -100 for missing (attribute task)
  std::vector<int64_t> sample_ids;       // (S): index into the dataset, for logs and tests
  int64_t trained_tokens = 0;            // targets != -100 in this micro-batch
  int64_t global_trained_tokens = 0;     // ... in the whole global batch: the loss divisor
  int64_t global_sequences = 0;          // sequences in the whole global batch (attribute loss)
  int64_t attributes = 0;                // A
};

struct LoaderOptions {
  int64_t global_batch_size = 8;  // G, sequences per optimizer step
  int seq_len = 256;              // train.seq_len; every sample is already fitted to it
  uint64_t seed = 1234;
  bool packing = false;  // pack sequences into rows instead of padding each
};

// Where a loader is: `epoch` and `position` (samples of that epoch already consumed). Saved in
// checkpoints; restoring it makes a resumed run see exactly the samples an uninterrupted one would.
struct LoaderState {
  uint64_t epoch = 0;
  uint64_t position = 0;
  bool operator==(const LoaderState& other) const = default;
};

class DataLoader {
 public:
  // `samples` must outlive the loader. `part_weights`: one mixing weight per input file
  // (TokenizedSample::part), or empty for "every sample once per epoch".
  DataLoader(const std::vector<TokenizedSample>& samples, std::vector<float> part_weights,
             LoaderOptions options);

  // The global batch of the next optimizer step, this rank's share of it as `micro_batches`
  // micro-batches, and the loader advanced past it. Throws UserError when
  // G is not a multiple of dp_size * micro_batches.
  std::vector<LoaderBatch> next_step(int dp_rank, int dp_size, int micro_batches);

  // Sample indices of the next global batch (whole, unsorted), without advancing.
  std::vector<int64_t> peek_global_batch() const;

  // Sample indices of `epoch`, in order: a seeded shuffle of the epoch's composition (every
  // sample once, or per-file counts from the mixing weights).
  std::vector<int64_t> epoch_order(uint64_t epoch) const;
  int64_t epoch_size() const { return epoch_size_; }

  LoaderState state() const { return state_; }
  void restore(const LoaderState& state) { state_ = state; }

 private:
  std::vector<int64_t> take(LoaderState* state) const;

  const std::vector<TokenizedSample>& samples_;
  std::vector<float> part_weights_;
  LoaderOptions options_;
  int64_t epoch_size_ = 0;
  LoaderState state_;
};

// Builds this rank's micro-batches from one global batch of sample indices (the layout-free core
// of next_step, exposed for validation and tests).
std::vector<LoaderBatch> shard_global_batch(const std::vector<TokenizedSample>& samples,
                                            std::vector<int64_t> global_batch, int dp_rank,
                                            int dp_size, int micro_batches,
                                            const LoaderOptions& options);

// Validation in a fixed order: global batches of G samples (the last may be short), each split as
// evenly as possible over the DP ranks, one micro-batch per global batch (possibly empty:
// rows == 0). global_trained_tokens and global_sequences count the WHOLE validation split, so
// summing loss_sum / global_trained_tokens over all batches and ranks gives the mean.
std::vector<LoaderBatch> validation_batches(const std::vector<TokenizedSample>& samples,
                                            const LoaderOptions& options, int dp_rank, int dp_size);

}  // namespace steerlm
