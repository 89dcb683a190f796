// CUDA streams: an owning wrapper and the per-thread "current stream" that device ops run on.
//
// Every CUDA op in runtime/ (elementwise kernels, reductions, cuBLASLt GEMM) launches on the
// calling thread's current stream for the tensor's device. That is the legacy default stream
// unless a StreamGuard is alive on this thread, so plain code is ordered like one queue, and a
// component that wants overlap (say, gradient all-reduce on its own stream) scopes a guard:
//
//   CudaStream comm_stream(device, StreamOrdering::kIndependent);
//   { StreamGuard guard(comm_stream); ops::scale(grad, 1.0f / dp_size, grad); }
//   compute_stream.wait_for(comm_stream);
//
// This header compiles in every build; handles are opaque here and cudaStream_t in CUDA code.
#pragma once

#include "runtime/tensor.h"

#ifdef STEERLM_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace steerlm {

enum class StreamOrdering {
  kWithDefaultStream,  // a blocking stream: ordered with the legacy default stream (cudaMemcpy)
  kIndependent,        // a non-blocking stream: overlaps default-stream work; order with events
};

class CudaStream {
 public:
  explicit CudaStream(Device device, StreamOrdering ordering = StreamOrdering::kWithDefaultStream);
  ~CudaStream();
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  CudaStream(CudaStream&& other) noexcept;
  CudaStream& operator=(CudaStream&& other) noexcept;

  Device device() const { return device_; }
  // The cudaStream_t, opaque so that CPU-only code can hold streams.
  void* handle() const { return stream_; }
  // Blocks the host until the stream's queued work is done.
  void synchronize() const;
  // Work queued on this stream after this call waits for the work queued on `other` so far.
  void wait_for(const CudaStream& other) const;

 private:
  Device device_;
  void* stream_ = nullptr;
  mutable void* event_ = nullptr;  // recorded on the other stream by wait_for; reused
};

// Makes `stream` the calling thread's current stream for its device while the guard lives.
// Guards nest; the previous current stream comes back on destruction.
class StreamGuard {
 public:
  explicit StreamGuard(const CudaStream& stream);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Device device_;
  void* previous_ = nullptr;
};

// The calling thread's current stream for `device` (nullptr: the legacy default stream).
void* current_stream_handle(Device device);

#ifdef STEERLM_HAVE_CUDA
inline cudaStream_t current_cuda_stream(Device device) {
  return static_cast<cudaStream_t>(current_stream_handle(device));
}
#endif

}  // namespace steerlm
