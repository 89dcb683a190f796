#include "parallel/flat_buffer.h"

#include <glog/logging.h>

namespace steerlm {
namespace {

// Elements [offset, offset + numel) of a 1-D `flat`, as a view.
Tensor flat_range(const Tensor& flat, int64_t offset, int64_t numel) {
  CHECK_EQ(flat.ndim(), 1) << "flat buffers are 1-D";
  CHECK_LE(offset + numel, flat.numel()) << "flat buffer too small";
  return flat.slice(offset, offset + numel);
}

}  // namespace

int64_t total_numel(const std::vector<Tensor>& tensors) {
  int64_t total = 0;
  for (const Tensor& tensor : tensors) total += tensor.numel();
  return total;
}

void pack_tensors(const std::vector<Tensor>& tensors, Tensor& flat, int64_t offset) {
  for (const Tensor& tensor : tensors) {
    CHECK(tensor.dtype() == flat.dtype()) << "pack_tensors: mixed dtypes";
    Tensor destination = flat_range(flat, offset, tensor.numel());
    destination.copy_from(tensor);
    offset += tensor.numel();
  }
}

void unpack_tensors(const Tensor& flat, std::vector<Tensor>& tensors, int64_t offset) {
  for (Tensor& tensor : tensors) {
    CHECK(tensor.dtype() == flat.dtype()) << "unpack_tensors: mixed dtypes";
    tensor.copy_from(flat_range(flat, offset, tensor.numel()));
    offset += tensor.numel();
  }
}

}  // namespace steerlm
