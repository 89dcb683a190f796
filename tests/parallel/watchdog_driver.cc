// Driver for tests/parallel/watchdog_test.cc: one rank stops taking part in an operation and
// the watchdog must end every rank at the deadline.
//
//   mpirun -np 4 parallel_watchdog_driver all_reduce TIMEOUT_S
//       grid TP = 2; world rank 1 sleeps instead of joining its tp group's all-reduce
//   mpirun -np 2 parallel_watchdog_driver recv TIMEOUT_S
//       grid PP = 2; stage 0 sleeps instead of sending, stage 1 waits in recv_forward
//
// A rank that gets past its operation waits at a world barrier, also under the deadline.
// Reaching the end is a failure: the driver exits 0 only if the watchdog did not fire.
#include <glog/logging.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "parallel/mpi_session.h"
#include "parallel/pp_transfer.h"
#include "parallel/process_grid.h"
#include "runtime/logging.h"

namespace steerlm {
namespace {

int run(const MpiSession& mpi, const std::string& scenario, double timeout_s) {
  config::ParallelConfig parallel;
  parallel.set_timeout_s(static_cast<float>(timeout_s));
  if (scenario == "all_reduce") {
    parallel.set_tp(2);
  } else if (scenario == "recv") {
    parallel.set_pp(2);
  } else {
    LOG(ERROR) << "unknown scenario " << scenario << "; use all_reduce or recv";
    return 2;
  }
  ProcessGrid grid(mpi, parallel);
  // Long enough that only the watchdog can end the run in time.
  const auto skip = std::chrono::duration<double>(timeout_s * 10 + 30);

  if (scenario == "all_reduce") {
    Tensor x = Tensor::from_floats({1.0f, 2.0f}, Shape{2});  // (2), cpu
    if (grid.world_rank() == 1) {
      std::this_thread::sleep_for(skip);
    } else {
      grid.tp().all_reduce(x);
    }
  } else {
    if (grid.is_first_stage()) {
      std::this_thread::sleep_for(skip);
    } else {
      recv_forward(grid.pp(), Shape{2, 4}, DType::kF32, Device::cpu());
    }
  }
  grid.world().barrier();
  LOG(INFO) << "finished without the watchdog firing";
  return 0;
}

}  // namespace
}  // namespace steerlm

int main(int argc, char** argv) {
  steerlm::init_logging(argv[0]);
  steerlm::MpiSession mpi(&argc, &argv);
  if (argc != 3) {
    LOG(ERROR) << "usage: parallel_watchdog_driver all_reduce|recv TIMEOUT_S";
    return 2;
  }
  return steerlm::run(mpi, argv[1], std::atof(argv[2]));
}
