#include "model/trainer.h"

#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "model/stop_signal.h"
#include "parallel/process_grid.h"
#include "runtime/error.h"
#include "runtime/ops.h"

namespace steerlm {
namespace fs = std::filesystem;

struct Trainer::StepResult {
  LossSums loss;       // over the global batch
  int64_t tokens = 0;  // real (non-padding) tokens in the global batch
  double grad_norm = 0;
  float lr = 0;
  double seconds = 0;
  bool skipped = false;
  PipelineBubble bubble;
};

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int64_t real_tokens(const Batch& batch) {
  const int32_t* segments = batch.segments.i32();  // (B, T) i32, cpu
  int64_t count = 0;
  for (int64_t i = 0; i < batch.segments.numel(); ++i) count += segments[i] > 0;
  return count;
}

// Model FLOPs per trained-over token: 6 per parameter (forward + backward) plus causal
// attention's score and value products, 6 * L * T * C (half of the full 12 * L * T * C).
double flops_per_token(const config::ModelConfig& c, double parameters, int64_t seq_len) {
  return 6.0 * parameters + 6.0 * c.n_layers() * static_cast<double>(seq_len) * c.dim();
}

std::string step_directory_name(int64_t step) {
  return "step_" + std::to_string(step);
}

// Keeps the newest `keep_last` checkpoints/step_N directories.
void apply_retention(const fs::path& periodic_root, int keep_last) {
  std::vector<std::pair<int64_t, fs::path>> found;
  if (!fs::exists(periodic_root)) return;
  for (const auto& entry : fs::directory_iterator(periodic_root)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step_", 0) != 0 || name.find(".tmp") != std::string::npos) continue;
    found.emplace_back(std::stoll(name.substr(5)), entry.path());
  }
  std::sort(found.begin(), found.end());
  for (size_t i = 0; i + keep_last < found.size(); ++i) fs::remove_all(found[i].second);
}

}  // namespace

Trainer::Trainer(const config::StageConfig& config, LlamaModel& model, BatchSource& train,
                 TrainingEnvironment environment)
    : config_(config), model_(model), train_(train), environment_(std::move(environment)) {
  ProcessGrid* grid = environment_.grid;
  schedule_ = std::make_unique<PipelineSchedule>(model_, grid);

  // The optimizer: AdamW state sharded over DP (ZeRO-1), or whole on every replica.
  if (grid != nullptr && config_.parallel().zero1()) {
    zero1_ = std::make_unique<Zero1AdamW>(config_.optim(), model_.parameters(), grid->dp());
  } else {
    optimizer_ = std::make_unique<AdamW>(config_.optim(), model_.parameters());
  }
  if (zero1_ == nullptr && grid != nullptr && grid->dp_size() > 1) {
    // Gradients become final in reverse registration order (the head first).
    std::vector<Tensor> grads;
    for (auto it = model_.parameters().end(); it != model_.parameters().begin();) {
      bucket_index_[&*--it] = grads.size();
      grads.push_back(it->grad);
    }
    dp_buckets_ = std::make_unique<GradientBuckets>(grads, config_.parallel().bucket_mb());
    backwards_done_.assign(grads.size(), 0);

    // A gradient is final once every micro-batch's backward has added to it: its bucket can
    // start summing over DP while backward works on earlier layers.
    model_.set_gradients_done_hook([this](const std::vector<Parameter*>& done) {
      if (overlap_micro_batches_ < 0) return;
      for (const Parameter* parameter : done) {
        const size_t index = bucket_index_.at(parameter);
        if (++backwards_done_[index] == overlap_micro_batches_) {
          dp_buckets_->mark_ready(environment_.grid->dp(), index);
        }
      }
    });
  }

  // The whole model's size, for the FLOP rate (f32: a count for a rate, not an index).
  total_parameters_ = static_cast<double>(model_.parameters().numel());
  if (grid != nullptr) {
    Tensor count = Tensor::from_floats({static_cast<float>(total_parameters_)}, Shape{1});
    grid->model().all_reduce(count);
    total_parameters_ = count.f32()[0];
  }
}

Trainer::~Trainer() {
  model_.set_gradients_done_hook({});
}

bool Trainer::holds_loss() const {
  // The last stage computes the loss; TP ranks of a stage hold copies of it, counted once.
  const ProcessGrid* grid = environment_.grid;
  return grid == nullptr || (grid->is_last_stage() && grid->tp_rank() == 0);
}

void Trainer::start_overlapped_sync(int micro_batches) {
  if (dp_buckets_ == nullptr) return;
  overlap_micro_batches_ = micro_batches;
  std::fill(backwards_done_.begin(), backwards_done_.end(), 0);
}

void Trainer::synchronise_gradients() {
  // TP partial sums (replicated k/v) and DP sums commute; ZeRO-1 keeps only a slice of the
  // gradients, so TP goes first there, and last after the buckets overwrite the gradients.
  if (zero1_ != nullptr) {
    model_.reduce_tp_partial_gradients();
    zero1_->reduce_scatter_gradients();
    return;
  }
  if (dp_buckets_ != nullptr) {
    ProcessGroup& dp = environment_.grid->dp();
    if (overlap_micro_batches_ < 0) {
      dp_buckets_->all_reduce(dp);
    } else {
      // Every gradient was marked by the hook; a parameter no backward reached (none in a
      // Llama shard) would fail loudly in finish().
      dp_buckets_->finish(dp);
      overlap_micro_batches_ = -1;
    }
  }
  model_.reduce_tp_partial_gradients();
}

namespace {

// Sums `loss` (its per-attribute parts included) and `extra_sums`/`extra_counts` over `world`,
// in place. Sums travel as f32 (1e-7 relative), counts as exact i32.
void all_reduce_loss_sums(ProcessGroup& world, LossSums& loss, std::vector<float>& extra_sums,
                          std::vector<int32_t>& extra_counts) {
  const size_t attributes = loss.attribute_count.size();
  std::vector<float> sum_values = {static_cast<float>(loss.sum)};
  std::vector<int32_t> count_values = {static_cast<int32_t>(loss.count)};
  for (size_t a = 0; a < attributes; ++a) {
    sum_values.push_back(static_cast<float>(loss.attribute_squared_error[a]));
    count_values.push_back(static_cast<int32_t>(loss.attribute_count[a]));
  }
  sum_values.insert(sum_values.end(), extra_sums.begin(), extra_sums.end());
  count_values.insert(count_values.end(), extra_counts.begin(), extra_counts.end());
  Tensor sums = Tensor::from_floats(sum_values, Shape{static_cast<int64_t>(sum_values.size())});
  Tensor counts = Tensor::from_ints(count_values, Shape{static_cast<int64_t>(count_values.size())});
  world.all_reduce(sums);
  world.all_reduce(counts);

  loss.sum = sums.f32()[0];
  loss.count = counts.i32()[0];
  for (size_t a = 0; a < attributes; ++a) {
    loss.attribute_squared_error[a] = sums.f32()[1 + a];
    loss.attribute_count[a] = counts.i32()[1 + a];
  }
  for (size_t i = 0; i < extra_sums.size(); ++i) extra_sums[i] = sums.f32()[1 + attributes + i];
  for (size_t i = 0; i < extra_counts.size(); ++i) {
    extra_counts[i] = counts.i32()[1 + attributes + i];
  }
}

}  // namespace

void Trainer::keep_held_loss(LossSums& loss) const {
  // Only the ranks that hold the loss count it; per-attribute parts exist on every rank alike.
  if (!holds_loss()) loss = LossSums{};
  const int n_attributes = model_.head_kind() == HeadKind::kAttribute ? model_.n_attributes() : 0;
  loss.attribute_squared_error.resize(n_attributes, 0.0);
  loss.attribute_count.resize(n_attributes, 0);
}

void Trainer::reduce_step_totals(StepResult& result, const PipelineTiming& timing) {
  ProcessGrid* grid = environment_.grid;
  keep_held_loss(result.loss);
  if (!holds_loss()) result.tokens = 0;
  PipelineBubble& bubble = result.bubble;
  if (grid == nullptr) return;

  // One sum over the world: loss and token counts come from the ranks that hold the loss, the
  // schedule times from every rank.
  std::vector<float> times = {static_cast<float>(timing.idle_s()),
                              static_cast<float>(timing.compute_s),
                              static_cast<float>(timing.wall_s)};
  std::vector<int32_t> tokens = {static_cast<int32_t>(result.tokens)};
  all_reduce_loss_sums(grid->world(), result.loss, times, tokens);
  result.tokens = tokens[0];

  const float idle = times[0], compute = times[1], wall = times[2];
  bubble.idle_share = wall > 0 ? idle / wall : 0.0;
  bubble.bubble = compute > 0 ? idle / compute : 0.0;
  bubble.ideal_bubble =
      static_cast<double>(grid->pp_size() - 1) / std::max(1, config_.parallel().micro_batches());
}

double Trainer::global_grad_norm() {
  const double local =
      zero1_ != nullptr ? zero1_->shard_grad_norm_sq() : AdamW::grad_norm_sq(model_.parameters());
  ProcessGrid* grid = environment_.grid;
  if (grid == nullptr) return std::sqrt(local);
  // Each element once: stages hold different parameters, and DP replicas hold the same summed
  // gradients, except under ZeRO-1 where each dp rank holds its own slice of them.
  Tensor norm_sq = Tensor::from_floats({static_cast<float>(local)}, Shape{1});
  (zero1_ != nullptr ? grid->world() : grid->model()).all_reduce(norm_sq);
  return std::sqrt(static_cast<double>(norm_sq.f32()[0]));
}

Trainer::StepResult Trainer::train_step(int64_t step) {
  const auto start = std::chrono::steady_clock::now();
  StepResult result;
  ParameterSet& parameters = model_.parameters();
  parameters.zero_grad();

  // Forward and backward of this replica's micro-batches through the pipeline (1F1B):
  // gradients of the loss sums.
  // With DP buckets, their all-reduces start during backward (not at a NaN-injection step,
  // whose poison must reach the gradients before they are sent).
  const std::vector<Batch> micro_batches = train_.next_step();
  const auto& nan_steps = environment_.inject_nan_at_steps;
  const bool poison = std::find(nan_steps.begin(), nan_steps.end(), step + 1) != nan_steps.end();
  if (!poison) start_overlapped_sync(static_cast<int>(micro_batches.size()));
  const PipelineStepResult pipeline = schedule_->train_step(micro_batches);
  result.loss = pipeline.loss;
  for (const Batch& micro_batch : micro_batches) result.tokens += real_tokens(micro_batch);
  if (poison) parameters.begin()->grad.f32()[0] = std::nanf("");

  // Sum gradients over the DP replicas and the loss over the world, then divide by the global
  // count.
  synchronise_gradients();
  reduce_step_totals(result, pipeline.timing);
  const float inverse_count = result.loss.count > 0 ? 1.0f / result.loss.count : 0.0f;
  if (zero1_ != nullptr) {
    zero1_->scale_gradients(inverse_count);
  } else {
    for (Parameter& parameter : parameters) {
      ops::scale(parameter.grad, inverse_count, parameter.grad);
    }
  }

  // Clip and update, unless the loss or the gradient norm is not finite.
  result.grad_norm = global_grad_norm();
  result.lr = learning_rate(config_.optim(), step, config_.train().steps());
  const double loss = result.loss.mean();
  result.skipped =
      !std::isfinite(loss) || !std::isfinite(result.grad_norm) || result.loss.count == 0;
  if (!result.skipped) {
    if (zero1_ != nullptr) {
      zero1_->step(result.lr, result.grad_norm);
    } else {
      optimizer_->step(parameters, result.lr, result.grad_norm);
    }
    consecutive_skips_ = 0;
  } else {
    ++skipped_total_;
    ++consecutive_skips_;
  }
  result.seconds = seconds_since(start);
  return result;
}

void Trainer::log_step(int64_t step, const StepResult& result) {
  elapsed_s_ += result.seconds;
  last_bubble_ = result.bubble;
  if (step > 1) {  // the first step warms caches and allocators; keep it out of throughput
    throughput_time_s_ += result.seconds;
    throughput_tokens_ += result.tokens;
    bubble_sum_.idle_share += result.bubble.idle_share;
    bubble_sum_.bubble += result.bubble.bubble;
    bubble_sum_.ideal_bubble += result.bubble.ideal_bubble;
    ++bubble_steps_;
  }
  if (environment_.world_rank != 0) return;
  const double tokens_per_s = result.tokens / std::max(result.seconds, 1e-9);
  const double flops =
      tokens_per_s * flops_per_token(model_.config(), total_parameters_, config_.train().seq_len());
  const bool pipelined = environment_.grid != nullptr && environment_.grid->pp_size() > 1;
  char line[320];
  std::snprintf(line, sizeof(line),
                "step %5lld/%d | loss %.4f | lr %.2e | grad_norm %.4f | %8.1f ms | %8.0f tok/s | "
                "%.2f GFLOP/s",
                static_cast<long long>(step), config_.train().steps(), result.loss.mean(),
                result.lr, result.grad_norm, result.seconds * 1e3, tokens_per_s, flops * 1e-9);
  std::string text = line;
  if (config_.train().peak_flops() > 0) {
    std::snprintf(line, sizeof(line), " | MFU %.1f%%",
                  100.0 * flops / config_.train().peak_flops());
    text += line;
  }
  if (pipelined) {
    std::snprintf(line, sizeof(line), " | bubble %.2f (ideal %.2f)", result.bubble.bubble,
                  result.bubble.ideal_bubble);
    text += line;
  }
  // Attribute head: each attribute's training MSE over the global batch.
  nlohmann::json attribute_mse;
  for (size_t a = 0; a < result.loss.attribute_count.size(); ++a) {
    const int64_t count = result.loss.attribute_count[a];
    const double mse = count > 0 ? result.loss.attribute_squared_error[a] / count : 0.0;
    attribute_mse[attribute_name(a)] = mse;
    std::snprintf(line, sizeof(line), "%s %s %.3f", a == 0 ? " | mse" : ",",
                  attribute_name(a).c_str(), mse);
    text += line;
  }
  if (result.skipped) text += " | SKIPPED (non-finite loss or grad norm)";
  text += " | skipped " + std::to_string(skipped_total_);
  LOG(INFO) << text;

  nlohmann::json metrics = {{"step", step},
                            {"loss", result.loss.mean()},
                            {"lr", result.lr},
                            {"grad_norm", result.grad_norm},
                            {"tokens_per_s", tokens_per_s},
                            {"elapsed_s", elapsed_s_},
                            {"step_ms", result.seconds * 1e3},
                            {"tokens", result.tokens},
                            {"flops_per_s", flops},
                            {"skipped", result.skipped},
                            {"skipped_total", skipped_total_}};
  if (!attribute_mse.is_null()) metrics["mse"] = attribute_mse;
  if (pipelined) {
    metrics["pipeline_bubble"] = result.bubble.bubble;
    metrics["pipeline_bubble_ideal"] = result.bubble.ideal_bubble;
    metrics["pipeline_idle_share"] = result.bubble.idle_share;
  }
  // JSON has no NaN: a skipped step's non-finite values are written as null.
  for (const char* key : {"loss", "grad_norm"}) {
    if (!std::isfinite(metrics[key].get<double>())) metrics[key] = nullptr;
  }
  metrics_->write(metrics);
}

ValidationResult Trainer::validate() {
  return validate(environment_.validation_batches);
}

ValidationResult Trainer::validate(const std::vector<Batch>& batches) {
  // The forward's loss sums carry each attribute's squared errors too (attribute head).
  ValidationResult result;
  for (const Batch& batch : batches) result.loss += schedule_->forward_only(batch);
  keep_held_loss(result.loss);
  if (environment_.grid != nullptr) {
    std::vector<float> no_sums;
    std::vector<int32_t> no_counts;
    all_reduce_loss_sums(environment_.grid->world(), result.loss, no_sums, no_counts);
  }
  for (size_t a = 0; a < result.loss.attribute_count.size(); ++a) {
    const int64_t present = result.loss.attribute_count[a];
    result.per_attribute_mse.push_back(
        present > 0 ? result.loss.attribute_squared_error[a] / present : 0.0);
  }
  return result;
}

std::string Trainer::attribute_name(size_t a) const {
  return a < environment_.attribute_names.size() ? environment_.attribute_names[a]
                                                 : "attribute_" + std::to_string(a);
}

void Trainer::log_validation(int64_t step, const ValidationResult& result) {
  if (environment_.world_rank != 0 || environment_.validation_batches.empty()) return;
  nlohmann::json line = {
      {"split", "val"}, {"step", step}, {"loss", result.loss.mean()}, {"count", result.loss.count}};
  std::string text =
      "validation at step " + std::to_string(step) + ": loss " + std::to_string(result.loss.mean());
  for (size_t a = 0; a < result.per_attribute_mse.size(); ++a) {
    const std::string name = attribute_name(a);
    line["mse"][name] = result.per_attribute_mse[a];
    text += ", " + name + " " + std::to_string(result.per_attribute_mse[a]);
  }
  LOG(INFO) << text;
  metrics_->write(line);
}

std::vector<MomentPiece> Trainer::moment_pieces() {
  if (zero1_ != nullptr) return zero1_->moment_pieces();
  std::vector<MomentPiece> pieces;
  for (const Parameter& parameter : model_.parameters()) {
    pieces.push_back({parameter.name, 0, optimizer_->exp_avg(parameter.name),
                      optimizer_->exp_avg_sq(parameter.name)});
  }
  return pieces;
}

int64_t Trainer::optimizer_steps() const {
  return zero1_ != nullptr ? zero1_->steps_taken() : optimizer_->steps_taken();
}

void Trainer::save(int64_t step, bool periodic) {
  // Every rank writes its shard (model/sharded_checkpoint.h); rank 0 the manifest.
  config::CheckpointManifest manifest = environment_.manifest_template;
  *manifest.mutable_model() = model_.config();
  *manifest.mutable_parallel() = config_.parallel();
  manifest.set_step(step);
  manifest.set_consumed_samples(step * train_.global_batch_sequences());
  manifest.set_data_loader_state(train_.save_state());

  RankCheckpoint rank;
  rank.parameters = &model_.parameters();
  rank.moments = moment_pieces();
  rank.optimizer_step = optimizer_steps();
  rank.moments_sharded_over_dp = zero1_ != nullptr;
  ProcessGrid* grid = environment_.grid;
  const fs::path output_dir = config_.output_dir();
  if (periodic) {
    save_sharded_checkpoint(grid, output_dir / "checkpoints" / step_directory_name(step), manifest,
                            environment_.tokenizer_path, rank);
    if (environment_.world_rank == 0) {
      apply_retention(output_dir / "checkpoints", config_.checkpoint().keep_last());
    }
  }
  save_sharded_checkpoint(grid, output_dir / "checkpoint", manifest, environment_.tokenizer_path,
                          rank);
  LOG_IF(INFO, environment_.world_rank == 0)
      << "saved checkpoint at step " << step << " to " << (output_dir / "checkpoint").string();
}

int64_t Trainer::resume() {
  const fs::path directory = fs::path(config_.output_dir()) / "checkpoint";
  if (!fs::exists(directory / kManifestFileName)) return 0;
  config::CheckpointManifest manifest = read_checkpoint_manifest(directory);
  check_checkpoint_matches(directory, manifest, model_.config(), environment_.tokenizer_path);

  // This rank's weights and optimizer state, from whatever PP/DP/ZeRO-1 layout saved them.
  std::vector<MomentPiece> moments = moment_pieces();
  load_sharded_checkpoint(directory, manifest, model_.parameters(), moments, model_.shard());
  if (zero1_ != nullptr) {
    zero1_->set_steps_taken(manifest.optimizer_step());
  } else {
    optimizer_->set_steps_taken(manifest.optimizer_step());
  }
  train_.restore_state(manifest.data_loader_state());
  LOG_IF(INFO, environment_.world_rank == 0)
      << "resuming from " << directory.string() << " at step " << manifest.step();
  return manifest.step();
}

bool Trainer::agree_to_stop() {
  // The signal may reach ranks at different steps; stop when any rank has it, all together.
  const bool local = stop_requested();
  if (environment_.grid == nullptr) return local;
  Tensor flag = Tensor::from_ints({local ? 1 : 0}, Shape{1});
  environment_.grid->world().all_reduce(flag, ReduceOp::kMax);
  return flag.i32()[0] != 0;
}

TrainingSummary Trainer::run() {
  install_stop_signal_handlers();
  const int64_t total_steps = config_.train().steps();
  const int64_t first_step = resume();
  if (environment_.world_rank == 0) {
    const fs::path metrics_path = fs::path(config_.output_dir()) / "metrics.jsonl";
    if (first_step == 0) fs::remove(metrics_path);  // a fresh run starts a fresh file
    metrics_ = std::make_unique<MetricsLog>(metrics_path, first_step);
    if (first_step == 0) {
      for (const nlohmann::json& line : environment_.initial_metrics) metrics_->write(line);
    }
  }

  TrainingSummary summary;
  const int val_every = config_.train().val_every();
  const int checkpoint_every = config_.checkpoint().every_steps();
  for (int64_t step = first_step; step < total_steps; ++step) {
    StepResult result = train_step(step);
    log_step(step + 1, result);
    summary.final_train_loss = result.loss.mean();
    summary.step_losses.push_back(result.loss.mean());
    if (consecutive_skips_ >= config_.train().max_consecutive_skips()) {
      throw UserError("stopping: " + std::to_string(consecutive_skips_) +
                      " consecutive steps had a NaN/Inf loss or gradient norm (last at step " +
                      std::to_string(step + 1) +
                      "); lower optim.lr or check the data "
                      "(train.max_consecutive_skips=" +
                      std::to_string(config_.train().max_consecutive_skips()) + ")");
    }
    const bool last = step + 1 == total_steps;
    if (val_every > 0 && (step + 1) % val_every == 0 && !last) {
      log_validation(step + 1, validate());
    }
    if (checkpoint_every > 0 && (step + 1) % checkpoint_every == 0 && !last) save(step + 1, true);
    if (!last && agree_to_stop()) {
      LOG_IF(WARNING, environment_.world_rank == 0)
          << "stop signal " << stop_signal_number() << " received: saving a checkpoint at step "
          << step + 1 << " and exiting; re-run the same command to resume";
      save(step + 1, false);
      summary.steps_done = step + 1;
      summary.skipped_steps = skipped_total_;
      summary.stopped_by_signal = true;
      return summary;
    }
  }

  // The end of training: final validation, checkpoint and throughput summary.
  summary.steps_done = total_steps;
  if (bubble_steps_ > 0) {
    summary.mean_bubble = {bubble_sum_.idle_share / bubble_steps_,
                           bubble_sum_.bubble / bubble_steps_,
                           bubble_sum_.ideal_bubble / bubble_steps_};
  }
  summary.skipped_steps = skipped_total_;
  summary.final_validation = validate();
  log_validation(total_steps, summary.final_validation);
  if (first_step < total_steps || !fs::exists(fs::path(config_.output_dir()) / "checkpoint")) {
    save(total_steps, false);
  }
  if (environment_.world_rank == 0) {
    const double tokens_per_s = throughput_tokens_ / std::max(throughput_time_s_, 1e-9);
    summary.tokens_per_s = tokens_per_s;
    nlohmann::json line = {{"split", "summary"},
                           {"steps", total_steps},
                           {"skipped_steps", skipped_total_},
                           {"final_train_loss", summary.final_train_loss},
                           {"final_val_loss", summary.final_validation.loss.mean()},
                           {"tokens_per_s", tokens_per_s},
                           {"elapsed_s", elapsed_s_}};
    if (environment_.grid != nullptr && environment_.grid->pp_size() > 1) {
      line["pipeline_bubble"] = summary.mean_bubble.bubble;
      line["pipeline_bubble_ideal"] = summary.mean_bubble.ideal_bubble;
      line["pipeline_idle_share"] = summary.mean_bubble.idle_share;
    }
    metrics_->write(line);
    LOG(INFO) << "training done: " << total_steps << " steps, " << skipped_total_ << " skipped, "
              << static_cast<int64_t>(tokens_per_s) << " tok/s after step 1";
  }
  return summary;
}

}  // namespace steerlm
