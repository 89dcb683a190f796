// RMSNorm: y = x / sqrt(mean(x^2) + eps) * w, per row of C channels (Llama; no bias, no mean).
#pragma once

#include <cstdint>

namespace steerlm::kernels {

// out (N, C), rstd (N) = 1 / sqrt(mean(x^2) + eps), saved for the backward.
template <typename T>
void rmsnorm_forward(const T* x, const T* weight, int64_t rows, int64_t channels, double eps,
                     T* out, T* rstd);

// dx (N, C) = (accumulate ? dx : 0) + d/dx; dweight (C) += sum over rows of dout * x * rstd.
// The weight reduction runs over fixed row blocks summed in order: deterministic.
template <typename T>
void rmsnorm_backward(const T* dout, const T* x, const T* weight, const T* rstd, int64_t rows,
                      int64_t channels, T* dx, T* dweight, bool accumulate_dx);

}  // namespace steerlm::kernels
