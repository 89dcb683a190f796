#include "runtime/cuda/device.h"

#include <glog/logging.h>

#include "runtime/check.h"
#include "runtime/device_memory.h"
#include "runtime/error.h"

namespace steerlm {
namespace {

#ifndef STEERLM_HAVE_CUDA
[[noreturn]] void no_cuda(const char* what) {
  LOG(FATAL) << what << " needs the CUDA backend, but this steerlm was built without CUDA";
  __builtin_unreachable();
}
#endif

}  // namespace

Device select_cuda_device(int local_rank) {
  // Decide which GPU this rank drives.
  const int count = cuda_device_count();
  if (count == 0) {
    throw UserError(
        "device: CUDA was requested but no CUDA device is visible to this process "
        "(no GPU, no driver, or a CPU-only build); set device: CPU");
  }
  int index = count == 1 ? 0 : local_rank;
  if (index >= count) {
    throw UserError("local rank " + std::to_string(local_rank) + " has no GPU: only " +
                    std::to_string(count) + " are visible on this host; launch at most " +
                    std::to_string(count) + " ranks per host");
  }

  // Bind to it and say which one it is.
  cuda_set_current_device(Device::cuda(index));
  CudaDeviceInfo info = cuda_device_info(index);
  LOG(INFO) << "local rank " << local_rank << " uses cuda:" << index << " (" << info.name << ", sm_"
            << info.compute_major << info.compute_minor << ", "
            << info.total_memory_bytes / (size_t{1} << 20) << " MiB)";
  return Device::cuda(index);
}

CudaDeviceInfo cuda_device_info(int index) {
#ifdef STEERLM_HAVE_CUDA
  cudaDeviceProp properties{};
  CUDA_CHECK(cudaGetDeviceProperties(&properties, index));
  CudaDeviceInfo info;
  info.index = index;
  info.name = properties.name;
  info.compute_major = properties.major;
  info.compute_minor = properties.minor;
  info.total_memory_bytes = properties.totalGlobalMem;
  info.multiprocessors = properties.multiProcessorCount;
  return info;
#else
  no_cuda("cuda_device_info");
#endif
}

void cuda_set_current_device(Device device) {
  CHECK(device.is_cuda()) << "cuda_set_current_device on " << device.str();
#ifdef STEERLM_HAVE_CUDA
  CUDA_CHECK(cudaSetDevice(device.index));
#else
  no_cuda("cuda_set_current_device");
#endif
}

void cuda_synchronize(Device device) {
#ifdef STEERLM_HAVE_CUDA
  cuda_set_current_device(device);
  CUDA_CHECK(cudaDeviceSynchronize());
#else
  no_cuda("cuda_synchronize");
#endif
}

}  // namespace steerlm
