// The shared training loop: exact resume after a stop signal, checkpoint retention, NaN/Inf
// skipping and the consecutive-skip error, metrics.jsonl contents.
#include "model/trainer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>

#include "model/stop_signal.h"
#include "runtime/config.h"
#include "runtime/error.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;

// A deterministic stream of language-model micro-batches: step k always yields the same tokens.
// Optionally raises `signal` (SIGUSR1 or SIGTERM, what Slurm sends) while producing the
// batches of one step.
class SyntheticBatches : public BatchSource {
 public:
  SyntheticBatches(int vocab, int micro_batches, int64_t signal_at_step = -1, int signal = SIGUSR1)
      : vocab_(vocab),
        micro_batches_(micro_batches),
        signal_at_step_(signal_at_step),
        signal_(signal) {}

  std::vector<Batch> next_step() override {
    if (step_ == signal_at_step_) std::raise(signal_);
    std::vector<Batch> batches;
    for (int m = 0; m < micro_batches_; ++m) batches.push_back(make(step_ * 100 + m));
    ++step_;
    return batches;
  }
  std::string save_state() const override { return std::to_string(step_); }
  void restore_state(const std::string& state) override { step_ = std::stoll(state); }
  int64_t global_batch_sequences() const override { return 2 * micro_batches_; }

 private:
  Batch make(uint64_t seed) const {
    std::mt19937 random(seed);
    // Two sequences of different lengths, padded to 12: padding must not count.
    std::vector<std::vector<int32_t>> sequences(2);
    for (int s = 0; s < 2; ++s) {
      // A learnable pattern: each token is the previous one plus one, from a random start.
      const int32_t start = random() % vocab_;
      for (int t = 0; t < 12 - 3 * s; ++t) sequences[s].push_back((start + t) % vocab_);
    }
    Batch batch = make_padded_batch(sequences, 12);
    batch.targets = Tensor::zeros(batch.tokens.shape(), DType::kI32);
    batch.loss_mask = Tensor::zeros(batch.tokens.shape(), DType::kF32);
    for (int s = 0; s < 2; ++s) {
      for (size_t t = 0; t + 1 < sequences[s].size(); ++t) {
        batch.targets.i32()[s * 12 + t] = sequences[s][t + 1];
        batch.loss_mask.f32()[s * 12 + t] = t >= 2 ? 1.0f : 0.0f;  // the first tokens untrained
      }
    }
    return batch;
  }

  int vocab_;
  int micro_batches_;
  int64_t signal_at_step_;
  int signal_;
  int64_t step_ = 0;
};

class TrainerTest : public testing::Test {
 protected:
  void SetUp() override {
    clear_stop_request();
    root_ =
        fs::temp_directory_path() / ("steerlm_trainer_test_" + std::to_string(::getpid()) + "_" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  void TearDown() override {
    clear_stop_request();
    fs::remove_all(root_);
  }

  config::StageConfig make_config(const std::string& name, int steps) {
    FieldLocations where;
    config::StageConfig config = load_stage_config(
        "",
        {"output_dir=" + (root_ / name).string(), "model.config.dim=32", "model.config.n_layers=2",
         "model.config.n_heads=4", "model.config.n_kv_heads=2", "model.config.ffn_hidden=48",
         "model.config.vocab_size=40", "train.steps=" + std::to_string(steps),
         "train.global_batch_size=4", "parallel.micro_batches=2", "optim.lr=1e-2",
         "optim.warmup_steps=2", "checkpoint.keep_last=2"},
        &where);
    validate_stage_config(config, where, 1);
    return config;
  }

  // Losses of the optimizer-step lines of a metrics.jsonl, in order.
  static std::vector<double> step_losses(const fs::path& output_dir) {
    std::vector<double> losses;
    std::ifstream in(output_dir / "metrics.jsonl");
    std::string text;
    while (std::getline(in, text)) {
      nlohmann::json line = nlohmann::json::parse(text);
      if (!line.contains("split")) losses.push_back(line["loss"].get<double>());
    }
    return losses;
  }

  TrainingSummary train(const config::StageConfig& config, BatchSource& batches) {
    LlamaModel model(config.model().config(), HeadKind::kLanguageModel, 0, config.train().seed());
    Trainer trainer(config, model, batches, TrainingEnvironment{});
    return trainer.run();
  }

  fs::path root_;
};

class StopSignalTest : public TrainerTest, public testing::WithParamInterface<int> {};

TEST_P(StopSignalTest, ThenResumeGivesTheUninterruptedLosses) {
  const int signal = GetParam();
  config::StageConfig straight = make_config("straight", 6);
  SyntheticBatches straight_batches(40, 2);
  TrainingSummary uninterrupted = train(straight, straight_batches);
  EXPECT_FALSE(uninterrupted.stopped_by_signal);
  std::vector<double> expected = step_losses(straight.output_dir());
  ASSERT_EQ(expected.size(), 6u);
  EXPECT_LT(expected.back(), expected.front());  // it learns

  // The signal arrives during step 3: the loop finishes it, checkpoints and returns.
  config::StageConfig stopped = make_config("stopped", 6);
  SyntheticBatches first_part(40, 2, /*signal_at_step=*/2, signal);
  TrainingSummary interrupted = train(stopped, first_part);
  EXPECT_TRUE(interrupted.stopped_by_signal);
  EXPECT_EQ(interrupted.steps_done, 3);
  EXPECT_EQ(step_losses(stopped.output_dir()).size(), 3u);

  // A fresh process (model, loader) resumes from the checkpoint and ends where the straight run
  // did.
  clear_stop_request();
  SyntheticBatches second_part(40, 2);
  TrainingSummary resumed = train(stopped, second_part);
  EXPECT_FALSE(resumed.stopped_by_signal);
  std::vector<double> losses = step_losses(stopped.output_dir());
  ASSERT_EQ(losses.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_EQ(losses[i], expected[i]) << "step " << i + 1;
}

INSTANTIATE_TEST_SUITE_P(TrainerTest, StopSignalTest, testing::Values(SIGUSR1, SIGTERM),
                         [](const testing::TestParamInfo<int>& info) {
                           return std::string(info.param == SIGTERM ? "SIGTERM" : "SIGUSR1");
                         });

TEST_F(TrainerTest, PeriodicCheckpointsKeepTheLastTwo) {
  config::StageConfig config = make_config("periodic", 7);
  config.mutable_checkpoint()->set_every_steps(2);
  SyntheticBatches batches(40, 2);
  train(config, batches);
  const fs::path output_dir = config.output_dir();
  EXPECT_TRUE(fs::exists(output_dir / "checkpoint" / "manifest.pbtxt"));
  EXPECT_FALSE(fs::exists(output_dir / "checkpoints" / "step_2"));
  EXPECT_TRUE(fs::exists(output_dir / "checkpoints" / "step_4" / "manifest.pbtxt"));
  EXPECT_TRUE(fs::exists(output_dir / "checkpoints" / "step_6" / "manifest.pbtxt"));
  // The latest checkpoint is the final step's.
  EXPECT_EQ(read_checkpoint_manifest(output_dir / "checkpoint").step(), 7);
}

TEST_F(TrainerTest, NanStepIsSkippedAndCounted) {
  config::StageConfig config = make_config("nan_once", 4);
  SyntheticBatches batches(40, 2);
  LlamaModel model(config.model().config(), HeadKind::kLanguageModel, 0, config.train().seed());
  TrainingEnvironment environment;
  environment.inject_nan_at_steps = {2};
  Trainer trainer(config, model, batches, std::move(environment));
  TrainingSummary summary = trainer.run();
  EXPECT_EQ(summary.skipped_steps, 1);
  std::ifstream in(fs::path(config.output_dir()) / "metrics.jsonl");
  std::string text;
  std::vector<bool> skipped;
  while (std::getline(in, text)) {
    nlohmann::json line = nlohmann::json::parse(text);
    if (!line.contains("split")) skipped.push_back(line["skipped"].get<bool>());
  }
  EXPECT_EQ(skipped, (std::vector<bool>{false, true, false, false}));
}

TEST_F(TrainerTest, RepeatedNansStopTheJob) {
  config::StageConfig config = make_config("nan_many", 10);
  config.mutable_train()->set_max_consecutive_skips(3);
  SyntheticBatches batches(40, 2);
  LlamaModel model(config.model().config(), HeadKind::kLanguageModel, 0, config.train().seed());
  TrainingEnvironment environment;
  environment.inject_nan_at_steps = {2, 3, 4};
  Trainer trainer(config, model, batches, std::move(environment));
  try {
    trainer.run();
    FAIL() << "expected a UserError";
  } catch (const UserError& error) {
    EXPECT_STREQ(error.what(),
                 "stopping: 3 consecutive steps had a NaN/Inf loss or gradient norm (last at step "
                 "4); lower optim.lr or check the data (train.max_consecutive_skips=3)");
  }
}

}  // namespace
}  // namespace steerlm
