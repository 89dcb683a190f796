#include "parallel/nccl_communicator.h"

#include <glog/logging.h>

#include "parallel/mpi_communicator.h"
#include "parallel/watchdog.h"
#include "runtime/check.h"
#include "runtime/cuda/stream.h"

#ifdef STEERLM_HAVE_CUDA

namespace steerlm {
namespace {

// Non-blocking communicators answer ncclInProgress while work is still being queued; that is
// success so far, and finish_enqueue() waits for it to settle.
ncclResult_t in_progress_is_success(ncclResult_t result) {
  return result == ncclInProgress ? ncclSuccess : result;
}

#define NCCL_CHECK_NONBLOCKING(statement) NCCL_CHECK(in_progress_is_success(statement))

ncclDataType_t reduction_type(const Tensor& tensor) {
  switch (tensor.dtype()) {
    case DType::kF32: return ncclFloat32;
    case DType::kBF16: return ncclBfloat16;
    case DType::kI32: return ncclInt32;
  }
  LOG(FATAL) << "unknown dtype";
  __builtin_unreachable();
}

ncclRedOp_t nccl_op(ReduceOp op) {
  return op == ReduceOp::kSum ? ncclSum : ncclMax;
}

void check_device(const Tensor& tensor, int device_index, const char* op) {
  CHECK(tensor.defined()) << op << " of an undefined tensor";
  CHECK(tensor.device() == Device::cuda(device_index))
      << op << " on the NCCL backend of cuda:" << device_index << " got a tensor on "
      << tensor.device().str();
}

// The last error NCCL reported for `comm`, or "" while it is healthy or busy.
std::string async_error(ncclComm_t comm) {
  ncclResult_t state = ncclSuccess;
  NCCL_CHECK(ncclCommGetAsyncError(comm, &state));
  if (state == ncclSuccess || state == ncclInProgress) return "";
  return std::string("asynchronous NCCL error ") + ncclGetErrorString(state) + ": " +
         ncclGetLastError(comm);
}

// Completes when the CUDA event recorded after the operation fires; fails on an async error.
class NcclPendingOp : public PendingOp {
 public:
  NcclPendingOp(ncclComm_t comm, cudaEvent_t event) : comm_(comm), event_(event) {}
  ~NcclPendingOp() override { CUDA_CHECK(cudaEventDestroy(event_)); }

  Status poll() override {
    std::string error = async_error(comm_);
    if (!error.empty()) return Status{false, error};
    cudaError_t state = cudaEventQuery(event_);
    if (state == cudaErrorNotReady) return Status{false, ""};
    CUDA_CHECK(state);
    return Status{true, ""};
  }

  void abort_backend() override { NCCL_CHECK_NONBLOCKING(ncclCommAbort(comm_)); }

 private:
  ncclComm_t comm_;
  cudaEvent_t event_;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(MPI_Comm mpi_comm, Device device, double timeout_s, std::string group);
  ~NcclCommunicator() override;

  std::unique_ptr<PendingOp> all_reduce(Tensor& tensor, ReduceOp op) override {
    check_device(tensor, device_index_, "all_reduce");
    NCCL_CHECK_NONBLOCKING(ncclAllReduce(tensor.raw(), tensor.raw(), tensor.numel(),
                                         reduction_type(tensor), nccl_op(op), comm_, stream()));
    return finish_enqueue("all_reduce");
  }

  std::unique_ptr<PendingOp> all_gather(const Tensor& input, Tensor& output) override {
    check_device(input, device_index_, "all_gather");
    check_device(output, device_index_, "all_gather");
    CHECK_EQ(output.nbytes(), input.nbytes() * size_) << "all_gather output size";
    NCCL_CHECK_NONBLOCKING(
        ncclAllGather(input.raw(), output.raw(), input.nbytes(), ncclUint8, comm_, stream()));
    return finish_enqueue("all_gather");
  }

  std::unique_ptr<PendingOp> reduce_scatter(const Tensor& input, Tensor& output,
                                            ReduceOp op) override {
    check_device(input, device_index_, "reduce_scatter");
    check_device(output, device_index_, "reduce_scatter");
    CHECK(input.dtype() == output.dtype()) << "reduce_scatter dtypes differ";
    CHECK_EQ(input.numel(), output.numel() * size_) << "reduce_scatter input size";
    NCCL_CHECK_NONBLOCKING(ncclReduceScatter(input.raw(), output.raw(), output.numel(),
                                             reduction_type(input), nccl_op(op), comm_, stream()));
    return finish_enqueue("reduce_scatter");
  }

  std::unique_ptr<PendingOp> broadcast(Tensor& tensor, int root) override {
    check_device(tensor, device_index_, "broadcast");
    NCCL_CHECK_NONBLOCKING(ncclBroadcast(tensor.raw(), tensor.raw(), tensor.nbytes(), ncclUint8,
                                         root, comm_, stream()));
    return finish_enqueue("broadcast");
  }

  // NCCL has no tags: transfers between two ranks match in issue order.
  std::unique_ptr<PendingOp> send(const Tensor& tensor, int peer, int tag) override {
    check_device(tensor, device_index_, "send");
    NCCL_CHECK_NONBLOCKING(
        ncclSend(tensor.raw(), tensor.nbytes(), ncclUint8, peer, comm_, stream()));
    return finish_enqueue("send");
  }

  std::unique_ptr<PendingOp> recv(Tensor& tensor, int peer, int tag) override {
    check_device(tensor, device_index_, "recv");
    NCCL_CHECK_NONBLOCKING(
        ncclRecv(tensor.raw(), tensor.nbytes(), ncclUint8, peer, comm_, stream()));
    return finish_enqueue("recv");
  }

  // One NCCL group: the send and the receive progress together, so two neighbours that
  // exchange in both directions cannot each wait on the other's send.
  std::unique_ptr<PendingOp> send_recv(const Tensor& sent, int send_peer, int send_tag,
                                       Tensor& received, int recv_peer, int recv_tag) override {
    check_device(sent, device_index_, "send_recv");
    check_device(received, device_index_, "send_recv");
    NCCL_CHECK(ncclGroupStart());
    NCCL_CHECK_NONBLOCKING(
        ncclSend(sent.raw(), sent.nbytes(), ncclUint8, send_peer, comm_, stream()));
    NCCL_CHECK_NONBLOCKING(
        ncclRecv(received.raw(), received.nbytes(), ncclUint8, recv_peer, comm_, stream()));
    NCCL_CHECK_NONBLOCKING(ncclGroupEnd());
    return finish_enqueue("send_recv");
  }

  // NCCL has no barrier; a one-element all-reduce synchronises the group's devices.
  std::unique_ptr<PendingOp> barrier() override {
    NCCL_CHECK_NONBLOCKING(
        ncclAllReduce(barrier_scratch_, barrier_scratch_, 1, ncclInt32, ncclSum, comm_, stream()));
    return finish_enqueue("barrier");
  }

 private:
  // The calling thread's current stream (runtime/cuda/stream.h), so communication is queued in
  // order with the kernels around it; a caller that wants overlap scopes a StreamGuard.
  cudaStream_t stream() const { return current_cuda_stream(Device::cuda(device_index_)); }

  std::unique_ptr<PendingOp> finish_enqueue(const char* op);
  void wait_for_comm_state(const char* op);

  ncclComm_t comm_ = nullptr;
  int device_index_;
  int size_ = 1;
  double timeout_s_;
  std::string group_;
  int* barrier_scratch_ = nullptr;  // (1), device
};

NcclCommunicator::NcclCommunicator(MPI_Comm mpi_comm, Device device, double timeout_s,
                                   std::string group)
    : device_index_(device.index), timeout_s_(timeout_s), group_(std::move(group)) {
  int rank = 0;
  MPI_CHECK(MPI_Comm_rank(mpi_comm, &rank));
  MPI_CHECK(MPI_Comm_size(mpi_comm, &size_));
  CUDA_CHECK(cudaSetDevice(device_index_));

  // Group rank 0 makes the unique id; the broadcast runs on MPI, under the watchdog.
  ncclUniqueId id;
  if (rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
  static_assert(sizeof(ncclUniqueId) % sizeof(int32_t) == 0);
  Tensor id_bytes = Tensor::wrap(&id, Shape{sizeof(ncclUniqueId) / sizeof(int32_t)},
                                 DType::kI32);  // (32), cpu
  MpiCommunicator mpi(mpi_comm);
  CommRequest(mpi.broadcast(id_bytes, 0),
              OpDescription{"broadcast of the NCCL unique id", group_, "128 bytes", timeout_s_},
              {id_bytes})
      .wait();

  // Non-blocking creation: the call returns at once and the state is polled with a deadline.
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  NCCL_CHECK_NONBLOCKING(ncclCommInitRankConfig(&comm_, size_, id, rank, &config));
  wait_for_comm_state("NCCL communicator creation");
  CUDA_CHECK(cudaMalloc(&barrier_scratch_, sizeof(int)));
  CUDA_CHECK(cudaMemset(barrier_scratch_, 0, sizeof(int)));
}

NcclCommunicator::~NcclCommunicator() {
  // Finalize flushes queued work without blocking; destroy once it reports success.
  NCCL_CHECK_NONBLOCKING(ncclCommFinalize(comm_));
  wait_for_comm_state("NCCL communicator finalize");
  NCCL_CHECK(ncclCommDestroy(comm_));
  CUDA_CHECK(cudaFree(barrier_scratch_));
}

void NcclCommunicator::wait_for_comm_state(const char* op) {
  OpDescription description{op, group_, "cuda:" + std::to_string(device_index_), timeout_s_};
  wait_with_deadline(description, [&] {
    ncclResult_t state = ncclSuccess;
    NCCL_CHECK(ncclCommGetAsyncError(comm_, &state));
    if (state == ncclInProgress) return false;
    if (state != ncclSuccess) {
      abort_job(std::string(op) + " on " + group_ + " failed: " + ncclGetErrorString(state) + ": " +
                ncclGetLastError(comm_));
    }
    return true;
  });
}

std::unique_ptr<PendingOp> NcclCommunicator::finish_enqueue(const char* op) {
  // The event must be recorded after NCCL has queued its kernels on the stream.
  wait_for_comm_state(op);
  cudaEvent_t event = nullptr;
  CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventRecord(event, stream()));
  return std::make_unique<NcclPendingOp>(comm_, event);
}

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, Device device, double timeout_s,
                                                     const std::string& group) {
  CHECK(device.is_cuda()) << "NCCL communicators are for CUDA devices, got " << device.str();
  return std::make_unique<NcclCommunicator>(comm, device, timeout_s, group);
}

}  // namespace steerlm

#else  // !STEERLM_HAVE_CUDA

namespace steerlm {

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, Device device, double timeout_s,
                                                     const std::string& group) {
  LOG(FATAL) << "NCCL communication for " << group << " on " << device.str()
             << " needs the CUDA backend, but this steerlm was built without CUDA "
                "(configure with the CUDA toolkit present, or set device: CPU)";
  __builtin_unreachable();
}

}  // namespace steerlm

#endif  // STEERLM_HAVE_CUDA
