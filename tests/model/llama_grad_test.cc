// Whole-model finite-difference gradient checks in f64, with each head, on a batch that mixes a
// padded row and a packed row, with masked positions and a missing attribute.
#include <gtest/gtest.h>

#include "model/llama_core.h"
#include "tests/model/model_test_util.h"

namespace steerlm {
namespace {

using testing::expect_grad_matches;
using testing::sample_indices;
using testing::tiny_config;

// Row 0: one sequence of 4 tokens then 2 padding; row 1: two packed sequences of 3 tokens.
Batch mixed_batch(HeadKind head) {
  Batch batch;
  batch.tokens = Tensor::from_ints({3, 7, 1, 9, 0, 0, 4, 4, 10, 2, 5, 8}, {2, 6});
  batch.positions = Tensor::from_ints({0, 1, 2, 3, 0, 0, 0, 1, 2, 0, 1, 2}, {2, 6});
  batch.segments = Tensor::from_ints({1, 1, 1, 1, 0, 0, 1, 1, 1, 2, 2, 2}, {2, 6});
  if (head == HeadKind::kLanguageModel) {
    batch.targets = Tensor::from_ints({7, 1, 9, 6, 0, 0, 4, 10, 3, 5, 8, 1}, {2, 6});
    batch.loss_mask = Tensor::from_floats({0, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1}, {2, 6});
  } else {
    batch.attribute_targets =
        Tensor::from_floats({1.0f, -100.0f, 3.0f, 0.5f, 2.0f, 4.0f, -100.0f, 1.0f, 2.0f}, {3, 3});
  }
  return batch;
}

struct F64Model {
  F64Model(const config::ModelConfig& config, HeadKind head, bool recompute)
      : float_model(config, head, 3, 7, options(recompute)),
        spec(CoreSpec::from(config, head, 3, options(recompute))),
        parameters(parameter_layout(spec)) {
    parameters.copy_values_from(float_model.parameters());
    core = std::make_unique<LlamaCore<double>>(spec, parameters.lookup());
  }
  static ModelOptions options(bool recompute) {
    ModelOptions result;
    result.init_std = 0.4f;  // larger than training's so every path carries signal
    result.activation_recompute = recompute;
    return result;
  }

  LlamaModel float_model;
  CoreSpec spec;
  HostParameters<double> parameters;
  std::unique_ptr<LlamaCore<double>> core;
};

void check_model_grad(const config::ModelConfig& config, HeadKind head, bool recompute) {
  F64Model model(config, head, recompute);
  const Batch batch = mixed_batch(head);
  auto loss = [&] {
    CoreActivations<double> saved;
    return model.core->forward(batch, saved).sum;
  };

  // Analytic gradient of the loss sum.
  CoreActivations<double> saved;
  const LossSums sums = model.core->forward(batch, saved);
  EXPECT_EQ(sums.count, head == HeadKind::kLanguageModel ? 8 : 3);
  model.core->backward(saved, 1.0);

  uint32_t seed = 1;
  for (const ParameterInfo& info : parameter_layout(model.spec)) {
    std::vector<double>& values = model.parameters.value(info.name);
    const std::vector<double> grad = model.parameters.grad(info.name);
    expect_grad_matches(values, loss, grad,
                        sample_indices(static_cast<int64_t>(values.size()), 12, seed++), info.name,
                        1e-6);
  }
}

TEST(grad_model, LanguageModelHead) {
  check_model_grad(tiny_config(), HeadKind::kLanguageModel, false);
}

TEST(grad_model, LanguageModelHeadTiedEmbeddings) {
  check_model_grad(tiny_config(true), HeadKind::kLanguageModel, false);
}

TEST(grad_model, AttributeHead) {
  check_model_grad(tiny_config(), HeadKind::kAttribute, false);
}

TEST(grad_model, ActivationRecomputeGivesIdenticalGradients) {
  std::vector<std::map<std::string, std::vector<double>>> grads;
  for (bool recompute : {false, true}) {
    F64Model model(tiny_config(), HeadKind::kLanguageModel, recompute);
    CoreActivations<double> saved;
    model.core->forward(mixed_batch(HeadKind::kLanguageModel), saved);
    model.core->backward(saved, 0.5);
    grads.emplace_back();
    for (const ParameterInfo& info : parameter_layout(model.spec)) {
      grads.back()[info.name] = model.parameters.grad(info.name);
    }
  }
  for (const auto& [name, grad] : grads[0]) EXPECT_EQ(grad, grads[1].at(name)) << name;
}

TEST(grad_model, PaddingAndMaskedTargetsGetNoGradient) {
  // Changing a padding token or the target of a masked position changes nothing.
  F64Model model(tiny_config(), HeadKind::kLanguageModel, false);
  Batch batch = mixed_batch(HeadKind::kLanguageModel);
  CoreActivations<double> saved;
  const double reference = model.core->forward(batch, saved).sum;
  batch.tokens.i32()[5] = 9;   // padding token of row 0
  batch.targets.i32()[0] = 2;  // masked target
  batch.targets.i32()[8] = 2;  // masked target at a packed boundary
  EXPECT_EQ(model.core->forward(batch, saved).sum, reference);
}

}  // namespace
}  // namespace steerlm
