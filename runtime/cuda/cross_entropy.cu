// CUDA cross-entropy kernels; runtime/kernels/cross_entropy.cc and model/llama_tp.cc's
// vocab-parallel loss are the reference. One block per row (strided), threads over columns.
#include <cmath>

#include "runtime/cuda/cross_entropy.h"
#include "runtime/cuda/kernel_util.cuh"

namespace steerlm::cuda {
namespace {

using detail::block_reduce;
using detail::kThreads;
using detail::load;
using detail::store;

__device__ inline int64_t local_target(const int32_t* targets, int64_t row,
                                       const CrossEntropyShape& shape) {
  const int64_t column = static_cast<int64_t>(targets[row]) - shape.vocab_begin;
  return column >= 0 && column < shape.width ? column : -1;
}

template <typename T>
__global__ void row_max_kernel(const T* logits, CrossEntropyShape shape, float* row_max) {
  for (int64_t row = blockIdx.x; row < shape.rows; row += gridDim.x) {
    const T* x = logits + row * shape.width;  // (width)
    float best = -INFINITY;
    for (int64_t j = threadIdx.x; j < shape.width; j += blockDim.x) best = fmaxf(best, load(x, j));
    best = block_reduce(best, detail::MaxOp{}, -INFINITY);
    if (threadIdx.x == 0) row_max[row] = best;
  }
}

template <typename T>
__global__ void sums_kernel(const T* logits, const int32_t* targets, CrossEntropyShape shape,
                            const float* row_max, float* sums) {
  for (int64_t row = blockIdx.x; row < shape.rows; row += gridDim.x) {
    const T* x = logits + row * shape.width;  // (width)
    const float max_logit = row_max[row];
    float total = 0.0f;
    for (int64_t j = threadIdx.x; j < shape.width; j += blockDim.x) {
      total += expf(load(x, j) - max_logit);
    }
    total = block_reduce(total, detail::SumOp{}, 0.0f);
    if (threadIdx.x == 0) {
      const int64_t target = local_target(targets, row, shape);
      sums[row] = total;
      sums[shape.rows + row] = target >= 0 ? load(x, target) : 0.0f;
    }
  }
}

template <typename T>
__global__ void softmax_loss_kernel(T* logits, const float* mask, CrossEntropyShape shape,
                                    const float* row_max, const float* sums,
                                    UntrainedRows untrained, double* row_losses) {
  for (int64_t row = blockIdx.x; row < shape.rows; row += gridDim.x) {
    const bool trained = mask[row] != 0.0f;
    if (threadIdx.x == 0) {
      row_losses[row] =
          trained ? static_cast<double>(mask[row]) *
                        (log(static_cast<double>(sums[row])) + static_cast<double>(row_max[row]) -
                         static_cast<double>(sums[shape.rows + row]))
                  : 0.0;
    }
    if (!trained && untrained == UntrainedRows::kLeave) continue;
    T* x = logits + row * shape.width;  // (width)
    const float max_logit = row_max[row];
    const float inv_total = 1.0f / sums[row];
    for (int64_t j = threadIdx.x; j < shape.width; j += blockDim.x) {
      store(x, j, expf(load(x, j) - max_logit) * inv_total);
    }
  }
}

template <typename T>
__global__ void backward_kernel(T* probs, const int32_t* targets, const float* mask,
                                CrossEntropyShape shape, float scale) {
  for (int64_t row = blockIdx.x; row < shape.rows; row += gridDim.x) {
    T* p = probs + row * shape.width;  // (width)
    const float weight = scale * mask[row];
    const int64_t target = local_target(targets, row, shape);
    for (int64_t j = threadIdx.x; j < shape.width; j += blockDim.x) {
      // A zero mask writes zero outright, so a row of untrained logits cannot leak NaN or inf.
      const float value =
          weight == 0.0f ? 0.0f : load(p, j) * weight - (j == target ? weight : 0.0f);
      store(p, j, value);
    }
  }
}

template <typename T>
void row_max_typed(const T* logits, const CrossEntropyShape& shape, float* row_max,
                   cudaStream_t stream) {
  if (shape.rows == 0) return;
  row_max_kernel<<<detail::grid_for_rows(shape.rows), kThreads, 0, stream>>>(logits, shape,
                                                                             row_max);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void sums_typed(const T* logits, const int32_t* targets, const CrossEntropyShape& shape,
                const float* row_max, float* sums, cudaStream_t stream) {
  if (shape.rows == 0) return;
  sums_kernel<<<detail::grid_for_rows(shape.rows), kThreads, 0, stream>>>(logits, targets, shape,
                                                                          row_max, sums);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void softmax_loss_typed(T* logits, const float* mask, const CrossEntropyShape& shape,
                        const float* row_max, const float* sums, UntrainedRows untrained,
                        void* workspace, double* loss, cudaStream_t stream) {
  auto* row_losses = static_cast<double*>(workspace);  // (N), device
  if (shape.rows > 0) {
    softmax_loss_kernel<<<detail::grid_for_rows(shape.rows), kThreads, 0, stream>>>(
        logits, mask, shape, row_max, sums, untrained, row_losses);
    CUDA_CHECK_LAUNCH();
  }
  detail::launch_sum_doubles(row_losses, shape.rows, loss, stream);
}

template <typename T>
void forward_typed(T* logits, const int32_t* targets, const float* mask, int64_t rows,
                   int64_t vocab, void* workspace, double* loss, cudaStream_t stream) {
  // Workspace: row losses (N f64), row maxima (N f32), sums (2N f32).
  const CrossEntropyShape shape{rows, vocab, 0};
  char* base = static_cast<char*>(workspace);
  const size_t loss_bytes = cross_entropy_softmax_loss_workspace_bytes(rows);
  auto* row_max = reinterpret_cast<float*>(base + loss_bytes);
  auto* sums = row_max + rows;
  row_max_typed(logits, shape, row_max, stream);
  sums_typed(logits, targets, shape, row_max, sums, stream);
  softmax_loss_typed(logits, mask, shape, row_max, sums, UntrainedRows::kLeave, base, loss, stream);
}

template <typename T>
void backward_typed(T* probs, const int32_t* targets, const float* mask,
                    const CrossEntropyShape& shape, float scale, cudaStream_t stream) {
  if (shape.rows == 0) return;
  backward_kernel<<<detail::grid_for_rows(shape.rows), kThreads, 0, stream>>>(probs, targets, mask,
                                                                              shape, scale);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

size_t cross_entropy_softmax_loss_workspace_bytes(int64_t rows) {
  return detail::align_bytes(static_cast<size_t>(rows) * sizeof(double));
}

size_t cross_entropy_forward_workspace_bytes(int64_t rows) {
  return cross_entropy_softmax_loss_workspace_bytes(rows) +
         detail::align_bytes(static_cast<size_t>(3 * rows) * sizeof(float));
}

#define STEERLM_CROSS_ENTROPY_OVERLOADS(T)                                                      \
  void launch_cross_entropy_row_max(const T* logits, const CrossEntropyShape& shape,            \
                                    float* row_max, cudaStream_t stream) {                      \
    row_max_typed(logits, shape, row_max, stream);                                              \
  }                                                                                             \
  void launch_cross_entropy_sums(const T* logits, const int32_t* targets,                       \
                                 const CrossEntropyShape& shape, const float* row_max,          \
                                 float* sums, cudaStream_t stream) {                            \
    sums_typed(logits, targets, shape, row_max, sums, stream);                                  \
  }                                                                                             \
  void launch_cross_entropy_softmax_loss(T* logits, const float* mask,                          \
                                         const CrossEntropyShape& shape, const float* row_max,  \
                                         const float* sums, UntrainedRows untrained,            \
                                         void* workspace, double* loss, cudaStream_t stream) {  \
    softmax_loss_typed(logits, mask, shape, row_max, sums, untrained, workspace, loss, stream); \
  }                                                                                             \
  void launch_cross_entropy_forward(T* logits, const int32_t* targets, const float* mask,       \
                                    int64_t rows, int64_t vocab, void* workspace, double* loss, \
                                    cudaStream_t stream) {                                      \
    forward_typed(logits, targets, mask, rows, vocab, workspace, loss, stream);                 \
  }                                                                                             \
  void launch_cross_entropy_backward(T* probs, const int32_t* targets, const float* mask,       \
                                     const CrossEntropyShape& shape, float scale,               \
                                     cudaStream_t stream) {                                     \
    backward_typed(probs, targets, mask, shape, scale, stream);                                 \
  }
STEERLM_CROSS_ENTROPY_OVERLOADS(float)
STEERLM_CROSS_ENTROPY_OVERLOADS(uint16_t)
#undef STEERLM_CROSS_ENTROPY_OVERLOADS

}  // namespace steerlm::cuda
