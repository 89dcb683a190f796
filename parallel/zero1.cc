#include "parallel/zero1.h"

#include <glog/logging.h>

#include <algorithm>

namespace steerlm {

int64_t Zero1Partition::shard_real_numel(int dp_rank) const {
  const int64_t begin = shard_begin(dp_rank);
  return std::clamp<int64_t>(numel - begin, 0, shard_numel);
}

Zero1Partition zero1_partition(int64_t numel, int dp_size) {
  CHECK_GE(numel, 0);
  CHECK_GE(dp_size, 1);
  Zero1Partition partition;
  partition.numel = numel;
  partition.padded_numel = (numel + dp_size - 1) / dp_size * dp_size;
  partition.shard_numel = partition.padded_numel / dp_size;
  return partition;
}

void zero1_reduce_scatter_gradients(ProcessGroup& dp, const Tensor& flat_grads,
                                    Tensor& grad_shard) {
  CHECK_EQ(flat_grads.numel(), grad_shard.numel() * dp.size())
      << "the flat gradient buffer must be padded to DP x shard";
  dp.reduce_scatter(flat_grads, grad_shard, ReduceOp::kSum);
}

void zero1_all_gather_parameters(ProcessGroup& dp, const Tensor& param_shard, Tensor& flat_params) {
  CHECK_EQ(flat_params.numel(), param_shard.numel() * dp.size())
      << "the flat parameter buffer must be padded to DP x shard";
  dp.all_gather(param_shard, flat_params);
}

}  // namespace steerlm
