// AdamW against a hand-computed f64 reference; clipping and the learning-rate schedule.
#include "model/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>

namespace steerlm {
namespace {

config::OptimConfig test_optim() {
  config::OptimConfig optim;
  optim.set_lr(0.1f);
  optim.set_beta1(0.9f);
  optim.set_beta2(0.95f);
  optim.set_eps(1e-8f);
  optim.set_weight_decay(0.1f);
  optim.set_grad_clip(1.0f);
  return optim;
}

TEST(AdamW, StepsMatchHandComputedReference) {
  ParameterSet parameters;
  Parameter& weight = parameters.add("w", {3}, true);
  Parameter& norm = parameters.add("n", {2}, false);
  const std::vector<float> w0 = {0.5f, -1.0f, 2.0f}, n0 = {1.0f, 0.25f};
  std::copy(w0.begin(), w0.end(), weight.value.f32());
  std::copy(n0.begin(), n0.end(), norm.value.f32());
  const config::OptimConfig optim = test_optim();
  AdamW optimizer(optim, parameters);

  // Reference state in f64, with the f32 hyperparameters.
  std::vector<double> w(w0.begin(), w0.end()), n(n0.begin(), n0.end());
  std::vector<double> m(5, 0.0), v(5, 0.0);
  const double b1 = optim.beta1(), b2 = optim.beta2(), eps = optim.eps(), lr = optim.lr();
  const double grads[3][5] = {
      {0.3, -0.2, 0.1, 0.05, 0.4}, {1.5, 0.7, -2.0, 0.3, 0.1}, {-0.1, 0.2, 0.3, -0.4, 0.5}};
  for (int t = 1; t <= 3; ++t) {
    for (int i = 0; i < 3; ++i) weight.grad.f32()[i] = static_cast<float>(grads[t - 1][i]);
    for (int i = 0; i < 2; ++i) norm.grad.f32()[i] = static_cast<float>(grads[t - 1][3 + i]);
    double norm_sq = 0;
    for (int i = 0; i < 5; ++i) {
      norm_sq += static_cast<double>(static_cast<float>(grads[t - 1][i])) *
                 static_cast<float>(grads[t - 1][i]);
    }
    EXPECT_NEAR(AdamW::grad_norm_sq(parameters), norm_sq, 1e-12);
    const double clip = std::min(1.0, optim.grad_clip() / (std::sqrt(norm_sq) + 1e-6));
    optimizer.step(parameters, optim.lr(), std::sqrt(norm_sq));

    for (int i = 0; i < 5; ++i) {
      const double g = static_cast<float>(grads[t - 1][i]) * clip;
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      const double update =
          (m[i] / (1 - std::pow(b1, t))) / (std::sqrt(v[i] / (1 - std::pow(b2, t))) + eps);
      double& p = i < 3 ? w[i] : n[i - 3];
      const double decay = i < 3 ? optim.weight_decay() : 0.0;  // none on norms
      p = p * (1 - lr * decay) - lr * update;
    }
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(weight.value.f32()[i], w[i], 1e-6) << "step " << t;
    for (int i = 0; i < 2; ++i) EXPECT_NEAR(norm.value.f32()[i], n[i], 1e-6) << "step " << t;
  }
  EXPECT_EQ(optimizer.steps_taken(), 3);
  EXPECT_NEAR(optimizer.exp_avg("w").f32()[0], m[0], 1e-7);
  EXPECT_NEAR(optimizer.exp_avg_sq("n").f32()[1], v[4], 1e-7);
}

TEST(AdamW, ClipCoefficient) {
  ParameterSet parameters;
  config::OptimConfig optim = test_optim();
  AdamW clipping(optim, parameters);
  EXPECT_DOUBLE_EQ(clipping.clip_coefficient(0.5), 1.0);
  EXPECT_NEAR(clipping.clip_coefficient(4.0), 0.25, 1e-7);
  optim.set_grad_clip(0.0f);
  EXPECT_DOUBLE_EQ(AdamW(optim, parameters).clip_coefficient(100.0), 1.0);
}

TEST(LearningRate, WarmupThenCosineToMinLr) {
  config::OptimConfig optim;
  optim.set_lr(1.0f);
  optim.set_min_lr(0.1f);
  optim.set_warmup_steps(4);
  EXPECT_FLOAT_EQ(learning_rate(optim, 0, 14), 0.25f);
  EXPECT_FLOAT_EQ(learning_rate(optim, 3, 14), 1.0f);
  EXPECT_FLOAT_EQ(learning_rate(optim, 4, 14), 1.0f);  // cosine starts at the peak
  // Halfway through the 9 decay steps (steps 4..13): min + (peak - min) / 2 at step 8.5.
  EXPECT_NEAR(learning_rate(optim, 9, 14), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 5 / 9)), 1e-6);
  EXPECT_FLOAT_EQ(learning_rate(optim, 13, 14), 0.1f);
  optim.set_schedule(config::LrSchedule::CONSTANT);
  EXPECT_FLOAT_EQ(learning_rate(optim, 1, 14), 0.5f);
  EXPECT_FLOAT_EQ(learning_rate(optim, 10, 14), 1.0f);
}

}  // namespace
}  // namespace steerlm
