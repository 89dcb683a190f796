#include "runtime/cuda/stream.h"

#include <glog/logging.h>

#include <utility>

#include "runtime/check.h"
#include "runtime/cuda/device.h"

namespace steerlm {
namespace {

constexpr int kMaxDevices = 64;

// Per thread by design: the current stream is the calling thread's execution context, like the
// current device in the CUDA runtime itself; it is not shared parallel state.
thread_local void* t_current_stream[kMaxDevices] = {};

int checked_index(Device device) {
  CHECK(device.is_cuda() && device.index >= 0 && device.index < kMaxDevices)
      << "a CUDA stream needs a CUDA device, got " << device.str();
  return device.index;
}

}  // namespace

CudaStream::CudaStream(Device device, StreamOrdering ordering) : device_(device) {
  checked_index(device);
#ifdef STEERLM_HAVE_CUDA
  cuda_set_current_device(device);
  cudaStream_t stream = nullptr;
  unsigned int flags =
      ordering == StreamOrdering::kIndependent ? cudaStreamNonBlocking : cudaStreamDefault;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, flags));
  stream_ = stream;
#else
  LOG(FATAL) << "CudaStream needs the CUDA backend, but this steerlm was built without CUDA";
#endif
}

CudaStream::~CudaStream() {
#ifdef STEERLM_HAVE_CUDA
  if (event_ != nullptr) CUDA_CHECK(cudaEventDestroy(static_cast<cudaEvent_t>(event_)));
  if (stream_ != nullptr) CUDA_CHECK(cudaStreamDestroy(static_cast<cudaStream_t>(stream_)));
#endif
}

CudaStream::CudaStream(CudaStream&& other) noexcept
    : device_(other.device_),
      stream_(std::exchange(other.stream_, nullptr)),
      event_(std::exchange(other.event_, nullptr)) {}

CudaStream& CudaStream::operator=(CudaStream&& other) noexcept {
  std::swap(device_, other.device_);
  std::swap(stream_, other.stream_);
  std::swap(event_, other.event_);
  return *this;
}

void CudaStream::synchronize() const {
#ifdef STEERLM_HAVE_CUDA
  CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)));
#endif
}

void CudaStream::wait_for(const CudaStream& other) const {
  CHECK(other.device_ == device_) << "wait_for across devices: " << device_.str() << " waits for "
                                  << other.device_.str();
#ifdef STEERLM_HAVE_CUDA
  // One event per waiting stream is enough: cudaStreamWaitEvent captures the record made just
  // before it, so re-recording later cannot change what an earlier wait waits for.
  if (event_ == nullptr) {
    cuda_set_current_device(device_);
    cudaEvent_t created = nullptr;
    CUDA_CHECK(cudaEventCreateWithFlags(&created, cudaEventDisableTiming));
    event_ = created;
  }
  auto event = static_cast<cudaEvent_t>(event_);
  CUDA_CHECK(cudaEventRecord(event, static_cast<cudaStream_t>(other.stream_)));
  CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream_), event, 0));
#endif
}

StreamGuard::StreamGuard(const CudaStream& stream) : device_(stream.device()) {
  int index = checked_index(device_);
  previous_ = t_current_stream[index];
  t_current_stream[index] = stream.handle();
}

StreamGuard::~StreamGuard() {
  t_current_stream[device_.index] = previous_;
}

void* current_stream_handle(Device device) {
  return t_current_stream[checked_index(device)];
}

}  // namespace steerlm
