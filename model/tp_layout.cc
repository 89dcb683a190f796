#include "model/tp_layout.h"

#include <glog/logging.h>

#include <algorithm>

namespace steerlm {

int64_t tp_local_extent(int64_t global, int tp_size) {
  return (global + tp_size - 1) / tp_size;
}

int64_t tp_valid_extent(int64_t global, int tp_rank, int tp_size) {
  const int64_t local = tp_local_extent(global, tp_size);
  return std::clamp<int64_t>(global - tp_rank * local, 0, local);
}

std::vector<int64_t> tp_local_shape(const TpPlacement& placement, int tp_rank, int tp_size) {
  std::vector<int64_t> shape = placement.global_shape;
  if (placement.split == TpSplit::kRows) shape[0] = tp_local_extent(shape[0], tp_size);
  if (placement.split == TpSplit::kColumns) shape[1] = tp_local_extent(shape[1], tp_size);
  return shape;
}

int64_t tp_global_index(const TpPlacement& placement, int tp_rank, int tp_size,
                        int64_t local_index) {
  if (placement.split == TpSplit::kReplicated) return local_index;
  const int64_t rows = placement.global_shape[0], cols = placement.global_shape[1];
  if (placement.split == TpSplit::kRows) {
    // Rank r's rows start at r * local rows; the flat index follows.
    const int64_t local_rows = tp_local_extent(rows, tp_size);
    const int64_t row = tp_rank * local_rows + local_index / cols;
    return row < rows ? row * cols + local_index % cols : -1;
  }
  const int64_t local_cols = tp_local_extent(cols, tp_size);
  const int64_t col = tp_rank * local_cols + local_index % local_cols;
  return col < cols ? (local_index / local_cols) * cols + col : -1;
}

Tensor tp_slice(const Tensor& full, const TpPlacement& placement, int tp_rank, int tp_size) {
  CHECK(full.shape() == Shape(placement.global_shape)) << full.shape().str();
  Tensor local = Tensor::zeros(Shape(tp_local_shape(placement, tp_rank, tp_size)), DType::kF32);
  const float* source = full.f32();
  float* target = local.f32();
  for (int64_t i = 0; i < local.numel(); ++i) {
    const int64_t global = tp_global_index(placement, tp_rank, tp_size, i);
    if (global >= 0) target[i] = source[global];
  }
  return local;
}

Tensor tp_valid_part(const Tensor& local, const TpPlacement& placement, int tp_rank, int tp_size) {
  if (placement.split != TpSplit::kRows) return local;
  const int64_t valid = tp_valid_extent(placement.global_shape[0], tp_rank, tp_size);
  return valid == local.dim(0) ? local : local.slice(0, valid).clone();
}

Tensor tp_join(const std::vector<Tensor>& valid_parts, const TpPlacement& placement) {
  const int tp_size = static_cast<int>(valid_parts.size());
  if (placement.split == TpSplit::kReplicated) return valid_parts.at(0);
  Tensor full = Tensor::zeros(Shape(placement.global_shape), DType::kF32);
  for (int rank = 0; rank < tp_size; ++rank) {
    const Tensor& part = valid_parts[rank];
    for (int64_t i = 0; i < part.numel(); ++i) {
      // A valid part is the local slice without trailing padding rows, so indices agree.
      const int64_t global = tp_global_index(placement, rank, tp_size, i);
      CHECK_GE(global, 0) << "a valid part holds padding";
      full.f32()[global] = part.f32()[i];
    }
  }
  return full;
}

}  // namespace steerlm
