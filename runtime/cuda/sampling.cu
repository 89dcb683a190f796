// Device argmax and the host copy for sampling; model/sampling.cc is the reference.
#include <cmath>
#include <vector>

#include "runtime/cuda/kernel_util.cuh"
#include "runtime/cuda/sampling.h"

namespace steerlm::cuda {
namespace {

// (value, id) pairs: the larger value wins; equal values go to the lower id.
__device__ inline void better_of(float& value, int64_t& id, float other_value, int64_t other_id) {
  if (other_value > value || (other_value == value && other_id < id) ||
      (isnan(value) && !isnan(other_value))) {
    value = other_value;
    id = other_id;
  }
}

// One block per row (strided): each thread scans its columns, then a tree over the threads.
template <typename T>
__global__ void argmax_kernel(const T* logits, int64_t rows, int64_t vocab, int32_t* tokens) {
  __shared__ float values[detail::kThreads];
  __shared__ int64_t ids[detail::kThreads];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* x = logits + row * vocab;  // (V)
    float best = -INFINITY;
    int64_t best_id = vocab;  // beyond every column: any real column beats it on a tie
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
      better_of(best, best_id, detail::load(x, j), j);
    }
    values[threadIdx.x] = best;
    ids[threadIdx.x] = best_id;
    __syncthreads();
    for (unsigned width = blockDim.x / 2; width > 0; width /= 2) {
      if (threadIdx.x < width) {
        better_of(values[threadIdx.x], ids[threadIdx.x], values[threadIdx.x + width],
                  ids[threadIdx.x + width]);
      }
      __syncthreads();
    }
    // A row of NaN only (or of -inf only) still names a real column, as the host's 0 would be.
    if (threadIdx.x == 0) tokens[row] = static_cast<int32_t>(ids[0] < vocab ? ids[0] : 0);
    __syncthreads();  // the next row reuses the shared arrays
  }
}

template <typename T>
void argmax_typed(const T* logits, int64_t rows, int64_t vocab, int32_t* tokens,
                  cudaStream_t stream) {
  if (rows == 0) return;
  argmax_kernel<<<detail::grid_for_rows(rows), detail::kThreads, 0, stream>>>(logits, rows, vocab,
                                                                              tokens);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_argmax(const float* logits, int64_t rows, int64_t vocab, int32_t* tokens,
                   cudaStream_t stream) {
  argmax_typed(logits, rows, vocab, tokens, stream);
}

void launch_argmax(const uint16_t* logits, int64_t rows, int64_t vocab, int32_t* tokens,
                   cudaStream_t stream) {
  argmax_typed(logits, rows, vocab, tokens, stream);
}

void copy_logits_to_host(const float* logits, int64_t rows, int64_t vocab, float* host,
                         cudaStream_t stream) {
  CUDA_CHECK(cudaMemcpyAsync(host, logits, static_cast<size_t>(rows * vocab) * sizeof(float),
                             cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void copy_logits_to_host(const uint16_t* logits, int64_t rows, int64_t vocab, float* host,
                         cudaStream_t stream) {
  std::vector<uint16_t> narrow(static_cast<size_t>(rows * vocab));  // (N, V) bf16, host
  CUDA_CHECK(cudaMemcpyAsync(narrow.data(), logits, narrow.size() * sizeof(uint16_t),
                             cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  for (size_t i = 0; i < narrow.size(); ++i) host[i] = bf16_to_float(narrow[i]);
}

}  // namespace steerlm::cuda
