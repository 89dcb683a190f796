// CUDA elementwise and reduction kernels; the host versions in runtime/ops.cc are the reference.
#include <cmath>

#include "runtime/bf16.h"
#include "runtime/check.h"
#include "runtime/cuda/elementwise.h"

namespace steerlm::cuda {
namespace {

constexpr int kThreads = 256;
// Grid-stride loops cover any n with at most this many blocks.
constexpr int64_t kMaxBlocks = 65536;
// Reductions use at most this many blocks so that one block can combine the partials.
constexpr int64_t kMaxReduceBlocks = 1024;

int blocks_for(int64_t n) {
  int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

__device__ inline int64_t first_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

template <typename T>
__global__ void fill_kernel(T* out, T pattern, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) out[i] = pattern;
}

__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) out[i] = a[i] + b[i];
}

__global__ void add_scaled_kernel(const float* x, float alpha, float* y, int64_t n) {
  // Two roundings, never fused: the host's x86-64 build has no FMA, so results match it exactly.
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    y[i] = __fadd_rn(y[i], __fmul_rn(alpha, x[i]));
  }
}

__global__ void multiply_kernel(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) out[i] = a[i] * b[i];
}

__global__ void scale_kernel(const float* x, float alpha, float* out, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) out[i] = alpha * x[i];
}

__global__ void f32_to_bf16_kernel(const float* source, uint16_t* destination, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    destination[i] = float_to_bf16(source[i]);
  }
}

__global__ void bf16_to_f32_kernel(const uint16_t* source, float* destination, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    destination[i] = bf16_to_float(source[i]);
  }
}

// One grid-stride launch of an elementwise kernel whose last parameter is n.
template <typename... KernelArgs, typename... Args>
void launch_elementwise(void (*kernel)(KernelArgs...), int64_t n, cudaStream_t stream,
                        Args... args) {
  if (n == 0) return;
  kernel<<<blocks_for(n), kThreads, 0, stream>>>(args..., n);
  CUDA_CHECK_LAUNCH();
}

// ---- Reductions -------------------------------------------------------------------------------

__device__ inline float load_value(const float* x, int64_t i) {
  return x[i];
}
__device__ inline float load_value(const uint16_t* x, int64_t i) {
  return bf16_to_float(x[i]);
}

template <Reduction kReduction>
__device__ inline double element_term(float value) {
  if constexpr (kReduction == Reduction::kSum) return value;
  if constexpr (kReduction == Reduction::kSumSquares) return static_cast<double>(value) * value;
  return fabs(static_cast<double>(value));
}

// max-abs propagates NaN (fmax would drop it), so a NaN gradient cannot hide behind the norm.
template <Reduction kReduction>
__device__ inline double combine(double left, double right) {
  if constexpr (kReduction == Reduction::kMaxAbs) {
    if (isnan(left) || isnan(right)) return left + right;
    return fmax(left, right);
  }
  return left + right;
}

// Tree reduction of one value per thread in shared memory; the order is fixed by blockDim.
template <Reduction kReduction>
__device__ double block_reduce(double value, double* shared) {
  shared[threadIdx.x] = value;
  __syncthreads();
  for (unsigned int width = blockDim.x / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) {
      shared[threadIdx.x] = combine<kReduction>(shared[threadIdx.x], shared[threadIdx.x + width]);
    }
    __syncthreads();
  }
  return shared[0];
}

template <Reduction kReduction, typename T>
__global__ void reduce_partials_kernel(const T* x, int64_t n, double* partials) {
  __shared__ double shared[kThreads];
  double accumulator = 0.0;
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    accumulator = combine<kReduction>(accumulator, element_term<kReduction>(load_value(x, i)));
  }
  double block_total = block_reduce<kReduction>(accumulator, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = block_total;
}

template <Reduction kReduction>
__global__ void reduce_final_kernel(const double* partials, int64_t count, double* result) {
  __shared__ double shared[kMaxReduceBlocks];
  double value = threadIdx.x < count ? partials[threadIdx.x] : 0.0;
  double total = block_reduce<kReduction>(value, shared);
  if (threadIdx.x == 0) *result = total;
}

template <Reduction kReduction, typename T>
void reduce_typed(const T* x, int64_t n, double* partials, double* result, cudaStream_t stream) {
  const int64_t blocks = reduction_partials_count(n);
  reduce_partials_kernel<kReduction, T>
      <<<static_cast<int>(blocks), kThreads, 0, stream>>>(x, n, partials);
  CUDA_CHECK_LAUNCH();
  reduce_final_kernel<kReduction>
      <<<1, static_cast<int>(kMaxReduceBlocks), 0, stream>>>(partials, blocks, result);
  CUDA_CHECK_LAUNCH();
}

template <Reduction kReduction>
void reduce_any(const void* x, bool is_bf16, int64_t n, double* partials, double* result,
                cudaStream_t stream) {
  if (is_bf16) {
    reduce_typed<kReduction>(static_cast<const uint16_t*>(x), n, partials, result, stream);
  } else {
    reduce_typed<kReduction>(static_cast<const float*>(x), n, partials, result, stream);
  }
}

}  // namespace

void launch_fill_32bit(uint32_t* out, uint32_t pattern, int64_t n, cudaStream_t stream) {
  launch_elementwise(fill_kernel<uint32_t>, n, stream, out, pattern);
}

void launch_fill_16bit(uint16_t* out, uint16_t pattern, int64_t n, cudaStream_t stream) {
  launch_elementwise(fill_kernel<uint16_t>, n, stream, out, pattern);
}

void launch_add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream) {
  launch_elementwise(add_kernel, n, stream, a, b, out);
}

void launch_add_scaled(const float* x, float alpha, float* y, int64_t n, cudaStream_t stream) {
  launch_elementwise(add_scaled_kernel, n, stream, x, alpha, y);
}

void launch_multiply(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream) {
  launch_elementwise(multiply_kernel, n, stream, a, b, out);
}

void launch_scale(const float* x, float alpha, float* out, int64_t n, cudaStream_t stream) {
  launch_elementwise(scale_kernel, n, stream, x, alpha, out);
}

void launch_f32_to_bf16(const float* source, uint16_t* destination, int64_t n,
                        cudaStream_t stream) {
  launch_elementwise(f32_to_bf16_kernel, n, stream, source, destination);
}

void launch_bf16_to_f32(const uint16_t* source, float* destination, int64_t n,
                        cudaStream_t stream) {
  launch_elementwise(bf16_to_f32_kernel, n, stream, source, destination);
}

int64_t reduction_partials_count(int64_t n) {
  int64_t blocks = (n + kThreads - 1) / kThreads;
  return blocks < 1 ? 1 : (blocks > kMaxReduceBlocks ? kMaxReduceBlocks : blocks);
}

void launch_reduce(Reduction reduction, const void* x, bool is_bf16, int64_t n,
                   double* partials_device, double* result_device, cudaStream_t stream) {
  switch (reduction) {
    case Reduction::kSum:
      reduce_any<Reduction::kSum>(x, is_bf16, n, partials_device, result_device, stream);
      return;
    case Reduction::kSumSquares:
      reduce_any<Reduction::kSumSquares>(x, is_bf16, n, partials_device, result_device, stream);
      return;
    case Reduction::kMaxAbs:
      reduce_any<Reduction::kMaxAbs>(x, is_bf16, n, partials_device, result_device, stream);
      return;
  }
}

}  // namespace steerlm::cuda
