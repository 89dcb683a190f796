// Shared launch helpers of the CUDA layer kernels (see kernel_util.cuh).
#include "runtime/cuda/kernel_util.cuh"

namespace steerlm::cuda::detail {
namespace {

constexpr int kSumThreads = 1024;

// Thread i sums values i, i + 1024, ... in order; the block tree combines the 1024 partials.
__global__ void sum_doubles_kernel(const double* values, int64_t count, double* total) {
  double partial = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) partial += values[i];
  const double block_total = block_reduce(partial, SumOp{}, 0.0);
  if (threadIdx.x == 0) *total = block_total;
}

}  // namespace

void launch_sum_doubles(const double* values, int64_t count, double* total, cudaStream_t stream) {
  sum_doubles_kernel<<<1, kSumThreads, 0, stream>>>(values, count, total);
  CUDA_CHECK_LAUNCH();
}

}  // namespace steerlm::cuda::detail
