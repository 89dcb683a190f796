// CUDA cross-entropy of the LM head, mirroring runtime/kernels/cross_entropy.h and the
// vocab-parallel version in model/llama_tp.cc. Logits are f32 or bf16 (a GEMM writes either);
// maxima, sums and exponentials are f32, loss sums f64.
//
// Vocab-parallel (TP) use, each rank holding `width` columns starting at vocabulary id
// vocab_begin; the caller reduces between the steps:
//   1. launch_cross_entropy_row_max        -> row_max (N)   all-reduce max over TP
//   2. launch_cross_entropy_sums           -> sums (2N)     all-reduce sum over TP
//   3. launch_cross_entropy_softmax_loss   -> probabilities in place, loss (this rank's rows)
//   4. launch_cross_entropy_backward       -> d logits in place
// A single rank runs launch_cross_entropy_forward (steps 1-3 with nothing between) and step 4.
#pragma once

#ifdef STEERLM_HAVE_CUDA

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace steerlm::cuda {

struct CrossEntropyShape {
  int64_t rows = 0;         // N
  int64_t width = 0;        // columns of this rank's logits: V, or V/TP when vocab-parallel
  int64_t vocab_begin = 0;  // vocabulary id of column 0
};

// Which rows step 3 turns into probabilities. The single-rank host kernel leaves rows with
// mask 0 as logits, the TP host path normalises every row; the backward zeroes such rows anyway.
enum class UntrainedRows { kLeave, kNormalise };

// 1. row_max (N) f32 = max over the row's columns. logits (N, width).
void launch_cross_entropy_row_max(const float* logits, const CrossEntropyShape& shape,
                                  float* row_max, cudaStream_t stream);
void launch_cross_entropy_row_max(const uint16_t* logits, const CrossEntropyShape& shape,
                                  float* row_max, cudaStream_t stream);

// 2. sums (2N) f32: [0, N) sum of exp(logit - row_max); [N, 2N) the target's logit when this
// rank's columns hold targets[n] (N, int32), else 0. One buffer, so TP reduces it in one call.
void launch_cross_entropy_sums(const float* logits, const int32_t* targets,
                               const CrossEntropyShape& shape, const float* row_max, float* sums,
                               cudaStream_t stream);
void launch_cross_entropy_sums(const uint16_t* logits, const int32_t* targets,
                               const CrossEntropyShape& shape, const float* row_max, float* sums,
                               cudaStream_t stream);

// Device scratch bytes for step 3 (row_losses) or for launch_cross_entropy_forward (all of it).
size_t cross_entropy_softmax_loss_workspace_bytes(int64_t rows);
size_t cross_entropy_forward_workspace_bytes(int64_t rows);

// 3. In place: logits become exp(logit - row_max) / sum (see UntrainedRows). *loss (device f64)
// = sum over rows of mask * (log(sum) + row_max - target logit), mask (N) f32, summed in an
// order fixed by N.
void launch_cross_entropy_softmax_loss(float* logits, const float* mask,
                                       const CrossEntropyShape& shape, const float* row_max,
                                       const float* sums, UntrainedRows untrained, void* workspace,
                                       double* loss, cudaStream_t stream);
void launch_cross_entropy_softmax_loss(uint16_t* logits, const float* mask,
                                       const CrossEntropyShape& shape, const float* row_max,
                                       const float* sums, UntrainedRows untrained, void* workspace,
                                       double* loss, cudaStream_t stream);

// Single rank, as kernels::cross_entropy_forward: logits (N, V) in place become probabilities on
// rows with mask != 0; *loss (device f64) = the masked sum of token losses.
void launch_cross_entropy_forward(float* logits, const int32_t* targets, const float* mask,
                                  int64_t rows, int64_t vocab, void* workspace, double* loss,
                                  cudaStream_t stream);
void launch_cross_entropy_forward(uint16_t* logits, const int32_t* targets, const float* mask,
                                  int64_t rows, int64_t vocab, void* workspace, double* loss,
                                  cudaStream_t stream);

// 4. In place: probabilities (N, width) become scale * mask * (p - onehot(target)); rows with
// mask 0 become zero; the onehot only where this rank's columns hold the target.
void launch_cross_entropy_backward(float* probs, const int32_t* targets, const float* mask,
                                   const CrossEntropyShape& shape, float scale,
                                   cudaStream_t stream);
void launch_cross_entropy_backward(uint16_t* probs, const int32_t* targets, const float* mask,
                                   const CrossEntropyShape& shape, float scale,
                                   cudaStream_t stream);

}  // namespace steerlm::cuda

#endif  // STEERLM_HAVE_CUDA
