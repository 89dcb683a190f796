// SwiGLU activation of the Llama MLP: h = silu(gate) * up, silu(g) = g * sigmoid(g).
#pragma once

#include <cstdint>

namespace steerlm::kernels {

// out (n) = silu(gate) * up, elementwise over n values.
template <typename T>
void swiglu_forward(const T* gate, const T* up, int64_t n, T* out);

// dgate, dup (n) from dout (n); overwritten, not accumulated.
template <typename T>
void swiglu_backward(const T* dout, const T* gate, const T* up, int64_t n, T* dgate, T* dup);

}  // namespace steerlm::kernels
