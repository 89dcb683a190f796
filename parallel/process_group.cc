#include "parallel/process_group.h"

#include <glog/logging.h>

#include <sstream>

#include "parallel/mpi_communicator.h"
#include "parallel/nccl_communicator.h"
#include "runtime/check.h"

namespace steerlm {
namespace {

// World ranks of every member, in group order.
std::vector<int> member_world_ranks(MPI_Comm comm) {
  MPI_Group world_group, group;
  MPI_CHECK(MPI_Comm_group(MPI_COMM_WORLD, &world_group));
  MPI_CHECK(MPI_Comm_group(comm, &group));
  int size = 0;
  MPI_CHECK(MPI_Group_size(group, &size));
  std::vector<int> group_ranks(size), world_ranks(size);
  for (int r = 0; r < size; ++r) group_ranks[r] = r;
  MPI_CHECK(
      MPI_Group_translate_ranks(group, size, group_ranks.data(), world_group, world_ranks.data()));
  MPI_CHECK(MPI_Group_free(&group));
  MPI_CHECK(MPI_Group_free(&world_group));
  return world_ranks;
}

// "tp group (ranks 0,1)"; long groups are shortened to their first ranks and the count.
std::string describe_group(const std::string& name, const std::vector<int>& world_ranks) {
  constexpr size_t kListed = 8;
  std::ostringstream text;
  text << name << " group (ranks ";
  for (size_t i = 0; i < world_ranks.size() && i < kListed; ++i) {
    text << (i > 0 ? "," : "") << world_ranks[i];
  }
  if (world_ranks.size() > kListed) text << ",... " << world_ranks.size() << " ranks";
  text << ")";
  return text.str();
}

}  // namespace

ProcessGroup::ProcessGroup(std::string name, MPI_Comm comm, double timeout_s)
    : name_(std::move(name)), comm_(comm), timeout_s_(timeout_s) {
  CHECK(comm_ != MPI_COMM_NULL) << "ProcessGroup " << name_ << " needs a communicator";
  CHECK_GT(timeout_s_, 0) << "the watchdog deadline must be positive";
  MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  MPI_CHECK(MPI_Comm_size(comm_, &size_));
  world_ranks_ = member_world_ranks(comm_);
  description_ = describe_group(name_, world_ranks_);
  host_backend_ = std::make_unique<MpiCommunicator>(comm_);
}

ProcessGroup::~ProcessGroup() {
  // The NCCL communicator goes first: it was built over this MPI communicator's ranks.
  device_backend_.reset();
  host_backend_.reset();
  int finalized = 0;
  MPI_CHECK(MPI_Finalized(&finalized));
  CHECK(!finalized) << "ProcessGroup " << name_ << " outlived MpiSession; destroy it first";
  MPI_CHECK(MPI_Comm_free(&comm_));
}

void ProcessGroup::enable_device_backend(Device device) {
  CHECK(device.is_cuda()) << "the device backend is for CUDA devices, got " << device.str();
  if (device_backend_ != nullptr) return;
  device_backend_ = make_nccl_communicator(comm_, device, timeout_s_, description_);
}

void ProcessGroup::check_peer(int peer, const char* op) const {
  CHECK(peer >= 0 && peer < size_ && peer != rank_)
      << op << " with group rank " << peer << " from group rank " << rank_ << " on "
      << description_;
}

Communicator& ProcessGroup::backend_for(const Tensor& tensor) {
  CHECK(tensor.defined()) << "communication on " << description_ << " with an undefined tensor";
  if (tensor.device().is_cpu()) return *host_backend_;
  CHECK(device_backend_ != nullptr)
      << "a " << tensor.device().str() << " tensor reached " << description_
      << ", which has no NCCL communicator; build the ProcessGrid for a CUDA device";
  return *device_backend_;
}

OpDescription ProcessGroup::describe(std::string op, const Tensor& tensor,
                                     const std::string& extra) const {
  std::ostringstream detail;
  detail << tensor.numel() << " x " << dtype_name(tensor.dtype()) << " on " << tensor.device().str()
         << extra;
  return OpDescription{std::move(op), description_, detail.str(), timeout_s_, &wait_seconds_};
}

CommRequest ProcessGroup::all_reduce_async(Tensor& tensor, ReduceOp op) {
  auto pending = backend_for(tensor).all_reduce(tensor, op);
  return CommRequest(std::move(pending),
                     describe("all_reduce", tensor, std::string(", ") + reduce_op_name(op)),
                     {tensor});
}

CommRequest ProcessGroup::all_gather_async(const Tensor& input, Tensor& output) {
  auto pending = backend_for(input).all_gather(input, output);
  return CommRequest(std::move(pending), describe("all_gather", input, " per rank"),
                     {input, output});
}

CommRequest ProcessGroup::reduce_scatter_async(const Tensor& input, Tensor& output, ReduceOp op) {
  auto pending = backend_for(input).reduce_scatter(input, output, op);
  return CommRequest(std::move(pending),
                     describe("reduce_scatter", input, std::string(", ") + reduce_op_name(op)),
                     {input, output});
}

CommRequest ProcessGroup::broadcast_async(Tensor& tensor, int root) {
  CHECK(root >= 0 && root < size_) << "broadcast root " << root << " outside " << description_;
  auto pending = backend_for(tensor).broadcast(tensor, root);
  return CommRequest(std::move(pending),
                     describe("broadcast", tensor, ", root rank " + std::to_string(root)),
                     {tensor});
}

CommRequest ProcessGroup::send_async(const Tensor& tensor, int peer, int tag) {
  check_peer(peer, "send");
  auto pending = backend_for(tensor).send(tensor, peer, tag);
  return CommRequest(std::move(pending),
                     describe("send to rank " + std::to_string(world_ranks_[peer]), tensor,
                              ", tag " + std::to_string(tag)),
                     {tensor});
}

CommRequest ProcessGroup::recv_async(Tensor& tensor, int peer, int tag) {
  check_peer(peer, "recv");
  auto pending = backend_for(tensor).recv(tensor, peer, tag);
  return CommRequest(std::move(pending),
                     describe("recv from rank " + std::to_string(world_ranks_[peer]), tensor,
                              ", tag " + std::to_string(tag)),
                     {tensor});
}

CommRequest ProcessGroup::send_recv_async(const Tensor& sent, int send_peer, int send_tag,
                                          Tensor& received, int recv_peer, int recv_tag) {
  check_peer(send_peer, "send_recv");
  check_peer(recv_peer, "send_recv");
  auto pending =
      backend_for(sent).send_recv(sent, send_peer, send_tag, received, recv_peer, recv_tag);
  return CommRequest(
      std::move(pending),
      describe("send to rank " + std::to_string(world_ranks_[send_peer]) + " with recv from rank " +
                   std::to_string(world_ranks_[recv_peer]),
               sent, ", tags " + std::to_string(send_tag) + "/" + std::to_string(recv_tag)),
      {sent, received});
}

void ProcessGroup::all_reduce(Tensor& tensor, ReduceOp op) {
  all_reduce_async(tensor, op).wait();
}

void ProcessGroup::all_gather(const Tensor& input, Tensor& output) {
  all_gather_async(input, output).wait();
}

void ProcessGroup::reduce_scatter(const Tensor& input, Tensor& output, ReduceOp op) {
  reduce_scatter_async(input, output, op).wait();
}

void ProcessGroup::broadcast(Tensor& tensor, int root) {
  broadcast_async(tensor, root).wait();
}

void ProcessGroup::send(const Tensor& tensor, int peer, int tag) {
  send_async(tensor, peer, tag).wait();
}

void ProcessGroup::recv(Tensor& tensor, int peer, int tag) {
  recv_async(tensor, peer, tag).wait();
}

void ProcessGroup::send_recv(const Tensor& sent, int send_peer, int send_tag, Tensor& received,
                             int recv_peer, int recv_tag) {
  send_recv_async(sent, send_peer, send_tag, received, recv_peer, recv_tag).wait();
}

void ProcessGroup::barrier() {
  // The barrier synchronises host processes, so it always runs on MPI.
  CommRequest request(host_backend_->barrier(),
                      OpDescription{"barrier", description_, "no data", timeout_s_}, {});
  request.wait();
}

const char* reduce_op_name(ReduceOp op) {
  return op == ReduceOp::kSum ? "sum" : "max";
}

}  // namespace steerlm
