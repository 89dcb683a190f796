#include "parallel/grad_buckets.h"

#include <glog/logging.h>

#include "parallel/flat_buffer.h"

namespace steerlm {

GradientBuckets::GradientBuckets(std::vector<Tensor> grads, double bucket_mb)
    : grads_(std::move(grads)), bucket_of_(grads_.size()), marked_(grads_.size(), false) {
  CHECK_GT(bucket_mb, 0) << "parallel.bucket_mb must be positive";
  const double bucket_bytes = bucket_mb * 1024.0 * 1024.0;

  // Fill buckets greedily in the given order; a bucket closes before it would overflow.
  size_t bucket_bytes_used = 0;
  for (size_t i = 0; i < grads_.size(); ++i) {
    const Tensor& grad = grads_[i];
    CHECK(grad.dtype() == grads_[0].dtype() && grad.device() == grads_[0].device())
        << "GradientBuckets needs gradients of one dtype and device; gradient " << i << " differs";
    const bool overflows = bucket_bytes_used + grad.nbytes() > bucket_bytes;
    if (buckets_.empty() || (overflows && bucket_bytes_used > 0)) {
      buckets_.emplace_back();
      bucket_bytes_used = 0;
    }
    Bucket& bucket = buckets_.back();
    bucket.members.push_back(i);
    bucket.numel += grad.numel();
    bucket_bytes_used += grad.nbytes();
    bucket_of_[i] = buckets_.size() - 1;
  }

  // The flat buffers are allocated once and reused every step.
  for (Bucket& bucket : buckets_) {
    bucket.flat = Tensor::empty(Shape{bucket.numel}, grads_[0].dtype(), grads_[0].device());
  }
}

void GradientBuckets::all_reduce(ProcessGroup& dp) {
  for (size_t i = 0; i < grads_.size(); ++i) mark_ready(dp, i);
  finish(dp);
}

void GradientBuckets::mark_ready(ProcessGroup& dp, size_t index) {
  CHECK_LT(index, grads_.size());
  CHECK(!marked_[index]) << "gradient " << index << " marked ready twice in one step";
  marked_[index] = true;
  Bucket& bucket = buckets_[bucket_of_[index]];
  if (++bucket.ready == bucket.members.size()) start(dp, bucket);

  // Polling the buckets in flight is what moves MPI's non-blocking collectives forward.
  for (Bucket& other : buckets_) {
    if (other.started) other.request.test();
  }
}

void GradientBuckets::start(ProcessGroup& dp, Bucket& bucket) {
  bucket.started = true;
  if (dp.size() == 1) return;  // one replica: its gradients are already the sum
  std::vector<Tensor> members;
  for (size_t i : bucket.members) members.push_back(grads_[i]);
  pack_tensors(members, bucket.flat);
  bucket.request = dp.all_reduce_async(bucket.flat, ReduceOp::kSum);
}

void GradientBuckets::finish(ProcessGroup& dp) {
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& bucket = buckets_[b];
    CHECK(bucket.started) << "finish() before every gradient was marked ready: bucket " << b
                          << " has " << bucket.ready << " of " << bucket.members.size();
    bucket.request.wait();
    if (dp.size() > 1) {
      std::vector<Tensor> members;
      for (size_t i : bucket.members) members.push_back(grads_[i]);
      unpack_tensors(bucket.flat, members);
    }
    bucket.ready = 0;
    bucket.started = false;
  }
  marked_.assign(grads_.size(), false);
}

}  // namespace steerlm
