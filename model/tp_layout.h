// How each parameter is split over tensor-parallel ranks (Megatron style, DESIGN §5), and the
// slicing that initialisation, checkpoints and tests share.
//
//   parameter (HF layout, (out, in))        split        rank r of TP holds
//   q_proj, k_proj, v_proj (heads*HS, C)    rows         its heads' rows (column-parallel)
//   gate_proj, up_proj (F, C)               rows         rows [r*F/TP, (r+1)*F/TP)
//   o_proj (C, NH*HS), down_proj (C, F)     columns      the matching input columns (row-parallel)
//   embed_tokens, lm_head (V, C)            rows         vocab rows [r*Vl, (r+1)*Vl), Vl=ceil(V/TP)
//   norms, attribute_head                   replicated   everything
//   k_proj, v_proj when TP ∤ KVH            replicated   everything (gradients summed over TP)
//
// Worked example, V = 10, TP = 4: Vl = 3; ranks hold vocab rows [0,3), [3,6), [6,9), [9,10) and
// rank 3 pads its table with two zero rows that no token reads and no logit comes from. Padding
// is internal: checkpoints store only the valid rows (valid_rows()).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace steerlm {

enum class TpSplit { kReplicated, kRows, kColumns };

// One parameter's place in the TP layout.
struct TpPlacement {
  TpSplit split = TpSplit::kReplicated;
  std::vector<int64_t> global_shape;  // the single-rank shape (2-D for split parameters)
};

// Rows (or columns) each rank holds, padding included: ceil(global / tp_size).
int64_t tp_local_extent(int64_t global, int tp_size);
// How many of rank `tp_rank`'s rows (or columns) are real, not padding.
int64_t tp_valid_extent(int64_t global, int tp_rank, int tp_size);

// The shape rank `tp_rank` holds, padding included.
std::vector<int64_t> tp_local_shape(const TpPlacement& placement, int tp_rank, int tp_size);

// Global flat index of local element `local_index` of rank `tp_rank`, or -1 for padding.
int64_t tp_global_index(const TpPlacement& placement, int tp_rank, int tp_size,
                        int64_t local_index);

// Rank `tp_rank`'s slice (tp_local_shape, padding zero) of the single-rank tensor `full`.
Tensor tp_slice(const Tensor& full, const TpPlacement& placement, int tp_rank, int tp_size);

// The valid part of a local slice (what a checkpoint stores): rows past tp_valid_extent dropped.
Tensor tp_valid_part(const Tensor& local, const TpPlacement& placement, int tp_rank, int tp_size);

// The single-rank tensor from every rank's valid part (tp_valid_part), in rank order.
Tensor tp_join(const std::vector<Tensor>& valid_parts, const TpPlacement& placement);

}  // namespace steerlm
