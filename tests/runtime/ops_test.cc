// Host elementwise and reduction ops against float64 references on odd sizes, including sizes
// above the OpenMP threshold, plus bf16 rounding edge cases.
#include "runtime/ops.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "runtime/bf16.h"
#include "tests/runtime/reference.h"

namespace steerlm {
namespace {

using testing::random_floats;

// 1 and 7: tails only; 8193: one full chunk plus one; 100003: several chunks, OpenMP team.
const int64_t kSizes[] = {1, 7, 8193, 100003};

Tensor random_tensor(int64_t n, uint32_t seed) {
  return Tensor::from_floats(random_floats(n, seed), {n});
}

TEST(OpsTest, FillWritesEveryElementOfEachDtype) {
  for (int64_t n : kSizes) {
    Tensor f32 = Tensor::empty({n}, DType::kF32);
    ops::fill(f32, -2.5f);
    EXPECT_EQ(f32.to_floats(), std::vector<float>(n, -2.5f)) << n;

    Tensor bf16 = Tensor::empty({n}, DType::kBF16);
    ops::fill(bf16, 1.00390625f);  // 1 + 2^-8: a tie between bf16 1.0 and 1.0078125 -> 1.0
    EXPECT_EQ(bf16.to_floats(), std::vector<float>(n, 1.0f)) << n;

    Tensor i32 = Tensor::empty({n}, DType::kI32);
    ops::fill(i32, -7.0f);
    EXPECT_EQ(std::vector<int32_t>(i32.i32(), i32.i32() + n), std::vector<int32_t>(n, -7)) << n;
  }
}

TEST(OpsTest, CopyCopiesEveryDtypeExactly) {
  for (int64_t n : kSizes) {
    Tensor source = random_tensor(n, 20);
    Tensor destination = Tensor::zeros({n}, DType::kF32);
    ops::copy(source, destination);
    EXPECT_EQ(destination.to_floats(), source.to_floats()) << n;
  }
  // Large enough for the parallel path, in bytes of i32.
  std::vector<int32_t> values(300001);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int32_t>(i * 7919 % 100003);
  Tensor source = Tensor::from_ints(values, {static_cast<int64_t>(values.size())});
  Tensor destination = Tensor::zeros(source.shape(), DType::kI32);
  ops::copy(source, destination);
  EXPECT_EQ(0, std::memcmp(source.raw(), destination.raw(), source.nbytes()));
}

TEST(OpsTest, AddMultiplyScaleAxpyMatchFloat64) {
  for (int64_t n : kSizes) {
    Tensor a = random_tensor(n, 21), b = random_tensor(n, 22);
    Tensor sum = Tensor::empty({n}, DType::kF32), product = Tensor::empty({n}, DType::kF32);
    Tensor scaled = Tensor::empty({n}, DType::kF32);
    Tensor y = b.clone();
    ops::add(a, b, sum);
    ops::multiply(a, b, product);
    ops::scale(a, -1.75f, scaled);
    ops::add_scaled(a, 0.3f, y);

    const float* av = a.f32();
    const float* bv = b.f32();
    for (int64_t i = 0; i < n; ++i) {
      // One float rounding each: half an ulp of the result (plus one for axpy's two roundings).
      const double exact_sum = double(av[i]) + bv[i];
      const double exact_product = double(av[i]) * bv[i];
      const double exact_scaled = -1.75 * av[i];
      const double exact_axpy = double(bv[i]) + double(0.3f) * av[i];
      ASSERT_NEAR(sum.f32()[i], exact_sum, 6e-8 * std::fabs(exact_sum) + 1e-45) << i;
      ASSERT_NEAR(product.f32()[i], exact_product, 6e-8 * std::fabs(exact_product) + 1e-45);
      ASSERT_NEAR(scaled.f32()[i], exact_scaled, 6e-8 * std::fabs(exact_scaled) + 1e-45);
      ASSERT_NEAR(y.f32()[i], exact_axpy, 1.2e-7 * (std::fabs(bv[i]) + std::fabs(av[i])));
    }
  }
}

TEST(OpsTest, OutputsMayAliasInputs) {
  Tensor x = Tensor::from_floats({1, -2, 3}, {3});
  ops::add(x, x, x);
  EXPECT_EQ(x.to_floats(), (std::vector<float>{2, -4, 6}));
  ops::multiply(x, x, x);
  EXPECT_EQ(x.to_floats(), (std::vector<float>{4, 16, 36}));
  ops::scale(x, 0.25f, x);
  EXPECT_EQ(x.to_floats(), (std::vector<float>{1, 4, 9}));
  ops::add_scaled(x, -1.0f, x);
  EXPECT_EQ(x.to_floats(), (std::vector<float>{0, 0, 0}));
}

TEST(OpsTest, OperandsOfDifferentShapesButEqualNumelAreFlat) {
  Tensor a = Tensor::from_floats({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_floats({10, 20, 30, 40, 50, 60}, {3, 2});
  Tensor out = Tensor::empty({6}, DType::kF32);
  ops::add(a, b, out);
  EXPECT_EQ(out.to_floats(), (std::vector<float>{11, 22, 33, 44, 55, 66}));
}

TEST(OpsTest, ReductionsMatchFloat64) {
  for (int64_t n : kSizes) {
    Tensor x = random_tensor(n, 23);
    double sum = 0, sum_squares = 0, max_abs = 0, sum_abs = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double value = x.f32()[i];
      sum += value;
      sum_squares += value * value;
      sum_abs += std::fabs(value);
      max_abs = std::max(max_abs, std::fabs(value));
    }
    // Double accumulation in another order: ~sqrt(n) * 2^-53 of the absolute sum; a float
    // accumulator would be off by ~1e-7.
    EXPECT_NEAR(ops::sum(x), sum, 1e-12 * sum_abs) << n;
    EXPECT_NEAR(ops::sum_squares(x), sum_squares, 1e-12 * sum_squares) << n;
    EXPECT_EQ(ops::max_abs(x), max_abs) << n;
  }
}

TEST(OpsTest, ReductionsOfBf16MatchFloat64OfRoundedValues) {
  const int64_t n = 100003;
  Tensor x = random_tensor(n, 24);
  Tensor x_bf16 = Tensor::empty({n}, DType::kBF16);
  ops::convert(x, x_bf16);
  std::vector<float> rounded = x_bf16.to_floats();
  double sum = 0, sum_squares = 0, max_abs = 0, sum_abs = 0;
  for (float value : rounded) {
    sum += value;
    sum_squares += double(value) * value;
    sum_abs += std::fabs(value);
    max_abs = std::max(max_abs, double(std::fabs(value)));
  }
  EXPECT_NEAR(ops::sum(x_bf16), sum, 1e-12 * sum_abs);
  EXPECT_NEAR(ops::sum_squares(x_bf16), sum_squares, 1e-12 * sum_squares);
  EXPECT_EQ(ops::max_abs(x_bf16), max_abs);
}

TEST(OpsTest, ReductionsDoNotDependOnTheThreadCount) {
  Tensor x = random_tensor(250001, 25);
  const int threads_before = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one_thread = ops::sum(x);
  const double one_thread_squares = ops::sum_squares(x);
  omp_set_num_threads(3);
  const double three_threads = ops::sum(x);
  const double three_threads_squares = ops::sum_squares(x);
  omp_set_num_threads(threads_before);
  EXPECT_EQ(one_thread, three_threads);  // bit for bit
  EXPECT_EQ(one_thread_squares, three_threads_squares);
}

TEST(OpsTest, ReductionEdgeCases) {
  Tensor empty = Tensor::empty({0}, DType::kF32);
  EXPECT_EQ(ops::sum(empty), 0.0);
  EXPECT_EQ(ops::max_abs(empty), 0.0);

  // A NaN anywhere makes max_abs NaN, wherever it sits in the chunks.
  std::vector<float> values = random_floats(50000, 26);
  values[40000] = std::numeric_limits<float>::quiet_NaN();
  Tensor with_nan = Tensor::from_floats(values, {50000});
  EXPECT_TRUE(std::isnan(ops::max_abs(with_nan)));
  EXPECT_TRUE(std::isnan(ops::sum_squares(with_nan)));

  Tensor mixed = Tensor::from_floats({-3, 2, -0.5}, {3});
  EXPECT_EQ(ops::max_abs(mixed), 3.0);
  EXPECT_EQ(ops::sum(mixed), -1.5);
  EXPECT_EQ(ops::sum_squares(mixed), 13.25);
}

TEST(OpsTest, ConvertRoundsToNearestEvenLikeTheFloat64Reference) {
  // Random values over many binades, plus float subnormals.
  std::vector<float> values = random_floats(20001, 27);
  for (size_t i = 0; i < values.size(); ++i) {
    values[i] = std::ldexp(values[i], static_cast<int>(i % 61) - 30);
  }
  values[0] = 1e-40f;   // float subnormal
  values[1] = -3e-39f;  // float subnormal
  const int64_t n = static_cast<int64_t>(values.size());
  Tensor source = Tensor::from_floats(values, {n});
  Tensor narrowed = Tensor::empty({n}, DType::kBF16);
  Tensor widened = Tensor::empty({n}, DType::kF32);

  ops::convert(source, narrowed);
  ops::convert(narrowed, widened);

  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(widened.f32()[i], testing::reference_round_to_bf16(values[i]))
        << "value " << values[i] << " at " << i;
  }
}

TEST(OpsTest, Bf16RoundingEdgeCases) {
  // Ties go to the even neighbour: 1 + 2^-8 -> 1 (0x3F80), 1 + 3 * 2^-8 -> 1 + 2^-6 (0x3F82).
  EXPECT_EQ(float_to_bf16(1.00390625f), 0x3F80);
  EXPECT_EQ(float_to_bf16(1.01171875f), 0x3F82);
  // Just above a tie rounds up.
  EXPECT_EQ(float_to_bf16(std::nextafter(1.00390625f, 2.0f)), 0x3F81);
  // Signed zero, infinities and the overflow of the largest float.
  EXPECT_EQ(float_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(float_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7F80);
  // NaN stays NaN, even one whose payload sits only in the dropped bits.
  float low_payload_nan;
  uint32_t bits = 0x7F800001u;
  std::memcpy(&low_payload_nan, &bits, 4);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(low_payload_nan))));
  EXPECT_EQ(bf16_to_float(0x4049), 3.140625f);
}

TEST(OpsDeathTest, MismatchedOperandsAreRejected) {
  Tensor a = Tensor::zeros({3}, DType::kF32);
  Tensor b = Tensor::zeros({4}, DType::kF32);
  Tensor i = Tensor::zeros({3}, DType::kI32);
  EXPECT_DEATH(ops::add(a, b, a), "add: \\(4\\) vs \\(3\\)");
  EXPECT_DEATH(ops::scale(i, 2.0f, i), "scale takes f32 tensors, got i32");
}

}  // namespace
}  // namespace steerlm
