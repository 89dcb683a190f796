#include "model/optimizer.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "runtime/kernels/adamw.h"

namespace steerlm {

float learning_rate(const config::OptimConfig& optim, int64_t step, int64_t total_steps) {
  const double peak = optim.lr();
  const int64_t warmup = optim.warmup_steps();
  if (step < warmup) return static_cast<float>(peak * static_cast<double>(step + 1) / warmup);
  if (optim.schedule() == config::LrSchedule::CONSTANT) return static_cast<float>(peak);

  // Cosine from the peak at the end of warm-up to min_lr at the last step.
  const int64_t decay_steps = std::max<int64_t>(1, total_steps - 1 - warmup);
  const double progress = std::min(1.0, static_cast<double>(step - warmup) / decay_steps);
  const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  return static_cast<float>(optim.min_lr() + (peak - optim.min_lr()) * cosine);
}

AdamW::AdamW(const config::OptimConfig& optim, const ParameterSet& parameters) : optim_(optim) {
  for (const Parameter& parameter : parameters) {
    moments_.emplace(parameter.name,
                     std::make_pair(Tensor::zeros(parameter.value.shape(), DType::kF32),
                                    Tensor::zeros(parameter.value.shape(), DType::kF32)));
  }
}

double AdamW::grad_norm_sq(const ParameterSet& parameters) {
  double total = 0;
  for (const Parameter& parameter : parameters) {
    if (parameter.tp_duplicate) continue;
    total += kernels::sum_of_squares(parameter.grad.f32(), parameter.grad.numel());
  }
  return total;
}

double AdamW::clip_coefficient(double grad_norm) const {
  if (optim_.grad_clip() <= 0) return 1.0;
  return std::min(1.0, optim_.grad_clip() / (grad_norm + 1e-6));
}

void AdamW::step(ParameterSet& parameters, float lr, double grad_norm) {
  ++steps_taken_;
  kernels::AdamWHyper hyper;
  hyper.lr = lr;
  hyper.beta1 = optim_.beta1();
  hyper.beta2 = optim_.beta2();
  hyper.eps = optim_.eps();
  hyper.step = steps_taken_;
  hyper.grad_scale = clip_coefficient(grad_norm);
  for (Parameter& parameter : parameters) {
    auto it = moments_.find(parameter.name);
    CHECK(it != moments_.end()) << "optimizer has no state for " << parameter.name;
    hyper.weight_decay = parameter.weight_decay ? optim_.weight_decay() : 0.0;
    kernels::adamw_update(parameter.value.f32(), parameter.grad.f32(), it->second.first.f32(),
                          it->second.second.f32(), parameter.value.numel(), hyper);
  }
}

}  // namespace steerlm
