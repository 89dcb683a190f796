#include "launch/stage.h"

#include <glog/logging.h>

#include <filesystem>

#include "runtime/error.h"
#include "runtime/file_util.h"
#include "runtime/logging.h"
#include "runtime/process.h"
#include "runtime/threads.h"

namespace steerlm {

void begin_stage(const std::string& command, const config::StageConfig& config,
                 const MpiSession& mpi) {
  if (config.output_dir().empty()) {
    throw UserError("output_dir: not set; pass --set output_dir=DIR or set it in the config");
  }
  const int rank = mpi.world_rank(), world_size = mpi.world_size();
  log_to_directory(config.output_dir(), rank);
  const std::string hosts = mpi.describe_hosts();
  LOG(INFO) << "steerlm " << command << " on " << world_size << " rank(s), rank " << rank
            << " on host " << host_name() << ", threads: OpenBLAS " << current_openblas_threads()
            << " x OpenMP " << current_openmp_threads();
  if (rank != 0) return;
  LOG(INFO) << "provenance: " << provenance_line(current_provenance());
  LOG(INFO) << "ranks: " << world_size << " on " << hosts;
  const std::string resolved = config_to_text(config);
  LOG(INFO) << "resolved config:\n" << resolved;
  write_file_atomic(std::filesystem::path(config.output_dir()) / "config.pbtxt", resolved);
}

}  // namespace steerlm
