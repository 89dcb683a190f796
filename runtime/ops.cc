#include "runtime/ops.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <vector>

#include "runtime/allocator.h"
#include "runtime/bf16.h"
#include "runtime/check.h"

#ifdef STEERLM_HAVE_CUDA
#include "runtime/cuda/device.h"
#include "runtime/cuda/elementwise.h"
#include "runtime/cuda/stream.h"
#endif

namespace steerlm::ops {
namespace {

// Below this many elements an OpenMP team costs more than it saves.
constexpr int64_t kParallelThreshold = 1 << 15;
// Reductions sum fixed chunks of this many elements, then the chunk totals in order, so the
// result depends on numel only (not on the thread count).
constexpr int64_t kReduceChunk = 1 << 13;
// Independent accumulators inside a chunk, so the double adds pipeline and vectorise.
constexpr int kLanes = 8;

enum class Reduction { kSum, kSumSquares, kMaxAbs };

// ---- Argument checks --------------------------------------------------------------------------

// Every operand of an elementwise op: defined, same numel and device as the first; f32.
void check_f32_operands(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor& first = **tensors.begin();
  for (const Tensor* tensor : tensors) {
    CHECK(tensor->defined()) << op << ": undefined tensor";
    CHECK(tensor->dtype() == DType::kF32)
        << op << " takes f32 tensors, got " << dtype_name(tensor->dtype());
    CHECK_EQ(tensor->numel(), first.numel())
        << op << ": " << tensor->shape().str() << " vs " << first.shape().str();
    CHECK(tensor->device() == first.device())
        << op << ": tensors on " << tensor->device().str() << " and " << first.device().str();
  }
}

[[noreturn]] void no_cuda(const char* op) {
  LOG(FATAL) << "ops::" << op << " on a CUDA tensor, but this steerlm was built without CUDA";
  __builtin_unreachable();
}

// True when `tensor` lives on a GPU, whose device it then makes current. In a build without CUDA
// a GPU tensor is fatal here, so the callers' CUDA branches compile to nothing.
bool on_cuda(const char* op, const Tensor& tensor) {
  if (!tensor.device().is_cuda()) return false;
#ifdef STEERLM_HAVE_CUDA
  cuda_set_current_device(tensor.device());
  return true;
#else
  no_cuda(op);
#endif
}

#ifdef STEERLM_HAVE_CUDA
cudaStream_t stream_of(const Tensor& tensor) {
  return current_cuda_stream(tensor.device());
}
#endif

// ---- Host kernels -----------------------------------------------------------------------------

// body(i) for i in [0, n), with an OpenMP team when n is large enough.
template <typename Body>
void host_for(int64_t n, Body body) {
#pragma omp parallel for schedule(static) if (n >= kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) body(i);
}

template <typename T>
void host_fill(T* out, T value, int64_t n) {
  host_for(n, [=](int64_t i) { out[i] = value; });
}

template <Reduction kReduction>
inline double reduction_term(float value) {
  if constexpr (kReduction == Reduction::kSum) return value;
  if constexpr (kReduction == Reduction::kSumSquares) return static_cast<double>(value) * value;
  return std::fabs(static_cast<double>(value));
}

// max-abs keeps NaN (std::max would drop it depending on argument order).
template <Reduction kReduction>
inline double reduction_combine(double left, double right) {
  if constexpr (kReduction != Reduction::kMaxAbs) return left + right;
  if (std::isnan(left) || std::isnan(right)) return std::numeric_limits<double>::quiet_NaN();
  return std::max(left, right);
}

// One chunk, kLanes interleaved accumulators combined in a fixed order at the end.
template <Reduction kReduction, typename Load>
double reduce_chunk(Load load, int64_t begin, int64_t end) {
  double lanes[kLanes] = {};
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    for (int lane = 0; lane < kLanes; ++lane) {
      lanes[lane] =
          reduction_combine<kReduction>(lanes[lane], reduction_term<kReduction>(load(i + lane)));
    }
  }
  for (; i < end; ++i) {
    lanes[0] = reduction_combine<kReduction>(lanes[0], reduction_term<kReduction>(load(i)));
  }
  double total = lanes[0];
  for (int lane = 1; lane < kLanes; ++lane) {
    total = reduction_combine<kReduction>(total, lanes[lane]);
  }
  return total;
}

template <Reduction kReduction, typename Load>
double host_reduce(Load load, int64_t n) {
  const int64_t chunks = (n + kReduceChunk - 1) / kReduceChunk;
  std::vector<double> chunk_totals(chunks);
#pragma omp parallel for schedule(static) if (n >= kParallelThreshold)
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    chunk_totals[chunk] = reduce_chunk<kReduction>(load, chunk * kReduceChunk,
                                                   std::min(n, (chunk + 1) * kReduceChunk));
  }
  double total = 0.0;
  for (double chunk_total : chunk_totals) {
    total = reduction_combine<kReduction>(total, chunk_total);
  }
  return total;
}

template <Reduction kReduction>
double host_reduce_tensor(const Tensor& x) {
  if (x.dtype() == DType::kBF16) {
    const uint16_t* values = x.bf16();
    return host_reduce<kReduction>([values](int64_t i) { return bf16_to_float(values[i]); },
                                   x.numel());
  }
  const float* values = x.f32();
  return host_reduce<kReduction>([values](int64_t i) { return values[i]; }, x.numel());
}

#ifdef STEERLM_HAVE_CUDA
// Reduces on the device, then copies the one double back and waits for it.
double cuda_reduce(cuda::Reduction reduction, const Tensor& x) {
  const Device device = x.device();
  cudaStream_t stream = stream_of(x);
  const int64_t partials = cuda::reduction_partials_count(x.numel());
  const size_t bytes = static_cast<size_t>(partials + 1) * sizeof(double);
  CachingAllocator& allocator = allocator_for(device);
  auto* scratch = static_cast<double*>(allocator.allocate(bytes));  // (partials + 1), device
  cuda::launch_reduce(reduction, x.raw(), x.dtype() == DType::kBF16, x.numel(), scratch,
                      scratch + partials, stream);
  double result = 0.0;
  CUDA_CHECK(
      cudaMemcpyAsync(&result, scratch + partials, sizeof(double), cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  allocator.release(scratch, bytes);
  return result;
}

cuda::Reduction to_cuda(Reduction reduction) {
  switch (reduction) {
    case Reduction::kSum: return cuda::Reduction::kSum;
    case Reduction::kSumSquares: return cuda::Reduction::kSumSquares;
    case Reduction::kMaxAbs: return cuda::Reduction::kMaxAbs;
  }
  LOG(FATAL) << "unknown reduction";
}
#endif

template <Reduction kReduction>
double reduce(const char* op, const Tensor& x) {
  CHECK(x.defined()) << op << ": undefined tensor";
  CHECK(x.dtype() == DType::kF32 || x.dtype() == DType::kBF16)
      << op << " takes f32 or bf16, got " << dtype_name(x.dtype());
  if (on_cuda(op, x)) {
#ifdef STEERLM_HAVE_CUDA
    return cuda_reduce(to_cuda(kReduction), x);
#endif
  }
  return host_reduce_tensor<kReduction>(x);
}

}  // namespace

// ---- Elementwise ------------------------------------------------------------------------------

void fill(Tensor& out, float value) {
  CHECK(out.defined()) << "fill: undefined tensor";
  // The element's bit pattern, so that one fill kernel per element width serves every dtype.
  uint32_t pattern32 = 0;
  uint16_t pattern16 = 0;
  if (out.dtype() == DType::kF32) {
    pattern32 = float_bits(value);
  } else if (out.dtype() == DType::kI32) {
    CHECK(value == std::nearbyint(value)) << "fill of an i32 tensor with " << value;
    pattern32 = static_cast<uint32_t>(static_cast<int32_t>(value));
  } else {
    pattern16 = float_to_bf16(value);
  }
  const int64_t n = out.numel();
  const bool wide = out.dtype() != DType::kBF16;
  if (on_cuda("fill", out)) {
#ifdef STEERLM_HAVE_CUDA
    if (wide) {
      cuda::launch_fill_32bit(static_cast<uint32_t*>(out.raw()), pattern32, n, stream_of(out));
    } else {
      cuda::launch_fill_16bit(static_cast<uint16_t*>(out.raw()), pattern16, n, stream_of(out));
    }
#endif
    return;
  }
  if (wide) {
    host_fill(static_cast<uint32_t*>(out.raw()), pattern32, n);
  } else {
    host_fill(static_cast<uint16_t*>(out.raw()), pattern16, n);
  }
}

void copy(const Tensor& source, Tensor& destination) {
  CHECK(source.defined() && destination.defined()) << "copy: undefined tensor";
  CHECK(source.dtype() == destination.dtype())
      << "copy: " << dtype_name(source.dtype()) << " into " << dtype_name(destination.dtype())
      << " (use ops::convert)";
  CHECK_EQ(source.numel(), destination.numel())
      << "copy: " << source.shape().str() << " into " << destination.shape().str();
  const Device device = destination.device();
  if (source.device() == device && on_cuda("copy", destination)) {
#ifdef STEERLM_HAVE_CUDA
    // On the current stream, so the copy is ordered with the ops around it.
    CUDA_CHECK(cudaMemcpyAsync(destination.raw(), source.raw(), destination.nbytes(),
                               cudaMemcpyDeviceToDevice, stream_of(destination)));
#endif
    return;
  }
  if (source.device() != device || source.nbytes() < static_cast<size_t>(kParallelThreshold)) {
    destination.copy_from(source);
    return;
  }
  // Host to host: chunks in parallel, since one core cannot saturate memory bandwidth.
  const auto* from = static_cast<const char*>(source.raw());
  auto* to = static_cast<char*>(destination.raw());
  const int64_t bytes = static_cast<int64_t>(destination.nbytes());
  const int64_t chunk = int64_t{1} << 20;
  const int64_t chunks = (bytes + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    std::memcpy(to + c * chunk, from + c * chunk, std::min(chunk, bytes - c * chunk));
  }
}

void add(const Tensor& a, const Tensor& b, Tensor& out) {
  check_f32_operands("add", {&a, &b, &out});
  const float* left = a.f32();
  const float* right = b.f32();
  float* result = out.f32();
  if (on_cuda("add", out)) {
#ifdef STEERLM_HAVE_CUDA
    cuda::launch_add(left, right, result, out.numel(), stream_of(out));
#endif
    return;
  }
  host_for(out.numel(), [=](int64_t i) { result[i] = left[i] + right[i]; });
}

void add_scaled(const Tensor& x, float alpha, Tensor& y) {
  check_f32_operands("add_scaled", {&x, &y});
  const float* source = x.f32();
  float* result = y.f32();
  if (on_cuda("add_scaled", y)) {
#ifdef STEERLM_HAVE_CUDA
    cuda::launch_add_scaled(source, alpha, result, y.numel(), stream_of(y));
#endif
    return;
  }
  host_for(y.numel(), [=](int64_t i) { result[i] = result[i] + alpha * source[i]; });
}

void multiply(const Tensor& a, const Tensor& b, Tensor& out) {
  check_f32_operands("multiply", {&a, &b, &out});
  const float* left = a.f32();
  const float* right = b.f32();
  float* result = out.f32();
  if (on_cuda("multiply", out)) {
#ifdef STEERLM_HAVE_CUDA
    cuda::launch_multiply(left, right, result, out.numel(), stream_of(out));
#endif
    return;
  }
  host_for(out.numel(), [=](int64_t i) { result[i] = left[i] * right[i]; });
}

void scale(const Tensor& x, float alpha, Tensor& out) {
  check_f32_operands("scale", {&x, &out});
  const float* source = x.f32();
  float* result = out.f32();
  if (on_cuda("scale", out)) {
#ifdef STEERLM_HAVE_CUDA
    cuda::launch_scale(source, alpha, result, out.numel(), stream_of(out));
#endif
    return;
  }
  host_for(out.numel(), [=](int64_t i) { result[i] = alpha * source[i]; });
}

void convert(const Tensor& source, Tensor& destination) {
  CHECK(source.defined() && destination.defined()) << "convert: undefined tensor";
  if (source.dtype() == destination.dtype()) return copy(source, destination);
  const bool narrowing = source.dtype() == DType::kF32 && destination.dtype() == DType::kBF16;
  const bool widening = source.dtype() == DType::kBF16 && destination.dtype() == DType::kF32;
  CHECK(narrowing || widening) << "convert: " << dtype_name(source.dtype()) << " -> "
                               << dtype_name(destination.dtype()) << " is not supported";
  CHECK_EQ(source.numel(), destination.numel())
      << "convert: " << source.shape().str() << " into " << destination.shape().str();
  CHECK(source.device() == destination.device())
      << "convert: " << source.device().str() << " -> " << destination.device().str()
      << " (convert on one device, then copy)";
  const int64_t n = source.numel();
  if (on_cuda("convert", source)) {
#ifdef STEERLM_HAVE_CUDA
    if (narrowing) {
      cuda::launch_f32_to_bf16(source.f32(), destination.bf16(), n, stream_of(source));
    } else {
      cuda::launch_bf16_to_f32(source.bf16(), destination.f32(), n, stream_of(source));
    }
#endif
    return;
  }
  if (narrowing) {
    const float* from = source.f32();
    uint16_t* to = destination.bf16();
    host_for(n, [=](int64_t i) { to[i] = float_to_bf16(from[i]); });
  } else {
    const uint16_t* from = source.bf16();
    float* to = destination.f32();
    host_for(n, [=](int64_t i) { to[i] = bf16_to_float(from[i]); });
  }
}

// ---- Reductions -------------------------------------------------------------------------------

double sum(const Tensor& x) {
  return reduce<Reduction::kSum>("sum", x);
}

double sum_squares(const Tensor& x) {
  return reduce<Reduction::kSumSquares>("sum_squares", x);
}

double max_abs(const Tensor& x) {
  return reduce<Reduction::kMaxAbs>("max_abs", x);
}

}  // namespace steerlm::ops
