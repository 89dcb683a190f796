#include "model/zero1_optimizer.h"

#include <glog/logging.h>

#include <algorithm>

#include "parallel/flat_buffer.h"
#include "runtime/kernels/adamw.h"  // sum_of_squares

namespace steerlm {

Zero1AdamW::Zero1AdamW(const config::OptimConfig& optim, ParameterSet& parameters, ProcessGroup& dp)
    : parameters_(parameters), dp_(dp) {
  for (Parameter& parameter : parameters_) {
    grads_.push_back(parameter.grad);
    values_.push_back(parameter.value);
  }
  partition_ = zero1_partition(total_numel(values_), dp_.size());

  // The parameters (or parts of them) that fall in this rank's slice [begin, end).
  const int64_t begin = partition_.shard_begin(dp_.rank());
  const int64_t end = begin + partition_.shard_real_numel(dp_.rank());
  int64_t offset = 0;
  for (Parameter& parameter : parameters_) {
    const int64_t numel = parameter.value.numel();
    const int64_t first = std::max(begin, offset), last = std::min(end, offset + numel);
    if (first < last)
      segments_.push_back({&parameter, first - offset, first - begin, last - first});
    offset += numel;
  }

  flat_ = Tensor::zeros(Shape{partition_.padded_numel}, DType::kF32);
  grad_shard_ = Tensor::zeros(Shape{partition_.shard_numel}, DType::kF32);
  value_shard_ = Tensor::zeros(Shape{partition_.shard_numel}, DType::kF32);

  // Each segment becomes a parameter of the slice that views its part of the slice buffers.
  for (const Segment& segment : segments_) {
    Parameter& piece =
        slice_.add(segment.parameter->name, Shape{segment.numel}, segment.parameter->weight_decay);
    const int64_t from = segment.shard_offset, to = from + segment.numel;
    piece.value = value_shard_.slice(from, to);  // (numel) f32, cpu
    piece.grad = grad_shard_.slice(from, to);    // (numel) f32, cpu
    piece.tp_duplicate = segment.parameter->tp_duplicate;
  }
  adam_ = std::make_unique<AdamW>(optim, slice_);
}

void Zero1AdamW::reduce_scatter_gradients() {
  // The padding stays zero: pack_tensors writes only the first numel elements.
  pack_tensors(grads_, flat_);
  zero1_reduce_scatter_gradients(dp_, flat_, grad_shard_);
}

void Zero1AdamW::scale_gradients(float factor) {
  float* grads = grad_shard_.f32();
  for (int64_t i = 0; i < grad_shard_.numel(); ++i) grads[i] *= factor;
}

double Zero1AdamW::shard_grad_norm_sq() const {
  // Over the slice's pieces (the padding is zero and adds nothing), TP duplicates left out.
  return AdamW::grad_norm_sq(slice_);
}

void Zero1AdamW::step(float lr, double grad_norm) {
  // The slice's current weights (the same on every replica), updated in place by AdamW.
  for (const Segment& segment : segments_) {
    std::copy_n(segment.parameter->value.f32() + segment.parameter_offset, segment.numel,
                value_shard_.f32() + segment.shard_offset);
  }
  adam_->step(slice_, lr, grad_norm);

  // Every replica gets every slice's new weights.
  zero1_all_gather_parameters(dp_, value_shard_, flat_);
  unpack_tensors(flat_, values_);
}

std::vector<MomentPiece> Zero1AdamW::moment_pieces() {
  std::vector<MomentPiece> pieces;
  for (const Segment& segment : segments_) {
    const std::string& name = segment.parameter->name;
    pieces.push_back(
        {name, segment.parameter_offset, adam_->exp_avg(name), adam_->exp_avg_sq(name)});
  }
  return pieces;
}

}  // namespace steerlm
