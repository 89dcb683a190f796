// Host GEMM against a float64 reference: every transpose case, odd sizes, padded leading
// dimensions, alpha/beta, strided batches, K = 0, and the tensor entry points.
#include "runtime/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "tests/runtime/reference.h"

namespace steerlm {
namespace {

using testing::expect_close_to_reference;
using testing::random_floats;
using testing::reference_gemm;

struct Size {
  int64_t m, n, k;
};
void PrintTo(const Size& size, std::ostream* out) {
  *out << size.m << "x" << size.n << "x" << size.k;
}

class GemmTest : public ::testing::TestWithParam<std::tuple<Size, Transpose, Transpose>> {};

TEST_P(GemmTest, MatchesFloat64ReferenceWithPaddedLeadingDimensions) {
  const auto [size, transpose_a, transpose_b] = GetParam();
  const auto [m, n, k] = size;
  // Stored shapes: A (M, K) or (K, M); B (K, N) or (N, K); every row padded by 3 elements so
  // that a leading-dimension mix-up cannot pass.
  const int64_t a_rows = transpose_a == Transpose::kYes ? k : m;
  const int64_t a_cols = transpose_a == Transpose::kYes ? m : k;
  const int64_t b_rows = transpose_b == Transpose::kYes ? n : k;
  const int64_t b_cols = transpose_b == Transpose::kYes ? k : n;
  const int64_t lda = a_cols + 3, ldb = b_cols + 3, ldc = n + 3;
  std::vector<float> a = random_floats(a_rows * lda, 1);  // (a_rows, lda), cpu
  std::vector<float> b = random_floats(b_rows * ldb, 2);  // (b_rows, ldb), cpu
  std::vector<float> c = random_floats(m * ldc, 3);       // (M, ldc), cpu
  const float alpha = 0.75f, beta = -0.5f;

  auto expected = reference_gemm(transpose_a, transpose_b, m, n, k, alpha, a.data(), lda, b.data(),
                                 ldb, beta, c.data(), ldc);
  std::vector<float> padding_before(c);
  gemm_f32(transpose_a, transpose_b, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(),
           ldc);

  expect_close_to_reference(c, ldc, expected, m, n, k, "gemm_f32");
  // The padding columns of C are not written.
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = n; j < ldc; ++j) ASSERT_EQ(c[i * ldc + j], padding_before[i * ldc + j]);
  }
}

TEST_P(GemmTest, MatmulOnTensorsMatchesFloat64Reference) {
  const auto [size, transpose_a, transpose_b] = GetParam();
  const auto [m, n, k] = size;
  Shape a_shape = transpose_a == Transpose::kYes ? Shape{k, m} : Shape{m, k};
  Shape b_shape = transpose_b == Transpose::kYes ? Shape{n, k} : Shape{k, n};
  Tensor a = Tensor::from_floats(random_floats(m * k, 4), a_shape);
  Tensor b = Tensor::from_floats(random_floats(k * n, 5), b_shape);
  Tensor c = Tensor::empty({m, n}, DType::kF32);  // (M, N), cpu; beta = 0 must ignore garbage

  matmul(a, transpose_a, b, transpose_b, c);

  auto expected = reference_gemm(transpose_a, transpose_b, m, n, k, 1.0, a.f32(), a.dim(1), b.f32(),
                                 b.dim(1), 0.0, c.f32(), n);
  expect_close_to_reference(c.to_floats(), n, expected, m, n, k, "matmul");
}

TEST_P(GemmTest, StridedBatchedMatchesPerEntryReference) {
  const auto [size, transpose_a, transpose_b] = GetParam();
  const auto [m, n, k] = size;
  const int64_t batch = 3;
  // Gaps of 5 elements between batch entries, so a stride mix-up reads the wrong numbers.
  const int64_t lda = transpose_a == Transpose::kYes ? m : k;
  const int64_t ldb = transpose_b == Transpose::kYes ? k : n;
  const int64_t stride_a = m * k + 5, stride_b = k * n + 5, stride_c = m * n + 5;
  std::vector<float> a = random_floats(batch * stride_a, 6);
  std::vector<float> b = random_floats(batch * stride_b, 7);
  std::vector<float> c = random_floats(batch * stride_c, 8);
  std::vector<float> c_before(c);

  gemm_strided_batched_f32(transpose_a, transpose_b, m, n, k, 2.0f, a.data(), lda, stride_a,
                           b.data(), ldb, stride_b, 0.5f, c.data(), n, stride_c, batch);

  for (int64_t i = 0; i < batch; ++i) {
    auto expected = reference_gemm(transpose_a, transpose_b, m, n, k, 2.0, &a[i * stride_a], lda,
                                   &b[i * stride_b], ldb, 0.5, &c_before[i * stride_c], n);
    std::vector<float> entry(c.begin() + i * stride_c, c.begin() + i * stride_c + m * n);
    expect_close_to_reference(entry, n, expected, m, n, k, "batch " + std::to_string(i));
  }
}

TEST_P(GemmTest, MatmulBatchedOnTensorsMatchesReference) {
  const auto [size, transpose_a, transpose_b] = GetParam();
  const auto [m, n, k] = size;
  const int64_t batch = 2;
  Shape a_shape = transpose_a == Transpose::kYes ? Shape{batch, k, m} : Shape{batch, m, k};
  Shape b_shape = transpose_b == Transpose::kYes ? Shape{batch, n, k} : Shape{batch, k, n};
  Tensor a = Tensor::from_floats(random_floats(batch * m * k, 9), a_shape);
  Tensor b = Tensor::from_floats(random_floats(batch * k * n, 10), b_shape);
  Tensor c = Tensor::from_floats(random_floats(batch * m * n, 11), {batch, m, n});
  std::vector<float> c_before = c.to_floats();

  matmul_batched(a, transpose_a, b, transpose_b, c, 1.0f, 1.0f);

  std::vector<float> actual = c.to_floats();
  for (int64_t i = 0; i < batch; ++i) {
    auto expected =
        reference_gemm(transpose_a, transpose_b, m, n, k, 1.0, a.f32() + i * m * k, a.dim(2),
                       b.f32() + i * k * n, b.dim(2), 1.0, &c_before[i * m * n], n);
    std::vector<float> entry(actual.begin() + i * m * n, actual.begin() + (i + 1) * m * n);
    expect_close_to_reference(entry, n, expected, m, n, k, "batch " + std::to_string(i));
  }
}

std::string case_name(const ::testing::TestParamInfo<GemmTest::ParamType>& info) {
  const auto [size, transpose_a, transpose_b] = info.param;
  return std::to_string(size.m) + "x" + std::to_string(size.n) + "x" + std::to_string(size.k) +
         (transpose_a == Transpose::kYes ? "_T" : "_N") +
         (transpose_b == Transpose::kYes ? "T" : "N");
}

INSTANTIATE_TEST_SUITE_P(OddSizesAllTransposes, GemmTest,
                         ::testing::Combine(::testing::Values(Size{1, 1, 1}, Size{7, 13, 5},
                                                              Size{33, 17, 65}),
                                            ::testing::Values(Transpose::kNo, Transpose::kYes),
                                            ::testing::Values(Transpose::kNo, Transpose::kYes)),
                         case_name);

TEST(GemmEdgeTest, EmptyInnerDimensionScalesOutputByBeta) {
  Tensor a = Tensor::empty({3, 0}, DType::kF32);  // (M, K=0), cpu
  Tensor b = Tensor::empty({0, 2}, DType::kF32);  // (K=0, N), cpu
  Tensor c = Tensor::from_floats({1, 2, 3, 4, 5, NAN}, {3, 2});

  matmul(a, Transpose::kNo, b, Transpose::kNo, c, 1.0f, 0.5f);
  EXPECT_EQ(c.to_floats()[0], 0.5f);
  EXPECT_EQ(c.to_floats()[4], 2.5f);

  // beta = 0 overwrites, NaN included (BLAS semantics).
  matmul(a, Transpose::kNo, b, Transpose::kNo, c, 1.0f, 0.0f);
  EXPECT_EQ(c.to_floats(), std::vector<float>(6, 0.0f));
}

TEST(GemmEdgeTest, ExactSmallProduct) {
  // [[1, 2], [3, 4]] @ [[5, 6], [7, 8]] = [[19, 22], [43, 50]]; with B^T: [[17, 23], [39, 53]].
  Tensor a = Tensor::from_floats({1, 2, 3, 4}, {2, 2});
  Tensor b = Tensor::from_floats({5, 6, 7, 8}, {2, 2});
  Tensor c = Tensor::empty({2, 2}, DType::kF32);
  matmul(a, Transpose::kNo, b, Transpose::kNo, c);
  EXPECT_EQ(c.to_floats(), (std::vector<float>{19, 22, 43, 50}));
  matmul(a, Transpose::kNo, b, Transpose::kYes, c);
  EXPECT_EQ(c.to_floats(), (std::vector<float>{17, 23, 39, 53}));
}

TEST(GemmDeathTest, MismatchedShapesNameTheOperands) {
  Tensor a = Tensor::zeros({2, 3}, DType::kF32);
  Tensor b = Tensor::zeros({4, 5}, DType::kF32);
  Tensor c = Tensor::zeros({2, 5}, DType::kF32);
  EXPECT_DEATH(matmul(a, Transpose::kNo, b, Transpose::kNo, c),
               "matmul shapes do not agree: a \\(2, 3\\), b \\(4, 5\\), c \\(2, 5\\)");
}

TEST(GemmBenchmarkTest, MeasuresAPositiveFiniteRate) {
  const double gflops = measure_sgemm_gflops(96, 80, 64, 5);
  RecordProperty("sgemm_96x80x64_gflops", std::to_string(gflops));
  EXPECT_TRUE(std::isfinite(gflops));
  // Even one slow core does more than 0.05 GFLOP/s on a 96x80x64 sgemm.
  EXPECT_GT(gflops, 0.05);
}

}  // namespace
}  // namespace steerlm
