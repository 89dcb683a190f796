// The model against golden values from an independent PyTorch implementation
// (tests/model/golden/make_golden.py writes golden.json; regenerate it there).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/llama_core.h"

namespace steerlm {
namespace {

using nlohmann::json;

json load_golden() {
  std::ifstream in(std::string(STEERLM_SOURCE_DIR) + "/tests/model/golden/golden.json");
  EXPECT_TRUE(in.good()) << "missing tests/model/golden/golden.json";
  return json::parse(in);
}

config::ModelConfig golden_config(const json& golden) {
  const json& c = golden["config"];
  config::ModelConfig config;
  config.set_dim(c["dim"]);
  config.set_n_layers(c["n_layers"]);
  config.set_n_heads(c["n_heads"]);
  config.set_n_kv_heads(c["n_kv_heads"]);
  config.set_ffn_hidden(c["ffn_hidden"]);
  config.set_vocab_size(c["vocab_size"]);
  config.set_rope_theta(c["rope_theta"]);
  config.set_norm_eps(c["norm_eps"]);
  return config;
}

template <typename T>
Tensor to_tensor(const json& rows) {
  std::vector<T> values;
  for (const json& row : rows) {
    for (const json& value : row) values.push_back(value.get<T>());
  }
  const Shape shape{static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())};
  if constexpr (std::is_same_v<T, int32_t>) return Tensor::from_ints(values, shape);
  return Tensor::from_floats(std::vector<float>(values.begin(), values.end()), shape);
}

Batch golden_batch(const json& golden) {
  Batch batch;
  batch.tokens = to_tensor<int32_t>(golden["tokens"]);
  batch.positions = to_tensor<int32_t>(golden["positions"]);
  batch.segments = to_tensor<int32_t>(golden["segments"]);
  batch.targets = to_tensor<int32_t>(golden["targets"]);
  batch.loss_mask = to_tensor<float>(golden["loss_mask"]);
  batch.attribute_targets = to_tensor<float>(golden["attribute_targets"]);
  return batch;
}

// Relative comparison; values below floor * (the tensor's largest magnitude) compare against
// that instead (f32 rounding is relative to the tensor's scale, not to each tiny element).
void expect_matches(const std::vector<double>& actual, const json& expected, double tolerance,
                    const std::string& what, double floor = 1e-3) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  double scale = 0;
  for (const json& value : expected) scale = std::max(scale, std::abs(value.get<double>()));
  for (size_t i = 0; i < actual.size(); ++i) {
    const double reference = expected[i].get<double>();
    const double bound = tolerance * std::max(std::abs(reference), floor * scale);
    EXPECT_NEAR(actual[i], reference, bound) << what << " element " << i;
  }
}

struct GoldenModel {
  GoldenModel(const json& golden, HeadKind head)
      : spec(CoreSpec::from(golden_config(golden), head, golden["config"]["n_attributes"], {})),
        parameters(parameter_layout(spec)) {
    for (const ParameterInfo& info : parameter_layout(spec)) {
      const json& values = golden["weights"][info.name];
      std::vector<double>& target = parameters.value(info.name);
      EXPECT_EQ(values.size(), target.size()) << info.name;
      for (size_t i = 0; i < std::min(target.size(), values.size()); ++i) {
        target[i] = values[i].get<double>();
      }
    }
    core = std::make_unique<LlamaCore<double>>(spec, parameters.lookup());
  }
  CoreSpec spec;
  HostParameters<double> parameters;
  std::unique_ptr<LlamaCore<double>> core;
};

TEST(GoldenPyTorch, LanguageModelLogitsLossAndGradients) {
  const json golden = load_golden();
  GoldenModel model(golden, HeadKind::kLanguageModel);
  const Batch batch = golden_batch(golden);

  std::vector<double> logits;
  model.core->logits(batch, logits);
  expect_matches(logits, golden["logits"], 1e-5, "logits");

  CoreActivations<double> saved;
  const LossSums sums = model.core->forward(batch, saved);
  EXPECT_NEAR(sums.sum, golden["lm_loss_sum"].get<double>(), 1e-5 * sums.sum);
  EXPECT_EQ(sums.count, 8);
  model.core->backward(saved, 1.0);
  for (const ParameterInfo& info : parameter_layout(model.spec)) {
    expect_matches(model.parameters.grad(info.name), golden["lm_grads"][info.name], 1e-5,
                   info.name);
  }
}

TEST(GoldenPyTorch, AttributeHeadPredictionsLossAndGradients) {
  const json golden = load_golden();
  GoldenModel model(golden, HeadKind::kAttribute);
  const Batch batch = golden_batch(golden);

  std::vector<double> predictions;
  model.core->predict_attributes(batch, predictions);
  expect_matches(predictions, golden["attribute_predictions"], 1e-5, "predictions");

  CoreActivations<double> saved;
  const LossSums sums = model.core->forward(batch, saved);
  EXPECT_NEAR(sums.sum, golden["attribute_loss_sum"].get<double>(), 1e-5 * sums.sum);
  EXPECT_EQ(sums.count, 3);
  model.core->backward(saved, 1.0);
  for (const ParameterInfo& info : parameter_layout(model.spec)) {
    expect_matches(model.parameters.grad(info.name), golden["attribute_grads"][info.name], 1e-5,
                   info.name);
  }
}

TEST(GoldenPyTorch, Float32ModelMatchesLossAndLogits) {
  const json golden = load_golden();
  LlamaModel model(golden_config(golden), HeadKind::kLanguageModel, 0, 1);
  for (Parameter& parameter : model.parameters()) {
    const json& values = golden["weights"][parameter.name];
    for (int64_t i = 0; i < parameter.value.numel(); ++i) {
      parameter.value.f32()[i] = values[i].get<float>();
    }
  }
  const Batch batch = golden_batch(golden);
  const std::vector<float> logits = model.logits(batch).to_floats();
  expect_matches(std::vector<double>(logits.begin(), logits.end()), golden["logits"], 1e-5,
                 "f32 logits", 1.0);
  const double loss = model.evaluate(batch).sum;
  EXPECT_NEAR(loss, golden["lm_loss_sum"].get<double>(), 1e-5 * loss);
}

}  // namespace
}  // namespace steerlm
