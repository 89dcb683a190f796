// The CUDA backend against the host backend: elementwise ops, reductions, conversions and the
// cuBLASLt GEMM (f32 and bf16 inputs, every transpose case, batched), streams and device memory.
// Compiled in every build; without a GPU each test skips and says why.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "runtime/allocator.h"
#include "runtime/cuda/device.h"
#include "runtime/cuda/stream.h"
#include "runtime/device_memory.h"
#include "runtime/error.h"
#include "runtime/gemm.h"
#include "runtime/ops.h"
#include "tests/runtime/reference.h"

#ifdef STEERLM_HAVE_CUDA
#include "runtime/cuda/cublaslt_gemm.h"
#endif

namespace steerlm {
namespace {

using testing::random_floats;

#define SKIP_WITHOUT_CUDA_DEVICE()                                                           \
  if (cuda_device_count() == 0) {                                                            \
    GTEST_SKIP() << "no CUDA device: this build or machine has no GPU (cuda_device_count() " \
                    "== 0); the CUDA backend is compiled and linked but not run here";       \
  }

const Device kGpu = Device::cuda(0);
const int64_t kSizes[] = {1, 7, 8193, 100003};

Tensor random_tensor(int64_t n, uint32_t seed) {
  return Tensor::from_floats(random_floats(n, seed), {n});
}

TEST(CudaDeviceTest, SelectingADeviceWithoutOneIsAUserError) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present; nothing to refuse";
  try {
    select_cuda_device(0);
    FAIL() << "select_cuda_device succeeded without a device";
  } catch (const UserError& error) {
    EXPECT_NE(std::string(error.what()).find("no CUDA device is visible"), std::string::npos)
        << error.what();
  }
}

TEST(CudaDeviceTest, SelectsTheLocalRanksDevice) {
  SKIP_WITHOUT_CUDA_DEVICE();
  EXPECT_EQ(select_cuda_device(0), kGpu);
  CudaDeviceInfo info = cuda_device_info(0);
  EXPECT_GE(info.compute_major, 8) << "bf16 GEMM needs sm_80 or newer: " << info.name;
  EXPECT_GT(info.total_memory_bytes, 0u);
  // With one visible GPU every local rank gets it (the launcher assigned it); with several, a
  // local rank beyond them is a mistake.
  if (cuda_device_count() > 1) {
    EXPECT_THROW(select_cuda_device(cuda_device_count() + 7), UserError);
  } else {
    EXPECT_EQ(select_cuda_device(5), kGpu);
  }
}

TEST(CudaMemoryTest, RoundTripAndCachedReuse) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Tensor host = random_tensor(1001, 30);
  Tensor device = host.to(kGpu);
  EXPECT_TRUE(device.device().is_cuda());
  EXPECT_EQ(device.to_floats(), host.to_floats());
  EXPECT_EQ(device.slice(1000, 1001).to_floats(), std::vector<float>{host.f32()[1000]});

  CachingAllocator& allocator = allocator_for(kGpu);
  { Tensor warm = Tensor::empty({4096}, DType::kF32, kGpu); }
  const size_t before = allocator.stats().system_allocations;
  { Tensor again = Tensor::empty({4096}, DType::kF32, kGpu); }
  EXPECT_EQ(allocator.stats().system_allocations, before);
}

TEST(CudaOpsTest, ElementwiseOpsMatchTheHostBitForBit) {
  SKIP_WITHOUT_CUDA_DEVICE();
  for (int64_t n : kSizes) {
    Tensor a = random_tensor(n, 31), b = random_tensor(n, 32);
    // Host results.
    Tensor sum = Tensor::empty({n}, DType::kF32), product = Tensor::empty({n}, DType::kF32);
    Tensor scaled = Tensor::empty({n}, DType::kF32), axpy = b.clone();
    ops::add(a, b, sum);
    ops::multiply(a, b, product);
    ops::scale(a, 0.37f, scaled);
    ops::add_scaled(a, -1.3f, axpy);
    // Device results.
    Tensor da = a.to(kGpu), db = b.to(kGpu);
    Tensor dsum = Tensor::empty({n}, DType::kF32, kGpu);
    Tensor dproduct = Tensor::empty({n}, DType::kF32, kGpu);
    Tensor dscaled = Tensor::empty({n}, DType::kF32, kGpu);
    Tensor daxpy = Tensor::empty({n}, DType::kF32, kGpu);
    ops::add(da, db, dsum);
    ops::multiply(da, db, dproduct);
    ops::scale(da, 0.37f, dscaled);
    ops::copy(db, daxpy);
    ops::add_scaled(da, -1.3f, daxpy);

    EXPECT_EQ(dsum.to_floats(), sum.to_floats()) << n;
    EXPECT_EQ(dproduct.to_floats(), product.to_floats()) << n;
    EXPECT_EQ(dscaled.to_floats(), scaled.to_floats()) << n;
    // axpy rounds twice on both sides unless a host build with -march=native fuses it: one
    // rounding of the operands' scale apart at most.
    std::vector<float> device_axpy = daxpy.to_floats();
    for (int64_t i = 0; i < n; ++i) {
      const double scale = std::fabs(b.f32()[i]) + 1.3 * std::fabs(a.f32()[i]);
      ASSERT_NEAR(device_axpy[i], axpy.f32()[i], 1.2e-7 * scale) << i;
    }
  }
}

TEST(CudaOpsTest, FillAndConvertMatchTheHostBitForBit) {
  SKIP_WITHOUT_CUDA_DEVICE();
  for (int64_t n : kSizes) {
    std::vector<float> values = random_floats(n, 33);
    for (int64_t i = 0; i < n; ++i) values[i] = std::ldexp(values[i], int(i % 41) - 20);
    Tensor source = Tensor::from_floats(values, {n});
    Tensor host_bf16 = Tensor::empty({n}, DType::kBF16);
    ops::convert(source, host_bf16);

    Tensor device_bf16 = Tensor::empty({n}, DType::kBF16, kGpu);
    ops::convert(source.to(kGpu), device_bf16);
    Tensor device_back = Tensor::empty({n}, DType::kF32, kGpu);
    ops::convert(device_bf16, device_back);
    EXPECT_EQ(device_back.to_floats(), host_bf16.to_floats()) << n;

    Tensor filled = Tensor::empty({n}, DType::kBF16, kGpu);
    ops::fill(filled, 1.01171875f);  // a tie: rounds to even, 1 + 2^-6
    EXPECT_EQ(filled.to_floats(), std::vector<float>(n, 1.015625f)) << n;
    Tensor filled_f32 = Tensor::empty({n}, DType::kF32, kGpu);
    ops::fill(filled_f32, -3.25f);
    EXPECT_EQ(filled_f32.to_floats(), std::vector<float>(n, -3.25f)) << n;
  }
}

TEST(CudaOpsTest, ReductionsMatchFloat64) {
  SKIP_WITHOUT_CUDA_DEVICE();
  for (int64_t n : kSizes) {
    Tensor x = random_tensor(n, 34);
    double sum = 0, sum_squares = 0, sum_abs = 0, max_abs = 0;
    for (int64_t i = 0; i < n; ++i) {
      sum += x.f32()[i];
      sum_squares += double(x.f32()[i]) * x.f32()[i];
      sum_abs += std::fabs(x.f32()[i]);
      max_abs = std::max(max_abs, double(std::fabs(x.f32()[i])));
    }
    Tensor device = x.to(kGpu);
    EXPECT_NEAR(ops::sum(device), sum, 1e-12 * sum_abs) << n;
    EXPECT_NEAR(ops::sum_squares(device), sum_squares, 1e-12 * sum_squares) << n;
    EXPECT_EQ(ops::max_abs(device), max_abs) << n;
    // Deterministic: the same tensor reduces to the same bits.
    EXPECT_EQ(ops::sum(device), ops::sum(device)) << n;

    Tensor device_bf16 = Tensor::empty({n}, DType::kBF16, kGpu);
    ops::convert(device, device_bf16);
    Tensor host_bf16 = device_bf16.to(Device::cpu());
    EXPECT_NEAR(ops::sum_squares(device_bf16), ops::sum_squares(host_bf16),
                1e-12 * sum_squares + 1e-300);
  }
  std::vector<float> with_nan(3000, 1.0f);
  with_nan[2999] = NAN;
  EXPECT_TRUE(std::isnan(ops::max_abs(Tensor::from_floats(with_nan, {3000}).to(kGpu))));
}

TEST(CudaStreamTest, OpsRunOnTheGuardedStreamAndStreamsOrderByEvents) {
  SKIP_WITHOUT_CUDA_DEVICE();
  CudaStream first(kGpu, StreamOrdering::kIndependent);
  CudaStream second(kGpu, StreamOrdering::kIndependent);
  Tensor x = Tensor::empty({1 << 20}, DType::kF32, kGpu);
  {
    StreamGuard guard(first);
    EXPECT_EQ(current_stream_handle(kGpu), first.handle());
    ops::fill(x, 2.0f);
  }
  EXPECT_EQ(current_stream_handle(kGpu), nullptr);
  second.wait_for(first);
  {
    StreamGuard guard(second);
    ops::scale(x, 3.0f, x);
  }
  second.synchronize();
  EXPECT_EQ(x.to_floats(), std::vector<float>(1 << 20, 6.0f));
}

#ifdef STEERLM_HAVE_CUDA
struct GemmSize {
  int64_t m, n, k;
};
void PrintTo(const GemmSize& size, std::ostream* out) {
  *out << size.m << "x" << size.n << "x" << size.k;
}

// Device GEMM against float64 of the very inputs it saw (bf16-rounded when bf16).
class CudaGemmTest
    : public ::testing::TestWithParam<std::tuple<GemmSize, Transpose, Transpose, DType>> {};

TEST_P(CudaGemmTest, MatchesFloat64OfItsInputs) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const auto [size, transpose_a, transpose_b, input_dtype] = GetParam();
  const auto [m, n, k] = size;
  const int64_t batch = 2;
  Shape a_shape = transpose_a == Transpose::kYes ? Shape{batch, k, m} : Shape{batch, m, k};
  Shape b_shape = transpose_b == Transpose::kYes ? Shape{batch, n, k} : Shape{batch, k, n};
  Tensor a = Tensor::from_floats(random_floats(batch * m * k, 40), a_shape);
  Tensor b = Tensor::from_floats(random_floats(batch * k * n, 41), b_shape);
  Tensor c = Tensor::from_floats(random_floats(batch * m * n, 42), {batch, m, n});

  // Inputs as the device sees them.
  Tensor da = Tensor::empty(a_shape, input_dtype, kGpu);
  Tensor db = Tensor::empty(b_shape, input_dtype, kGpu);
  ops::convert(a.to(kGpu), da);
  ops::convert(b.to(kGpu), db);
  Tensor a_seen = Tensor::from_floats(da.to_floats(), a_shape);
  Tensor b_seen = Tensor::from_floats(db.to_floats(), b_shape);
  Tensor dc = c.to(kGpu);

  matmul_batched(da, transpose_a, db, transpose_b, dc, 0.5f, 1.0f);
  std::vector<float> actual = dc.to_floats();

  for (int64_t i = 0; i < batch; ++i) {
    auto expected = testing::reference_gemm(
        transpose_a, transpose_b, m, n, k, 0.5, a_seen.f32() + i * m * k, a_shape[2],
        b_seen.f32() + i * k * n, b_shape[2], 1.0, c.f32() + i * m * n, n);
    std::vector<float> entry(actual.begin() + i * m * n, actual.begin() + (i + 1) * m * n);
    testing::expect_close_to_reference(entry, n, expected, m, n, k, "batch " + std::to_string(i));
  }

  // A bf16 output is the f32 result rounded once more.
  if (input_dtype == DType::kBF16) {
    Tensor a0 = da.slice(0, 1).reshape({a_shape[1], a_shape[2]});
    Tensor b0 = db.slice(0, 1).reshape({b_shape[1], b_shape[2]});
    Tensor out_bf16 = Tensor::empty({m, n}, DType::kBF16, kGpu);
    matmul(a0, transpose_a, b0, transpose_b, out_bf16);
    std::vector<float> narrow = out_bf16.to_floats();
    auto expected = testing::reference_gemm(transpose_a, transpose_b, m, n, k, 1.0, a_seen.f32(),
                                            a_shape[2], b_seen.f32(), b_shape[2], 0.0, nullptr, n);
    for (int64_t j = 0; j < m * n; ++j) {
      // One bf16 rounding (2^-9 relative) on top of the fp32 accumulation error.
      const double tolerance =
          std::fabs(expected.c[j]) * 0.004 + 4.0 * (k + 2) * 1.2e-7 * expected.magnitude[j] + 1e-30;
      ASSERT_NEAR(narrow[j], expected.c[j], tolerance) << j;
    }
  }
}

TEST_P(CudaGemmTest, PlansAreCachedPerShape) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const auto [size, transpose_a, transpose_b, input_dtype] = GetParam();
  const auto [m, n, k] = size;
  Tensor a =
      Tensor::zeros(transpose_a == Transpose::kYes ? Shape{k, m} : Shape{m, k}, input_dtype, kGpu);
  Tensor b =
      Tensor::zeros(transpose_b == Transpose::kYes ? Shape{n, k} : Shape{k, n}, input_dtype, kGpu);
  Tensor c = Tensor::empty({m, n}, DType::kF32, kGpu);
  matmul(a, transpose_a, b, transpose_b, c);
  const int64_t plans = cuda::cublaslt_plan_count(kGpu);
  matmul(a, transpose_a, b, transpose_b, c);
  EXPECT_EQ(cuda::cublaslt_plan_count(kGpu), plans);
  EXPECT_EQ(ops::max_abs(c), 0.0);
}

std::string gemm_case_name(const ::testing::TestParamInfo<CudaGemmTest::ParamType>& info) {
  const auto [size, transpose_a, transpose_b, dtype] = info.param;
  return std::to_string(size.m) + "x" + std::to_string(size.n) + "x" + std::to_string(size.k) +
         (transpose_a == Transpose::kYes ? "_T" : "_N") +
         (transpose_b == Transpose::kYes ? "T_" : "N_") + dtype_name(dtype);
}

INSTANTIATE_TEST_SUITE_P(OddSizesAllTransposes, CudaGemmTest,
                         ::testing::Combine(::testing::Values(GemmSize{1, 1, 1}, GemmSize{7, 13, 5},
                                                              GemmSize{33, 17, 65},
                                                              GemmSize{128, 96, 256}),
                                            ::testing::Values(Transpose::kNo, Transpose::kYes),
                                            ::testing::Values(Transpose::kNo, Transpose::kYes),
                                            ::testing::Values(DType::kF32, DType::kBF16)),
                         gemm_case_name);
#endif  // STEERLM_HAVE_CUDA

}  // namespace
}  // namespace steerlm
