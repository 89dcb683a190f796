#ifdef STEERLM_HAVE_CUDA

#include "runtime/cuda/cublaslt_gemm.h"

#include <glog/logging.h>

#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "runtime/check.h"
#include "runtime/cuda/device.h"
#include "runtime/device_memory.h"

namespace steerlm::cuda {
namespace {

// NVIDIA's recommended cuBLASLt workspace on Hopper; also ample for Ampere.
constexpr size_t kWorkspaceBytes = size_t{32} << 20;
constexpr int kMaxDevices = 64;

// Everything the heuristic's choice depends on.
struct PlanKey {
  int transpose_a, transpose_b;
  int64_t m, n, k, lda, ldb, ldc, stride_a, stride_b, stride_c, batch;
  int input_dtype, output_dtype;
  uint32_t align_a, align_b, align_c;
  auto tie() const {
    return std::tie(transpose_a, transpose_b, m, n, k, lda, ldb, ldc, stride_a, stride_b, stride_c,
                    batch, input_dtype, output_dtype, align_a, align_b, align_c);
  }
  bool operator<(const PlanKey& other) const { return tie() < other.tie(); }
};

struct Plan {
  cublasLtMatmulDesc_t operation = nullptr;
  cublasLtMatrixLayout_t layout_a = nullptr;  // the column-major operands, see make_plan
  cublasLtMatrixLayout_t layout_b = nullptr;
  cublasLtMatrixLayout_t layout_c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

// The largest power of two (up to 256) dividing the address: the heuristic may only pick
// kernels whose alignment needs the actual pointers meet.
uint32_t alignment_of(const void* pointer) {
  auto address = reinterpret_cast<uintptr_t>(pointer);
  uint32_t alignment = 256;
  while (alignment > 1 && address % alignment != 0) alignment /= 2;
  return alignment;
}

cudaDataType_t cuda_type(DType dtype) {
  CHECK(dtype == DType::kBF16 || dtype == DType::kF32)
      << "cuBLASLt GEMM takes bf16 or f32, got " << dtype_name(dtype);
  return dtype == DType::kBF16 ? CUDA_R_16BF : CUDA_R_32F;
}

cublasOperation_t cublas_op(Transpose transpose) {
  return transpose == Transpose::kYes ? CUBLAS_OP_T : CUBLAS_OP_N;
}

// A column-major layout of rows x cols with leading dimension ld, batched by stride.
cublasLtMatrixLayout_t make_layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld,
                                   int64_t batch, int64_t stride) {
  cublasLtMatrixLayout_t layout = nullptr;
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout, type, rows, cols, ld));
  if (batch > 1) {
    int32_t count = static_cast<int32_t>(batch);
    CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                  &count, sizeof(count)));
    CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
        layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }
  return layout;
}

class LtContext {
 public:
  explicit LtContext(Device device) : device_(device) {
    cuda_set_current_device(device);
    CUBLAS_CHECK(cublasLtCreate(&handle_));
  }

  cublasLtHandle_t handle() const { return handle_; }

  // The cached plan for `key`, made on first use.
  const Plan& plan(const PlanKey& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = plans_.find(key);
    if (found != plans_.end()) return *found->second;
    auto inserted = plans_.emplace(key, make_plan(key));
    return *inserted.first->second;
  }

  // This stream's workspace: GEMMs on different streams may run at once, so they cannot share.
  void* workspace(cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(mutex_);
    void*& workspace = workspaces_[stream];
    if (workspace == nullptr) workspace = device_malloc(device_, kWorkspaceBytes);
    return workspace;
  }

  int64_t plan_count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int64_t>(plans_.size());
  }

 private:
  std::unique_ptr<Plan> make_plan(const PlanKey& key);

  Device device_;
  cublasLtHandle_t handle_ = nullptr;
  std::mutex mutex_;
  std::map<PlanKey, std::unique_ptr<Plan>> plans_;
  std::map<cudaStream_t, void*> workspaces_;
};

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, and a row-major matrix read
// column-major is its transpose. So cuBLASLt computes (N x M) = op(B) (N x K) @ op(A) (K x M)
// on the same memory with the same transpose flags, A and B swapped.
std::unique_ptr<Plan> LtContext::make_plan(const PlanKey& key) {
  auto plan = std::make_unique<Plan>();
  const auto transpose_a = static_cast<Transpose>(key.transpose_a);
  const auto transpose_b = static_cast<Transpose>(key.transpose_b);
  const cudaDataType_t input = cuda_type(static_cast<DType>(key.input_dtype));
  const cudaDataType_t output = cuda_type(static_cast<DType>(key.output_dtype));

  // The operation: fp32 accumulation and fp32 alpha/beta, whatever the storage type.
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan->operation, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t op_first = cublas_op(transpose_b);
  cublasOperation_t op_second = cublas_op(transpose_a);
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->operation, CUBLASLT_MATMUL_DESC_TRANSA,
                                              &op_first, sizeof(op_first)));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->operation, CUBLASLT_MATMUL_DESC_TRANSB,
                                              &op_second, sizeof(op_second)));

  // Layouts of the stored matrices as cuBLASLt sees them (column-major, rows x cols).
  const bool b_transposed = transpose_b == Transpose::kYes;
  const bool a_transposed = transpose_a == Transpose::kYes;
  plan->layout_a = make_layout(input, b_transposed ? key.k : key.n, b_transposed ? key.n : key.k,
                               key.ldb, key.batch, key.stride_b);
  plan->layout_b = make_layout(input, a_transposed ? key.m : key.k, a_transposed ? key.k : key.m,
                               key.lda, key.batch, key.stride_a);
  plan->layout_c = make_layout(output, key.n, key.m, key.ldc, key.batch, key.stride_c);

  // The heuristic's best algorithm for this workspace and these alignments.
  cublasLtMatmulPreference_t preference = nullptr;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  uint64_t workspace_bytes = kWorkspaceBytes;
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference,
                                                    CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &workspace_bytes, sizeof(workspace_bytes)));
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> alignments[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_c},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_c}};
  for (const auto& [attribute, bytes] : alignments) {
    CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(preference, attribute, &bytes, sizeof(bytes)));
  }
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle_, plan->operation, plan->layout_a,
                                              plan->layout_b, plan->layout_c, plan->layout_c,
                                              preference, 1, &result, &found));
  CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(preference));
  CHECK(found > 0) << "cuBLASLt has no algorithm for M=" << key.m << " N=" << key.n
                   << " K=" << key.k << " batch=" << key.batch << " lda=" << key.lda
                   << " ldb=" << key.ldb << " ldc=" << key.ldc;
  plan->algo = result.algo;
  VLOG(1) << "cuBLASLt plan for M=" << key.m << " N=" << key.n << " K=" << key.k
          << " batch=" << key.batch << " on " << device_.str();
  return plan;
}

// One context per device for the life of the process, like the caching allocator; leaked on
// purpose so that nothing is torn down after the CUDA runtime has unloaded.
LtContext& context_for(Device device) {
  static LtContext* contexts[kMaxDevices] = {};
  static std::mutex mutex;
  CHECK(device.is_cuda() && device.index >= 0 && device.index < kMaxDevices)
      << "cuBLASLt GEMM on " << device.str();
  std::lock_guard<std::mutex> lock(mutex);
  if (contexts[device.index] == nullptr) contexts[device.index] = new LtContext(device);
  return *contexts[device.index];
}

}  // namespace

void cublaslt_gemm(Device device, const LtGemmShape& shape, float alpha, const void* a,
                   const void* b, float beta, void* c, cudaStream_t stream) {
  // cuBLASLt rejects empty matrices; an empty product leaves nothing (or beta * C) to compute.
  if (shape.m == 0 || shape.n == 0 || shape.batch == 0) return;
  CHECK_GT(shape.k, 0) << "cublaslt_gemm with K = 0 (matmul handles it before calling)";
  CHECK(shape.input_dtype == DType::kF32 ? shape.output_dtype == DType::kF32 : true)
      << "f32 inputs need an f32 output";

  // Look up (or make) the plan for this shape.
  cuda_set_current_device(device);
  LtContext& context = context_for(device);
  PlanKey key{static_cast<int>(shape.transpose_a),
              static_cast<int>(shape.transpose_b),
              shape.m,
              shape.n,
              shape.k,
              shape.lda,
              shape.ldb,
              shape.ldc,
              shape.stride_a,
              shape.stride_b,
              shape.stride_c,
              shape.batch,
              static_cast<int>(shape.input_dtype),
              static_cast<int>(shape.output_dtype),
              alignment_of(a),
              alignment_of(b),
              alignment_of(c)};
  const Plan& plan = context.plan(key);

  // Queue it: D = C in place; the swapped operand order is explained at make_plan.
  CUBLAS_CHECK(cublasLtMatmul(context.handle(), plan.operation, &alpha, b, plan.layout_a, a,
                              plan.layout_b, &beta, c, plan.layout_c, c, plan.layout_c, &plan.algo,
                              context.workspace(stream), kWorkspaceBytes, stream));
}

int64_t cublaslt_plan_count(Device device) {
  return context_for(device).plan_count();
}

}  // namespace steerlm::cuda

#endif  // STEERLM_HAVE_CUDA
