// The training loop shared by every training stage (train-attr, sft): gradient accumulation to
// the global batch, DP gradient reduction, clipping, AdamW, periodic validation, checkpoints, one
// fixed log line per step on rank 0, metrics.jsonl, NaN/Inf step skipping, and a clean stop on
// SIGTERM/SIGUSR1 (issue 3 item 6; DESIGN §4).
//
//   Trainer trainer(config, model, train_batches, validation_batches, environment);
//   TrainingSummary summary = trainer.run();   // resumes from <output_dir>/checkpoint if there
//
// The loss of a step is the sum of token (or sequence) losses over the global batch divided by
// the global count (DESIGN §5): backward accumulates gradients of the sums, the DP reduction adds
// them up, and one scale by 1/count follows, so any layout gives the single-rank result.
//
// Parallel layouts (issue 5): with a grid, the model must hold pipeline_model_shard(grid, ...)
// (model/pipeline_schedule.h). Each step runs the 1F1B schedule over the replica's
// micro-batches; the last stage's loss sums are reduced over the world so every rank logs the
// same loss; gradients are summed over DP by bucketed all-reduce, or with parallel.zero1 by a
// reduce-scatter into each rank's ZeRO-1 slice (model/zero1_optimizer.h); the gradient norm
// counts each element once over the world. Checkpoints are sharded per (tp, pp) and per dp
// slice, and resume reads any PP split, DP size or ZeRO-1 setting (model/sharded_checkpoint.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "configs/steerlm.pb.h"
#include "model/checkpoint.h"
#include "model/llama.h"
#include "model/metrics.h"
#include "model/optimizer.h"
#include "model/pipeline_schedule.h"
#include "model/sharded_checkpoint.h"
#include "model/zero1_optimizer.h"
#include "parallel/grad_buckets.h"

namespace steerlm {

class ProcessGrid;

// Where a training job's batches come from. Implemented by the data loader (pipeline/).
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // This DP rank's micro-batches (parallel.micro_batches of them) for the next optimizer step.
  virtual std::vector<Batch> next_step() = 0;
  // Serialised position, stored in checkpoints so a resumed run sees the same samples.
  virtual std::string save_state() const = 0;
  virtual void restore_state(const std::string& state) = 0;
  // Sequences in one global batch (all DP ranks, all micro-batches).
  virtual int64_t global_batch_sequences() const = 0;
};

// Everything the loop needs beyond the config and the model.
struct TrainingEnvironment {
  int world_rank = 0;
  ProcessGrid* grid = nullptr;  // DP reduction and stop agreement; null for a single process
  std::string tokenizer_path;   // copied into every checkpoint
  // The fields of every checkpoint's manifest the loop cannot know: head, attributes, template.
  config::CheckpointManifest manifest_template;
  // Validation split for this DP rank, as ready batches (may be empty).
  std::vector<Batch> validation_batches;
  // Lines written to metrics.jsonl when a run starts fresh (e.g. the data report).
  std::vector<nlohmann::json> initial_metrics;
  // Steps at which to poison the gradients with NaN (fault-injection tests only).
  std::vector<int64_t> inject_nan_at_steps;
  // Attribute names, for per-attribute losses of an attribute head (in head order).
  std::vector<std::string> attribute_names;
};

struct ValidationResult {
  LossSums loss;
  std::vector<double> per_attribute_mse;  // attribute head only, in head order
};

// The pipeline bubble of a step: time stages spent waiting for their neighbours, summed over all
// ranks. With equal stage times 1F1B gives idle_share (P-1)/(M+P-1) and bubble (P-1)/M.
struct PipelineBubble {
  double idle_share = 0;    // idle time / schedule time
  double bubble = 0;        // idle time / compute time, to compare with ideal_bubble
  double ideal_bubble = 0;  // (P - 1) / M
};

struct TrainingSummary {
  int64_t steps_done = 0;     // optimizer steps completed, including before a resume
  int64_t skipped_steps = 0;  // steps skipped for a NaN/Inf loss or gradient norm
  double final_train_loss = 0;
  ValidationResult final_validation;
  bool stopped_by_signal = false;
  std::vector<double> step_losses;  // the loss of each step this run took, the same on all ranks
  PipelineBubble mean_bubble;       // averaged over this run's steps after the first
  double tokens_per_s = 0;          // real tokens of the global batch per second, after step 1
};

class Trainer {
 public:
  Trainer(const config::StageConfig& config, LlamaModel& model, BatchSource& train,
          TrainingEnvironment environment);
  ~Trainer();

  TrainingSummary run();
  // Loss over environment.validation_batches, reduced over DP.
  ValidationResult validate();
  // Loss over other batches of this DP rank (e.g. the validation split with shuffled labels);
  // collective: every rank calls it with its share.
  ValidationResult validate(const std::vector<Batch>& batches);
  // The pipeline bubble of the last step, the same on every rank (bench/ prints it).
  const PipelineBubble& last_bubble() const { return last_bubble_; }

 private:
  struct StepResult;
  StepResult train_step(int64_t step);
  void log_step(int64_t step, const StepResult& result);
  void log_validation(int64_t step, const ValidationResult& result);
  std::string attribute_name(size_t a) const;  // environment.attribute_names, or attribute_<a>
  void start_overlapped_sync(int micro_batches);
  void synchronise_gradients();
  void reduce_step_totals(StepResult& result, const PipelineTiming& timing);
  double global_grad_norm();
  bool holds_loss() const;
  void keep_held_loss(LossSums& loss) const;  // zero it where this rank does not hold it
  std::vector<MomentPiece> moment_pieces();
  int64_t optimizer_steps() const;
  void save(int64_t step, bool periodic);
  bool agree_to_stop();
  int64_t resume();

  const config::StageConfig& config_;
  LlamaModel& model_;
  BatchSource& train_;
  TrainingEnvironment environment_;
  std::unique_ptr<MetricsLog> metrics_;
  std::unique_ptr<PipelineSchedule> schedule_;
  std::unique_ptr<AdamW> optimizer_;             // without ZeRO-1
  std::unique_ptr<Zero1AdamW> zero1_;            // with ZeRO-1
  std::unique_ptr<GradientBuckets> dp_buckets_;  // without ZeRO-1, DP > 1
  // Overlap of the DP sync with backward: bucket index of each parameter, and how many
  // micro-batch backwards have finished each gradient this step (-1: not overlapping now).
  std::unordered_map<const Parameter*, size_t> bucket_index_;
  std::vector<int> backwards_done_;
  int overlap_micro_batches_ = -1;
  double total_parameters_ = 0;  // over all stages, for the FLOP rate
  PipelineBubble last_bubble_;
  PipelineBubble bubble_sum_;  // over steps after the first
  int64_t bubble_steps_ = 0;
  int64_t skipped_total_ = 0;
  int consecutive_skips_ = 0;
  double elapsed_s_ = 0;
  double throughput_time_s_ = 0;  // excludes the first step (warm-up), as llm.c does
  int64_t throughput_tokens_ = 0;
};

}  // namespace steerlm
