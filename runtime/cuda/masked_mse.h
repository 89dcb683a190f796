// CUDA masked MSE of the attribute head, mirroring runtime/kernels/masked_mse.h: per sequence the
// squared error over the attributes present divided by their count (a target of -100 is
// missing); the batch loss is the mean over sequences with any attribute, returned as a sum and
// a count. Predictions, targets and gradients are f32 (the head is S x A, tiny).
#pragma once

#ifdef STEERLM_HAVE_CUDA

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace steerlm::cuda {

// The sums, written on the device (same meaning as kernels::MaskedMseSums).
struct MaskedMseDeviceSums {
  double sum;     // sum over sequences of their masked MSE
  int64_t count;  // sequences with at least one attribute present
};

size_t masked_mse_workspace_bytes(int64_t sequences);

// predictions (S, A) f32, targets (S, A) f32 -> grad (S, A) f32 = d(sum)/d predictions (0 where
// missing), *sums (device) summed in sequence order like the host.
void launch_masked_mse(const float* predictions, const float* targets, int64_t sequences,
                       int64_t attributes, float* grad, MaskedMseDeviceSums* sums, void* workspace,
                       cudaStream_t stream);

}  // namespace steerlm::cuda

#endif  // STEERLM_HAVE_CUDA
