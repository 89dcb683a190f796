// Raw memory operations for any device. Host memory uses aligned malloc; CUDA memory uses the
// CUDA runtime. In a build without CUDA, CUDA operations fail loudly instead of guessing.
#pragma once

#include <cstddef>

#include "runtime/tensor.h"

namespace steerlm {

void* device_malloc(Device device, size_t bytes);
void device_free(Device device, void* pointer);
// Copies between any two devices; synchronous.
void device_memcpy(void* destination, Device destination_device, const void* source,
                   Device source_device, size_t bytes);
void device_memset_zero(Device device, void* pointer, size_t bytes);

// Number of CUDA devices visible to this process; 0 without a driver or without CUDA support.
int cuda_device_count();

}  // namespace steerlm
