// float64 references and deterministic inputs shared by the runtime tests (gemm, ops, cuda).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "runtime/gemm.h"

namespace steerlm {

// Readable parameters in gtest's and ctest's test listings.
inline void PrintTo(Transpose transpose, std::ostream* out) {
  *out << (transpose == Transpose::kYes ? "T" : "N");
}
inline void PrintTo(DType dtype, std::ostream* out) {
  *out << dtype_name(dtype);
}

}  // namespace steerlm

namespace steerlm::testing {

// Uniform values in [-1, 1), reproducible from the seed.
inline std::vector<float> random_floats(int64_t count, uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> distribution(-1.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(count));
  for (float& value : values) value = distribution(generator);
  return values;
}

// One row-major GEMM in float64, with the scale of each result for tolerances:
// c = alpha op(a) op(b) + beta c, and magnitude[i] = |alpha| sum |a||b| + |beta c| (the error
// bound of a float32 GEMM is a few K * eps times this).
struct ReferenceGemm {
  std::vector<double> c;          // (M, N)
  std::vector<double> magnitude;  // (M, N)
};

inline ReferenceGemm reference_gemm(Transpose transpose_a, Transpose transpose_b, int64_t m,
                                    int64_t n, int64_t k, double alpha, const float* a, int64_t lda,
                                    const float* b, int64_t ldb, double beta, const float* c,
                                    int64_t ldc) {
  ReferenceGemm result{std::vector<double>(m * n), std::vector<double>(m * n)};
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double total = 0.0, magnitude = 0.0;
      for (int64_t p = 0; p < k; ++p) {
        double a_ip = transpose_a == Transpose::kYes ? a[p * lda + i] : a[i * lda + p];
        double b_pj = transpose_b == Transpose::kYes ? b[j * ldb + p] : b[p * ldb + j];
        total += a_ip * b_pj;
        magnitude += std::fabs(a_ip * b_pj);
      }
      const double c_ij = beta == 0.0 ? 0.0 : beta * c[i * ldc + j];
      result.c[i * n + j] = alpha * total + c_ij;
      result.magnitude[i * n + j] = std::fabs(alpha) * magnitude + std::fabs(c_ij);
    }
  }
  return result;
}

// float32 GEMM error bound: K roundings of a sum bounded by `magnitude`, with room to spare.
inline void expect_close_to_reference(const std::vector<float>& actual, int64_t ldc,
                                      const ReferenceGemm& expected, int64_t m, int64_t n,
                                      int64_t k, const std::string& what) {
  const double epsilon = 1.2e-7;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const double tolerance = 4.0 * (k + 2) * epsilon * expected.magnitude[i * n + j] + 1e-30;
      ASSERT_NEAR(actual[i * ldc + j], expected.c[i * n + j], tolerance)
          << what << " at (" << i << ", " << j << ")";
    }
  }
}

// The float64 reference of bf16 rounding: the nearer of the two bf16 neighbours, ties to the
// one with an even last bit. Independent of runtime/bf16.h's bit trick.
inline float reference_round_to_bf16(float value) {
  if (std::isnan(value) || std::isinf(value) || value == 0.0f) return value;
  double exact = value;
  int exponent = 0;
  std::frexp(exact, &exponent);  // |exact| in [2^(exponent-1), 2^exponent)
  // bf16 keeps 8 significant bits; below the normal range the spacing stays 2^-133.
  const double spacing = std::ldexp(1.0, std::max(exponent - 8, -133));
  const double down = std::floor(exact / spacing) * spacing;
  const double up = down + spacing;
  double rounded;
  if (exact - down < up - exact) {
    rounded = down;
  } else if (up - exact < exact - down) {
    rounded = up;
  } else {
    rounded = std::fmod(std::floor(exact / spacing), 2.0) == 0.0 ? down : up;
  }
  return static_cast<float>(rounded);  // exact: rounded has 8 significant bits, or overflows
}

}  // namespace steerlm::testing
