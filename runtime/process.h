// Facts about this process that logging and error checks need before any communicator exists:
// its world rank and size as the launcher (mpirun, srun) announced them.
#pragma once

#include <string>

namespace steerlm {

struct LauncherInfo {
  int world_rank = 0;
  int world_size = 1;
  int local_rank = 0;    // rank among the processes on this host; picks the GPU
  std::string launcher;  // "mpirun", "srun" or "none"
};

// Reads the launcher's environment (OMPI_COMM_WORLD_*, PMIX_RANK, SLURM_*). Cheap; no MPI calls.
LauncherInfo launcher_info_from_env();

// The world rank used to tag log lines and check failures. Set once MPI is initialised.
int process_rank();
void set_process_rank(int rank);

// This host's name, for provenance and error messages.
std::string host_name();

}  // namespace steerlm
