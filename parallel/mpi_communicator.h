// MpiCommunicator: the Communicator backend for host tensors, on non-blocking MPI calls
// (MPI_Iallreduce, MPI_Iallgather, MPI_Ireduce_scatter_block, MPI_Ibcast, MPI_Isend, MPI_Irecv,
// MPI_Ibarrier). Each returns a PendingOp polled with MPI_Test, so the watchdog can put a
// deadline on it (parallel/watchdog.h). Reductions take f32 and i32 tensors (the CPU backend is
// fp32, DESIGN §5); the other operations move raw bytes of any dtype.
#pragma once

#include <mpi.h>

#include "parallel/communicator.h"

namespace steerlm {

class MpiCommunicator : public Communicator {
 public:
  // Uses `comm`, which the caller owns and keeps alive (ProcessGroup does).
  explicit MpiCommunicator(MPI_Comm comm);

  std::unique_ptr<PendingOp> all_reduce(Tensor& tensor, ReduceOp op) override;
  std::unique_ptr<PendingOp> all_gather(const Tensor& input, Tensor& output) override;
  std::unique_ptr<PendingOp> reduce_scatter(const Tensor& input, Tensor& output,
                                            ReduceOp op) override;
  std::unique_ptr<PendingOp> broadcast(Tensor& tensor, int root) override;
  std::unique_ptr<PendingOp> send(const Tensor& tensor, int peer, int tag) override;
  std::unique_ptr<PendingOp> recv(Tensor& tensor, int peer, int tag) override;
  std::unique_ptr<PendingOp> send_recv(const Tensor& sent, int send_peer, int send_tag,
                                       Tensor& received, int recv_peer, int recv_tag) override;
  std::unique_ptr<PendingOp> barrier() override;

 private:
  MPI_Comm comm_;
  int size_ = 1;
};

}  // namespace steerlm
