// Rotary position embedding, Hugging Face rotate-half layout: within each head, element i pairs
// with i + HS/2, rotated by angle position * theta^(-2i/HS) (notes/names.md).
#pragma once

#include <cstdint>

namespace steerlm::kernels {

enum class RopeDirection {
  kForward,   // rotate by +angle (the forward pass)
  kBackward,  // rotate by -angle: the transpose, which maps output gradients to input gradients
};

// In place on x (N, H, HS): each row n rotated by positions[n]. The row stride is `row_stride`
// elements (>= H * HS), so q and k can be rotated inside a fused buffer.
template <typename T>
void rope_apply(T* x, int64_t rows, int64_t heads, int64_t head_size, int64_t row_stride,
                const int32_t* positions, double theta, RopeDirection direction);

}  // namespace steerlm::kernels
