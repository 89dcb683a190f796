// A caching allocator per device: freed blocks are kept by size class and handed out again, so
// the training loop's steady state makes no malloc/cudaMalloc calls.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <vector>

#include "runtime/tensor.h"

namespace steerlm {

struct AllocatorStats {
  size_t bytes_in_use = 0;
  size_t bytes_cached = 0;
  size_t peak_bytes_in_use = 0;
  size_t system_allocations = 0;  // calls that reached malloc/cudaMalloc
};

class CachingAllocator {
 public:
  explicit CachingAllocator(Device device) : device_(device) {}
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Returns at least `bytes` bytes, 64-byte aligned (256 on CUDA). Never returns nullptr.
  void* allocate(size_t bytes);
  // `bytes` must be the value passed to allocate().
  void release(void* pointer, size_t bytes);
  // Frees every cached block back to the system.
  void empty_cache();
  AllocatorStats stats() const;

  // The rounded size class a request of `bytes` is served from.
  static size_t size_class(size_t bytes);

 private:
  void* system_allocate(size_t bytes);
  void system_free(void* pointer);

  Device device_;
  mutable std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_blocks_;  // size class -> cached blocks
  AllocatorStats stats_;
};

// The process's allocator for a device (one per device, created on first use).
CachingAllocator& allocator_for(Device device);

}  // namespace steerlm
