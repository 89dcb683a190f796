// AdamW over a ParameterSet, global gradient-norm clipping and the learning-rate schedule.
//
// A step, after all micro-batches' backward passes (and DP gradient sync):
//   double norm_sq = AdamW::grad_norm_sq(model.parameters());   // + other shards' (TP/PP)
//   float lr = learning_rate(optim_config, step, total_steps);
//   optimizer.step(model.parameters(), lr, std::sqrt(norm_sq));
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "configs/steerlm.pb.h"
#include "model/parameters.h"

namespace steerlm {

// Learning rate of optimizer step `step` (0-based) of `total_steps`: linear warm-up over
// warmup_steps (step + 1) / warmup * lr, then constant lr (CONSTANT) or a cosine from lr down
// to min_lr at the last step (COSINE).
float learning_rate(const config::OptimConfig& optim, int64_t step, int64_t total_steps);

class AdamW {
 public:
  // Zero moments for every parameter of the set (same names and shapes).
  AdamW(const config::OptimConfig& optim, const ParameterSet& parameters);

  // Sum of squared gradients over this rank's parameters, in f64 and a fixed order.
  static double grad_norm_sq(const ParameterSet& parameters);

  // Clipping coefficient for a global gradient norm: min(1, grad_clip / (norm + 1e-6)), or 1
  // when clipping is off (grad_clip = 0). As torch.nn.utils.clip_grad_norm_.
  double clip_coefficient(double grad_norm) const;

  // One AdamW update of every parameter with learning rate lr; gradients are scaled by the
  // clip coefficient of grad_norm. Weight decay only where Parameter::weight_decay.
  void step(ParameterSet& parameters, float lr, double grad_norm);

  int64_t steps_taken() const { return steps_taken_; }
  void set_steps_taken(int64_t steps) { steps_taken_ = steps; }
  // Moments by parameter name (for checkpoints): (same shape as the parameter) f32, cpu.
  Tensor& exp_avg(const std::string& name) { return moments_.at(name).first; }
  Tensor& exp_avg_sq(const std::string& name) { return moments_.at(name).second; }

 private:
  config::OptimConfig optim_;
  int64_t steps_taken_ = 0;
  std::map<std::string, std::pair<Tensor, Tensor>> moments_;  // name -> (m, v)
};

}  // namespace steerlm
