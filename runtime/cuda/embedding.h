// CUDA token embedding: lookup and its backward scatter-add, mirroring runtime/kernels/embedding.h
// with a bf16 table and activations and an f32 gradient table (DESIGN §5).
//
// Vocab-parallel (TP) tables are handled in place of model/llama_tp.cc's host loops: this rank's
// table holds rows [vocab_begin, vocab_begin + table_rows) of the vocabulary; a token outside
// them gives a zero row (the TP all-reduce adds the owner's row) and adds no gradient. A
// single-rank table is vocab_begin = 0, table_rows = V.
#pragma once

#ifdef STEERLM_HAVE_CUDA

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace steerlm::cuda {

struct EmbeddingShape {
  int64_t tokens = 0;       // N
  int64_t channels = 0;     // C
  int64_t table_rows = 0;   // V (V/TP for a vocab-parallel shard)
  int64_t vocab_begin = 0;  // first vocabulary id of this shard
};

// out (N, C) bf16 = table (V, C) bf16 [tokens (N) - vocab_begin], zero rows outside the shard.
void launch_embedding_forward(const EmbeddingShape& shape, const int32_t* tokens,
                              const uint16_t* table, uint16_t* out, cudaStream_t stream);

// Device scratch bytes launch_embedding_backward needs for `tokens` tokens.
size_t embedding_backward_workspace_bytes(int64_t tokens);

// dtable (V, C) f32 += scatter of dout (N, C) bf16 by tokens (N). Like the host kernel, each
// table row adds its tokens' gradients one by one in token order (a stable sort groups them), so
// the result is deterministic and equals the host's f32 sums of the same bf16 values.
void launch_embedding_backward(const EmbeddingShape& shape, const int32_t* tokens,
                               const uint16_t* dout, float* dtable, void* workspace,
                               cudaStream_t stream);

}  // namespace steerlm::cuda

#endif  // STEERLM_HAVE_CUDA
