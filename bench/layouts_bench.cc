// Parallel layouts on the CPU (issue 5): the same global batch trained at every (TP, PP, DP)
// layout of the world, against a single-rank run made first in the same invocation. For each
// layout it prints tokens/s and its ratio to the single rank, the share of step time this rank
// spent blocked on communication (pipeline idle time included), and the measured pipeline
// bubble against the ideal (P - 1) / M.
//
//   mpirun --oversubscribe -np 4 build/bin/layouts_bench [--steps N] [--micro-batches M]
//
// On a 2-core machine, 4 ranks share 2 cores: the ratios say what the layouts cost here (each
// rank runs 1 OpenBLAS thread), not what they gain on a cluster.
#include <glog/logging.h>
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <vector>

#include "model/pipeline_schedule.h"
#include "model/trainer.h"
#include "parallel/mpi_session.h"
#include "parallel/process_grid.h"
#include "runtime/config.h"
#include "runtime/logging.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;

struct BenchShape {
  int dim = 256, layers = 4, heads = 8, kv_heads = 4, ffn = 768, vocab = 4096;
  int seq = 128, global_batch = 16;
};

// The global batch of `step`: full-length random sequences, the same for every layout.
class RandomBatches : public BatchSource {
 public:
  RandomBatches(const BenchShape& shape, int dp_rank, int dp_size, int micro_batches)
      : shape_(shape), dp_rank_(dp_rank), dp_size_(dp_size), micro_batches_(micro_batches) {}

  std::vector<Batch> next_step() override {
    const int per_micro_batch = shape_.global_batch / dp_size_ / micro_batches_;
    std::vector<Batch> batches;
    for (int m = 0; m < micro_batches_; ++m) {
      const int first = (dp_rank_ * micro_batches_ + m) * per_micro_batch;
      batches.push_back(micro_batch(first, per_micro_batch));
    }
    ++step_;
    return batches;
  }
  std::string save_state() const override { return std::to_string(step_); }
  void restore_state(const std::string& state) override { step_ = std::stoll(state); }
  int64_t global_batch_sequences() const override { return shape_.global_batch; }

 private:
  Batch micro_batch(int first, int count) const {
    std::vector<std::vector<int32_t>> sequences;
    for (int i = first; i < first + count; ++i) {
      std::mt19937 random(static_cast<uint32_t>(1000 * step_ + i + 1));
      std::vector<int32_t> tokens(shape_.seq + 1);
      for (int32_t& token : tokens) token = static_cast<int32_t>(random() % shape_.vocab);
      sequences.push_back(tokens);
    }
    // Inputs are tokens [0, T), targets [1, T]; every position is trained.
    std::vector<std::vector<int32_t>> inputs;
    for (const auto& sequence : sequences)
      inputs.emplace_back(sequence.begin(), sequence.end() - 1);
    Batch batch = make_padded_batch(inputs, shape_.seq);
    batch.targets = Tensor::zeros(batch.tokens.shape(), DType::kI32);    // (B, T) i32, cpu
    batch.loss_mask = Tensor::zeros(batch.tokens.shape(), DType::kF32);  // (B, T) f32, cpu
    for (int s = 0; s < count; ++s) {
      for (int t = 0; t < shape_.seq; ++t) {
        batch.targets.i32()[s * shape_.seq + t] = sequences[s][t + 1];
        batch.loss_mask.f32()[s * shape_.seq + t] = 1.0f;
      }
    }
    return batch;
  }

  BenchShape shape_;
  int dp_rank_, dp_size_, micro_batches_;
  int64_t step_ = 0;
};

struct Layout {
  int tp = 1, pp = 1, dp = 1;
};

struct LayoutResult {
  double tokens_per_s = 0;
  double communication_share = 0;  // of this rank's wall time, averaged over ranks
  PipelineBubble bubble;
  double final_loss = 0;
};

config::StageConfig bench_config(const BenchShape& shape, const Layout& layout, int steps,
                                 int micro_batches, const fs::path& output_dir) {
  FieldLocations where;
  return load_stage_config(
      "",
      {"output_dir=" + output_dir.string(), "model.config.dim=" + std::to_string(shape.dim),
       "model.config.n_layers=" + std::to_string(shape.layers),
       "model.config.n_heads=" + std::to_string(shape.heads),
       "model.config.n_kv_heads=" + std::to_string(shape.kv_heads),
       "model.config.ffn_hidden=" + std::to_string(shape.ffn),
       "model.config.vocab_size=" + std::to_string(shape.vocab),
       "model.config.tie_embeddings=false", "train.steps=" + std::to_string(steps),
       "train.global_batch_size=" + std::to_string(shape.global_batch),
       "train.seq_len=" + std::to_string(shape.seq), "optim.lr=1e-3",
       "parallel.tp=" + std::to_string(layout.tp), "parallel.pp=" + std::to_string(layout.pp),
       "parallel.micro_batches=" + std::to_string(micro_batches)},
      &where);
}

// Trains `steps` steps of one layout (grid null: this process alone) and measures it.
LayoutResult run_layout(const BenchShape& shape, const Layout& layout, ProcessGrid* grid, int steps,
                        int micro_batches, const fs::path& output_dir) {
  const config::StageConfig config = bench_config(shape, layout, steps, micro_batches, output_dir);
  ModelOptions options;
  if (grid != nullptr) {
    options.shard = pipeline_model_shard(*grid, config.model().config());
    options.tp_group = &grid->tp();
  }
  LlamaModel model(config.model().config(), HeadKind::kLanguageModel, 0, /*seed=*/1, options);
  RandomBatches batches(shape, grid ? grid->dp_rank() : 0, layout.dp, micro_batches);
  TrainingEnvironment environment;
  environment.world_rank = grid ? grid->world_rank() : 0;
  environment.grid = grid;
  Trainer trainer(config, model, batches, environment);

  const double waited_before = grid ? grid->communication_wait_seconds() : 0.0;
  const auto start = std::chrono::steady_clock::now();
  const TrainingSummary summary = trainer.run();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  LayoutResult result;
  result.tokens_per_s = summary.tokens_per_s;
  result.bubble = summary.mean_bubble;
  result.final_loss = summary.step_losses.empty() ? 0.0 : summary.step_losses.back();
  if (grid != nullptr) {
    // The mean over ranks of each rank's blocked share (wall includes checkpointing).
    Tensor share = Tensor::from_floats(
        {static_cast<float>((grid->communication_wait_seconds() - waited_before) / wall)},
        Shape{1});
    grid->world().all_reduce(share);
    result.communication_share = share.f32()[0] / grid->world_size();
  }
  return result;
}

std::vector<Layout> layouts_of(int world, const BenchShape& shape) {
  std::vector<Layout> layouts;
  for (int tp = 1; tp <= world; tp *= 2) {
    for (int pp = 1; tp * pp <= world; pp *= 2) {
      if (world % (tp * pp) != 0 || shape.heads % tp != 0 || pp > shape.layers) continue;
      layouts.push_back({tp, pp, world / (tp * pp)});
    }
  }
  return layouts;
}

int run(int argc, char** argv) {
  CLI::App app{"steerlm parallel layouts benchmark"};
  int steps = 4, micro_batches = 4;
  app.add_option("--steps", steps, "optimizer steps per layout (the first is not timed)");
  app.add_option("--micro-batches", micro_batches, "micro-batches per step (M)");
  CLI11_PARSE(app, argc, argv);
  init_logging(argv[0]);
  FLAGS_minloglevel = 1;  // warnings and errors only: the table is the output
  MpiSession mpi(&argc, &argv);
  const BenchShape shape;
  const fs::path scratch =
      fs::temp_directory_path() / ("steerlm_layouts_bench_" + std::to_string(::getpid()));

  // The reference: one rank alone, the same global batch, while the others wait.
  LayoutResult single;
  if (mpi.world_rank() == 0) {
    single = run_layout(shape, Layout{}, nullptr, steps, micro_batches, scratch / "single");
    std::printf("model d=%d L=%d heads=%d/%d ffn=%d V=%d; global batch %d x %d tokens; M=%d\n",
                shape.dim, shape.layers, shape.heads, shape.kv_heads, shape.ffn, shape.vocab,
                shape.global_batch, shape.seq, micro_batches);
    std::printf("%-14s %10s %9s %11s %8s %8s %10s\n", "layout", "tokens/s", "vs 1 rank",
                "comm share", "bubble", "ideal", "final loss");
    std::printf("%-14s %10.0f %9.2f %11s %8s %8s %10.4f\n", "1 rank", single.tokens_per_s, 1.0, "-",
                "-", "-", single.final_loss);
  }
  MPI_Barrier(MPI_COMM_WORLD);

  for (const Layout& layout : layouts_of(mpi.world_size(), shape)) {
    config::ParallelConfig parallel;
    parallel.set_tp(layout.tp);
    parallel.set_pp(layout.pp);
    parallel.set_micro_batches(micro_batches);
    ProcessGrid grid(mpi, parallel);
    const std::string name = "tp" + std::to_string(layout.tp) + "_pp" + std::to_string(layout.pp) +
                             "_dp" + std::to_string(layout.dp);
    const LayoutResult result =
        run_layout(shape, layout, &grid, steps, micro_batches, scratch / name);
    if (mpi.world_rank() == 0) {
      std::printf("%-14s %10.0f %9.2f %10.1f%% %8.3f %8.3f %10.4f\n", name.c_str(),
                  result.tokens_per_s, result.tokens_per_s / single.tokens_per_s,
                  100 * result.communication_share, result.bubble.bubble,
                  result.bubble.ideal_bubble, result.final_loss);
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (mpi.world_rank() == 0) fs::remove_all(scratch);
  return 0;
}

}  // namespace
}  // namespace steerlm

int main(int argc, char** argv) {
  return steerlm::run(argc, argv);
}
