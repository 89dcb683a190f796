// What every stage command does first, once its config is validated: per-rank log files under
// <output_dir>/logs, the provenance and resolved config in rank 0's log, and the resolved config
// written to <output_dir>/config.pbtxt (DESIGN §4).
#pragma once

#include <string>

#include "parallel/mpi_session.h"
#include "runtime/config.h"

namespace steerlm {

// Throws UserError when output_dir is missing. Collective over `mpi` (every rank calls it): rank
// 0 logs the hosts of all ranks.
void begin_stage(const std::string& command, const config::StageConfig& config,
                 const MpiSession& mpi);

}  // namespace steerlm
