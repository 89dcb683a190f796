// Model behaviour in f32: padding/packing invariance, KV-cache decoding, pipeline shards,
// determinism, initialisation, and overfitting one batch.
#include "model/llama.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/optimizer.h"
#include "tests/model/model_test_util.h"

namespace steerlm {
namespace {

using testing::tiny_config;

const std::vector<std::vector<int32_t>> kSequences = {{3, 7, 1, 9, 6}, {4, 10, 2}, {5, 8, 8, 1}};

// Next-token targets inside each sequence; the last token of a sequence is untrained.
void add_lm_targets(Batch& batch) {
  const int64_t n = batch.tokens.numel();
  std::vector<int32_t> targets(n, 0);
  std::vector<float> mask(n, 0.0f);
  const int32_t* tokens = batch.tokens.i32();
  const int32_t* segments = batch.segments.i32();
  for (int64_t i = 0; i + 1 < n; ++i) {
    const bool same =
        segments[i] != 0 && segments[i + 1] == segments[i] && (i + 1) % batch.seq_len() != 0;
    if (same) targets[i] = tokens[i + 1], mask[i] = 1.0f;
  }
  batch.targets = Tensor::from_ints(targets, batch.tokens.shape());
  batch.loss_mask = Tensor::from_floats(mask, batch.tokens.shape());
}

// The three sequences padded to T=6, one per row.
Batch padded_batch() {
  Batch batch = make_padded_batch(kSequences, 6);
  add_lm_targets(batch);
  return batch;
}

// Rows of T=8: [seq0 seq1] and [seq2, padding].
Batch packed_batch() {
  Batch batch;
  batch.tokens = Tensor::from_ints({3, 7, 1, 9, 6, 4, 10, 2, 5, 8, 8, 1, 0, 0, 0, 0}, {2, 8});
  batch.positions = Tensor::from_ints({0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3, 0, 0, 0, 0}, {2, 8});
  batch.segments = Tensor::from_ints({1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0}, {2, 8});
  add_lm_targets(batch);
  return batch;
}

Tensor attribute_targets() {
  return Tensor::from_floats({1, -100, 3, 0.5f, 2, 4, -100, 1, 2}, {3, 3});
}

ModelOptions init_std(float std) {
  ModelOptions options;
  options.init_std = std;
  return options;
}

void expect_close(const std::vector<float>& a, const std::vector<float>& b, double tolerance,
                  const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_NEAR(a[i], b[i], tolerance * std::max(1.0f, std::abs(a[i]))) << what << " at " << i;
  }
}

std::map<std::string, std::vector<float>> run_forward_backward(LlamaModel& model,
                                                               const Batch& batch, LossSums* sums) {
  model.parameters().zero_grad();
  Activations saved;
  *sums = model.forward(batch, saved);
  model.backward(saved, 1.0f);
  std::map<std::string, std::vector<float>> grads;
  for (const Parameter& parameter : model.parameters()) {
    grads[parameter.name] = parameter.grad.to_floats();
  }
  return grads;
}

TEST(LlamaModel, PaddedAndPackedBatchesAgree) {
  for (HeadKind head : {HeadKind::kLanguageModel, HeadKind::kAttribute}) {
    LlamaModel model(tiny_config(), head, 3, 11, init_std(0.2f));
    Batch padded = padded_batch(), packed = packed_batch();
    padded.attribute_targets = packed.attribute_targets = attribute_targets();
    LossSums padded_sums, packed_sums;
    const auto padded_grads = run_forward_backward(model, padded, &padded_sums);
    const auto packed_grads = run_forward_backward(model, packed, &packed_sums);
    EXPECT_EQ(padded_sums.count, packed_sums.count);
    EXPECT_EQ(padded_sums.count, head == HeadKind::kLanguageModel ? 9 : 3);
    EXPECT_NEAR(padded_sums.sum, packed_sums.sum, 1e-5 * std::abs(padded_sums.sum));
    for (const auto& [name, grad] : padded_grads) {
      expect_close(grad, packed_grads.at(name), 1e-4, name);
    }
  }
}

TEST(LlamaModel, PackedLogitsEqualPaddedLogits) {
  LlamaModel model(tiny_config(), HeadKind::kLanguageModel, 0, 11, init_std(0.2f));
  const std::vector<float> padded = model.logits(padded_batch()).to_floats();  // (3, 6, 11)
  const std::vector<float> packed = model.logits(packed_batch()).to_floats();  // (2, 8, 11)
  // (padded row, packed row, packed offset) per sequence.
  const int rows[3][2] = {{0, 0}, {0, 5}, {1, 0}};
  for (int s = 0; s < 3; ++s) {
    for (size_t t = 0; t < kSequences[s].size(); ++t) {
      for (int v = 0; v < 11; ++v) {
        EXPECT_NEAR(padded[(s * 6 + t) * 11 + v],
                    packed[(rows[s][0] * 8 + rows[s][1] + t) * 11 + v], 1e-5)
            << "sequence " << s << " position " << t;
      }
    }
  }
}

TEST(LlamaModel, KvCacheDecodingMatchesFullForward) {
  LlamaModel model(tiny_config(), HeadKind::kLanguageModel, 0, 5, init_std(0.3f));
  // Prefill prompts of different lengths in one call, then decode 3 steps, one row finished.
  KvCache cache = model.new_kv_cache(3, 12);
  Tensor prompts = Tensor::from_ints({3, 7, 1, 9, 6, 4, 10, 0, 0, 0, 5, 8, 8, 1, 0}, {3, 5});
  std::vector<std::vector<int32_t>> sequences = {{3, 7, 1, 9, 6}, {4, 10}, {5, 8, 8, 1}};
  Tensor logits = model.forward_cached(cache, prompts, {5, 2, 4});
  const std::vector<int32_t> appended[3] = {{2, 7, 7}, {9, 3, 1}, {6, 6, 6}};
  for (int step = 0; step < 4; ++step) {
    // Compare every active row's last logits with a full forward of its whole sequence.
    const std::vector<float> cached = logits.to_floats();
    for (int b = 0; b < 3; ++b) {
      if (b == 2 && step >= 2) continue;  // row 2 stopped after one decode step
      const Batch full = make_padded_batch({sequences[b]}, sequences[b].size());
      const std::vector<float> reference = model.logits(full).to_floats();
      const size_t last = (sequences[b].size() - 1) * 11;
      for (int v = 0; v < 11; ++v) {
        EXPECT_NEAR(cached[b * 11 + v], reference[last + v], 1e-5)
            << "row " << b << " step " << step;
      }
    }
    if (step == 3) break;
    std::vector<int> n_new = {1, 1, step >= 1 ? 0 : 1};
    std::vector<int32_t> next(3);
    for (int b = 0; b < 3; ++b) {
      next[b] = appended[b][step];
      if (n_new[b]) sequences[b].push_back(next[b]);
    }
    logits = model.forward_cached(cache, Tensor::from_ints(next, {3, 1}), n_new);
  }
  EXPECT_EQ(cache.lengths, (std::vector<int64_t>{8, 5, 5}));
}

TEST(LlamaModel, PipelineShardsChainToTheWholeModel) {
  const config::ModelConfig config = tiny_config();
  LlamaModel whole(config, HeadKind::kLanguageModel, 0, 9, init_std(0.2f));
  ModelOptions first_options = init_std(0.2f), last_options = init_std(0.2f);
  first_options.shard = ModelShard{0, 1, true, false, 0, 1};
  last_options.shard = ModelShard{1, 2, false, true, 0, 1};
  LlamaModel first(config, HeadKind::kLanguageModel, 0, 9, first_options);
  LlamaModel last(config, HeadKind::kLanguageModel, 0, 9, last_options);
  EXPECT_EQ(first.parameters().size() + last.parameters().size(), whole.parameters().size());

  // Forward across the stages, backward back across them.
  const Batch batch = padded_batch();
  LossSums whole_sums;
  const auto whole_grads = run_forward_backward(whole, batch, &whole_sums);
  Activations first_saved, last_saved;
  first.forward(batch, first_saved);
  const LossSums sums = last.forward(batch, last_saved, first_saved.hidden_out);
  const Tensor grad_hidden = last.backward(last_saved, 1.0f);
  first.backward(first_saved, 1.0f, grad_hidden);
  EXPECT_EQ(sums.count, whole_sums.count);
  EXPECT_NEAR(sums.sum, whole_sums.sum, 1e-6 * whole_sums.sum);
  for (LlamaModel* stage : {&first, &last}) {
    for (const Parameter& parameter : stage->parameters()) {
      EXPECT_EQ(parameter.value.to_floats(),
                whole.parameters().at(parameter.name).value.to_floats());
      expect_close(parameter.grad.to_floats(), whole_grads.at(parameter.name), 1e-5,
                   parameter.name);
    }
  }
}

TEST(LlamaModel, InitialisationDependsOnSeedNameAndIndex) {
  LlamaModel a(tiny_config(), HeadKind::kAttribute, 2, 42);
  LlamaModel b(tiny_config(), HeadKind::kAttribute, 2, 42);
  LlamaModel c(tiny_config(), HeadKind::kAttribute, 2, 43);
  const std::vector<float> q =
      a.parameters().at("model.layers.0.self_attn.q_proj.weight").value.to_floats();
  EXPECT_EQ(q, b.parameters().at("model.layers.0.self_attn.q_proj.weight").value.to_floats());
  EXPECT_NE(q, c.parameters().at("model.layers.0.self_attn.q_proj.weight").value.to_floats());
  EXPECT_EQ(q[5], init_normal_value(42, "model.layers.0.self_attn.q_proj.weight", 5, 0.02f));
  EXPECT_EQ(a.parameters().at("model.norm.weight").value.to_floats(), std::vector<float>(16, 1.0f));
  EXPECT_EQ(a.parameters().at("attribute_head.bias").value.to_floats(),
            std::vector<float>(2, 0.0f));
  EXPECT_FALSE(a.parameters().at("model.norm.weight").weight_decay);
  EXPECT_TRUE(a.parameters().at("model.embed_tokens.weight").weight_decay);
  EXPECT_EQ(a.parameters().find("lm_head.weight"), nullptr);

  // 100k draws: mean 0 and standard deviation 0.02 within sampling error.
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < 100000; ++i) {
    const double value = init_normal_value(7, "x", i, 0.02f);
    sum += value, sum_sq += value * value;
  }
  EXPECT_NEAR(sum / 100000, 0.0, 3e-4);
  EXPECT_NEAR(std::sqrt(sum_sq / 100000), 0.02, 3e-4);
}

// Trains a fresh tiny model for `steps` AdamW steps on one batch; returns the last loss.
double train_on_one_batch(int steps, std::vector<float>* final_weights) {
  config::ModelConfig config = tiny_config();
  config.set_dim(32);
  config.set_ffn_hidden(64);
  config.set_vocab_size(16);
  LlamaModel model(config, HeadKind::kLanguageModel, 0, 3);
  config::OptimConfig optim;
  optim.set_lr(1e-2f);
  optim.set_weight_decay(0.01f);
  optim.set_schedule(config::LrSchedule::CONSTANT);
  AdamW optimizer(optim, model.parameters());
  // No row starts with a repeated token: without a BOS, positions 0 and 1 of "8 8" would both
  // average the same value vector (RoPE is relative), making their targets indistinguishable.
  Batch batch = make_padded_batch(
      {{1, 5, 9, 2, 14, 7, 3, 3, 11, 6, 0, 4}, {8, 12, 2, 13, 15, 1, 10, 12, 5}}, 12);
  add_lm_targets(batch);
  double loss = 0;
  for (int step = 0; step < steps; ++step) {
    model.parameters().zero_grad();
    Activations saved;
    const LossSums sums = model.forward(batch, saved);
    model.backward(saved, 1.0f / sums.count);
    loss = sums.mean();
    optimizer.step(model.parameters(), learning_rate(optim, step, steps),
                   std::sqrt(AdamW::grad_norm_sq(model.parameters())));
  }
  if (final_weights != nullptr) {
    for (const Parameter& parameter : model.parameters()) {
      const std::vector<float> values = parameter.value.to_floats();
      final_weights->insert(final_weights->end(), values.begin(), values.end());
    }
  }
  return loss;
}

TEST(LlamaModel, OverfitsOneBatch) {
  const double loss = train_on_one_batch(150, nullptr);
  EXPECT_LT(loss, 0.05);
}

TEST(LlamaModel, TrainingIsBitReproducible) {
  std::vector<float> first, second;
  train_on_one_batch(5, &first);
  train_on_one_batch(5, &second);
  EXPECT_EQ(first, second);
}

}  // namespace
}  // namespace steerlm
