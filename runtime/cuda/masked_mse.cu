// CUDA masked MSE; runtime/kernels/masked_mse.cc is the reference.
#include "runtime/cuda/kernel_util.cuh"
#include "runtime/cuda/masked_mse.h"
#include "runtime/kernels/masked_mse.h"

namespace steerlm::cuda {
namespace {

constexpr double kNoAttributes = -1.0;  // marks a sequence without attributes (an MSE is >= 0)

// One thread per sequence: its gradient row and its masked MSE.
__global__ void masked_mse_rows_kernel(const float* predictions, const float* targets,
                                       int64_t sequences, int64_t attributes, float* grad,
                                       double* sequence_mse) {
  for (int64_t s = detail::global_index(); s < sequences; s += detail::global_stride()) {
    const float* prediction = predictions + s * attributes;  // (A)
    const float* target = targets + s * attributes;          // (A)
    float* grad_row = grad + s * attributes;                 // (A)
    int64_t present = 0;
    for (int64_t a = 0; a < attributes; ++a) present += target[a] != kernels::kMissingAttribute;
    double squared_error = 0;
    for (int64_t a = 0; a < attributes; ++a) {
      if (target[a] == kernels::kMissingAttribute) {
        grad_row[a] = 0.0f;
        continue;
      }
      const float error = prediction[a] - target[a];
      squared_error += static_cast<double>(error) * static_cast<double>(error);
      grad_row[a] = 2.0f * error / static_cast<float>(present);
    }
    sequence_mse[s] = present == 0 ? kNoAttributes : squared_error / static_cast<double>(present);
  }
}

// One thread sums in sequence order, as the host does; S is a batch of sequences, small.
__global__ void masked_mse_total_kernel(const double* sequence_mse, int64_t sequences,
                                        MaskedMseDeviceSums* sums) {
  double sum = 0;
  int64_t count = 0;
  for (int64_t s = 0; s < sequences; ++s) {
    if (sequence_mse[s] == kNoAttributes) continue;
    sum += sequence_mse[s];
    ++count;
  }
  sums->sum = sum;
  sums->count = count;
}

}  // namespace

size_t masked_mse_workspace_bytes(int64_t sequences) {
  return static_cast<size_t>(sequences) * sizeof(double);
}

void launch_masked_mse(const float* predictions, const float* targets, int64_t sequences,
                       int64_t attributes, float* grad, MaskedMseDeviceSums* sums, void* workspace,
                       cudaStream_t stream) {
  auto* sequence_mse = static_cast<double*>(workspace);  // (S), device
  if (sequences > 0) {
    masked_mse_rows_kernel<<<detail::grid_for(sequences), detail::kThreads, 0, stream>>>(
        predictions, targets, sequences, attributes, grad, sequence_mse);
    CUDA_CHECK_LAUNCH();
  }
  masked_mse_total_kernel<<<1, 1, 0, stream>>>(sequence_mse, sequences, sums);
  CUDA_CHECK_LAUNCH();
}

}  // namespace steerlm::cuda
