#include "parallel/process_grid.h"

#include <glog/logging.h>

#include "runtime/check.h"
#include "runtime/device_memory.h"
#include "runtime/error.h"
#include "runtime/process.h"

namespace steerlm {
namespace {

// The GPU for this rank: its local rank, as long as the host has a GPU for every local rank.
Device pick_device(const MpiSession& mpi, DeviceKind kind) {
  if (kind == DeviceKind::kCPU) return Device::cpu();
  const int gpus = cuda_device_count();
  if (gpus == 0) {
    throw UserError("device: CUDA, but host " + host_name() +
                    " has no usable GPU; set device: CPU or run on a GPU node");
  }
  if (mpi.local_size() > gpus) {
    throw UserError("host " + host_name() + " runs " + std::to_string(mpi.local_size()) +
                    " ranks but has " + std::to_string(gpus) +
                    " GPUs; launch at most one rank per GPU (e.g. srun --ntasks-per-node=" +
                    std::to_string(gpus) + ")");
  }
  const Device device = Device::cuda(mpi.local_rank());
#ifdef STEERLM_HAVE_CUDA
  // Kernels and allocations that name no device land on this rank's GPU.
  CUDA_CHECK(cudaSetDevice(device.index));
#endif
  return device;
}

}  // namespace

GridCoordinates grid_coordinates(int world_rank, int tp_size, int pp_size) {
  return GridCoordinates{world_rank % tp_size, (world_rank / tp_size) % pp_size,
                         world_rank / (tp_size * pp_size)};
}

LayerRange stage_layer_range(const config::ParallelConfig& parallel, int n_layers, int stage) {
  const int stages = parallel.pp();
  CHECK(stage >= 0 && stage < stages) << "stage " << stage << " of " << stages;
  CHECK_LE(stages, n_layers) << "validate_stage_config rejects more stages than layers";

  // An explicit split, already checked to sum to n_layers by validate_stage_config.
  if (parallel.pp_layers_size() > 0) {
    CHECK_EQ(parallel.pp_layers_size(), stages);
    LayerRange range;
    for (int s = 0; s < stage; ++s) range.begin += parallel.pp_layers(s);
    range.end = range.begin + parallel.pp_layers(stage);
    CHECK_LE(range.end, n_layers) << "parallel.pp_layers sums past the model's layers";
    return range;
  }

  // An even split; the first n_layers % stages stages take one extra layer, because the last
  // stage already carries the final norm, the LM head and the loss.
  const int base = n_layers / stages, extra = n_layers % stages;
  LayerRange range;
  range.begin = stage * base + std::min(stage, extra);
  range.end = range.begin + base + (stage < extra ? 1 : 0);
  return range;
}

std::unique_ptr<ProcessGrid> ProcessGrid::create(const MpiSession& mpi,
                                                 const config::StageConfig& config,
                                                 const FieldLocations& where) {
  validate_stage_config(config, where, mpi.world_size());
  const DeviceKind device =
      config.device() == config::Device::CUDA ? DeviceKind::kCUDA : DeviceKind::kCPU;
  return std::make_unique<ProcessGrid>(mpi, config.parallel(), device);
}

ProcessGrid::ProcessGrid(const MpiSession& mpi, const config::ParallelConfig& parallel,
                         DeviceKind device)
    : parallel_(parallel), world_rank_(mpi.world_rank()), world_size_(mpi.world_size()) {
  const int tp = parallel.tp(), pp = parallel.pp();
  CHECK(tp >= 1 && pp >= 1 && world_size_ % (tp * pp) == 0)
      << "TP = " << tp << ", PP = " << pp << " do not fit " << world_size_
      << " ranks; call validate_stage_config (or ProcessGrid::create) first";
  device_ = pick_device(mpi, device);

  // A world group of our own keeps steerlm's traffic apart from anyone else's on the session's
  // communicator (MPI_COMM_WORLD, or a pipeline job's ranks).
  MPI_Comm world_copy = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_dup(mpi.comm(), &world_copy));
  world_ = std::make_unique<ProcessGroup>("world", world_copy, parallel.timeout_s());
  // MPI_Comm_split blocks; a barrier under the watchdog first proves every rank has arrived.
  world_->barrier();

  // Each group is the set of ranks that agree on every other coordinate (see the header).
  const GridCoordinates at = grid_coordinates(world_rank_, tp, pp);
  tp_ = split("tp", at.dp * pp + at.pp, at.tp);
  pp_ = split("pp", at.dp * tp + at.tp, at.pp);
  dp_ = split("dp", at.pp * tp + at.tp, at.dp);
  model_ = split("model", at.dp, at.pp * tp + at.tp);

  // GPUs get an NCCL communicator per group, created in the same order on every rank.
  if (device_.is_cuda()) {
    for (ProcessGroup* group : {world_.get(), tp_.get(), pp_.get(), dp_.get(), model_.get()}) {
      group->enable_device_backend(device_);
    }
  }
  VLOG(1) << "grid: world rank " << world_rank_ << " is tp " << tp_rank() << "/" << tp_size()
          << ", pp " << pp_rank() << "/" << pp_size() << ", dp " << dp_rank() << "/" << dp_size()
          << " on " << device_.str();
}

std::unique_ptr<ProcessGroup> ProcessGrid::split(const char* name, int color, int key) const {
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split(world_->mpi_comm(), color, key, &comm));
  return std::make_unique<ProcessGroup>(name, comm, parallel_.timeout_s());
}

LayerRange ProcessGrid::layers(int n_layers) const {
  return stage_layer_range(parallel_, n_layers, pp_rank());
}

double ProcessGrid::communication_wait_seconds() const {
  return world_->wait_seconds() + tp_->wait_seconds() + pp_->wait_seconds() + dp_->wait_seconds() +
         model_->wait_seconds();
}

}  // namespace steerlm
