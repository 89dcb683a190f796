// What every stage command does first, once its config is validated: per-rank log files under
// <output_dir>/logs, the provenance and resolved config in rank 0's log, and the resolved config
// written to <output_dir>/config.pbtxt (DESIGN §4).
#pragma once

#include <string>

#include "runtime/config.h"

namespace steerlm {

// Throws UserError when output_dir is missing. `rank`/`world_size` are the world rank and size.
void begin_stage(const std::string& command, const config::StageConfig& config, int rank,
                 int world_size);

}  // namespace steerlm
