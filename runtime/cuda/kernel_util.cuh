// Device helpers shared by the CUDA layer kernels (runtime/cuda/*.cu): launch geometry, bf16 and
// f32 loads and stores that compute in f32, and deterministic block-wide reductions.
//
// Storage convention (DESIGN §5): bf16 tensors are uint16_t on the device, converted with the
// host's own rounding (runtime/bf16.h), so a value rounds to the same bits on both backends.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "runtime/bf16.h"
#include "runtime/check.h"

namespace steerlm::cuda::detail {

constexpr int kThreads = 256;        // threads per block for elementwise and row kernels
constexpr int64_t kMaxGrid = 65535;  // blocks per launch; loops stride over the rest

// Blocks for one element per thread, capped; kernels use grid-stride loops.
inline int grid_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 1 ? 1 : (blocks > kMaxGrid ? kMaxGrid : blocks));
}

// Blocks for one block per row, capped; kernels loop over rows with a stride of gridDim.x.
inline int grid_for_rows(int64_t rows) {
  return static_cast<int>(rows < 1 ? 1 : (rows > kMaxGrid ? kMaxGrid : rows));
}

__device__ inline int64_t global_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline int64_t global_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// Loads as f32 and stores from f32; a bf16 store rounds to nearest even like the host.
__device__ inline float load(const float* x, int64_t i) {
  return x[i];
}
__device__ inline float load(const uint16_t* x, int64_t i) {
  return bf16_to_float(x[i]);
}
__device__ inline void store(float* x, int64_t i, float value) {
  x[i] = value;
}
__device__ inline void store(uint16_t* x, int64_t i, float value) {
  x[i] = float_to_bf16(value);
}

struct SumOp {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};
struct MaxOp {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return a > b ? a : b;
  }
};

// Reduces one value per thread over the block (blockDim.x a multiple of 32, at most 1024) and
// returns the result to every thread. The combination order depends only on blockDim.x, so
// results are the same run to run. Callable repeatedly in one kernel.
template <typename T, typename Op>
__device__ T block_reduce(T value, Op op, T identity) {
  __shared__ T warp_results[32];
  __shared__ T result;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int offset = 16; offset > 0; offset /= 2) {
    value = op(value, __shfl_xor_sync(0xffffffffu, value, offset));
  }
  __syncthreads();  // an earlier call's readers are done with warp_results and result
  if (lane == 0) warp_results[warp] = value;
  __syncthreads();
  if (warp == 0) {
    value = lane < static_cast<int>(blockDim.x / 32) ? warp_results[lane] : identity;
    for (int offset = 16; offset > 0; offset /= 2) {
      value = op(value, __shfl_xor_sync(0xffffffffu, value, offset));
    }
    if (lane == 0) result = value;
  }
  __syncthreads();
  return result;
}

// Sums `count` doubles (device) into *total (device) in one block, in an order fixed by count
// alone: loss sums that do not depend on the run. Defined in kernel_util.cu.
void launch_sum_doubles(const double* values, int64_t count, double* total, cudaStream_t stream);

// Rounds a byte count up to 256 so that consecutive workspace pieces keep cuBLASLt's and
// vectorised loads' alignment.
inline size_t align_bytes(size_t bytes) {
  return (bytes + 255) / 256 * 256;
}

}  // namespace steerlm::cuda::detail
