// CUDA materialised-softmax attention: the cuBLASLt GEMMs around the row kernels of
// attention_softmax.cu. runtime/kernels/attention.cc is the reference.
#ifdef STEERLM_HAVE_CUDA

#include "runtime/cuda/attention.h"

#include <glog/logging.h>

#include <cmath>

#include "runtime/cuda/attention_softmax.h"
#include "runtime/cuda/cublaslt_gemm.h"

namespace steerlm::cuda {
namespace {

constexpr int64_t kMaxGridY = 65535;

// Rounds a byte count up to 256, keeping each workspace piece aligned for cuBLASLt.
size_t align_bytes(size_t bytes) {
  return (bytes + 255) / 256 * 256;
}

// One strided-batched GEMM over the KV heads; operands are described row-major as in gemm.h.
struct Operand {
  const void* data;
  int64_t ld;
  int64_t stride;  // between KV heads
};

void gemm_over_kv_heads(Device device, const AttentionShape& shape, Transpose ta, Transpose tb,
                        int64_t m, int64_t n, int64_t k, float alpha, Operand a, Operand b,
                        float beta, void* c, int64_t ldc, int64_t stride_c, DType output,
                        cudaStream_t stream) {
  LtGemmShape gemm;
  gemm.transpose_a = ta;
  gemm.transpose_b = tb;
  gemm.m = m;
  gemm.n = n;
  gemm.k = k;
  gemm.lda = a.ld;
  gemm.ldb = b.ld;
  gemm.ldc = ldc;
  gemm.stride_a = a.stride;
  gemm.stride_b = b.stride;
  gemm.stride_c = stride_c;
  gemm.batch = shape.kv_heads;
  gemm.input_dtype = DType::kBF16;
  gemm.output_dtype = output;
  cublaslt_gemm(device, gemm, alpha, a.data, b.data, beta, c, stream);
}

// Workspace pieces (device): run starts (B, T) int32, then f32 scores or dP (NH, T, T) and, for
// the backward, dS (KVH, T, T) bf16 and the dK, dV accumulators (T, KVH * HS) f32 each.
struct Workspace {
  int32_t* run_start;
  float* scores;
  uint16_t* dscores;
  float* dk_sum;
  float* dv_sum;
};

Workspace carve(const AttentionShape& shape, void* workspace) {
  const int64_t seq = shape.seq_len;
  const size_t starts = align_bytes(shape.batch * seq * sizeof(int32_t));
  const size_t scores = align_bytes(shape.heads * seq * seq * sizeof(float));
  const size_t dscores = align_bytes(shape.kv_heads * seq * seq * sizeof(uint16_t));
  const size_t kv_sum = align_bytes(seq * shape.kv_heads * shape.head_size * sizeof(float));
  char* base = static_cast<char*>(workspace);
  return Workspace{reinterpret_cast<int32_t*>(base), reinterpret_cast<float*>(base + starts),
                   reinterpret_cast<uint16_t*>(base + starts + scores),
                   reinterpret_cast<float*>(base + starts + scores + dscores),
                   reinterpret_cast<float*>(base + starts + scores + dscores + kv_sum)};
}

void check_shape(const AttentionShape& shape) {
  CHECK_GT(shape.kv_heads, 0);
  CHECK_EQ(shape.heads % shape.kv_heads, 0) << "query heads must be a multiple of KV heads";
  CHECK_GE(shape.q_stride, shape.heads * shape.head_size);
  CHECK_GE(shape.kv_stride, shape.kv_heads * shape.head_size);
  CHECK_LE(shape.heads, kMaxGridY) << "one block per score row";
}

}  // namespace

size_t attention_workspace_bytes(const AttentionShape& shape) {
  const int64_t seq = shape.seq_len;
  return align_bytes(shape.batch * seq * sizeof(int32_t)) +
         align_bytes(shape.heads * seq * seq * sizeof(float)) +
         align_bytes(shape.kv_heads * seq * seq * sizeof(uint16_t)) +
         2 * align_bytes(seq * shape.kv_heads * shape.head_size * sizeof(float));
}

void attention_forward(Device device, const AttentionShape& shape, const uint16_t* q,
                       const uint16_t* k, const uint16_t* v, const int32_t* segments,
                       uint16_t* probs, uint16_t* out, void* workspace, cudaStream_t stream) {
  check_shape(shape);
  if (shape.batch == 0 || shape.seq_len == 0) return;
  const int64_t seq = shape.seq_len, hs = shape.head_size;
  const int64_t group = shape.heads / shape.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  Workspace scratch = carve(shape, workspace);

  // Where each token's run starts, for the masks.
  launch_attention_run_starts(segments, shape.batch, seq, scratch.run_start, stream);

  for (int64_t b = 0; b < shape.batch; ++b) {
    const uint16_t* q_b = q + b * seq * shape.q_stride;       // (T, NH, HS)
    const uint16_t* k_b = k + b * seq * shape.kv_stride;      // (T, KVH, HS)
    const uint16_t* v_b = v + b * seq * shape.kv_stride;      // (T, KVH, HS)
    uint16_t* probs_b = probs + b * shape.heads * seq * seq;  // (NH, T, T)

    // Scores S_h = scale * Q_h K_g^T (T, T) f32, head h = g * group + j.
    for (int64_t j = 0; j < group; ++j) {
      gemm_over_kv_heads(device, shape, Transpose::kNo, Transpose::kYes, seq, seq, hs, scale,
                         {q_b + j * hs, shape.q_stride, group * hs}, {k_b, shape.kv_stride, hs},
                         0.0f, scratch.scores + j * seq * seq, seq, group * seq * seq, DType::kF32,
                         stream);
    }

    // Masked softmax into the saved probabilities.
    launch_attention_softmax_forward(scratch.scores, scratch.run_start + b * seq, shape.heads, seq,
                                     probs_b, stream);

    // out_h = P_h V_g (T, HS) bf16.
    for (int64_t j = 0; j < group; ++j) {
      gemm_over_kv_heads(device, shape, Transpose::kNo, Transpose::kNo, seq, hs, seq, 1.0f,
                         {probs_b + j * seq * seq, seq, group * seq * seq},
                         {v_b, shape.kv_stride, hs}, 0.0f, out + b * seq * shape.q_stride + j * hs,
                         shape.q_stride, group * hs, DType::kBF16, stream);
    }
  }
}

void attention_backward(Device device, const AttentionShape& shape, const uint16_t* dout,
                        const uint16_t* q, const uint16_t* k, const uint16_t* v,
                        const uint16_t* probs, uint16_t* dq, uint16_t* dk, uint16_t* dv,
                        void* workspace, cudaStream_t stream) {
  check_shape(shape);
  if (shape.batch == 0 || shape.seq_len == 0) return;
  const int64_t seq = shape.seq_len, hs = shape.head_size, kvh = shape.kv_heads;
  const int64_t group = shape.heads / kvh;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  Workspace scratch = carve(shape, workspace);
  float* dprobs = scratch.scores;  // (KVH, T, T) f32, reusing the scores' space

  for (int64_t b = 0; b < shape.batch; ++b) {
    const int64_t q_offset = b * seq * shape.q_stride, kv_offset = b * seq * shape.kv_stride;
    const uint16_t* probs_b = probs + b * shape.heads * seq * seq;  // (NH, T, T)

    // Each position j of the KV groups, batched over the groups; j = 0 overwrites the sums.
    for (int64_t j = 0; j < group; ++j) {
      const Operand dout_j{dout + q_offset + j * hs, shape.q_stride, group * hs};
      const Operand probs_j{probs_b + j * seq * seq, seq, group * seq * seq};
      const float kv_beta = j == 0 ? 0.0f : 1.0f;

      // dV_g += P_h^T dO_h; dP = dO_h V_g^T.
      gemm_over_kv_heads(device, shape, Transpose::kYes, Transpose::kNo, seq, hs, seq, 1.0f,
                         probs_j, dout_j, kv_beta, scratch.dv_sum, kvh * hs, hs, DType::kF32,
                         stream);
      gemm_over_kv_heads(device, shape, Transpose::kNo, Transpose::kYes, seq, seq, hs, 1.0f, dout_j,
                         {v + kv_offset, shape.kv_stride, hs}, 0.0f, dprobs, seq, seq * seq,
                         DType::kF32, stream);

      // dS = P * (dP - rowsum(dP * P)) * scale.
      launch_attention_softmax_backward(probs_b + j * seq * seq, group * seq * seq, dprobs, kvh,
                                        seq, scale, scratch.dscores, stream);

      // dQ_h = dS K_g; dK_g += dS^T Q_h.
      const Operand dscores{scratch.dscores, seq, seq * seq};
      gemm_over_kv_heads(device, shape, Transpose::kNo, Transpose::kNo, seq, hs, seq, 1.0f, dscores,
                         {k + kv_offset, shape.kv_stride, hs}, 0.0f, dq + q_offset + j * hs,
                         shape.q_stride, group * hs, DType::kBF16, stream);
      gemm_over_kv_heads(device, shape, Transpose::kYes, Transpose::kNo, seq, hs, seq, 1.0f,
                         dscores, {q + q_offset + j * hs, shape.q_stride, group * hs}, kv_beta,
                         scratch.dk_sum, kvh * hs, hs, DType::kF32, stream);
    }

    // Round the group sums once into dK, dV.
    launch_narrow_rows(scratch.dk_sum, seq, kvh * hs, shape.kv_stride, dk + kv_offset, stream);
    launch_narrow_rows(scratch.dv_sum, seq, kvh * hs, shape.kv_stride, dv + kv_offset, stream);
  }
}

}  // namespace steerlm::cuda

#endif  // STEERLM_HAVE_CUDA
