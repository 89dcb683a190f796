// CUDA attention, materialised (runtime/cuda/attention.h) and fused (flash_attention.h), against
// runtime/kernels/attention in float64 on the same bf16 inputs: grouped-query heads, packed
// sequences with padding, unfused and fused qkv layouts.
// Tolerances: probabilities are one bf16 rounding of an f32 softmax (2^-8 relative + 1e-6);
// out sums bf16 probabilities times values in [-1, 1] (2^-8 relative + 2^-8 absolute); the
// gradients pass through bf16 probabilities and a bf16 dS before two more GEMMs (the fused
// backward through a bf16 out in D = dO . O), so they are checked to 2^-6 relative + 2^-6 of the
// largest element (a layout or mask error is O(1)).
#include "runtime/cuda/attention.h"

#include <gtest/gtest.h>

#include <tuple>

#include "runtime/cuda/flash_attention.h"
#include "runtime/kernels/attention.h"
#include "tests/gpu/gpu_test_util.h"

namespace steerlm {
namespace {

using namespace gpu_testing;

struct AttentionCase {
  int64_t batch, seq_len, heads, kv_heads, head_size;
  bool fused;  // q, k, v interleaved per token in one (B, T, (NH + 2 KVH) HS) buffer
};

// Row 0: two packed sequences then padding; other rows: one sequence, padding at the end of the
// last row.
std::vector<int32_t> segments_for(int64_t batch, int64_t seq_len) {
  std::vector<int32_t> segments(batch * seq_len, 1);
  for (int64_t t = 0; t < seq_len; ++t) {
    segments[t] = t < seq_len / 3 ? 1 : (t < seq_len - 3 ? 2 : 0);
  }
  if (batch > 1) segments[batch * seq_len - 1] = 0;
  return segments;
}

enum class Implementation { kMaterialised, kFused };

class CudaAttentionTest
    : public ::testing::TestWithParam<std::tuple<AttentionCase, Implementation>> {};

TEST_P(CudaAttentionTest, ForwardAndBackwardMatchFloat64) {
  SKIP_WITHOUT_GPU();
  const auto [c, implementation] = GetParam();
  const int64_t b = c.batch, t = c.seq_len, hs = c.head_size;
  const int64_t q_width = c.heads * hs, kv_width = c.kv_heads * hs;
  const int64_t row = c.fused ? q_width + 2 * kv_width : 0;
  kernels::AttentionShape shape{
      b, t, c.heads, c.kv_heads, hs, c.fused ? row : q_width, c.fused ? row : kv_width};

  // Inputs: one buffer each for q, k, v (unfused) or one fused buffer with offsets.
  const int64_t q_size = c.fused ? b * t * row : b * t * q_width;
  const int64_t kv_size = c.fused ? 0 : b * t * kv_width;
  const std::vector<float> q = random_bf16_values(q_size, 40, 2.0f);
  const std::vector<float> k = c.fused ? q : random_bf16_values(kv_size, 41, 2.0f);
  const std::vector<float> v = c.fused ? q : random_bf16_values(kv_size, 42);
  const int64_t k_offset = c.fused ? q_width : 0, v_offset = c.fused ? q_width + kv_width : 0;
  const int64_t out_size = b * t * shape.q_stride, dkv_size = b * t * shape.kv_stride;
  const std::vector<float> dout = random_bf16_values(out_size, 43);
  const std::vector<int32_t> segments = segments_for(b, t);

  // Host float64.
  const std::vector<double> q64 = to_doubles(q), k64 = to_doubles(k), v64 = to_doubles(v);
  std::vector<double> probs(b * c.heads * t * t), out(out_size, 0.0);
  std::vector<double> dq(out_size, 0.0), dk(dkv_size, 0.0), dv(dkv_size, 0.0);
  kernels::attention_forward(shape, q64.data(), k64.data() + k_offset, v64.data() + v_offset,
                             segments.data(), probs.data(), out.data());
  kernels::attention_backward(shape, to_doubles(dout).data(), q64.data(), k64.data() + k_offset,
                              v64.data() + v_offset, probs.data(), segments.data(), dq.data(),
                              dk.data() + k_offset, dv.data() + v_offset);

  // Device.
  Tensor d_q = device_bf16(q), d_k = device_bf16(k), d_v = device_bf16(v);
  Tensor d_dout = device_bf16(dout), d_segments = device_i32(segments);
  Tensor d_out = Tensor::zeros({out_size}, DType::kBF16, kGpu);
  Tensor d_dq = Tensor::zeros({out_size}, DType::kBF16, kGpu);
  Tensor d_dk = Tensor::zeros({dkv_size}, DType::kBF16, kGpu);
  Tensor d_dv = Tensor::zeros({dkv_size}, DType::kBF16, kGpu);
  const uint16_t* k_ptr = device_ptr<uint16_t>(d_k) + k_offset;
  const uint16_t* v_ptr = device_ptr<uint16_t>(d_v) + v_offset;
  uint16_t* dk_ptr = device_ptr<uint16_t>(d_dk) + k_offset;
  uint16_t* dv_ptr = device_ptr<uint16_t>(d_dv) + v_offset;
  Tensor d_probs;
  if (implementation == Implementation::kMaterialised) {
    d_probs = Tensor::empty({b * c.heads * t * t}, DType::kBF16, kGpu);
    Tensor workspace = device_workspace(cuda::attention_workspace_bytes(shape));
    cuda::attention_forward(kGpu, shape, device_ptr<uint16_t>(d_q), k_ptr, v_ptr,
                            device_ptr<int32_t>(d_segments), device_ptr<uint16_t>(d_probs),
                            device_ptr<uint16_t>(d_out), workspace.raw(), stream());
    cuda::attention_backward(kGpu, shape, device_ptr<uint16_t>(d_dout), device_ptr<uint16_t>(d_q),
                             k_ptr, v_ptr, device_ptr<uint16_t>(d_probs),
                             device_ptr<uint16_t>(d_dq), dk_ptr, dv_ptr, workspace.raw(), stream());
  } else {
    Tensor lse = Tensor::empty({b * c.heads * t}, DType::kF32, kGpu);
    Tensor workspace = device_workspace(cuda::flash_attention_workspace_bytes(shape));
    cuda::launch_flash_attention_forward(
        shape, device_ptr<uint16_t>(d_q), k_ptr, v_ptr, device_ptr<int32_t>(d_segments),
        device_ptr<uint16_t>(d_out), device_ptr<float>(lse), workspace.raw(), stream());
    cuda::launch_flash_attention_backward(
        shape, device_ptr<uint16_t>(d_dout), device_ptr<uint16_t>(d_q), k_ptr, v_ptr,
        device_ptr<uint16_t>(d_out), device_ptr<float>(lse), device_ptr<int32_t>(d_segments),
        device_ptr<uint16_t>(d_dq), dk_ptr, dv_ptr, workspace.raw(), stream());
    // A padding token's statistics make every probability of its row zero.
    EXPECT_EQ(host_values(lse, b * c.heads * t)[t - 1], INFINITY);
  }

  // Only the q/out columns (and k, v columns) of a fused row are compared where they belong.
  auto columns = [&](const std::vector<float>& values, const std::vector<double>& reference,
                     int64_t offset, int64_t width, double relative, double absolute,
                     const std::string& what) {
    std::vector<float> actual;
    std::vector<double> expected;
    for (int64_t token = 0; token < b * t; ++token) {
      const int64_t stride = c.fused ? row : width;
      for (int64_t i = 0; i < width; ++i) {
        actual.push_back(values[token * stride + offset + i]);
        expected.push_back(reference[token * stride + offset + i]);
      }
    }
    expect_close(actual, expected, relative, absolute * max_abs(expected), what);
  };
  if (d_probs.defined()) {
    expect_close(host_values(d_probs, b * c.heads * t * t), probs, kBf16Relative, 1e-6, "probs");
  }
  const std::vector<float> out_values = host_values(d_out, out_size);
  columns(out_values, out, 0, q_width, kBf16Relative, kBf16Relative, "out");
  const double grad_tolerance = 1.0 / 64;
  columns(host_values(d_dq, out_size), dq, 0, q_width, grad_tolerance, grad_tolerance, "dq");
  columns(host_values(d_dk, dkv_size), dk, k_offset, kv_width, grad_tolerance, grad_tolerance,
          "dk");
  columns(host_values(d_dv, dkv_size), dv, v_offset, kv_width, grad_tolerance, grad_tolerance,
          "dv");

  // Padding tokens output exactly zero.
  for (int64_t i = 0; i < q_width; ++i) EXPECT_EQ(out_values[(t - 1) * shape.q_stride + i], 0.0f);
}

std::string case_name(const ::testing::TestParamInfo<CudaAttentionTest::ParamType>& info) {
  const auto& [c, implementation] = info.param;
  return "B" + std::to_string(c.batch) + "_T" + std::to_string(c.seq_len) + "_NH" +
         std::to_string(c.heads) + "_KVH" + std::to_string(c.kv_heads) + "_HS" +
         std::to_string(c.head_size) + (c.fused ? "_fusedqkv" : "") +
         (implementation == Implementation::kFused ? "_flash" : "_materialised");
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaAttentionTest,
    ::testing::Combine(::testing::Values(AttentionCase{1, 1, 1, 1, 8, false},
                                         AttentionCase{2, 37, 4, 2, 16, false},
                                         AttentionCase{2, 64, 8, 8, 32, false},
                                         AttentionCase{3, 50, 6, 2, 64, true},
                                         AttentionCase{1, 256, 4, 1, 128, false}),
                       ::testing::Values(Implementation::kMaterialised, Implementation::kFused)),
    case_name);

}  // namespace
}  // namespace steerlm
