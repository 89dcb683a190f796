// Communicator: the collective and point-to-point operations steerlm needs, on steerlm::Tensor.
//
// Two backends implement it:
//   MpiCommunicator  (parallel/mpi_communicator.h)   host tensors, non-blocking MPI;
//   NcclCommunicator (parallel/nccl_communicator.h)  CUDA tensors, non-blocking NCCL (CUDA builds).
// Code above parallel/ never picks a backend: it calls ProcessGroup (parallel/process_group.h),
// which routes each tensor to the backend of its device and puts a deadline on every operation.
//
// Every operation starts at once and returns a PendingOp; nothing here blocks. Waiting happens
// in CommRequest::wait(), which polls with a deadline (parallel/watchdog.h), so a rank that
// stops taking part makes the others abort instead of hanging.
//
// Buffer conventions (all ranks pass tensors of the same dtype and numel, as MPI requires):
//   all_reduce      tensor (N) in place
//   all_gather      input (N) -> output (size*N): rank r's input lands at [r*N, (r+1)*N)
//   reduce_scatter  input (size*N) -> output (N): rank r gets the reduction of [r*N, (r+1)*N)
//   broadcast       tensor (N) in place, from group rank `root`
//   send / recv     tensor (N) to / from group rank `peer`; `tag` keeps streams apart
//   send_recv       both at once (to one peer, from another): neither side can block the other,
//                   which pipeline schedules need when neighbours exchange in both directions
// Shapes beyond numel are the caller's business: the bytes are contiguous (runtime/tensor.h).
#pragma once

#include <memory>
#include <string>

#include "runtime/tensor.h"

namespace steerlm {

enum class ReduceOp : uint8_t { kSum, kMax };

const char* reduce_op_name(ReduceOp op);

// One operation in flight on some backend.
class PendingOp {
 public:
  struct Status {
    bool done = false;
    std::string error;  // non-empty: the backend reported a failure (e.g. an async NCCL error)
  };

  virtual ~PendingOp() = default;
  // Makes progress and reports whether the operation has finished. Never blocks.
  virtual Status poll() = 0;
  // Tears down the backend's communicator before the job aborts (ncclCommAbort on GPUs), so
  // that device kernels stuck in a collective do not keep the process alive.
  virtual void abort_backend() {}
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual std::unique_ptr<PendingOp> all_reduce(Tensor& tensor, ReduceOp op) = 0;
  virtual std::unique_ptr<PendingOp> all_gather(const Tensor& input, Tensor& output) = 0;
  virtual std::unique_ptr<PendingOp> reduce_scatter(const Tensor& input, Tensor& output,
                                                    ReduceOp op) = 0;
  virtual std::unique_ptr<PendingOp> broadcast(Tensor& tensor, int root) = 0;
  virtual std::unique_ptr<PendingOp> send(const Tensor& tensor, int peer, int tag) = 0;
  virtual std::unique_ptr<PendingOp> recv(Tensor& tensor, int peer, int tag) = 0;
  virtual std::unique_ptr<PendingOp> send_recv(const Tensor& sent, int send_peer, int send_tag,
                                               Tensor& received, int recv_peer, int recv_tag) = 0;
  virtual std::unique_ptr<PendingOp> barrier() = 0;
};

}  // namespace steerlm
