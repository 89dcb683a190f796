#include "model/pipeline_schedule.h"

#include <glog/logging.h>

#include <algorithm>
#include <chrono>

#include "parallel/pp_transfer.h"
#include "parallel/process_grid.h"
#include "runtime/error.h"

namespace steerlm {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

ModelShard pipeline_model_shard(const ProcessGrid& grid, const config::ModelConfig& model) {
  // TODO(pp): a tied embedding on the first and last stage needs its two gradients summed over
  // the pp group each step; the model refuses that shard (model/llama_core.cc), so say so first.
  if (model.tie_embeddings() && grid.pp_size() > 1) {
    throw UserError(
        "model.config.tie_embeddings: tied embeddings are not supported with "
        "parallel.pp=" +
        std::to_string(grid.pp_size()) +
        " yet (the embedding and the head are on different stages); set "
        "tie_embeddings: false or parallel.pp=1");
  }
  const LayerRange layers = grid.layers(model.n_layers());
  ModelShard shard;
  shard.layer_begin = layers.begin;
  shard.layer_end = layers.end;
  shard.has_embedding = grid.is_first_stage();
  shard.has_final = grid.is_last_stage();
  shard.tp_rank = grid.tp_rank();
  shard.tp_size = grid.tp_size();
  return shard;
}

PipelineSchedule::PipelineSchedule(LlamaModel& model, ProcessGrid* grid)
    : model_(model), grid_(grid) {
  // The stage's model must hold exactly this stage's part, or transfers would not line up.
  const ModelShard& shard = model.shard();
  const int n_layers = model.config().n_layers();
  const LayerRange layers = grid_ != nullptr ? grid_->layers(n_layers) : LayerRange{0, n_layers};
  const int layer_end = shard.layer_end < 0 ? n_layers : shard.layer_end;
  CHECK(shard.layer_begin == layers.begin && layer_end == layers.end &&
        shard.has_embedding == is_first() && shard.has_final == is_last())
      << "the model holds layers [" << shard.layer_begin << ", " << layer_end << ") (embedding "
      << shard.has_embedding << ", head " << shard.has_final << ") but stage " << stage() << " of "
      << stages() << " owns [" << layers.begin << ", " << layers.end
      << "); build it with pipeline_model_shard()";
}

bool PipelineSchedule::is_first() const {
  return grid_ == nullptr || grid_->is_first_stage();
}
bool PipelineSchedule::is_last() const {
  return grid_ == nullptr || grid_->is_last_stage();
}
int PipelineSchedule::stage() const {
  return grid_ == nullptr ? 0 : grid_->pp_rank();
}
int PipelineSchedule::stages() const {
  return grid_ == nullptr ? 1 : grid_->pp_size();
}

PipelineStepResult PipelineSchedule::train_step(const std::vector<Batch>& micro_batches) {
  const auto start = Clock::now();
  micro_batches_ = &micro_batches;
  in_flight_.clear();
  next_forward_ = 0;
  next_backward_ = 0;
  result_ = PipelineStepResult{};

  // Stage s runs P - 1 - s forwards ahead, so that when the last stage starts its first
  // backward every stage has work; then alternates; then drains the backwards it owes.
  const int micro_batch_count = static_cast<int>(micro_batches.size());
  const int warm_up_forwards = std::min(stages() - 1 - stage(), micro_batch_count);
  warm_up(warm_up_forwards);
  steady_1f1b(micro_batch_count - warm_up_forwards);
  cool_down(warm_up_forwards);

  CHECK(in_flight_.empty() && next_backward_ == micro_batch_count)
      << "1F1B left " << in_flight_.size() << " micro-batches without a backward";
  result_.timing.wall_s = seconds_since(start);
  micro_batches_ = nullptr;
  return result_;
}

void PipelineSchedule::warm_up(int forwards) {
  for (int i = 0; i < forwards; ++i) {
    // The last stage never warms up (P - 1 - s = 0), so every output here goes on.
    Tensor output = forward_step(receive_activation());
    send_forward(grid_->pp(), output);
  }
}

void PipelineSchedule::steady_1f1b(int rounds) {
  if (rounds == 0) return;
  Tensor hidden_in = receive_activation();
  for (int round = 0; round < rounds; ++round) {
    // One forward: its output leaves while the gradient of the oldest micro-batch arrives.
    Tensor output = forward_step(hidden_in);
    Tensor grad_output = is_last() ? Tensor() : send_activation_receive_gradient(output);

    // One backward: its input gradient leaves while the next micro-batch's activation arrives
    // (none after the last round: the cool-down only receives gradients).
    Tensor input_grad = backward_step(grad_output);
    const bool last_round = round + 1 == rounds;
    if (is_first()) continue;
    if (last_round) {
      send_backward(grid_->pp(), input_grad);
    } else {
      hidden_in = send_gradient_receive_activation(input_grad);
    }
  }
}

void PipelineSchedule::cool_down(int backwards) {
  for (int i = 0; i < backwards; ++i) {
    // Not on the last stage (no warm-up there), so every gradient comes from stage s+1.
    Tensor grad_output = recv_backward(
        grid_->pp(), activation_shape(in_flight_.front().micro_batch), DType::kF32, Device::cpu());
    Tensor input_grad = backward_step(grad_output);
    if (!is_first()) send_backward(grid_->pp(), input_grad);
  }
}

Tensor PipelineSchedule::forward_step(const Tensor& hidden_in) {
  const int micro_batch = next_forward_++;
  InFlight& flight = in_flight_.emplace_back();
  flight.micro_batch = micro_batch;
  const auto start = Clock::now();
  result_.loss += model_.forward((*micro_batches_)[micro_batch], flight.saved, hidden_in);
  const double seconds = seconds_since(start);
  result_.timing.compute_s += seconds;
  VLOG(1) << "stage " << stage() << "/" << stages() << " forward  micro-batch " << micro_batch
          << ": " << seconds * 1e3 << " ms, " << in_flight_.size() << " in flight";
  return is_last() ? Tensor() : flight.saved.hidden_out;  // (B, T, C) f32, cpu
}

Tensor PipelineSchedule::backward_step(const Tensor& grad_hidden_out) {
  // 1F1B finishes micro-batches in the order it started them.
  InFlight& oldest = in_flight_.front();
  CHECK_EQ(oldest.micro_batch, next_backward_);
  const auto start = Clock::now();
  Tensor input_grad = model_.backward(oldest.saved, 1.0f, grad_hidden_out);  // (B, T, C) or none
  const double seconds = seconds_since(start);
  result_.timing.compute_s += seconds;
  VLOG(1) << "stage " << stage() << "/" << stages() << " backward micro-batch " << next_backward_
          << ": " << seconds * 1e3 << " ms";
  ++next_backward_;
  in_flight_.pop_front();
  return input_grad;
}

Shape PipelineSchedule::activation_shape(int micro_batch) const {
  const Batch& batch = (*micro_batches_)[micro_batch];
  return Shape{batch.batch_size(), batch.seq_len(), model_.config().dim()};
}

Tensor PipelineSchedule::receive_activation() {
  if (is_first()) return Tensor();
  return recv_forward(grid_->pp(), activation_shape(next_forward_), DType::kF32, Device::cpu());
}

Tensor PipelineSchedule::send_activation_receive_gradient(const Tensor& output) {
  const Shape grad_shape = activation_shape(in_flight_.front().micro_batch);
  if (grad_shape == output.shape()) return send_forward_recv_backward(grid_->pp(), output);
  // Micro-batches of different shapes (e.g. padded to their own longest sequence): the same
  // two transfers in flight together, with the gradient's own shape.
  Tensor grad_output = Tensor::empty(grad_shape, DType::kF32);  // (B, T, C) f32, cpu
  const int next = grid_->pp_rank() + 1;
  grid_->pp().send_recv(output, next, kPipelineActivationTag, grad_output, next,
                        kPipelineGradientTag);
  return grad_output;
}

Tensor PipelineSchedule::send_gradient_receive_activation(const Tensor& input_grad) {
  const Shape activation = activation_shape(next_forward_);
  if (activation == input_grad.shape()) return send_backward_recv_forward(grid_->pp(), input_grad);
  Tensor hidden_in = Tensor::empty(activation, DType::kF32);  // (B, T, C) f32, cpu
  const int previous = grid_->pp_rank() - 1;
  grid_->pp().send_recv(input_grad, previous, kPipelineGradientTag, hidden_in, previous,
                        kPipelineActivationTag);
  return hidden_in;
}

LossSums PipelineSchedule::forward_only(const Batch& batch) {
  if (stages() == 1) return model_.evaluate(batch);

  // Receive, compute, pass on; activations are dropped as soon as the output has left.
  Tensor hidden_in;  // (B, T, C) f32, cpu
  const Shape shape{batch.batch_size(), batch.seq_len(), model_.config().dim()};
  if (!is_first()) hidden_in = recv_forward(grid_->pp(), shape, DType::kF32, Device::cpu());
  Activations saved;
  const LossSums sums = model_.forward(batch, saved, hidden_in);
  if (!is_last()) {
    send_forward(grid_->pp(), saved.hidden_out);
    return LossSums{};
  }
  return sums;
}

Tensor PipelineSchedule::predict_attributes(const Batch& batch) {
  if (stages() == 1) return model_.predict_attributes(batch);

  // Receive, compute, pass on; the last stage reads the head.
  const Shape shape{batch.batch_size(), batch.seq_len(), model_.config().dim()};
  Tensor hidden_in;  // (B, T, C) f32, cpu
  if (!is_first()) hidden_in = recv_forward(grid_->pp(), shape, DType::kF32, Device::cpu());
  Tensor predictions;  // (S, A) f32, cpu
  if (is_last()) {
    predictions = model_.predict_attributes(batch, hidden_in);
  } else {
    Activations saved;
    model_.forward(batch, saved, hidden_in);
    send_forward(grid_->pp(), saved.hidden_out);
  }

  // The last stage's predictions to every stage (fwd: broadcast over PP); S from the batch.
  Tensor shape_of_predictions =
      Tensor::from_ints({static_cast<int32_t>(predictions.defined() ? predictions.dim(0) : 0),
                         static_cast<int32_t>(predictions.defined() ? predictions.dim(1) : 0)},
                        Shape{2});
  grid_->pp().broadcast(shape_of_predictions, stages() - 1);
  if (!is_last()) {
    predictions =
        Tensor::empty({shape_of_predictions.i32()[0], shape_of_predictions.i32()[1]}, DType::kF32);
  }
  grid_->pp().broadcast(predictions, stages() - 1);
  return predictions;
}

Tensor PipelineSchedule::decode_step(KvCache& cache, const Tensor& new_tokens,
                                     const std::vector<int>& n_new) {
  if (stages() == 1) return model_.forward_cached(cache, new_tokens, n_new);

  // This stage's layers on the previous stage's output, then on to the next stage.
  const config::ModelConfig& config = model_.config();
  Tensor hidden_in, hidden_out;  // (B, N, C) f32, cpu
  if (!is_first()) {
    const Shape shape{cache.batch_size, new_tokens.dim(1), config.dim()};
    hidden_in = recv_forward(grid_->pp(), shape, DType::kF32, Device::cpu());
  }
  Tensor logits = model_.forward_cached(cache, new_tokens, n_new, hidden_in, &hidden_out);
  if (!is_last()) send_forward(grid_->pp(), hidden_out);

  // The last stage's logits to every stage (fwd: broadcast over PP).
  if (!is_last()) logits = Tensor::empty({cache.batch_size, config.vocab_size()}, DType::kF32);
  grid_->pp().broadcast(logits, stages() - 1);
  return logits;
}

}  // namespace steerlm
