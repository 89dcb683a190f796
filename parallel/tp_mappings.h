// Communication for Megatron-style tensor parallelism (DESIGN §5), one forward/backward pair
// per wrapper. The model calls the forward where its maths needs it and the matching backward
// at the mirror point of its backward pass:
//
//   column-parallel linear  Y_i = X A_i      (A split by output columns, one block per TP rank)
//     X = copy_to_tp_region(tp, X)            so that dX = sum_i dY_i A_i^T in backward
//   row-parallel linear     Y = sum_i X_i B_i (B split by input rows)
//     Y = reduce_from_tp_region(tp, Y_i)      the partial products are summed in forward
//
// All wrappers work on host (MPI) and CUDA (NCCL) tensors. "In place" means the result shares
// the argument's storage. "Last dim" is the contiguous one (runtime/tensor.h); D is its full size.
#pragma once

#include "parallel/process_group.h"

namespace steerlm {

// copy_to_tp_region      fwd: identity,                     bwd: all-reduce (sum) over TP
Tensor copy_to_tp_region(ProcessGroup& tp, const Tensor& input);
Tensor copy_to_tp_region_backward(ProcessGroup& tp, Tensor grad_output);  // in place

// reduce_from_tp_region  fwd: all-reduce (sum) over TP,     bwd: identity
Tensor reduce_from_tp_region(ProcessGroup& tp, Tensor input);  // in place
Tensor reduce_from_tp_region_backward(ProcessGroup& tp, const Tensor& grad_output);

// gather_from_tp_region  fwd: all-gather on the last dim,   bwd: split the last dim
//   forward (..., D/TP) -> (..., D), rank r's slice at columns [r*D/TP, (r+1)*D/TP)
Tensor gather_from_tp_region(ProcessGroup& tp, const Tensor& input);
Tensor gather_from_tp_region_backward(ProcessGroup& tp, const Tensor& grad_output);

// scatter_to_tp_region   fwd: split the last dim,           bwd: all-gather on the last dim
//   forward (..., D) -> (..., D/TP), keeping this rank's columns
Tensor scatter_to_tp_region(ProcessGroup& tp, const Tensor& input);
Tensor scatter_to_tp_region_backward(ProcessGroup& tp, const Tensor& grad_output);

// The building blocks: this rank's slice of the last dim, and the all-gather along it.
Tensor split_last_dim(const Tensor& input, int parts, int index);      // (..., D) -> (..., D/parts)
Tensor all_gather_last_dim(ProcessGroup& group, const Tensor& input);  // (..., d) -> (..., d*size)

}  // namespace steerlm
