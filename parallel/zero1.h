// ZeRO-1: the optimizer state is sharded over the dp group (DESIGN §5, DP).
//
// All parameters (and their gradients) of a rank are laid out in one flat buffer of N elements,
// padded to a multiple of DP. Rank d owns elements [d*S, (d+1)*S), S = padded N / DP:
//
//   Zero1Partition part = zero1_partition(N, dp.size());
//   pack_tensors(grads, flat_grads);                          // (part.padded_numel), zero pad
//   zero1_reduce_scatter_gradients(dp, flat_grads, grad_shard);  // (part.shard_numel) summed
//   ... AdamW on this rank's shard of the master weights and moments ...
//   zero1_all_gather_parameters(dp, param_shard, flat_params);  // (part.padded_numel) on all
//   unpack_tensors(flat_params, params);
//
// Gradients are summed, not averaged, as in GradientBuckets.
#pragma once

#include "parallel/process_group.h"

namespace steerlm {

struct Zero1Partition {
  int64_t numel = 0;         // N: real elements
  int64_t padded_numel = 0;  // N rounded up to a multiple of DP
  int64_t shard_numel = 0;   // padded_numel / DP

  int64_t shard_begin(int dp_rank) const { return dp_rank * shard_numel; }
  // Real (unpadded) elements in the shard of `dp_rank`.
  int64_t shard_real_numel(int dp_rank) const;
};

Zero1Partition zero1_partition(int64_t numel, int dp_size);

// flat_grads (padded_numel) -> grad_shard (shard_numel): this rank's slice, summed over dp.
void zero1_reduce_scatter_gradients(ProcessGroup& dp, const Tensor& flat_grads, Tensor& grad_shard);
// param_shard (shard_numel) -> flat_params (padded_numel): every rank's updated slice.
void zero1_all_gather_parameters(ProcessGroup& dp, const Tensor& param_shard, Tensor& flat_params);

}  // namespace steerlm
