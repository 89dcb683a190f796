// The caching allocator: size classes, reuse without new system allocations, statistics.
#include "runtime/allocator.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace steerlm {
namespace {

TEST(AllocatorTest, SizeClassesRoundSmallTo512BytesAndLargeTo1MiB) {
  EXPECT_EQ(CachingAllocator::size_class(0), 512u);
  EXPECT_EQ(CachingAllocator::size_class(1), 512u);
  EXPECT_EQ(CachingAllocator::size_class(512), 512u);
  EXPECT_EQ(CachingAllocator::size_class(513), 1024u);
  EXPECT_EQ(CachingAllocator::size_class(size_t{1} << 20), size_t{1} << 20);
  EXPECT_EQ(CachingAllocator::size_class((size_t{1} << 20) + 1), size_t{2} << 20);
}

TEST(AllocatorTest, SecondIdenticalAllocationReusesTheCachedBlock) {
  CachingAllocator allocator(Device::cpu());
  void* first = allocator.allocate(1000);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % 64, 0u);  // 64-byte aligned for SIMD
  allocator.release(first, 1000);
  EXPECT_EQ(allocator.stats().system_allocations, 1u);
  EXPECT_EQ(allocator.stats().bytes_cached, 1024u);

  void* second = allocator.allocate(1000);
  EXPECT_EQ(second, first);
  EXPECT_EQ(allocator.stats().system_allocations, 1u);  // no new system allocation
  EXPECT_EQ(allocator.stats().bytes_cached, 0u);
  EXPECT_EQ(allocator.stats().bytes_in_use, 1024u);

  // A request in the same size class is served by the same block too.
  allocator.release(second, 1000);
  void* third = allocator.allocate(1020);
  EXPECT_EQ(third, first);
  EXPECT_EQ(allocator.stats().system_allocations, 1u);
  allocator.release(third, 1020);
}

TEST(AllocatorTest, StatsTrackUsePeakAndEmptyCache) {
  CachingAllocator allocator(Device::cpu());
  void* a = allocator.allocate(3 << 20);  // 3 MiB class
  void* b = allocator.allocate(100);      // 512 B class
  EXPECT_EQ(allocator.stats().bytes_in_use, (size_t{3} << 20) + 512);
  allocator.release(a, 3 << 20);
  EXPECT_EQ(allocator.stats().bytes_in_use, 512u);
  EXPECT_EQ(allocator.stats().peak_bytes_in_use, (size_t{3} << 20) + 512);
  EXPECT_EQ(allocator.stats().bytes_cached, size_t{3} << 20);

  allocator.empty_cache();
  EXPECT_EQ(allocator.stats().bytes_cached, 0u);
  void* c = allocator.allocate(3 << 20);  // the cache was emptied: a new system allocation
  EXPECT_EQ(allocator.stats().system_allocations, 3u);
  allocator.release(b, 100);
  allocator.release(c, 3 << 20);
}

TEST(AllocatorTest, TensorsOfARepeatedShapeReuseHostMemory) {
  CachingAllocator& host = allocator_for(Device::cpu());
  // The first tensor of this size class may come from the system; later ones must not.
  { Tensor warm = Tensor::empty({123, 457}, DType::kF32); }
  const size_t system_before = host.stats().system_allocations;
  for (int step = 0; step < 5; ++step) {
    Tensor activations = Tensor::empty({123, 457}, DType::kF32);  // (B*T, C), cpu
    activations.zero();
  }
  EXPECT_EQ(host.stats().system_allocations, system_before);
}

TEST(AllocatorTest, AllocatorForReturnsOnePerDevice) {
  EXPECT_EQ(&allocator_for(Device::cpu()), &allocator_for(Device::cpu()));
  EXPECT_NE(&allocator_for(Device::cpu()), &allocator_for(Device::cuda(0)));
}

}  // namespace
}  // namespace steerlm
