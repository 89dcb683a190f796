// Shared pieces of the GPU op tests (tests/gpu/): skipping without a device, bf16 inputs that the
// host reference sees exactly, device upload and download, and tolerance checks.
//
// Each op test feeds the same bf16-representable values to the CUDA launcher and to the host
// kernel of runtime/kernels/ (in float64 unless the test says otherwise), so the only
// differences are the device's bf16 roundings and f32 accumulation, bounded per op by the
// tolerances each test states.
#pragma once

#include <glog/logging.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/bf16.h"
#include "runtime/cuda/stream.h"
#include "runtime/device_memory.h"
#include "runtime/tensor.h"
#include "tests/runtime/reference.h"

#define SKIP_WITHOUT_GPU()                                                                   \
  if (::steerlm::cuda_device_count() == 0) {                                                 \
    GTEST_SKIP() << "no CUDA device: this machine has no GPU or no driver "                  \
                    "(cuda_device_count() == 0); the kernel is compiled and linked but not " \
                    "run here. Run tests/gpu/run_device_checks.sh on a GPU machine.";        \
  }

namespace steerlm::gpu_testing {

inline const Device kGpu = Device::cuda(0);

inline cudaStream_t stream() {
  return current_cuda_stream(kGpu);
}

// Uniform values in [-scale, scale), rounded to bf16 so both backends see the same numbers.
inline std::vector<float> random_bf16_values(int64_t count, uint32_t seed, float scale = 1.0f) {
  std::vector<float> values = testing::random_floats(count, seed);
  for (float& value : values) value = bf16_to_float(float_to_bf16(value * scale));
  return values;
}

inline std::vector<double> to_doubles(const std::vector<float>& values) {
  return std::vector<double>(values.begin(), values.end());
}

inline Tensor device_bf16(const std::vector<float>& values) {
  const int64_t n = static_cast<int64_t>(values.size());
  Tensor host = Tensor::empty({std::max<int64_t>(n, 1)}, DType::kBF16);
  for (int64_t i = 0; i < n; ++i) host.bf16()[i] = float_to_bf16(values[i]);
  return host.to(kGpu);
}

inline Tensor device_f32(const std::vector<float>& values) {
  const int64_t n = static_cast<int64_t>(values.size());
  Tensor host = Tensor::zeros({std::max<int64_t>(n, 1)}, DType::kF32);
  std::copy(values.begin(), values.end(), host.f32());
  return host.to(kGpu);
}

inline Tensor device_i32(const std::vector<int32_t>& values) {
  const int64_t n = static_cast<int64_t>(values.size());
  Tensor host = Tensor::zeros({std::max<int64_t>(n, 1)}, DType::kI32);
  std::copy(values.begin(), values.end(), host.i32());
  return host.to(kGpu);
}

// Device scratch of at least `bytes` (a launcher's *_workspace_bytes()).
inline Tensor device_workspace(size_t bytes) {
  return Tensor::empty({static_cast<int64_t>(bytes / 4 + 64)}, DType::kI32, kGpu);
}

template <typename T>
T* device_ptr(Tensor& tensor) {
  return static_cast<T*>(tensor.raw());
}

// Waits for the test's queued work, then the tensor's first `count` values as floats.
inline std::vector<float> host_values(const Tensor& tensor, int64_t count) {
  CHECK_EQ(cudaStreamSynchronize(stream()), cudaSuccess);
  std::vector<float> values = tensor.to_floats();
  values.resize(static_cast<size_t>(count));
  return values;
}

template <typename T>
T host_scalar(const Tensor& tensor) {
  CHECK_EQ(cudaStreamSynchronize(stream()), cudaSuccess);
  T value{};
  device_memcpy(&value, Device::cpu(), tensor.raw(), tensor.device(), sizeof(T));
  return value;
}

inline double max_abs(const std::vector<double>& values) {
  double largest = 0;
  for (double value : values) largest = std::max(largest, std::fabs(value));
  return largest;
}

// |actual - expected| <= relative * |expected| + absolute for every element; reports the worst.
inline void expect_close(const std::vector<float>& actual, const std::vector<double>& expected,
                         double relative, double absolute, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int64_t worst = -1;
  double worst_excess = 0;
  int64_t failures = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double error = std::fabs(static_cast<double>(actual[i]) - expected[i]);
    const double excess = error - (relative * std::fabs(expected[i]) + absolute);
    if (!(excess <= 0)) {
      ++failures;
      if (worst < 0 || !(excess <= worst_excess)) {
        worst = static_cast<int64_t>(i);
        worst_excess = excess;
      }
    }
  }
  EXPECT_EQ(failures, 0) << what << ": " << failures << " of " << actual.size()
                         << " elements outside " << relative << " relative + " << absolute
                         << " absolute; worst at " << worst << ": actual "
                         << (worst >= 0 ? actual[worst] : 0.0f) << ", expected "
                         << (worst >= 0 ? expected[worst] : 0.0);
}

// One bf16 rounding is at most 2^-9 relative; tests allow two (the device's f32 work rounds
// differently from the float64 reference before the final narrowing).
constexpr double kBf16Relative = 1.0 / 256;

}  // namespace steerlm::gpu_testing
