// Flat buffers: many tensors packed end to end in one 1-D tensor, so that one collective moves
// them all (DP gradient buckets, ZeRO-1). Tensors keep their order; each occupies
// [offset, offset + numel) of the flat buffer, with offsets being the running sum of numel.
#pragma once

#include <vector>

#include "runtime/tensor.h"

namespace steerlm {

// Sum of numel over `tensors`.
int64_t total_numel(const std::vector<Tensor>& tensors);

// Copies every tensor into `flat` (total_numel, same dtype), starting at element `offset`.
void pack_tensors(const std::vector<Tensor>& tensors, Tensor& flat, int64_t offset = 0);
// Copies `flat` from element `offset` back into every tensor (the inverse of pack_tensors).
void unpack_tensors(const Tensor& flat, std::vector<Tensor>& tensors, int64_t offset = 0);

}  // namespace steerlm
