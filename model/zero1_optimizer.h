// ZeRO-1 AdamW: the optimizer state is sharded over the dp group (DESIGN §5, DP;
// parallel/zero1.h).
//
// Every dp replica holds all of its stage's weights and computes all of their gradients, but
// keeps AdamW's moments only for its 1/DP slice of the flattened parameters. A step:
//
//   zero1.reduce_scatter_gradients();    // this rank's slice of the gradients, summed over dp
//   zero1.scale_gradients(1.0f / global_count);
//   double norm_sq = zero1.shard_grad_norm_sq();   // + the other slices' (all-reduce over world)
//   zero1.step(lr, std::sqrt(norm_sq));  // AdamW on the slice, then all-gather of the weights
//
// The update is element-wise, so the slice gets exactly the values AdamW gives the whole
// parameter set; weight decay follows each element's parameter.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "configs/steerlm.pb.h"
#include "model/optimizer.h"
#include "model/parameters.h"
#include "model/sharded_checkpoint.h"
#include "parallel/process_group.h"
#include "parallel/zero1.h"

namespace steerlm {

class Zero1AdamW {
 public:
  // `parameters` (this stage's, in registration order) are flattened in that order; they and
  // `dp` must outlive the optimizer.
  Zero1AdamW(const config::OptimConfig& optim, ParameterSet& parameters, ProcessGroup& dp);

  void reduce_scatter_gradients();
  void scale_gradients(float factor);
  // Sum of squared gradients over this rank's slice, f64; each element lives on one dp rank.
  double shard_grad_norm_sq() const;
  void step(float lr, double grad_norm);

  int64_t steps_taken() const { return adam_->steps_taken(); }
  void set_steps_taken(int64_t steps) { adam_->set_steps_taken(steps); }
  // This rank's moments as pieces of parameters (views: loading fills the optimizer).
  std::vector<MomentPiece> moment_pieces();

 private:
  // The part of one parameter inside this rank's slice.
  struct Segment {
    Parameter* parameter = nullptr;
    int64_t parameter_offset = 0;  // first element of the parameter in the slice
    int64_t shard_offset = 0;      // where it sits in the slice
    int64_t numel = 0;
  };

  ParameterSet& parameters_;
  ProcessGroup& dp_;
  Zero1Partition partition_;
  std::vector<Segment> segments_;
  std::vector<Tensor> grads_;   // views of every Parameter::grad, in order
  std::vector<Tensor> values_;  // views of every Parameter::value, in order
  Tensor flat_;                 // (padded_numel) f32, cpu: packed gradients, then weights
  Tensor grad_shard_;           // (shard_numel) f32, cpu
  Tensor value_shard_;          // (shard_numel) f32, cpu
  // The slice as parameters of its own (views into value_shard_ and grad_shard_, one per
  // segment), so the plain AdamW updates it and holds its moments.
  ParameterSet slice_;
  std::unique_ptr<AdamW> adam_;
};

}  // namespace steerlm
