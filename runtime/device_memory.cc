#include "runtime/device_memory.h"

#include <glog/logging.h>

#include <cstdlib>
#include <cstring>

#include "runtime/check.h"

namespace steerlm {
namespace {

constexpr size_t kHostAlignment = 64;

#ifndef STEERLM_HAVE_CUDA
[[noreturn]] void no_cuda(const char* what) {
  LOG(FATAL) << what << " needs the CUDA backend, but this steerlm was built without CUDA "
             << "(configure with the CUDA toolkit present, or set device: CPU)";
  __builtin_unreachable();
}
#endif

}  // namespace

void* device_malloc(Device device, size_t bytes) {
  if (device.is_cpu()) {
    size_t rounded = (bytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
    void* pointer = std::aligned_alloc(kHostAlignment, rounded == 0 ? kHostAlignment : rounded);
    CHECK(pointer != nullptr) << "host allocation of " << bytes << " bytes failed";
    return pointer;
  }
#ifdef STEERLM_HAVE_CUDA
  void* pointer = nullptr;
  CUDA_CHECK(cudaSetDevice(device.index));
  CUDA_CHECK(cudaMalloc(&pointer, bytes == 0 ? 1 : bytes));
  return pointer;
#else
  no_cuda("device_malloc");
#endif
}

void device_free(Device device, void* pointer) {
  if (device.is_cpu()) {
    std::free(pointer);
    return;
  }
#ifdef STEERLM_HAVE_CUDA
  CUDA_CHECK(cudaFree(pointer));
#else
  no_cuda("device_free");
#endif
}

void device_memcpy(void* destination, Device destination_device, const void* source,
                   Device source_device, size_t bytes) {
  if (bytes == 0) return;
  if (destination_device.is_cpu() && source_device.is_cpu()) {
    std::memcpy(destination, source, bytes);
    return;
  }
#ifdef STEERLM_HAVE_CUDA
  CUDA_CHECK(cudaMemcpy(destination, source, bytes, cudaMemcpyDefault));
#else
  no_cuda("device_memcpy");
#endif
}

void device_memset_zero(Device device, void* pointer, size_t bytes) {
  if (device.is_cpu()) {
    std::memset(pointer, 0, bytes);
    return;
  }
#ifdef STEERLM_HAVE_CUDA
  CUDA_CHECK(cudaMemset(pointer, 0, bytes));
#else
  no_cuda("device_memset_zero");
#endif
}

int cuda_device_count() {
#ifdef STEERLM_HAVE_CUDA
  // Without a driver cudaGetDeviceCount fails and leaves the count unwritten (PLATFORM.md).
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later checks are not confused
    return 0;
  }
  return count;
#else
  return 0;
#endif
}

}  // namespace steerlm
