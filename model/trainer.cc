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
double flops_per_token(const LlamaModel& model, int64_t seq_len) {
  const config::ModelConfig& c = model.config();
  return 6.0 * static_cast<double>(model.parameters().numel()) +
         6.0 * c.n_layers() * static_cast<double>(seq_len) * c.dim();
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
  // TODO(parallel): TP and PP training (sharded layers, 1F1B) land with issue 5; until then
  // only data parallelism is wired into the loop, and other layouts fail here, loudly.
  CHECK(grid == nullptr || (grid->tp_size() == 1 && grid->pp_size() == 1))
      << "the training loop supports data parallelism only so far (tp=" << grid->tp_size()
      << ", pp=" << grid->pp_size() << ")";
  optimizer_ = std::make_unique<AdamW>(config_.optim(), model_.parameters());
  if (grid != nullptr && grid->dp_size() > 1) {
    // Gradients become final in reverse registration order (the head first).
    std::vector<Tensor> grads;
    for (auto it = model_.parameters().end(); it != model_.parameters().begin();) {
      grads.push_back((--it)->grad);
    }
    dp_buckets_ = std::make_unique<GradientBuckets>(grads, config_.parallel().bucket_mb());
  }
}

Trainer::~Trainer() = default;

void Trainer::reduce_over_dp(LossSums& loss, int64_t& tokens) {
  if (environment_.grid == nullptr || environment_.grid->dp_size() == 1) return;
  // Sums travel as f32 and counts as i32: exact for counts, 1e-7 relative for the loss sum.
  Tensor sums = Tensor::from_floats({static_cast<float>(loss.sum)}, Shape{1});
  Tensor counts =
      Tensor::from_ints({static_cast<int32_t>(loss.count), static_cast<int32_t>(tokens)}, Shape{2});
  environment_.grid->dp().all_reduce(sums);
  environment_.grid->dp().all_reduce(counts);
  loss.sum = sums.f32()[0];
  loss.count = counts.i32()[0];
  tokens = counts.i32()[1];
}

Trainer::StepResult Trainer::train_step(int64_t step) {
  const auto start = std::chrono::steady_clock::now();
  StepResult result;
  ParameterSet& parameters = model_.parameters();
  parameters.zero_grad();

  // Forward and backward over this rank's micro-batches: gradients of the loss sums.
  for (const Batch& micro_batch : train_.next_step()) {
    Activations saved;
    result.loss += model_.forward(micro_batch, saved);
    model_.backward(saved, 1.0f);
    result.tokens += real_tokens(micro_batch);
  }
  for (int64_t poisoned : environment_.inject_nan_at_steps) {
    if (poisoned == step + 1) parameters.begin()->grad.f32()[0] = std::nanf("");
  }

  // Sum gradients and loss over the DP replicas, then divide by the global count.
  if (dp_buckets_ != nullptr) dp_buckets_->all_reduce(environment_.grid->dp());
  reduce_over_dp(result.loss, result.tokens);
  const float inverse_count = result.loss.count > 0 ? 1.0f / result.loss.count : 0.0f;
  for (Parameter& parameter : parameters) ops::scale(parameter.grad, inverse_count, parameter.grad);

  // Clip and update, unless the loss or the gradient norm is not finite.
  result.grad_norm = std::sqrt(AdamW::grad_norm_sq(parameters));
  result.lr = learning_rate(config_.optim(), step, config_.train().steps());
  const double loss = result.loss.mean();
  result.skipped =
      !std::isfinite(loss) || !std::isfinite(result.grad_norm) || result.loss.count == 0;
  if (!result.skipped) {
    optimizer_->step(parameters, result.lr, result.grad_norm);
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
  if (step > 1) {  // the first step warms caches and allocators; keep it out of throughput
    throughput_time_s_ += result.seconds;
    throughput_tokens_ += result.tokens;
  }
  if (environment_.world_rank != 0) return;
  const double tokens_per_s = result.tokens / std::max(result.seconds, 1e-9);
  const double flops = tokens_per_s * flops_per_token(model_, config_.train().seq_len());
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
  // JSON has no NaN: a skipped step's non-finite values are written as null.
  for (const char* key : {"loss", "grad_norm"}) {
    if (!std::isfinite(metrics[key].get<double>())) metrics[key] = nullptr;
  }
  metrics_->write(metrics);
}

ValidationResult Trainer::validate() {
  ValidationResult result;
  const int n_attributes = model_.head_kind() == HeadKind::kAttribute ? model_.n_attributes() : 0;
  std::vector<float> squared_error(n_attributes, 0.0f), present(n_attributes, 0.0f);
  for (const Batch& batch : environment_.validation_batches) {
    result.loss += model_.evaluate(batch);
    if (n_attributes == 0) continue;
    // Per-attribute squared error at each sequence's end, skipping missing targets (-100).
    Tensor predictions = model_.predict_attributes(batch);  // (S, A) f32, cpu
    const float* predicted = predictions.f32();
    const float* target = batch.attribute_targets.f32();  // (S, A) f32, cpu
    for (int64_t i = 0; i < predictions.numel(); ++i) {
      if (target[i] == -100.0f) continue;
      const float error = predicted[i] - target[i];
      squared_error[i % n_attributes] += error * error;
      present[i % n_attributes] += 1.0f;
    }
  }
  int64_t unused_tokens = 0;
  reduce_over_dp(result.loss, unused_tokens);
  if (n_attributes > 0 && environment_.grid != nullptr && environment_.grid->dp_size() > 1) {
    Tensor sums = Tensor::from_floats(squared_error, Shape{n_attributes});
    Tensor counts = Tensor::from_floats(present, Shape{n_attributes});
    environment_.grid->dp().all_reduce(sums);
    environment_.grid->dp().all_reduce(counts);
    squared_error = sums.to_floats();
    present = counts.to_floats();
  }
  for (int a = 0; a < n_attributes; ++a) {
    result.per_attribute_mse.push_back(present[a] > 0 ? squared_error[a] / present[a] : 0.0);
  }
  return result;
}

void Trainer::log_validation(int64_t step, const ValidationResult& result) {
  if (environment_.world_rank != 0 || environment_.validation_batches.empty()) return;
  nlohmann::json line = {
      {"split", "val"}, {"step", step}, {"loss", result.loss.mean()}, {"count", result.loss.count}};
  std::string text =
      "validation at step " + std::to_string(step) + ": loss " + std::to_string(result.loss.mean());
  for (size_t a = 0; a < result.per_attribute_mse.size(); ++a) {
    const std::string name = a < environment_.attribute_names.size()
                                 ? environment_.attribute_names[a]
                                 : "attribute_" + std::to_string(a);
    line["mse"][name] = result.per_attribute_mse[a];
    text += ", " + name + " " + std::to_string(result.per_attribute_mse[a]);
  }
  LOG(INFO) << text;
  metrics_->write(line);
}

void Trainer::save(int64_t step, bool periodic) {
  // Weights and optimizer state are replicated over DP; one rank writes them.
  if (environment_.world_rank != 0) return;
  config::CheckpointManifest manifest = environment_.manifest_template;
  *manifest.mutable_model() = model_.config();
  *manifest.mutable_parallel() = config_.parallel();
  manifest.set_step(step);
  manifest.set_consumed_samples(step * train_.global_batch_sequences());
  manifest.set_data_loader_state(train_.save_state());

  OptimizerState optimizer_state;
  optimizer_state.step = optimizer_->steps_taken();
  for (const Parameter& parameter : model_.parameters()) {
    optimizer_state.exp_avg.push_back({parameter.name, optimizer_->exp_avg(parameter.name)});
    optimizer_state.exp_avg_sq.push_back({parameter.name, optimizer_->exp_avg_sq(parameter.name)});
  }
  const std::vector<NamedTensor> weights = named_tensors(model_.parameters());
  const fs::path output_dir = config_.output_dir();
  if (periodic) {
    save_checkpoint(output_dir / "checkpoints" / step_directory_name(step), manifest,
                    environment_.tokenizer_path, weights, &optimizer_state);
    apply_retention(output_dir / "checkpoints", config_.checkpoint().keep_last());
  }
  save_checkpoint(output_dir / "checkpoint", manifest, environment_.tokenizer_path, weights,
                  &optimizer_state);
  LOG(INFO) << "saved checkpoint at step " << step << " to "
            << (output_dir / "checkpoint").string();
}

int64_t Trainer::resume() {
  const fs::path directory = fs::path(config_.output_dir()) / "checkpoint";
  if (!fs::exists(directory / kManifestFileName)) return 0;
  config::CheckpointManifest manifest = read_checkpoint_manifest(directory);
  check_checkpoint_matches(directory, manifest, model_.config(), environment_.tokenizer_path);
  load_checkpoint_parameters(directory, manifest, model_.parameters());
  OptimizerState state;
  for (const Parameter& parameter : model_.parameters()) {
    state.exp_avg.push_back({parameter.name, optimizer_->exp_avg(parameter.name)});
    state.exp_avg_sq.push_back({parameter.name, optimizer_->exp_avg_sq(parameter.name)});
  }
  load_checkpoint_optimizer(directory, manifest, &state);
  optimizer_->set_steps_taken(state.step);
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
  summary.skipped_steps = skipped_total_;
  summary.final_validation = validate();
  log_validation(total_steps, summary.final_validation);
  if (first_step < total_steps || !fs::exists(fs::path(config_.output_dir()) / "checkpoint")) {
    save(total_steps, false);
  }
  if (environment_.world_rank == 0) {
    const double tokens_per_s = throughput_tokens_ / std::max(throughput_time_s_, 1e-9);
    metrics_->write({{"split", "summary"},
                     {"steps", total_steps},
                     {"skipped_steps", skipped_total_},
                     {"final_train_loss", summary.final_train_loss},
                     {"final_val_loss", summary.final_validation.loss.mean()},
                     {"tokens_per_s", tokens_per_s},
                     {"elapsed_s", elapsed_s_}});
    LOG(INFO) << "training done: " << total_steps << " steps, " << skipped_total_ << " skipped, "
              << static_cast<int64_t>(tokens_per_s) << " tok/s after step 1";
  }
  return summary;
}

}  // namespace steerlm
