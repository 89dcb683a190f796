#include "runtime/process.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>

namespace steerlm {
namespace {

int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  return std::atoi(value);
}

// Process-wide by nature: a process has one rank. Written once at start-up.
std::atomic<int> g_process_rank{-1};

}  // namespace

LauncherInfo launcher_info_from_env() {
  LauncherInfo info;
  if (std::getenv("OMPI_COMM_WORLD_RANK") != nullptr) {
    info.world_rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    info.world_size = env_int("OMPI_COMM_WORLD_SIZE", 1);
    info.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
    info.launcher = std::getenv("SLURM_JOB_ID") != nullptr ? "srun" : "mpirun";
  } else if (std::getenv("PMIX_RANK") != nullptr) {
    info.world_rank = env_int("PMIX_RANK", 0);
    info.world_size = env_int("SLURM_NTASKS", 1);
    info.local_rank = env_int("SLURM_LOCALID", 0);
    info.launcher = "srun";
  } else {
    info.launcher = "none";
  }
  return info;
}

int process_rank() {
  int rank = g_process_rank.load();
  return rank >= 0 ? rank : launcher_info_from_env().world_rank;
}

void set_process_rank(int rank) {
  g_process_rank.store(rank);
}

std::string host_name() {
  char name[256] = {0};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return name;
}

}  // namespace steerlm
