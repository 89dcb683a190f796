// Annotation throughput on the CPU (issue 6 benchmark): the attribute model's forward, the work
// of AttributeScorer::score (pipeline/annotate.h), on a Llama of width 512 with the Llama 2
// vocabulary and a 5-attribute head, on one rank with the thread policy the CLI applies. Prints
// records/s, tokens/s and the achieved forward GFLOP/s against OpenBLAS sgemm measured in the
// same run (target: at least 60% of it), never asserted:
//   - fixed-length batches (every row the same length) at several batch sizes;
//   - a length-mixed dataset batched as score() batches it (longest first, at most
//     --batch-tokens padded tokens a batch);
//   - a per-op breakdown of one layer's forward at the fixed shape (the same kernels the
//     layer calls, timed one by one), to show where the time goes.
//
//   annotate_bench [--dim 512] [--layers 4] [--seq 256] [--reps 3] [--batch-tokens 8192]
#include <cblas.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "model/llama.h"
#include "runtime/gemm.h"
#include "runtime/kernels/attention.h"
#include "runtime/kernels/blas.h"
#include "runtime/kernels/rmsnorm.h"
#include "runtime/kernels/rope.h"
#include "runtime/kernels/swiglu.h"
#include "runtime/threads.h"

namespace steerlm {
namespace {

struct BenchShape {
  int dim = 512, layers = 4, heads = 8, kv_heads = 4, ffn = 1408, vocab = 32000, attributes = 5;
};

using bench::best_seconds;
using bench::seconds_since;

// Model FLOPs of the forward over `rows` rows padded to `seq` tokens: the trunk's GEMMs plus the
// attention's full T x T score and value products (as bench/train_step_bench.cc counts them;
// the kernel computes the whole square and masks it). The embedding is a lookup and the head
// reads one position per row, so neither counts.
double forward_flops(const BenchShape& s, double rows, double seq) {
  const double tokens = rows * seq;
  const double hs = static_cast<double>(s.dim) / s.heads;
  const double layer_weights =
      2.0 * s.dim * s.heads * hs + 2.0 * s.dim * s.kv_heads * hs + 3.0 * s.dim * s.ffn;
  return s.layers * (2.0 * tokens * layer_weights + 4.0 * tokens * seq * s.heads * hs);
}

// Best-of-5 OpenBLAS sgemm GFLOP/s at the model's largest forward GEMM, (tokens x dim) @
// (ffn x dim)^T, with OpenBLAS's own `threads` (the cores of this rank); the caller's OpenBLAS
// thread count is restored afterwards.
double openblas_sgemm_gflops(int64_t m, int64_t n, int64_t k, int threads) {
  const int saved = openblas_get_num_threads();
  openblas_set_num_threads(threads);
  std::vector<float> a(m * k, 0.5f), b(n * k, 0.25f), c(m * n);
  const double seconds = best_seconds(5, [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
                static_cast<int>(k), 1.0f, a.data(), static_cast<int>(k), b.data(),
                static_cast<int>(k), 0.0f, c.data(), static_cast<int>(n));
  });
  openblas_set_num_threads(saved);
  return 2.0 * m * n * k / seconds / 1e9;
}

std::vector<int32_t> random_tokens(std::mt19937& generator, int vocab, int64_t length) {
  std::uniform_int_distribution<int32_t> token(0, vocab - 1);
  std::vector<int32_t> ids(length);
  for (int32_t& id : ids) id = token(generator);
  return ids;
}

// One op's share of a layer forward, timed on its own at the fixed shape.
struct OpTime {
  const char* name;
  double seconds;
  double flops;
};

std::vector<OpTime> layer_breakdown(const BenchShape& s, int64_t batch, int64_t seq, int reps) {
  const int64_t n = batch * seq, c = s.dim, f = s.ffn, hs = s.dim / s.heads;
  const int64_t qw = s.heads * hs, kvw = s.kv_heads * hs;
  std::mt19937 generator(3);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  auto random = [&](int64_t size) {
    std::vector<float> v(size);
    for (float& x : v) x = normal(generator);
    return v;
  };
  std::vector<float> x = random(n * c), norm_w(c, 1.0f), normed(n * c), rstd(n);
  std::vector<float> wq = random(qw * c), wk = random(kvw * c), wv = random(kvw * c);
  std::vector<float> wo = random(c * qw), wg = random(f * c), wu = random(f * c),
                     wd = random(c * f);
  std::vector<float> q(n * qw), k(n * kvw), v(n * kvw), kx(n * qw), vx(n * qw), attn(n * qw);
  std::vector<float> probs(batch * s.heads * seq * seq), out(n * c), gate(n * f), up(n * f),
      hidden(n * f);
  std::vector<int32_t> positions(n), segments(n, 1);
  for (int64_t i = 0; i < n; ++i) positions[i] = static_cast<int32_t>(i % seq);
  // The layer expands k/v to one head per query head before attention (expand_kv).
  kernels::AttentionShape shape{batch, seq, s.heads, s.heads, hs, qw, qw};
  const double dn = static_cast<double>(n);
  std::vector<OpTime> ops = {
      {"rmsnorm x2",
       2 * best_seconds(reps,
                        [&] {
                          kernels::rmsnorm_forward(x.data(), norm_w.data(), n, c, 1e-5,
                                                   normed.data(), rstd.data());
                        }),
       0},
      {"q,k,v proj",
       best_seconds(reps,
                    [&] {
                      kernels::linear_forward(normed.data(), wq.data(), n, c, qw, q.data());
                      kernels::linear_forward(normed.data(), wk.data(), n, c, kvw, k.data());
                      kernels::linear_forward(normed.data(), wv.data(), n, c, kvw, v.data());
                    }),
       2 * dn * c * (qw + 2 * kvw)},
      {"rope q,k",
       best_seconds(reps,
                    [&] {
                      kernels::rope_apply(q.data(), n, s.heads, hs, qw, positions.data(), 10000.0,
                                          kernels::RopeDirection::kForward);
                      kernels::rope_apply(k.data(), n, s.kv_heads, hs, kvw, positions.data(),
                                          10000.0, kernels::RopeDirection::kForward);
                    }),
       0},
      {"attention",
       best_seconds(reps,
                    [&] {
                      kernels::attention_forward(shape, q.data(), kx.data(), vx.data(),
                                                 segments.data(), probs.data(), attn.data());
                    }),
       4 * dn * seq * qw},
      {"o proj",
       best_seconds(reps,
                    [&] { kernels::linear_forward(attn.data(), wo.data(), n, qw, c, out.data()); }),
       2 * dn * qw * c},
      {"gate,up proj",
       best_seconds(reps,
                    [&] {
                      kernels::linear_forward(normed.data(), wg.data(), n, c, f, gate.data());
                      kernels::linear_forward(normed.data(), wu.data(), n, c, f, up.data());
                    }),
       4 * dn * c * f},
      {"swiglu",
       best_seconds(reps,
                    [&] { kernels::swiglu_forward(gate.data(), up.data(), n * f, hidden.data()); }),
       0},
      {"down proj",
       best_seconds(
           reps, [&] { kernels::linear_forward(hidden.data(), wd.data(), n, f, c, out.data()); }),
       2 * dn * f * c},
  };
  return ops;
}

}  // namespace
}  // namespace steerlm

int main(int argc, char** argv) {
  using namespace steerlm;
  CLI::App app{"steerlm annotation throughput: attribute-model forward vs OpenBLAS sgemm (CPU)"};
  BenchShape shape;
  int seq = 256, reps = 3, records = 256;
  int64_t batch_tokens = 8192;
  app.add_option("--dim", shape.dim, "model width");
  app.add_option("--layers", shape.layers, "layers");
  app.add_option("--ffn", shape.ffn, "SwiGLU hidden size");
  app.add_option("--seq", seq, "tokens per row of the fixed-length batches");
  app.add_option("--reps", reps, "timed repetitions after a warm-up (the best is kept)");
  app.add_option("--records", records, "records of the length-mixed dataset");
  app.add_option("--batch-tokens", batch_tokens, "padded tokens per batch (annotate default)");
  CLI11_PARSE(app, argc, argv);

  // The CLI's thread policy (runtime/threads.h): the whole budget to OpenBLAS by default.
  const ThreadPolicy policy = apply_thread_policy();
  config::ModelConfig config = bench::model_config(shape.dim, shape.layers, shape.heads,
                                                   shape.kv_heads, shape.ffn, shape.vocab);
  config.set_max_seq_len(4096);
  LlamaModel model(config, HeadKind::kAttribute, shape.attributes, 1234);

  // The reference: OpenBLAS sgemm with threads = this rank's cores, measured at the start and
  // again at the end of the run; the better of the two is the rate (on a shared machine, like
  // the forward's best-of timings, the least disturbed measurement).
  auto sgemm_now = [&] {
    return openblas_sgemm_gflops(8 * seq, shape.ffn, shape.dim, policy.budget);
  };
  double sgemm = sgemm_now();
  std::printf("model: d=%d L=%d NH=%d KVH=%d F=%d V=%d, %d attributes\n", shape.dim, shape.layers,
              shape.heads, shape.kv_heads, shape.ffn, shape.vocab, shape.attributes);
  std::printf("threads: %d OpenMP, %d OpenBLAS (%s)\n", current_openmp_threads(),
              current_openblas_threads(), policy.reason.c_str());

  // Forward timings first; the ratios come at the end, against the better sgemm measurement.
  struct Row {
    std::string label;
    double records_per_s, tokens_per_s, gflops;
  };
  std::vector<Row> rows;

  // Fixed-length batches.
  std::mt19937 generator(0);
  for (int batch : {1, 4, 8, 16, 32}) {
    std::vector<std::vector<int32_t>> sequences;
    for (int i = 0; i < batch; ++i) sequences.push_back(random_tokens(generator, shape.vocab, seq));
    const Batch padded = make_padded_batch(sequences, seq);
    const double seconds = best_seconds(reps, [&] { model.predict_attributes(padded); });
    rows.push_back({"batch " + std::to_string(batch) + " x " + std::to_string(seq), batch / seconds,
                    batch * static_cast<double>(seq) / seconds,
                    forward_flops(shape, batch, seq) / seconds / 1e9});
  }

  // A length-mixed dataset, batched as AttributeScorer::score batches it.
  std::uniform_int_distribution<int> length(32, 2 * seq);
  std::vector<std::vector<int32_t>> inputs;
  for (int i = 0; i < records; ++i) {
    inputs.push_back(random_tokens(generator, shape.vocab, length(generator)));
  }
  std::stable_sort(inputs.begin(), inputs.end(),
                   [](const auto& a, const auto& b) { return a.size() > b.size(); });
  std::vector<Batch> batches;
  double real_tokens = 0, flops = 0;
  for (size_t begin = 0; begin < inputs.size();) {
    const int64_t longest = static_cast<int64_t>(inputs[begin].size());
    const size_t count = std::max<size_t>(1, static_cast<size_t>(batch_tokens / longest));
    const size_t end = std::min(inputs.size(), begin + count);
    std::vector<std::vector<int32_t>> sequences(inputs.begin() + begin, inputs.begin() + end);
    for (const auto& sequence : sequences) real_tokens += static_cast<double>(sequence.size());
    flops += forward_flops(shape, static_cast<double>(end - begin), static_cast<double>(longest));
    batches.push_back(make_padded_batch(sequences, longest));
    begin = end;
  }
  const double seconds = best_seconds(std::max(1, reps / 2), [&] {
    for (const Batch& batch : batches) model.predict_attributes(batch);
  });
  rows.push_back(
      {"score()-style", records / seconds, real_tokens / seconds, flops / seconds / 1e9});

  const double sgemm_end = sgemm_now();
  std::printf(
      "openblas sgemm (%dx%dx%d, NT, %d OpenBLAS threads): %.1f GFLOP/s at the start, "
      "%.1f at the end; reference %.1f\n",
      8 * seq, shape.ffn, shape.dim, policy.budget, sgemm, sgemm_end, std::max(sgemm, sgemm_end));
  sgemm = std::max(sgemm, sgemm_end);
  std::printf(
      "score()-style: %d records, lengths 32..%d (random tokens), longest first, %zu "
      "batches of <= %lld padded tokens; its tokens/s counts real tokens, its GFLOP/s "
      "padded ones\n\n",
      records, 2 * seq, batches.size(), static_cast<long long>(batch_tokens));
  std::printf("%-16s %10s %12s %10s %8s\n", "workload", "records/s", "tokens/s", "GFLOP/s",
              "/sgemm");
  for (const Row& row : rows) {
    std::printf("%-16s %10.1f %12.0f %10.1f %7.0f%%\n", row.label.c_str(), row.records_per_s,
                row.tokens_per_s, row.gflops, 100 * row.gflops / sgemm);
  }

  // Where one layer's forward time goes (batch 8 x seq).
  const std::vector<OpTime> ops = layer_breakdown(shape, 8, seq, reps);
  const double total = std::accumulate(
      ops.begin(), ops.end(), 0.0, [](double sum, const OpTime& op) { return sum + op.seconds; });
  std::printf("\none layer's forward by op (batch 8 x %d, each op timed alone):\n", seq);
  std::printf("%-14s %9s %6s %10s\n", "op", "ms", "share", "GFLOP/s");
  for (const OpTime& op : ops) {
    std::printf("%-14s %9.2f %5.0f%% %10.1f\n", op.name, 1e3 * op.seconds, 100 * op.seconds / total,
                op.flops > 0 ? op.flops / op.seconds / 1e9 : 0.0);
  }
  std::printf("%-14s %9.2f\n", "sum", 1e3 * total);
  return 0;
}
