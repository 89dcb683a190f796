#include "runtime/allocator.h"

#include <glog/logging.h>

#include <memory>

#include "runtime/device_memory.h"

namespace steerlm {

CachingAllocator::~CachingAllocator() {
  empty_cache();
}

size_t CachingAllocator::size_class(size_t bytes) {
  // Small blocks round to 512 B; large ones to 1 MiB, so that a training step's varying
  // activation sizes still hit the cache.
  constexpr size_t kSmall = 512;
  constexpr size_t kLarge = size_t{1} << 20;
  if (bytes <= kLarge) return (bytes + kSmall - 1) / kSmall * kSmall + (bytes == 0 ? kSmall : 0);
  return (bytes + kLarge - 1) / kLarge * kLarge;
}

void* CachingAllocator::allocate(size_t bytes) {
  size_t rounded = size_class(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  void* pointer = nullptr;
  auto cached = free_blocks_.find(rounded);
  if (cached != free_blocks_.end() && !cached->second.empty()) {
    pointer = cached->second.back();
    cached->second.pop_back();
    stats_.bytes_cached -= rounded;
  } else {
    pointer = system_allocate(rounded);
  }
  stats_.bytes_in_use += rounded;
  stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  return pointer;
}

void CachingAllocator::release(void* pointer, size_t bytes) {
  size_t rounded = size_class(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  free_blocks_[rounded].push_back(pointer);
  stats_.bytes_in_use -= rounded;
  stats_.bytes_cached += rounded;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [size, blocks] : free_blocks_) {
    for (void* block : blocks) system_free(block);
  }
  free_blocks_.clear();
  stats_.bytes_cached = 0;
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void* CachingAllocator::system_allocate(size_t bytes) {
  ++stats_.system_allocations;
  return device_malloc(device_, bytes);
}

void CachingAllocator::system_free(void* pointer) {
  device_free(device_, pointer);
}

CachingAllocator& allocator_for(Device device) {
  // One allocator per device for the life of the process; leaked on purpose so that tensors
  // destroyed during static destruction still have somewhere to return their memory.
  constexpr int kMaxCudaDevices = 64;
  static CachingAllocator* host = new CachingAllocator(Device::cpu());
  static CachingAllocator* cuda[kMaxCudaDevices] = {};
  static std::mutex cuda_mutex;
  if (device.is_cpu()) return *host;
  CHECK(device.index >= 0 && device.index < kMaxCudaDevices) << "bad device " << device.str();
  std::lock_guard<std::mutex> lock(cuda_mutex);
  if (cuda[device.index] == nullptr) cuda[device.index] = new CachingAllocator(device);
  return *cuda[device.index];
}

}  // namespace steerlm
