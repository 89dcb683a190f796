// Choosing the next token from device logits.
//
// Greedy decoding runs on the device: launch_argmax picks each row's lowest id among equal
// maxima, as TokenSampler's greedy path (model/sampling.h) does, so only N token ids cross to
// the host. Sampling with temperature, top-k or top-p deliberately runs on the host:
// copy_logits_to_host brings the rows back as f32 and the caller feeds them to TokenSampler.
// That keeps one implementation of the seeded random stream (a counter-based hash that makes a
// sequence's tokens independent of its batch), so CPU and GPU runs sample the same tokens from
// the same logits; the copy is one row of V floats per sequence per decoding step, small next to
// the forward pass that produced it.
#pragma once

#ifdef STEERLM_HAVE_CUDA

#include <cuda_runtime.h>

#include <cstdint>

namespace steerlm::cuda {

// tokens (N) int32, device = argmax over each row of logits (N, V), f32 or bf16. Rows holding
// NaN give an unspecified id among the non-NaN maxima (the host scan is order dependent there).
void launch_argmax(const float* logits, int64_t rows, int64_t vocab, int32_t* tokens,
                   cudaStream_t stream);
void launch_argmax(const uint16_t* logits, int64_t rows, int64_t vocab, int32_t* tokens,
                   cudaStream_t stream);

// host (N, V) f32 = logits (N, V) on the device; bf16 widens exactly. Waits for the stream.
void copy_logits_to_host(const float* logits, int64_t rows, int64_t vocab, float* host,
                         cudaStream_t stream);
void copy_logits_to_host(const uint16_t* logits, int64_t rows, int64_t vocab, float* host,
                         cudaStream_t stream);

}  // namespace steerlm::cuda

#endif  // STEERLM_HAVE_CUDA
