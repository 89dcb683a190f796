#include "parallel/mpi_communicator.h"

#include <glog/logging.h>

#include <climits>

#include "runtime/check.h"

namespace steerlm {
namespace {

// One MPI request; polling it with MPI_Test is also what drives MPI's progress engine for
// non-blocking collectives, so the watchdog's polling loop doubles as progress.
class MpiPendingOp : public PendingOp {
 public:
  // `received_bytes` >= 0 makes a receive check that the sender sent exactly that many bytes.
  explicit MpiPendingOp(int received_bytes = -1) : received_bytes_(received_bytes) {}

  MPI_Request* request() { return &request_; }

  Status poll() override {
    int flag = 0;
    MPI_Status status;
    MPI_CHECK(MPI_Test(&request_, &flag, &status));
    if (flag == 0) return Status{false, ""};
    if (received_bytes_ >= 0) {
      int count = 0;
      MPI_CHECK(MPI_Get_count(&status, MPI_BYTE, &count));
      CHECK_EQ(count, received_bytes_) << "recv got a message of another size than its tensor: "
                                          "sender and receiver disagree on the shape";
    }
    return Status{true, ""};
  }

 private:
  MPI_Request request_ = MPI_REQUEST_NULL;
  int received_bytes_;
};

// Two operations that complete together.
class BothPendingOps : public PendingOp {
 public:
  BothPendingOps(std::unique_ptr<PendingOp> first, std::unique_ptr<PendingOp> second)
      : first_(std::move(first)), second_(std::move(second)) {}

  Status poll() override {
    if (!first_done_) first_done_ = first_->poll().done;
    if (!second_done_) second_done_ = second_->poll().done;
    return Status{first_done_ && second_done_, ""};
  }

 private:
  std::unique_ptr<PendingOp> first_, second_;
  bool first_done_ = false, second_done_ = false;
};

void check_host(const Tensor& tensor, const char* op) {
  CHECK(tensor.defined()) << op << " of an undefined tensor";
  CHECK(tensor.device().is_cpu()) << op << " on the MPI backend needs a host tensor, got "
                                  << tensor.device().str();
}

// MPI counts are ints; steerlm's host tensors stay far below 2 GiB per call.
int byte_count(const Tensor& tensor) {
  CHECK_LE(tensor.nbytes(), static_cast<size_t>(INT_MAX))
      << "a single MPI transfer is limited to 2 GiB; split the tensor";
  return static_cast<int>(tensor.nbytes());
}

int element_count(const Tensor& tensor) {
  CHECK_LE(tensor.numel(), static_cast<int64_t>(INT_MAX));
  return static_cast<int>(tensor.numel());
}

MPI_Datatype reduction_type(const Tensor& tensor) {
  switch (tensor.dtype()) {
    case DType::kF32: return MPI_FLOAT;
    case DType::kI32: return MPI_INT32_T;
    case DType::kBF16: break;
  }
  LOG(FATAL) << "MPI reductions take f32 or i32 tensors, got " << dtype_name(tensor.dtype())
             << "; host tensors are fp32 (DESIGN §5)";
  __builtin_unreachable();
}

MPI_Op mpi_op(ReduceOp op) {
  return op == ReduceOp::kSum ? MPI_SUM : MPI_MAX;
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm) : comm_(comm) {
  MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

std::unique_ptr<PendingOp> MpiCommunicator::all_reduce(Tensor& tensor, ReduceOp op) {
  check_host(tensor, "all_reduce");
  auto pending = std::make_unique<MpiPendingOp>();
  MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, tensor.raw(), element_count(tensor),
                           reduction_type(tensor), mpi_op(op), comm_, pending->request()));
  return pending;
}

std::unique_ptr<PendingOp> MpiCommunicator::all_gather(const Tensor& input, Tensor& output) {
  check_host(input, "all_gather");
  check_host(output, "all_gather");
  CHECK(input.dtype() == output.dtype()) << "all_gather input and output dtypes differ";
  CHECK_EQ(output.numel(), input.numel() * size_)
      << "all_gather output must hold group size x input elements";
  auto pending = std::make_unique<MpiPendingOp>();
  MPI_CHECK(MPI_Iallgather(input.raw(), byte_count(input), MPI_BYTE, output.raw(),
                           byte_count(input), MPI_BYTE, comm_, pending->request()));
  return pending;
}

std::unique_ptr<PendingOp> MpiCommunicator::reduce_scatter(const Tensor& input, Tensor& output,
                                                           ReduceOp op) {
  check_host(input, "reduce_scatter");
  check_host(output, "reduce_scatter");
  CHECK(input.dtype() == output.dtype()) << "reduce_scatter input and output dtypes differ";
  CHECK_EQ(input.numel(), output.numel() * size_)
      << "reduce_scatter input must hold group size x output elements";
  auto pending = std::make_unique<MpiPendingOp>();
  MPI_CHECK(MPI_Ireduce_scatter_block(input.raw(), output.raw(), element_count(output),
                                      reduction_type(input), mpi_op(op), comm_,
                                      pending->request()));
  return pending;
}

std::unique_ptr<PendingOp> MpiCommunicator::broadcast(Tensor& tensor, int root) {
  check_host(tensor, "broadcast");
  auto pending = std::make_unique<MpiPendingOp>();
  MPI_CHECK(
      MPI_Ibcast(tensor.raw(), byte_count(tensor), MPI_BYTE, root, comm_, pending->request()));
  return pending;
}

std::unique_ptr<PendingOp> MpiCommunicator::send(const Tensor& tensor, int peer, int tag) {
  check_host(tensor, "send");
  auto pending = std::make_unique<MpiPendingOp>();
  MPI_CHECK(
      MPI_Isend(tensor.raw(), byte_count(tensor), MPI_BYTE, peer, tag, comm_, pending->request()));
  return pending;
}

std::unique_ptr<PendingOp> MpiCommunicator::recv(Tensor& tensor, int peer, int tag) {
  check_host(tensor, "recv");
  auto pending = std::make_unique<MpiPendingOp>(byte_count(tensor));
  MPI_CHECK(
      MPI_Irecv(tensor.raw(), byte_count(tensor), MPI_BYTE, peer, tag, comm_, pending->request()));
  return pending;
}

std::unique_ptr<PendingOp> MpiCommunicator::send_recv(const Tensor& sent, int send_peer,
                                                      int send_tag, Tensor& received, int recv_peer,
                                                      int recv_tag) {
  return std::make_unique<BothPendingOps>(send(sent, send_peer, send_tag),
                                          recv(received, recv_peer, recv_tag));
}

std::unique_ptr<PendingOp> MpiCommunicator::barrier() {
  auto pending = std::make_unique<MpiPendingOp>();
  MPI_CHECK(MPI_Ibarrier(comm_, pending->request()));
  return pending;
}

}  // namespace steerlm
