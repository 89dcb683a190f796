// Logging through glog, one log file per rank (STYLE 9, DESIGN §4).
//
// init_logging() runs first in main: every line is prefixed with the world rank ("r3"), glog's
// failure signal handler is installed, and lines go to stderr. Once a job knows its output
// directory, log_to_directory() sends each rank's lines to <output_dir>/logs/steerlm.rank<N>.log;
// rank 0 keeps echoing to stderr, other ranks echo warnings and errors only.
#pragma once

#include <string>

namespace steerlm {

void init_logging(const char* argv0);

// Per-rank log file under <output_dir>/logs. May be called again for another job's directory.
void log_to_directory(const std::string& output_dir, int rank);

// steerlm's commit, compiler, library versions, host: logged at start, stored in checkpoints.
struct Provenance {
  std::string steerlm_version;
  std::string commit;
  std::string compiler;
  std::string libraries;  // "protobuf 3.21.12, Open MPI 4.1.4, OpenBLAS 0.3.21, ..."
  std::string host;
};
Provenance current_provenance();
std::string provenance_line(const Provenance& provenance);

}  // namespace steerlm
