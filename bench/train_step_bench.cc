// Training-step throughput of steerlm against PyTorch (CPU) on the same Llama model, in one run
// (DESIGN §6): forward, backward, global-norm clipping and AdamW. Prints tokens/s of each, the
// ratio, and steerlm's achieved GFLOP/s against OpenBLAS sgemm measured in the same run.
//
//   train_step_bench [--steps N] [--torch-threads K] [--python /usr/bin/python3]
#include <cblas.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "model/llama.h"
#include "model/optimizer.h"
#include "runtime/gemm.h"
#include "runtime/kernels/blas.h"

namespace steerlm {
namespace {

struct BenchShape {
  int dim = 256, layers = 4, heads = 8, kv_heads = 4, ffn = 768, vocab = 4096;
  int seq = 256, batch = 8;
};

using bench::best_seconds;
using bench::seconds_since;

// Model FLOPs of one training step (3x the forward: backward is two GEMMs per forward GEMM).
// Attention counts the full T x T score and value products, as both implementations compute.
double step_flops(const BenchShape& s) {
  const double tokens = static_cast<double>(s.batch) * s.seq;
  const double hs = s.dim / s.heads;
  const double layer_weights =
      2.0 * s.dim * s.heads * hs + 2.0 * s.dim * s.kv_heads * hs + 3.0 * s.dim * s.ffn;
  const double forward = 2.0 * tokens * (s.layers * layer_weights + s.dim * s.vocab) +
                         s.layers * 4.0 * tokens * s.seq * s.heads * hs;
  return 3.0 * forward;
}

// Best-of-5 sgemm GFLOP/s at a training-like shape (2048 x 768 x 256 and its transposes).
double measure_sgemm_gflops() {
  const int64_t m = 2048, n = 768, k = 256;
  std::vector<float> a(m * k, 0.5f), b(n * k, 0.25f), c(m * n);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 10; ++i) {
      gemm_f32(Transpose::kNo, Transpose::kYes, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f,
               c.data(), n);
    }
    best = std::max(best, 10 * 2.0 * m * n * k / seconds_since(start) / 1e9);
  }
  return best;
}

// Seconds of the fastest of `steps` steerlm training steps after one warm-up step: on a shared
// machine the minimum is the least disturbed measurement (the PyTorch script does the same).
double time_steerlm(const BenchShape& s, int steps) {
  const config::ModelConfig config =
      bench::model_config(s.dim, s.layers, s.heads, s.kv_heads, s.ffn, s.vocab);
  LlamaModel model(config, HeadKind::kLanguageModel, 0, 1234);
  config::OptimConfig optim;
  AdamW optimizer(optim, model.parameters());

  // A full batch of random tokens, every position trained.
  std::mt19937 generator(0);
  std::uniform_int_distribution<int32_t> token(0, s.vocab - 1);
  std::vector<std::vector<int32_t>> sequences(s.batch, std::vector<int32_t>(s.seq));
  for (auto& sequence : sequences) {
    for (int32_t& id : sequence) id = token(generator);
  }
  Batch batch = make_padded_batch(sequences, s.seq);
  std::vector<int32_t> targets(s.batch * s.seq);
  for (int32_t& id : targets) id = token(generator);
  batch.targets = Tensor::from_ints(targets, {s.batch, s.seq});
  batch.loss_mask =
      Tensor::from_floats(std::vector<float>(s.batch * s.seq, 1.0f), {s.batch, s.seq});

  auto step = [&] {
    model.parameters().zero_grad();
    Activations saved;
    const LossSums sums = model.forward(batch, saved);
    model.backward(saved, 1.0f / static_cast<float>(sums.count));
    optimizer.step(model.parameters(), optim.lr(),
                   std::sqrt(AdamW::grad_norm_sq(model.parameters())));
  };
  return best_seconds(steps, step);
}

// Runs the PyTorch reference and returns its JSON line.
nlohmann::json run_torch(const std::string& python, const BenchShape& s, int steps,
                         int torch_threads) {
  // The script sits next to this source file (bench/CMakeLists.txt passes the folder; __FILE__
  // may be relative under ccache's base_dir).
  const std::string script = std::string(STEERLM_BENCH_DIR) + "/torch_train_step.py";
  const std::string command = python + " " + script + " --steps " + std::to_string(steps) +
                              " --torch-threads " + std::to_string(torch_threads) + " --dim " +
                              std::to_string(s.dim) + " --vocab " + std::to_string(s.vocab);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return nlohmann::json();
  std::string output;
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), pipe.get()) != nullptr) output += buffer;
  const size_t brace = output.rfind('{');
  if (brace == std::string::npos) return nlohmann::json();
  return nlohmann::json::parse(output.substr(brace), nullptr, false);
}

}  // namespace
}  // namespace steerlm

int main(int argc, char** argv) {
  using namespace steerlm;
  CLI::App app{"steerlm vs PyTorch: one Llama training step (fwd + bwd + AdamW) on the CPU"};
  int steps = 5, torch_threads = 1;
  bool keep_blas_threads = false;
  std::string python = "/usr/bin/python3";
  app.add_option("--steps", steps, "timed steps after one warm-up step");
  app.add_option("--torch-threads", torch_threads, "torch.set_num_threads for the reference");
  app.add_option("--python", python, "interpreter that imports torch");
  app.add_flag("--keep-blas-threads", keep_blas_threads,
               "let OpenBLAS keep its threads in steerlm's step instead of OpenMP owning them");
  CLI11_PARSE(app, argc, argv);

  const BenchShape shape;
  const double tokens = static_cast<double>(shape.batch) * shape.seq;
  const double sgemm = measure_sgemm_gflops();
  // steerlm runs OpenBLAS single-threaded and owns the threads through OpenMP (one pool, see
  // runtime/kernels/blas.h); the sgemm reference above used OpenBLAS's own threads.
  const int blas_threads = openblas_get_num_threads();
  if (!keep_blas_threads) openblas_set_num_threads(1);
  const double steerlm_step = time_steerlm(shape, steps);
  const bool own = kernels::kernels_own_threads();
  openblas_set_num_threads(blas_threads);
  const double steerlm_gflops = step_flops(shape) / steerlm_step / 1e9;
  std::printf("model: d=%d L=%d NH=%d KVH=%d F=%d V=%d, batch %d x seq %d\n", shape.dim,
              shape.layers, shape.heads, shape.kv_heads, shape.ffn, shape.vocab, shape.batch,
              shape.seq);
  std::printf("openblas sgemm (2048x768x256, %d OpenBLAS threads): %.1f GFLOP/s\n", blas_threads,
              sgemm);
  std::printf("steerlm threads: %d OpenMP, OpenBLAS %s\n", omp_get_max_threads(),
              own ? "single-threaded inside the kernels' OpenMP regions" : "with its own threads");
  std::printf("steerlm: %.0f tokens/s, %.3f s/step, %.1f GFLOP/s (%.0f%% of sgemm)\n",
              tokens / steerlm_step, steerlm_step, steerlm_gflops, 100 * steerlm_gflops / sgemm);

  const nlohmann::json torch = run_torch(python, shape, steps, torch_threads);
  if (!torch.is_object() || !torch.contains("tokens_per_s")) {
    std::printf("pytorch: not run (%s could not import torch)\n", python.c_str());
    return 0;
  }
  const double torch_tokens = torch["tokens_per_s"].get<double>();
  std::printf("pytorch %s: %.0f tokens/s (torch threads %d, OPENBLAS_NUM_THREADS %s)\n",
              torch["torch_version"].get<std::string>().c_str(), torch_tokens,
              torch["torch_threads"].get<int>(),
              torch["openblas_threads"].get<std::string>().c_str());
  std::printf("ratio steerlm / pytorch: %.2fx\n", tokens / steerlm_step / torch_tokens);
  return 0;
}
