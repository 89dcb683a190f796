// ProcessGrid: the parallel state of one rank (STYLE 5). world = DP x PP x TP, built once at
// start-up from the MpiSession's communicator (MPI_COMM_WORLD, or a pipeline job's ranks, in
// which case "world" below means the job's ranks) and passed by reference; nothing about the
// layout is global.
//
// Rank order (DESIGN §4): TP varies fastest, then PP, then DP.
//   tp_rank = world_rank % TP
//   pp_rank = (world_rank / TP) % PP        (the pipeline stage)
//   dp_rank = world_rank / (TP * PP)        (the data-parallel replica)
//
// Worked example: 8 ranks, TP = 2, PP = 2, DP = 2, a model of 4 layers and 8 heads.
//
//   world rank | tp pp dp | layers | heads | also holds                         | GPU
//   -----------+----------+--------+-------+------------------------------------+-------
//        0     |  0  0  0 |  0-1   |  0-3  | embedding rows of vocabulary half 0  | cuda:0
//        1     |  1  0  0 |  0-1   |  4-7  | embedding rows of vocabulary half 1  | cuda:1
//        2     |  0  1  0 |  2-3   |  0-3  | final norm, head rows of half 0      | cuda:2
//        3     |  1  1  0 |  2-3   |  4-7  | final norm, head rows of half 1      | cuda:3
//        4     |  0  0  1 |  0-1   |  0-3  | embedding rows of vocabulary half 0  | cuda:4
//        5     |  1  0  1 |  0-1   |  4-7  | embedding rows of vocabulary half 1  | cuda:5
//        6     |  0  1  1 |  2-3   |  0-3  | final norm, head rows of half 0      | cuda:6
//        7     |  1  1  1 |  2-3   |  4-7  | final norm, head rows of half 1      | cuda:7
//   Ranks 4-7 (dp = 1) are a second replica of ranks 0-3 that sees other sequences.
//
//   tp groups    {0,1} {2,3} {4,5} {6,7}   all-reduce activations inside a layer
//   pp groups    {0,2} {1,3} {4,6} {5,7}   send activations stage 0 -> 1, gradients back
//   dp groups    {0,4} {1,5} {2,6} {3,7}   all-reduce gradients of the same shard
//   model groups {0,1,2,3} {4,5,6,7}       one full model copy (gradient norm, loss)
//
// Keeping TP fastest puts a TP group on neighbouring ranks, hence on one node, where the
// bandwidth is; its activations all-reduces are the most frequent communication.
//
// The GPU is the local rank (rank among the processes on the host), so with 4 GPUs per node
// ranks 0-3 use cuda:0-3 of node 0 and ranks 4-7 cuda:0-3 of node 1.
#pragma once

#include <memory>

#include "configs/steerlm.pb.h"
#include "parallel/mpi_session.h"
#include "parallel/process_group.h"
#include "runtime/config.h"

namespace steerlm {

// Layers [begin, end) of the model held by one pipeline stage.
struct LayerRange {
  int begin = 0;
  int end = 0;
  int size() const { return end - begin; }
  bool operator==(const LayerRange& other) const = default;
};

// The layers of `stage`: parallel.pp_layers when given, else an even split in which the first
// n_layers % PP stages hold one layer more (the last stage also holds the heads).
LayerRange stage_layer_range(const config::ParallelConfig& parallel, int n_layers, int stage);

// The grid coordinates of a world rank under the order above.
struct GridCoordinates {
  int tp = 0;
  int pp = 0;
  int dp = 0;
  bool operator==(const GridCoordinates& other) const = default;
};
GridCoordinates grid_coordinates(int world_rank, int tp_size, int pp_size);

class ProcessGrid {
 public:
  // Validates `config` for this world size (runtime/config.h: a layout that cannot work is a
  // UserError naming the field and where it was set), then builds the grid for config.parallel()
  // on config.device(). This is the constructor commands use.
  static std::unique_ptr<ProcessGrid> create(const MpiSession& mpi,
                                             const config::StageConfig& config,
                                             const FieldLocations& where);

  // Builds the groups for an already validated layout. CUDA devices are picked by local rank and
  // get NCCL communicators; a host without enough GPUs is a UserError.
  ProcessGrid(const MpiSession& mpi, const config::ParallelConfig& parallel,
              DeviceKind device = DeviceKind::kCPU);
  ProcessGrid(const ProcessGrid&) = delete;
  ProcessGrid& operator=(const ProcessGrid&) = delete;

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  int tp_rank() const { return tp_->rank(); }
  int tp_size() const { return tp_->size(); }
  int pp_rank() const { return pp_->rank(); }
  int pp_size() const { return pp_->size(); }
  int dp_rank() const { return dp_->rank(); }
  int dp_size() const { return dp_->size(); }
  bool is_first_stage() const { return pp_rank() == 0; }
  bool is_last_stage() const { return pp_rank() == pp_size() - 1; }
  // The device this rank computes on: the CPU, or cuda:<local rank>.
  Device device() const { return device_; }

  ProcessGroup& tp() { return *tp_; }        // same (dp, pp), TP ranks in order
  ProcessGroup& pp() { return *pp_; }        // same (dp, tp), stages in order
  ProcessGroup& dp() { return *dp_; }        // same (pp, tp), replicas in order
  ProcessGroup& model() { return *model_; }  // same dp: one model copy, TP x PP ranks
  ProcessGroup& world() { return *world_; }
  // Seconds this rank spent blocked on communication, over all of its groups.
  double communication_wait_seconds() const;

  // This stage's layers of an n_layers model (see stage_layer_range).
  LayerRange layers(int n_layers) const;

 private:
  std::unique_ptr<ProcessGroup> split(const char* name, int color, int key) const;

  config::ParallelConfig parallel_;
  int world_rank_ = 0;
  int world_size_ = 1;
  Device device_;
  std::unique_ptr<ProcessGroup> world_;
  std::unique_ptr<ProcessGroup> tp_;
  std::unique_ptr<ProcessGroup> pp_;
  std::unique_ptr<ProcessGroup> dp_;
  std::unique_ptr<ProcessGroup> model_;
};

}  // namespace steerlm
