// Llama training-step MFU and prefill throughput on one GPU, built from steerlm's CUDA kernels
// (runtime/cuda/) and cuBLASLt GEMMs, for a ~1.1B-parameter Llama (TinyLlama's shape).
//
// What this measures: model/LlamaCore still runs on host vectors (it has no CUDA path), so this
// composes the same layer directly from the kernels a device path will call: RMSNorm, fused QKV
// projection, RoPE, grouped-query causal attention, SwiGLU MLP, residuals, the LM head with
// cross-entropy, the backward of all of it, global-norm clipping and AdamW on f32 master weights
// with the bf16 copy written back. It is what these kernels reach on this GPU, not a run of
// `steerlm sft`.
//
// FLOPs per token = 6 P + 6 L C T, P the parameters of every matmul (LM head included, the input
// embedding lookup excluded), 6 L C T the causal attention (QK^T and PV, forward and backward,
// half of the T x T masked). Prefill (annotation) runs the layers forward only: 2 P_layers +
// 2 L C T per token. MFU = FLOP/s over the GPU's dense bf16 peak (989.4 TFLOP/s for H100/H200
// SXM; set STEERLM_PEAK_TFLOPS for others).
//
// Usage: llama_step_bench [--steps N] [--batch B] [--seq T] [--layers L] [--flash]
// Prints "MFU ..." and "prefill tokens/s ..." lines that tests/gpu/run_device_checks.sh collects.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "runtime/check.h"
#include "runtime/cuda/adamw.h"
#include "runtime/cuda/attention.h"
#include "runtime/cuda/cross_entropy.h"
#include "runtime/cuda/cublaslt_gemm.h"
#include "runtime/cuda/device.h"
#include "runtime/cuda/elementwise.h"
#include "runtime/cuda/embedding.h"
#include "runtime/cuda/flash_attention.h"
#include "runtime/cuda/grad_clip.h"
#include "runtime/cuda/rmsnorm.h"
#include "runtime/cuda/rope.h"
#include "runtime/cuda/swiglu.h"
#include "runtime/device_memory.h"
#include "runtime/logging.h"
#include "runtime/ops.h"

namespace steerlm {
namespace {

const Device kGpu = Device::cuda(0);
constexpr cudaStream_t kStream = nullptr;  // the legacy default stream, as ops:: uses
using bf16 = uint16_t;

struct Config {
  int64_t dim = 2048, layers = 22, heads = 32, kv_heads = 4, ffn = 5632, vocab = 32000;
  int64_t batch = 4, seq = 2048;
  int steps = 6;
  bool flash = false;
  int64_t head_size() const { return dim / heads; }
  int64_t qkv() const { return (heads + 2 * kv_heads) * head_size(); }
  int64_t tokens() const { return batch * seq; }
  int64_t layer_params() const { return qkv() * dim + dim * dim + 3 * ffn * dim; }
  int64_t matmul_params() const { return layers * layer_params() + vocab * dim; }
};

Tensor device_buffer(int64_t count, DType dtype) {
  return Tensor::empty({count}, dtype, kGpu);
}
template <typename T>
T* ptr(Tensor& tensor) {
  return static_cast<T*>(tensor.raw());
}

// Row-major C (M, N) = alpha op(A) op(B) + beta C with bf16 inputs (gemm.h conventions).
void gemm(Transpose ta, Transpose tb, int64_t m, int64_t n, int64_t k, const bf16* a, int64_t lda,
          const bf16* b, int64_t ldb, float beta, void* c, int64_t ldc, DType output) {
  cuda::LtGemmShape shape;
  shape.transpose_a = ta;
  shape.transpose_b = tb;
  shape.m = m;
  shape.n = n;
  shape.k = k;
  shape.lda = lda;
  shape.ldb = ldb;
  shape.ldc = ldc;
  shape.output_dtype = output;
  cuda::cublaslt_gemm(kGpu, shape, 1.0f, a, b, beta, c, kStream);
}

// One trained tensor: f32 master, gradient and moments, and the bf16 copy the layers read.
struct Param {
  Tensor master, grad, exp_avg, exp_avg_sq, work;
  int64_t size = 0;
  bool decay = true;

  Param(int64_t n, float scale, uint64_t seed, bool decayed) : size(n), decay(decayed) {
    std::vector<float> values(n);
    uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
    for (float& value : values) {  // uniform in [-scale, scale), an LCG: fast for 1e9 values
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      value = scale * (static_cast<float>(state >> 40) / 8388608.0f - 1.0f);
    }
    master = Tensor::from_floats(values, {n}).to(kGpu);
    grad = Tensor::zeros({n}, DType::kF32, kGpu);
    exp_avg = Tensor::zeros({n}, DType::kF32, kGpu);
    exp_avg_sq = Tensor::zeros({n}, DType::kF32, kGpu);
    work = Tensor::empty({n}, DType::kBF16, kGpu);
    ops::convert(master, work);
  }
  const bf16* w() { return ptr<bf16>(work); }
  float* g() { return ptr<float>(grad); }
};

struct Layer {
  Param norm1, wqkv, wo, norm2, wg, wu, wd;
  Layer(const Config& c, uint64_t seed)
      : norm1(c.dim, 0.0f, seed, false),
        wqkv(c.qkv() * c.dim, 0.02f, seed + 1, true),
        wo(c.dim * c.dim, 0.02f, seed + 2, true),
        norm2(c.dim, 0.0f, seed + 3, false),
        wg(c.ffn * c.dim, 0.02f, seed + 4, true),
        wu(c.ffn * c.dim, 0.02f, seed + 5, true),
        wd(c.dim * c.ffn, 0.02f, seed + 6, true) {
    ops::fill(norm1.master, 1.0f);
    ops::fill(norm2.master, 1.0f);
    ops::convert(norm1.master, norm1.work);
    ops::convert(norm2.master, norm2.work);
  }
  std::vector<Param*> params() { return {&norm1, &wqkv, &wo, &norm2, &wg, &wu, &wd}; }
};

// What a layer's forward saves for its backward (N = B T tokens).
struct Saved {
  Tensor x, h1, rstd1, qkv, att, stats, x2, h2, rstd2, gate, up, act;
  Saved(const Config& c) {
    const int64_t n = c.tokens();
    h1 = device_buffer(n * c.dim, DType::kBF16);     // (N, C)
    rstd1 = device_buffer(n, DType::kF32);           // (N)
    qkv = device_buffer(n * c.qkv(), DType::kBF16);  // (N, QKV) after RoPE
    att = device_buffer(n * c.qkv(), DType::kBF16);  // (N, C) in rows of QKV (q_stride)
    stats = c.flash ? device_buffer(c.batch * c.heads * c.seq, DType::kF32)  // lse (B, NH, T)
                    : device_buffer(c.batch * c.heads * c.seq * c.seq, DType::kBF16);  // P
    x2 = device_buffer(n * c.dim, DType::kBF16);                                       // (N, C)
    h2 = device_buffer(n * c.dim, DType::kBF16);                                       // (N, C)
    rstd2 = device_buffer(n, DType::kF32);                                             // (N)
    gate = device_buffer(n * c.ffn, DType::kBF16);                                     // (N, F)
    up = device_buffer(n * c.ffn, DType::kBF16);                                       // (N, F)
    act = device_buffer(n * c.ffn, DType::kBF16);                                      // (N, F)
  }
};

class Model {
 public:
  explicit Model(const Config& c);
  // One training step on tokens/targets; returns the loss (mean over tokens).
  double train_step(int64_t step);
  // The layers forward only (prefill).
  void prefill();

 private:
  kernels::AttentionShape attention_shape() const;
  void layer_forward(Layer& layer, Saved& saved, const Tensor& x, Tensor& out);
  void layer_backward(Layer& layer, Saved& saved, Tensor& dout, Tensor& dx);
  void optimizer_step(int64_t step);

  Config c_;
  Param embedding_, final_norm_, lm_head_;
  std::vector<Layer> layers_;
  std::vector<Saved> saved_;
  std::vector<Tensor> residual_;  // (L + 1) x (N, C): each layer's input, then the final output
  Tensor tokens_, targets_, mask_, positions_, segments_;
  Tensor hf_, rstdf_, logits_, loss_, grad_a_, grad_b_, dh_, datt_, dqkv_, dact_, dgate_, dup_;
  Tensor workspace_, norms_, partials_, norm_, coefficient_;
};

Model::Model(const Config& c)
    : c_(c),
      embedding_(c.vocab * c.dim, 0.02f, 1, false),
      final_norm_(c.dim, 0.0f, 2, false),
      lm_head_(c.vocab * c.dim, 0.02f, 3, true) {
  ops::fill(final_norm_.master, 1.0f);
  ops::convert(final_norm_.master, final_norm_.work);
  layers_.reserve(c.layers);
  for (int64_t l = 0; l < c.layers; ++l) {
    layers_.emplace_back(c, 100 + 10 * l);
    saved_.emplace_back(c);
  }
  const int64_t n = c.tokens();
  for (int64_t l = 0; l <= c.layers; ++l)
    residual_.push_back(device_buffer(n * c.dim, DType::kBF16));

  // Random tokens, next-token targets, every token trained, one sequence per row.
  std::vector<int32_t> tokens(n), targets(n), positions(n), segments(n, 1);
  uint64_t state = 12345;
  for (int64_t i = 0; i < n; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    tokens[i] = static_cast<int32_t>((state >> 33) % c.vocab);
    positions[i] = static_cast<int32_t>(i % c.seq);
  }
  for (int64_t i = 0; i < n; ++i) targets[i] = tokens[(i + 1) % n];
  tokens_ = Tensor::from_ints(tokens, {n}).to(kGpu);
  targets_ = Tensor::from_ints(targets, {n}).to(kGpu);
  positions_ = Tensor::from_ints(positions, {n}).to(kGpu);
  segments_ = Tensor::from_ints(segments, {n}).to(kGpu);
  mask_ = Tensor::from_floats(std::vector<float>(n, 1.0f), {n}).to(kGpu);

  hf_ = device_buffer(n * c.dim, DType::kBF16);        // (N, C)
  rstdf_ = device_buffer(n, DType::kF32);              // (N)
  logits_ = device_buffer(n * c.vocab, DType::kBF16);  // (N, V)
  loss_ = device_buffer(2, DType::kF32);               // one f64
  grad_a_ = device_buffer(n * c.dim, DType::kBF16);    // (N, C) residual gradients, ping-pong
  grad_b_ = device_buffer(n * c.dim, DType::kBF16);    // (N, C)
  dh_ = device_buffer(n * c.dim, DType::kBF16);        // (N, C)
  datt_ = device_buffer(n * c.qkv(), DType::kBF16);    // (N, C) in rows of QKV
  dqkv_ = device_buffer(n * c.qkv(), DType::kBF16);    // (N, QKV)
  dact_ = device_buffer(n * c.ffn, DType::kBF16);      // (N, F)
  dgate_ = device_buffer(n * c.ffn, DType::kBF16);     // (N, F)
  dup_ = device_buffer(n * c.ffn, DType::kBF16);       // (N, F)
  size_t workspace = std::max(cuda::rmsnorm_backward_workspace_bytes(n, c.dim),
                              cuda::embedding_backward_workspace_bytes(n));
  workspace = std::max(workspace, cuda::cross_entropy_forward_workspace_bytes(n));
  workspace = std::max(workspace, c.flash ? cuda::flash_attention_workspace_bytes(attention_shape())
                                          : cuda::attention_workspace_bytes(attention_shape()));
  workspace_ = device_buffer(static_cast<int64_t>(workspace / 4 + 64), DType::kI32);
  const int64_t param_count = 3 + 7 * c.layers;
  norms_ = device_buffer(2 * param_count, DType::kF32);  // (params) f64 sums of squares
  partials_ = device_buffer(2 * 1024, DType::kF32);      // reduction partials, f64
  norm_ = device_buffer(2, DType::kF32);
  coefficient_ = device_buffer(1, DType::kF32);
}

kernels::AttentionShape Model::attention_shape() const {
  return {c_.batch, c_.seq, c_.heads, c_.kv_heads, c_.head_size(), c_.qkv(), c_.qkv()};
}

void Model::layer_forward(Layer& layer, Saved& s, const Tensor& x_in, Tensor& out) {
  const int64_t n = c_.tokens(), dim = c_.dim, qkv = c_.qkv(), ffn = c_.ffn;
  const int64_t q_cols = c_.heads * c_.head_size(), kv_cols = c_.kv_heads * c_.head_size();
  s.x = x_in;
  const bf16* x = static_cast<const bf16*>(x_in.raw());

  // Attention block: x2 = x + Attention(RoPE(RMSNorm(x) Wqkv^T)) Wo^T.
  cuda::launch_rmsnorm_forward(x, layer.norm1.w(), n, dim, 1e-5, ptr<bf16>(s.h1),
                               ptr<float>(s.rstd1), kStream);
  gemm(Transpose::kNo, Transpose::kYes, n, qkv, dim, ptr<bf16>(s.h1), dim, layer.wqkv.w(), dim,
       0.0f, s.qkv.raw(), qkv, DType::kBF16);
  bf16* q = ptr<bf16>(s.qkv);
  cuda::launch_rope(q, n, c_.heads, c_.head_size(), qkv, ptr<int32_t>(positions_), 10000.0,
                    kernels::RopeDirection::kForward, kStream);
  cuda::launch_rope(q + q_cols, n, c_.kv_heads, c_.head_size(), qkv, ptr<int32_t>(positions_),
                    10000.0, kernels::RopeDirection::kForward, kStream);
  if (c_.flash) {
    cuda::launch_flash_attention_forward(attention_shape(), q, q + q_cols, q + q_cols + kv_cols,
                                         ptr<int32_t>(segments_), ptr<bf16>(s.att),
                                         ptr<float>(s.stats), workspace_.raw(), kStream);
  } else {
    cuda::attention_forward(kGpu, attention_shape(), q, q + q_cols, q + q_cols + kv_cols,
                            ptr<int32_t>(segments_), ptr<bf16>(s.stats), ptr<bf16>(s.att),
                            workspace_.raw(), kStream);
  }
  CUDA_CHECK(
      cudaMemcpyAsync(s.x2.raw(), x, n * dim * sizeof(bf16), cudaMemcpyDeviceToDevice, kStream));
  gemm(Transpose::kNo, Transpose::kYes, n, dim, dim, ptr<bf16>(s.att), qkv, layer.wo.w(), dim, 1.0f,
       s.x2.raw(), dim, DType::kBF16);

  // MLP block: out = x2 + SwiGLU(RMSNorm(x2) Wg^T, RMSNorm(x2) Wu^T) Wd^T.
  cuda::launch_rmsnorm_forward(ptr<bf16>(s.x2), layer.norm2.w(), n, dim, 1e-5, ptr<bf16>(s.h2),
                               ptr<float>(s.rstd2), kStream);
  gemm(Transpose::kNo, Transpose::kYes, n, ffn, dim, ptr<bf16>(s.h2), dim, layer.wg.w(), dim, 0.0f,
       s.gate.raw(), ffn, DType::kBF16);
  gemm(Transpose::kNo, Transpose::kYes, n, ffn, dim, ptr<bf16>(s.h2), dim, layer.wu.w(), dim, 0.0f,
       s.up.raw(), ffn, DType::kBF16);
  cuda::launch_swiglu_forward(ptr<bf16>(s.gate), ptr<bf16>(s.up), n * ffn, ptr<bf16>(s.act),
                              kStream);
  CUDA_CHECK(cudaMemcpyAsync(out.raw(), s.x2.raw(), n * dim * sizeof(bf16),
                             cudaMemcpyDeviceToDevice, kStream));
  gemm(Transpose::kNo, Transpose::kYes, n, dim, ffn, ptr<bf16>(s.act), ffn, layer.wd.w(), ffn, 1.0f,
       out.raw(), dim, DType::kBF16);
}

// dout (N, C): gradient of the layer's output; dx (N, C): of its input. Weight gradients add.
void Model::layer_backward(Layer& layer, Saved& s, Tensor& dout, Tensor& dx) {
  const int64_t n = c_.tokens(), dim = c_.dim, qkv = c_.qkv(), ffn = c_.ffn;
  const int64_t q_cols = c_.heads * c_.head_size(), kv_cols = c_.kv_heads * c_.head_size();
  const bf16* dy = ptr<bf16>(dout);

  // MLP block: weight gradients, then d act, SwiGLU, d h2, and the norm into d x2 (= dx here).
  gemm(Transpose::kYes, Transpose::kNo, dim, ffn, n, dy, dim, ptr<bf16>(s.act), ffn, 1.0f,
       layer.wd.g(), ffn, DType::kF32);
  gemm(Transpose::kNo, Transpose::kNo, n, ffn, dim, dy, dim, layer.wd.w(), ffn, 0.0f, dact_.raw(),
       ffn, DType::kBF16);
  cuda::launch_swiglu_backward(ptr<bf16>(dact_), ptr<bf16>(s.gate), ptr<bf16>(s.up), n * ffn,
                               ptr<bf16>(dgate_), ptr<bf16>(dup_), kStream);
  gemm(Transpose::kYes, Transpose::kNo, ffn, dim, n, ptr<bf16>(dgate_), ffn, ptr<bf16>(s.h2), dim,
       1.0f, layer.wg.g(), dim, DType::kF32);
  gemm(Transpose::kYes, Transpose::kNo, ffn, dim, n, ptr<bf16>(dup_), ffn, ptr<bf16>(s.h2), dim,
       1.0f, layer.wu.g(), dim, DType::kF32);
  gemm(Transpose::kNo, Transpose::kNo, n, dim, ffn, ptr<bf16>(dgate_), ffn, layer.wg.w(), dim, 0.0f,
       dh_.raw(), dim, DType::kBF16);
  gemm(Transpose::kNo, Transpose::kNo, n, dim, ffn, ptr<bf16>(dup_), ffn, layer.wu.w(), dim, 1.0f,
       dh_.raw(), dim, DType::kBF16);
  CUDA_CHECK(
      cudaMemcpyAsync(dx.raw(), dy, n * dim * sizeof(bf16), cudaMemcpyDeviceToDevice, kStream));
  cuda::launch_rmsnorm_backward(ptr<bf16>(dh_), ptr<bf16>(s.x2), layer.norm2.w(),
                                ptr<float>(s.rstd2), n, dim, ptr<bf16>(dx), layer.norm2.g(),
                                cuda::GradientWrite::kAccumulate, workspace_.raw(), kStream);

  // Attention block, from d x2 (in dx): Wo, attention, RoPE inverse, Wqkv, norm into dx.
  const bf16* dx2 = ptr<bf16>(dx);
  gemm(Transpose::kYes, Transpose::kNo, dim, dim, n, dx2, dim, ptr<bf16>(s.att), qkv, 1.0f,
       layer.wo.g(), dim, DType::kF32);
  gemm(Transpose::kNo, Transpose::kNo, n, dim, dim, dx2, dim, layer.wo.w(), dim, 0.0f, datt_.raw(),
       qkv, DType::kBF16);
  const bf16* q = ptr<bf16>(s.qkv);
  bf16* dq = ptr<bf16>(dqkv_);
  if (c_.flash) {
    cuda::launch_flash_attention_backward(
        attention_shape(), ptr<bf16>(datt_), q, q + q_cols, q + q_cols + kv_cols, ptr<bf16>(s.att),
        ptr<float>(s.stats), ptr<int32_t>(segments_), dq, dq + q_cols, dq + q_cols + kv_cols,
        workspace_.raw(), kStream);
  } else {
    cuda::attention_backward(kGpu, attention_shape(), ptr<bf16>(datt_), q, q + q_cols,
                             q + q_cols + kv_cols, ptr<bf16>(s.stats), dq, dq + q_cols,
                             dq + q_cols + kv_cols, workspace_.raw(), kStream);
  }
  cuda::launch_rope(dq, n, c_.heads, c_.head_size(), qkv, ptr<int32_t>(positions_), 10000.0,
                    kernels::RopeDirection::kBackward, kStream);
  cuda::launch_rope(dq + q_cols, n, c_.kv_heads, c_.head_size(), qkv, ptr<int32_t>(positions_),
                    10000.0, kernels::RopeDirection::kBackward, kStream);
  gemm(Transpose::kYes, Transpose::kNo, qkv, dim, n, dq, qkv, ptr<bf16>(s.h1), dim, 1.0f,
       layer.wqkv.g(), dim, DType::kF32);
  gemm(Transpose::kNo, Transpose::kNo, n, dim, qkv, dq, qkv, layer.wqkv.w(), dim, 0.0f, dh_.raw(),
       dim, DType::kBF16);
  cuda::launch_rmsnorm_backward(ptr<bf16>(dh_), static_cast<const bf16*>(s.x.raw()),
                                layer.norm1.w(), ptr<float>(s.rstd1), n, dim, ptr<bf16>(dx),
                                layer.norm1.g(), cuda::GradientWrite::kAccumulate, workspace_.raw(),
                                kStream);
}

double Model::train_step(int64_t step) {
  const int64_t n = c_.tokens(), dim = c_.dim, vocab = c_.vocab;
  for (Layer& layer : layers_) {
    for (Param* param : layer.params()) param->grad.zero();
  }
  embedding_.grad.zero();
  final_norm_.grad.zero();
  lm_head_.grad.zero();

  // Forward: embedding, layers, final norm, LM head, cross-entropy (mean over tokens).
  const cuda::EmbeddingShape embedding{n, dim, vocab, 0};
  cuda::launch_embedding_forward(embedding, ptr<int32_t>(tokens_), embedding_.w(),
                                 ptr<bf16>(residual_[0]), kStream);
  for (int64_t l = 0; l < c_.layers; ++l) {
    layer_forward(layers_[l], saved_[l], residual_[l], residual_[l + 1]);
  }
  Tensor& final_x = residual_[c_.layers];
  cuda::launch_rmsnorm_forward(ptr<bf16>(final_x), final_norm_.w(), n, dim, 1e-5, ptr<bf16>(hf_),
                               ptr<float>(rstdf_), kStream);
  gemm(Transpose::kNo, Transpose::kYes, n, vocab, dim, ptr<bf16>(hf_), dim, lm_head_.w(), dim, 0.0f,
       logits_.raw(), vocab, DType::kBF16);
  cuda::launch_cross_entropy_forward(ptr<bf16>(logits_), ptr<int32_t>(targets_), ptr<float>(mask_),
                                     n, vocab, workspace_.raw(), ptr<double>(loss_), kStream);

  // Backward: loss, LM head, final norm, layers in reverse, embedding.
  cuda::launch_cross_entropy_backward(ptr<bf16>(logits_), ptr<int32_t>(targets_), ptr<float>(mask_),
                                      {n, vocab, 0}, 1.0f / static_cast<float>(n), kStream);
  gemm(Transpose::kYes, Transpose::kNo, vocab, dim, n, ptr<bf16>(logits_), vocab, ptr<bf16>(hf_),
       dim, 1.0f, lm_head_.g(), dim, DType::kF32);
  gemm(Transpose::kNo, Transpose::kNo, n, dim, vocab, ptr<bf16>(logits_), vocab, lm_head_.w(), dim,
       0.0f, dh_.raw(), dim, DType::kBF16);
  cuda::launch_rmsnorm_backward(ptr<bf16>(dh_), ptr<bf16>(final_x), final_norm_.w(),
                                ptr<float>(rstdf_), n, dim, ptr<bf16>(grad_a_), final_norm_.g(),
                                cuda::GradientWrite::kOverwrite, workspace_.raw(), kStream);
  Tensor* dout = &grad_a_;
  Tensor* dx = &grad_b_;
  for (int64_t l = c_.layers - 1; l >= 0; --l) {
    layer_backward(layers_[l], saved_[l], *dout, *dx);
    std::swap(dout, dx);
  }
  cuda::launch_embedding_backward(embedding, ptr<int32_t>(tokens_), ptr<bf16>(*dout),
                                  embedding_.g(), workspace_.raw(), kStream);

  optimizer_step(step);
  double loss = 0;
  CUDA_CHECK(cudaMemcpy(&loss, loss_.raw(), sizeof(double), cudaMemcpyDeviceToHost));
  return loss / static_cast<double>(n);
}

void Model::optimizer_step(int64_t step) {
  std::vector<Param*> params = {&embedding_, &final_norm_, &lm_head_};
  for (Layer& layer : layers_) {
    for (Param* param : layer.params()) params.push_back(param);
  }
  // Global gradient norm, clipped at 1, on the device.
  for (size_t i = 0; i < params.size(); ++i) {
    cuda::launch_reduce(cuda::Reduction::kSumSquares, params[i]->grad.raw(), false, params[i]->size,
                        ptr<double>(partials_), ptr<double>(norms_) + i, kStream);
  }
  cuda::launch_clip_coefficient(ptr<double>(norms_), static_cast<int64_t>(params.size()), 1.0,
                                ptr<double>(norm_), ptr<float>(coefficient_), kStream);
  for (Param* param : params) {
    kernels::AdamWHyper hyper;
    hyper.lr = 3e-4;
    hyper.weight_decay = param->decay ? 0.1 : 0.0;
    hyper.step = step;
    cuda::launch_adamw_update(ptr<float>(param->master), param->g(), ptr<float>(param->exp_avg),
                              ptr<float>(param->exp_avg_sq), param->size, hyper,
                              ptr<float>(coefficient_), ptr<bf16>(param->work), kStream);
  }
}

void Model::prefill() {
  const cuda::EmbeddingShape embedding{c_.tokens(), c_.dim, c_.vocab, 0};
  cuda::launch_embedding_forward(embedding, ptr<int32_t>(tokens_), embedding_.w(),
                                 ptr<bf16>(residual_[0]), kStream);
  for (int64_t l = 0; l < c_.layers; ++l) {
    layer_forward(layers_[l], saved_[l], residual_[l], residual_[l + 1]);
  }
  cuda::launch_rmsnorm_forward(ptr<bf16>(residual_[c_.layers]), final_norm_.w(), c_.tokens(),
                               c_.dim, 1e-5, ptr<bf16>(hf_), ptr<float>(rstdf_), kStream);
}

// Seconds per call of `work` on the device: one untimed warm-up, then `repeats` timed calls.
template <typename Work>
double time_per_call(int repeats, Work work) {
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  work(0);
  CUDA_CHECK(cudaEventRecord(start, kStream));
  for (int i = 1; i <= repeats; ++i) work(i);
  CUDA_CHECK(cudaEventRecord(stop, kStream));
  CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  return ms / 1000.0 / repeats;
}

double peak_flops(const CudaDeviceInfo& info) {
  if (const char* env = std::getenv("STEERLM_PEAK_TFLOPS")) return std::atof(env) * 1e12;
  if (info.name.find("H100") != std::string::npos || info.name.find("H200") != std::string::npos) {
    return 989.4e12;  // SXM, dense bf16
  }
  if (info.name.find("A100") != std::string::npos) return 312e12;
  return 0;
}

int run(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&] { return i + 1 < argc ? std::atoll(argv[++i]) : 0; };
    if (arg == "--steps") {
      c.steps = static_cast<int>(value());
    } else if (arg == "--batch") {
      c.batch = value();
    } else if (arg == "--seq") {
      c.seq = value();
    } else if (arg == "--layers") {
      c.layers = value();
    } else if (arg == "--flash") {
      c.flash = true;
    } else {
      std::fprintf(stderr, "llama_step_bench: unknown argument %s\n", arg.c_str());
      return 1;
    }
  }
  if (cuda_device_count() == 0) {
    std::fprintf(stderr, "llama_step_bench: no CUDA device visible; run it on a GPU machine\n");
    return 1;
  }
  select_cuda_device(0);
  const CudaDeviceInfo info = cuda_device_info(0);
  const double peak = peak_flops(info);
  const double params = static_cast<double>(c.matmul_params());
  std::printf(
      "llama_step_bench: %s; L=%ld C=%ld NH=%ld KVH=%ld F=%ld V=%ld, B=%ld T=%ld, "
      "%.3fB matmul parameters, attention %s\n",
      info.name.c_str(), long(c.layers), long(c.dim), long(c.heads), long(c.kv_heads), long(c.ffn),
      long(c.vocab), long(c.batch), long(c.seq), params / 1e9,
      c.flash ? "fused (flash)" : "materialised");
  Model model(c);
  cuda_synchronize(kGpu);

  // Training steps: loss per step, then the mean time of the timed ones.
  std::vector<double> losses;
  const double step_s =
      time_per_call(c.steps, [&](int step) { losses.push_back(model.train_step(step + 1)); });
  for (size_t i = 0; i < losses.size(); ++i) std::printf("step %zu loss %.4f\n", i, losses[i]);
  const double tokens = static_cast<double>(c.tokens());
  const double train_flops = (6.0 * params + 6.0 * c.layers * c.dim * c.seq) * tokens;
  std::printf("train step: %.1f ms, %.0f tokens/s, %.1f TFLOP/s\n", step_s * 1e3, tokens / step_s,
              train_flops / step_s / 1e12);
  if (peak > 0) {
    std::printf("MFU %.1f%% (bf16 peak %.1f TFLOP/s)\n", 100.0 * train_flops / step_s / peak,
                peak / 1e12);
  } else {
    std::printf("MFU unknown: set STEERLM_PEAK_TFLOPS for %s\n", info.name.c_str());
  }

  // Prefill: the layers forward only.
  const double prefill_s = time_per_call(c.steps, [&](int) { model.prefill(); });
  const double layer_params = static_cast<double>(c.layers * c.layer_params());
  const double prefill_flops = (2.0 * layer_params + 2.0 * c.layers * c.dim * c.seq) * tokens;
  const double prefill_tflops = prefill_flops / prefill_s / 1e12;
  std::printf("prefill tokens/s %.0f (%.1f TFLOP/s, %.1f%% of bf16 peak)\n", tokens / prefill_s,
              prefill_tflops, peak > 0 ? 100.0 * prefill_tflops * 1e12 / peak : 0.0);

  const bool finite = std::isfinite(losses.front()) && std::isfinite(losses.back());
  if (!finite || !(losses.back() < losses.front())) {
    std::printf("llama_step_bench: the loss did not decrease (%.4f -> %.4f): the step is wrong\n",
                losses.front(), losses.back());
    return 2;
  }
  return 0;
}

}  // namespace
}  // namespace steerlm

int main(int argc, char** argv) {
  steerlm::init_logging(argv[0]);
  return steerlm::run(argc, argv);
}
