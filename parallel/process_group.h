// ProcessGroup: a set of ranks that communicate, such as one TP group, with a deadline on every
// operation. It owns its MPI communicator, and on GPUs also an NCCL communicator over the same
// ranks; each call goes to the backend of the tensor's device (host: MPI, CUDA: NCCL).
//
//   ProcessGroup& tp = grid.tp();
//   tp.all_reduce(partial_sums);                       // (B, T, C), sum over the TP ranks
//   CommRequest pending = dp.all_reduce_async(bucket); // overlap, then pending.wait()
//
// Every synchronous call is its _async twin followed by wait(), so each one is under the
// watchdog (parallel/watchdog.h). Ranks are group ranks (0 .. size()-1) unless a name says world.
// NCCL has no tags: between two ranks, NCCL transfers match in the order they were issued.
#pragma once

#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/watchdog.h"

namespace steerlm {

class ProcessGroup {
 public:
  // Takes ownership of `comm` (freed on destruction). `name` is "tp", "pp", "dp", "model" or
  // "world" and appears in watchdog messages as "tp group (ranks 0,1)".
  ProcessGroup(std::string name, MPI_Comm comm, double timeout_s);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  // Creates the NCCL communicator for CUDA tensors on `device` (collective over the group, with
  // the deadline). Without CUDA support this fails loudly.
  void enable_device_backend(Device device);

  const std::string& name() const { return name_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  // World rank of each group rank, in group order.
  const std::vector<int>& world_ranks() const { return world_ranks_; }
  // "tp group (ranks 0,1)"
  const std::string& description() const { return description_; }
  MPI_Comm mpi_comm() const { return comm_; }
  double timeout_s() const { return timeout_s_; }
  // Seconds this rank has spent blocked in wait() on the group's operations (benchmarks: the
  // share of a step spent communicating, pipeline idle time included).
  double wait_seconds() const { return wait_seconds_; }

  // Collectives (buffer conventions in parallel/communicator.h).
  void all_reduce(Tensor& tensor, ReduceOp op = ReduceOp::kSum);
  void all_gather(const Tensor& input, Tensor& output);
  void reduce_scatter(const Tensor& input, Tensor& output, ReduceOp op = ReduceOp::kSum);
  void broadcast(Tensor& tensor, int root);
  void barrier();
  // Point-to-point; `tag` separates independent streams between the same two ranks (MPI only).
  void send(const Tensor& tensor, int peer, int tag = 0);
  void recv(Tensor& tensor, int peer, int tag = 0);
  // Sends `sent` to `send_peer` while receiving `received` from `recv_peer` (may be the same).
  void send_recv(const Tensor& sent, int send_peer, int send_tag, Tensor& received, int recv_peer,
                 int recv_tag);

  CommRequest all_reduce_async(Tensor& tensor, ReduceOp op = ReduceOp::kSum);
  CommRequest all_gather_async(const Tensor& input, Tensor& output);
  CommRequest reduce_scatter_async(const Tensor& input, Tensor& output,
                                   ReduceOp op = ReduceOp::kSum);
  CommRequest broadcast_async(Tensor& tensor, int root);
  CommRequest send_async(const Tensor& tensor, int peer, int tag = 0);
  CommRequest recv_async(Tensor& tensor, int peer, int tag = 0);
  CommRequest send_recv_async(const Tensor& sent, int send_peer, int send_tag, Tensor& received,
                              int recv_peer, int recv_tag);

 private:
  Communicator& backend_for(const Tensor& tensor);
  void check_peer(int peer, const char* op) const;
  OpDescription describe(std::string op, const Tensor& tensor, const std::string& extra) const;

  mutable double wait_seconds_ = 0;  // written by the CommRequests describe() hands out
  std::string name_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  std::vector<int> world_ranks_;
  std::string description_;
  double timeout_s_;
  std::unique_ptr<Communicator> host_backend_;
  std::unique_ptr<Communicator> device_backend_;
};

}  // namespace steerlm
