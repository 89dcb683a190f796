// CUDA device selection and facts. Compiled in every build: without CUDA support the queries
// report no device and selecting one is a user error that says how to fix the config.
#pragma once

#include <cstddef>
#include <string>

#include "runtime/tensor.h"

namespace steerlm {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;  // e.g. 9 for Hopper
  int compute_minor = 0;
  size_t total_memory_bytes = 0;
  int multiprocessors = 0;
};

// Binds this process to the GPU that belongs to its rank on this host and returns it:
//   one visible GPU (the launcher already gave each rank its own, e.g. --gpus-per-task=1) -> 0;
//   otherwise GPU `local_rank`, which must exist (more ranks than GPUs on a host is a mistake).
// Throws UserError when no GPU is visible or the local rank has none.
Device select_cuda_device(int local_rank);

// Facts about a visible device, for provenance and logs.
CudaDeviceInfo cuda_device_info(int index);

// Makes `device` current on this thread (cudaSetDevice); kernels and cuBLASLt calls that run on a
// tensor's memory call this first, so that a thread's earlier choice cannot misdirect them.
void cuda_set_current_device(Device device);

// Waits until all work queued on `device` has finished.
void cuda_synchronize(Device device);

}  // namespace steerlm
