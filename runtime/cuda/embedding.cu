// CUDA embedding kernels; runtime/kernels/embedding.cc is the reference.
#include <cub/device/device_radix_sort.cuh>

#include "runtime/cuda/embedding.h"
#include "runtime/cuda/kernel_util.cuh"

namespace steerlm::cuda {
namespace {

using detail::align_bytes;
using detail::kThreads;

// One block per token row (strided), threads over channels.
__global__ void embedding_forward_kernel(EmbeddingShape shape, const int32_t* tokens,
                                         const uint16_t* table, uint16_t* out) {
  for (int64_t i = blockIdx.x; i < shape.tokens; i += gridDim.x) {
    const int64_t row = static_cast<int64_t>(tokens[i]) - shape.vocab_begin;
    const bool owned = row >= 0 && row < shape.table_rows;
    uint16_t* destination = out + i * shape.channels;  // (C)
    for (int64_t c = threadIdx.x; c < shape.channels; c += blockDim.x) {
      destination[c] = owned ? table[row * shape.channels + c] : uint16_t{0};
    }
  }
}

// Sort keys: the table row of each token, or table_rows (sorted last, skipped) when not owned.
__global__ void embedding_keys_kernel(EmbeddingShape shape, const int32_t* tokens, int32_t* keys,
                                      int32_t* positions) {
  for (int64_t i = detail::global_index(); i < shape.tokens; i += detail::global_stride()) {
    const int64_t row = static_cast<int64_t>(tokens[i]) - shape.vocab_begin;
    const bool owned = row >= 0 && row < shape.table_rows;
    keys[i] = static_cast<int32_t>(owned ? row : shape.table_rows);
    positions[i] = static_cast<int32_t>(i);
  }
}

// One block per run of equal sorted keys (blocks at other positions return): each thread adds its
// channel's gradients of the run in token order, as the host loop does.
__global__ void embedding_scatter_kernel(EmbeddingShape shape, const int32_t* sorted_keys,
                                         const int32_t* sorted_positions, const uint16_t* dout,
                                         float* dtable) {
  for (int64_t p = blockIdx.x; p < shape.tokens; p += gridDim.x) {
    const int32_t key = sorted_keys[p];
    if (key >= shape.table_rows || (p > 0 && sorted_keys[p - 1] == key)) continue;
    for (int64_t c = threadIdx.x; c < shape.channels; c += blockDim.x) {
      float total = dtable[key * shape.channels + c];
      for (int64_t q = p; q < shape.tokens && sorted_keys[q] == key; ++q) {
        total += bf16_to_float(dout[sorted_positions[q] * shape.channels + c]);
      }
      dtable[key * shape.channels + c] = total;
    }
  }
}

// Workspace pieces: keys and positions before and after sorting (N int32 each), then cub's.
struct SortBuffers {
  int32_t* keys_in;
  int32_t* keys_out;
  int32_t* positions_in;
  int32_t* positions_out;
  void* cub_storage;
  size_t cub_bytes;
};

size_t cub_sort_bytes(int64_t tokens) {
  size_t bytes = 0;
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      nullptr, bytes, static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
      static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
      static_cast<int>(tokens)));
  return bytes;
}

SortBuffers carve(void* workspace, int64_t tokens) {
  const size_t array_bytes = align_bytes(static_cast<size_t>(tokens) * sizeof(int32_t));
  char* base = static_cast<char*>(workspace);
  return SortBuffers{reinterpret_cast<int32_t*>(base),
                     reinterpret_cast<int32_t*>(base + array_bytes),
                     reinterpret_cast<int32_t*>(base + 2 * array_bytes),
                     reinterpret_cast<int32_t*>(base + 3 * array_bytes),
                     base + 4 * array_bytes,
                     cub_sort_bytes(tokens)};
}

// Bits that hold every key 0..table_rows, so the radix sort skips the rest.
int key_bits(int64_t table_rows) {
  int bits = 1;
  while ((int64_t{1} << bits) <= table_rows) ++bits;
  return bits;
}

}  // namespace

void launch_embedding_forward(const EmbeddingShape& shape, const int32_t* tokens,
                              const uint16_t* table, uint16_t* out, cudaStream_t stream) {
  if (shape.tokens == 0) return;
  embedding_forward_kernel<<<detail::grid_for_rows(shape.tokens), kThreads, 0, stream>>>(
      shape, tokens, table, out);
  CUDA_CHECK_LAUNCH();
}

size_t embedding_backward_workspace_bytes(int64_t tokens) {
  return 4 * align_bytes(static_cast<size_t>(tokens) * sizeof(int32_t)) + cub_sort_bytes(tokens);
}

void launch_embedding_backward(const EmbeddingShape& shape, const int32_t* tokens,
                               const uint16_t* dout, float* dtable, void* workspace,
                               cudaStream_t stream) {
  if (shape.tokens == 0) return;
  SortBuffers buffers = carve(workspace, shape.tokens);

  // Key every token by its table row.
  embedding_keys_kernel<<<detail::grid_for(shape.tokens), kThreads, 0, stream>>>(
      shape, tokens, buffers.keys_in, buffers.positions_in);
  CUDA_CHECK_LAUNCH();

  // Group equal rows; the radix sort is stable, so each group keeps token order.
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      buffers.cub_storage, buffers.cub_bytes, buffers.keys_in, buffers.keys_out,
      buffers.positions_in, buffers.positions_out, static_cast<int>(shape.tokens), 0,
      key_bits(shape.table_rows), stream));

  // Add each group into its row.
  embedding_scatter_kernel<<<detail::grid_for_rows(shape.tokens), kThreads, 0, stream>>>(
      shape, buffers.keys_out, buffers.positions_out, dout, dtable);
  CUDA_CHECK_LAUNCH();
}

}  // namespace steerlm::cuda
