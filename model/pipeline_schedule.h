// The 1F1B pipeline schedule of one training step (DESIGN §5, PP), on one stage of the pipeline.
//
// Stage s of P holds a contiguous layer range (ProcessGrid::layers); the first stage also holds
// the embedding, the last one the final norm, the head and the loss. Over M micro-batches:
//
//   warm-up       min(P - 1 - s, M) forwards, each sent on to stage s+1
//   steady 1F1B   one forward, then one backward, M - warm-up times; the output is sent forward
//                 while the output gradient of the oldest micro-batch arrives (and vice versa)
//   cool-down     the warm-up's backwards, oldest first
//
// Stage s thus keeps at most P - s micro-batches' activations alive, instead of all M under
// GPipe. The time a stage waits for its neighbours is the bubble: with equal stage times each
// stage computes M (forward + backward) units in M + P - 1, so the idle share of the schedule is
// (P - 1) / (M + P - 1) and the bubble over the compute time is (P - 1) / M.
//
//   ModelShard shard = pipeline_model_shard(grid, model_config);   // before building the model
//   PipelineSchedule schedule(model, &grid);
//   PipelineStepResult result = schedule.train_step(micro_batches); // gradients of loss sums
//
// With one stage (or no grid) the schedule is plain gradient accumulation: forward then backward
// of each micro-batch, no transfers.
#pragma once

#include <deque>
#include <vector>

#include "model/llama.h"

namespace steerlm {

class ProcessGrid;

// The part of the model this rank holds: its stage's layers (parallel.pp_layers or an even
// split), the embedding on the first stage, the final norm and head on the last, and the grid's
// TP rank. Tied embeddings split over stages are a UserError (see the .cc).
ModelShard pipeline_model_shard(const ProcessGrid& grid, const config::ModelConfig& model);

// Time of one stage in one step's schedule.
struct PipelineTiming {
  double compute_s = 0;  // in the model's forward and backward
  double wall_s = 0;     // from the first forward to the last backward, transfers included
  double idle_s() const { return wall_s > compute_s ? wall_s - compute_s : 0.0; }
};

struct PipelineStepResult {
  LossSums loss;  // this rank's micro-batches; zero unless this is the last stage
  PipelineTiming timing;
};

class PipelineSchedule {
 public:
  // `grid` may be null (a single process). The model must hold pipeline_model_shard's shard.
  PipelineSchedule(LlamaModel& model, ProcessGrid* grid);

  // Forward and backward of every micro-batch with the 1F1B schedule. Gradients of the loss
  // sums (loss_scale 1) accumulate into the model's Parameter::grad.
  PipelineStepResult train_step(const std::vector<Batch>& micro_batches);

  // Forward only (validation): the activations pass through the stages. Returns the loss sums on
  // the last stage (zero elsewhere).
  LossSums forward_only(const Batch& batch);

  // Attribute predictions (S, A) of the attribute head, on every rank: the activations pass
  // through the stages and the last stage's predictions are broadcast over PP.
  Tensor predict_attributes(const Batch& batch);

  // One decoding step through the stages (LlamaModel::forward_cached on each, the hidden state
  // (B, N, C) sent along): every stage appends to its own KV cache, and every rank gets the
  // last stage's logits (B, V), so all sample the same tokens. GenerationOptions::decode_step.
  Tensor decode_step(KvCache& cache, const Tensor& new_tokens, const std::vector<int>& n_new);

 private:
  // A micro-batch whose forward ran on this stage and whose backward has not.
  struct InFlight {
    int micro_batch = 0;
    Activations saved;
  };

  // The three phases of 1F1B (STYLE 7).
  void warm_up(int forwards);
  void steady_1f1b(int rounds);
  void cool_down(int backwards);

  // One micro-batch through this stage. forward_step returns the output to send (undefined on
  // the last stage); backward_step takes the oldest micro-batch in flight and returns the
  // gradient of its input to send (undefined on the first stage).
  Tensor forward_step(const Tensor& hidden_in);
  Tensor backward_step(const Tensor& grad_hidden_out);
  // Transfers between neighbours; shapes come from the micro-batches, which both stages have.
  Tensor receive_activation();
  Tensor send_activation_receive_gradient(const Tensor& output);
  Tensor send_gradient_receive_activation(const Tensor& input_grad);
  Shape activation_shape(int micro_batch) const;

  bool is_first() const;
  bool is_last() const;
  int stage() const;
  int stages() const;

  LlamaModel& model_;
  ProcessGrid* grid_;

  // State of the step in progress.
  const std::vector<Batch>* micro_batches_ = nullptr;
  std::deque<InFlight> in_flight_;  // forwards waiting for their backward, oldest first
  int next_forward_ = 0;
  int next_backward_ = 0;
  PipelineStepResult result_;
};

}  // namespace steerlm
