#include "parallel/tp_mappings.h"

#include <glog/logging.h>

#include <cstring>

#include "runtime/check.h"
#include "runtime/cuda/stream.h"

namespace steerlm {
namespace {

// `input`'s shape with the last dim replaced.
Shape with_last_dim(const Shape& shape, int64_t last) {
  std::vector<int64_t> dims = shape.to_vector();
  dims.back() = last;
  return Shape(dims);
}

// Copies `rows` rows of `row_bytes` bytes between row-major buffers whose rows start
// `source_pitch` / `destination_pitch` bytes apart, on one device.
void copy_rows_strided(void* destination, size_t destination_pitch, const void* source,
                       size_t source_pitch, size_t row_bytes, int64_t rows, Device device) {
  if (device.is_cpu()) {
    auto* out = static_cast<char*>(destination);
    const auto* in = static_cast<const char*>(source);
    for (int64_t row = 0; row < rows; ++row) {
      std::memcpy(out + row * destination_pitch, in + row * source_pitch, row_bytes);
    }
    return;
  }
#ifdef STEERLM_HAVE_CUDA
  CUDA_CHECK(cudaSetDevice(device.index));
  // Queued on the current stream, in order with the model's kernels and NCCL.
  CUDA_CHECK(cudaMemcpy2DAsync(destination, destination_pitch, source, source_pitch, row_bytes,
                               rows, cudaMemcpyDeviceToDevice, current_cuda_stream(device)));
#else
  LOG(FATAL) << "strided copies on " << device.str() << " need the CUDA backend";
#endif
}

}  // namespace

Tensor split_last_dim(const Tensor& input, int parts, int index) {
  const int64_t full = input.dim(input.ndim() - 1);
  CHECK_EQ(full % parts, 0) << "last dim " << full << " does not split into " << parts
                            << " equal parts";
  if (parts == 1) return input;
  const int64_t part = full / parts, rows = input.numel() / full;
  const size_t element = dtype_size(input.dtype());
  Tensor output = Tensor::empty(with_last_dim(input.shape(), part), input.dtype(),
                                input.device());  // (..., D/parts)
  copy_rows_strided(output.raw(), part * element,
                    static_cast<const char*>(input.raw()) + index * part * element, full * element,
                    part * element, rows, input.device());
  return output;
}

Tensor all_gather_last_dim(ProcessGroup& group, const Tensor& input) {
  if (group.size() == 1) return input;
  const int size = group.size();
  const int64_t part = input.dim(input.ndim() - 1), rows = input.numel() / part;
  const size_t element = dtype_size(input.dtype());

  // All-gather stacks the ranks' blocks one after another: (size, ..., d).
  Tensor stacked = Tensor::empty(Shape{size * input.numel()}, input.dtype(),
                                 input.device());  // (size * numel), input's device
  group.all_gather(input, stacked);

  // Interleave them into columns: rank r's block becomes columns [r*d, (r+1)*d).
  Tensor output = Tensor::empty(with_last_dim(input.shape(), part * size), input.dtype(),
                                input.device());  // (..., d*size)
  for (int r = 0; r < size; ++r) {
    copy_rows_strided(static_cast<char*>(output.raw()) + r * part * element, size * part * element,
                      static_cast<const char*>(stacked.raw()) + r * input.nbytes(), part * element,
                      part * element, rows, input.device());
  }
  return output;
}

Tensor copy_to_tp_region(ProcessGroup& tp, const Tensor& input) {
  return input;
}

Tensor copy_to_tp_region_backward(ProcessGroup& tp, Tensor grad_output) {
  tp.all_reduce(grad_output, ReduceOp::kSum);
  return grad_output;
}

Tensor reduce_from_tp_region(ProcessGroup& tp, Tensor input) {
  tp.all_reduce(input, ReduceOp::kSum);
  return input;
}

Tensor reduce_from_tp_region_backward(ProcessGroup& tp, const Tensor& grad_output) {
  return grad_output;
}

Tensor gather_from_tp_region(ProcessGroup& tp, const Tensor& input) {
  return all_gather_last_dim(tp, input);
}

Tensor gather_from_tp_region_backward(ProcessGroup& tp, const Tensor& grad_output) {
  return split_last_dim(grad_output, tp.size(), tp.rank());
}

Tensor scatter_to_tp_region(ProcessGroup& tp, const Tensor& input) {
  return split_last_dim(input, tp.size(), tp.rank());
}

Tensor scatter_to_tp_region_backward(ProcessGroup& tp, const Tensor& grad_output) {
  return all_gather_last_dim(tp, grad_output);
}

}  // namespace steerlm
