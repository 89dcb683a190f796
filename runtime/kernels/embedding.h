// Token embedding lookup and its backward (a scatter-add into the table).
#pragma once

#include <cstdint>

namespace steerlm::kernels {

// out (N, C) = table (V, C)[tokens (N)].
template <typename T>
void embedding_forward(const int32_t* tokens, int64_t n, const T* table, int64_t channels, T* out);

// dtable (V, C) += scatter of dout (N, C) by tokens (N). Tokens are visited in order for every
// channel, so repeated tokens accumulate in a fixed order (bit-reproducible with any threads).
template <typename T>
void embedding_backward(const int32_t* tokens, int64_t n, const T* dout, int64_t channels,
                        T* dtable);

}  // namespace steerlm::kernels
