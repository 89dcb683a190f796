// Generic elementwise and reduction ops on Tensors, for any device: OpenMP loops on the host (the
// reference), CUDA kernels in runtime/cuda/elementwise.cu on a GPU, chosen by the tensors' device.
//
// Operands are treated as flat arrays of numel elements: they need equal numel (any shapes), one
// device, and f32 unless a function says otherwise. Outputs may alias inputs (in place). CUDA ops
// run on the thread's current stream (runtime/cuda/stream.h); reductions wait for their result.
//
// Reductions accumulate in double in an order fixed by numel alone, so results do not depend on
// the thread count or on the run: the host reference is reproducible bit for bit.
#pragma once

#include "runtime/tensor.h"

namespace steerlm::ops {

// out[i] = value. out: f32, bf16 (rounded to nearest even) or i32 (value must be an integer).
void fill(Tensor& out, float value);

// destination[i] = source[i]; same dtype (any), any devices.
void copy(const Tensor& source, Tensor& destination);

// out = a + b.
void add(const Tensor& a, const Tensor& b, Tensor& out);

// y += alpha * x (BLAS axpy).
void add_scaled(const Tensor& x, float alpha, Tensor& y);

// out = a * b, elementwise.
void multiply(const Tensor& a, const Tensor& b, Tensor& out);

// out = alpha * x; scale(x, alpha, x) scales in place.
void scale(const Tensor& x, float alpha, Tensor& out);

// destination = source converted between f32 and bf16 (round to nearest even; NaN stays NaN).
// Equal dtypes copy.
void convert(const Tensor& source, Tensor& destination);

// Reductions over all elements of an f32 or bf16 tensor.
double sum(const Tensor& x);
// Sum of squares: the global gradient norm is sqrt of the sum of this over all gradients.
double sum_squares(const Tensor& x);
// max |x[i]|; NaN when any element is NaN (so a NaN cannot hide); 0 for an empty tensor.
double max_abs(const Tensor& x);

}  // namespace steerlm::ops
