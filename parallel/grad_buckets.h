// Data-parallel gradient synchronisation: the gradients are summed over the dp group in
// buckets of about ParallelConfig.bucket_mb MiB (DESIGN §5, DP).
//
// Bucketing turns hundreds of small all-reduces into a few large ones, and lets a bucket start
// as soon as its last gradient is final, while backward is still computing earlier layers:
//
//   GradientBuckets buckets(grads_in_backward_order, config.parallel().bucket_mb());
//   ... backward: after layer l's gradients are final, for each of its gradients i:
//       buckets.mark_ready(grid.dp(), i);        // starts a bucket once all of it is ready
//   buckets.finish(grid.dp());                   // every gradient now holds the DP sum
//   // or, without overlap:  buckets.all_reduce(grid.dp());
//
// The result is the sum over replicas, not the mean: steerlm's loss is already divided by the
// global token count (DESIGN §5), so summing gives exactly the single-rank gradient.
// On the CPU, MPI makes progress on a started bucket only when polled; mark_ready polls the
// buckets in flight, so later buckets overlap with compute as far as the backend allows.
#pragma once

#include <vector>

#include "parallel/process_group.h"

namespace steerlm {

class GradientBuckets {
 public:
  // Gradients of one dtype and device, in the order they become final (the reverse of the
  // forward order). Each bucket holds consecutive gradients up to bucket_mb MiB; a gradient
  // larger than that gets a bucket of its own. The tensors are views: their storage is updated.
  GradientBuckets(std::vector<Tensor> grads, double bucket_mb);

  size_t bucket_count() const { return buckets_.size(); }
  // The gradients (indices into the constructor's list) of bucket `b`, in order.
  const std::vector<size_t>& bucket_members(size_t b) const { return buckets_[b].members; }

  // Sums every gradient over `dp`, bucket by bucket; returns when all are done.
  void all_reduce(ProcessGroup& dp);

  // Marks gradient `index` as final for this step; a bucket whose gradients are all final is
  // packed and its all-reduce started. Each gradient is marked once per step.
  void mark_ready(ProcessGroup& dp, size_t index);
  // Waits for every bucket (all must have been started), copies the sums back into the
  // gradients and resets the marks for the next step.
  void finish(ProcessGroup& dp);

 private:
  struct Bucket {
    std::vector<size_t> members;
    int64_t numel = 0;
    Tensor flat;  // (numel), grads' device; packed gradients while the all-reduce runs
    CommRequest request;
    size_t ready = 0;
    bool started = false;
  };

  void start(ProcessGroup& dp, Bucket& bucket);

  std::vector<Tensor> grads_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;  // gradient index -> bucket
  std::vector<bool> marked_;       // gradient index -> marked this step
};

}  // namespace steerlm
