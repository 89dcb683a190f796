#include "runtime/threads.h"

#include <cblas.h>
#include <glog/logging.h>
#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <string>

namespace steerlm {
namespace {

// A positive integer from the environment, or 0 when unset or not a number.
int env_positive_int(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return 0;
  char* end = nullptr;
  long parsed = std::strtol(value, &end, 10);
  return parsed > 0 ? static_cast<int>(parsed) : 0;
}

// Slurm writes tasks per node compressed, one entry per node group: "2(x3),1" means three nodes
// with 2 tasks, then one with 1. Returns the count for node `node_id`, or 0 if unparsable.
int slurm_tasks_on_node(const std::string& spec, int node_id) {
  std::istringstream entries(spec);
  std::string entry;
  int first_node = 0;
  while (std::getline(entries, entry, ',')) {
    int tasks = std::atoi(entry.c_str());
    int nodes = 1;
    size_t repeat = entry.find("(x");
    if (repeat != std::string::npos) nodes = std::atoi(entry.c_str() + repeat + 2);
    if (tasks <= 0 || nodes <= 0) return 0;
    if (node_id < first_node + nodes) return tasks;
    first_node += nodes;
  }
  return 0;
}

// Ranks of this job on this host, and the variable that said so.
std::pair<int, std::string> local_ranks_from_env() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMIX_LOCAL_SIZE"}) {
    if (int count = env_positive_int(name); count > 0) return {count, name};
  }
  // Inside an srun step: this node's entry of the step's task layout.
  if (const char* step = std::getenv("SLURM_STEP_TASKS_PER_NODE"); step != nullptr) {
    const char* node = std::getenv("SLURM_NODEID");
    int count = slurm_tasks_on_node(step, node != nullptr ? std::atoi(node) : 0);
    if (count > 0) return {count, "SLURM_STEP_TASKS_PER_NODE"};
  }
  if (int count = env_positive_int("SLURM_NTASKS_PER_NODE"); count > 0) {
    return {count, "SLURM_NTASKS_PER_NODE"};
  }
  return {1, "default"};
}

}  // namespace

ThreadEnvironment thread_environment_from_process() {
  ThreadEnvironment environment;
  environment.host_cores = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  environment.affinity_cores = sched_getaffinity(0, sizeof(allowed), &allowed) == 0
                                   ? std::max(1, CPU_COUNT(&allowed))
                                   : environment.host_cores;
  auto [local_ranks, source] = local_ranks_from_env();
  environment.local_ranks = local_ranks;
  environment.local_ranks_source = source;
  environment.omp_threads_env = env_positive_int("OMP_NUM_THREADS");
  environment.openblas_threads_env = env_positive_int("OPENBLAS_NUM_THREADS");
  return environment;
}

ThreadPolicy choose_thread_policy(const ThreadEnvironment& environment) {
  ThreadPolicy policy;

  // This rank's share of the host. When a launcher bound the rank to fewer cores, that is the
  // tighter limit; when it bound the rank to a socket shared with others, the share is.
  const int share = std::max(1, environment.host_cores / std::max(1, environment.local_ranks));
  policy.budget = std::max(1, std::min(environment.affinity_cores, share));

  // Split the budget: explicit settings win, the other side gets what is left.
  const int omp_env = environment.omp_threads_env;
  const int blas_env = environment.openblas_threads_env;
  if (omp_env > 0 && blas_env > 0) {
    policy.openmp_threads = omp_env;
    policy.openblas_threads = blas_env;
  } else if (omp_env > 0) {
    policy.openmp_threads = omp_env;
    policy.openblas_threads = std::max(1, policy.budget / omp_env);
  } else if (blas_env > 0) {
    policy.openblas_threads = blas_env;
    policy.openmp_threads = std::max(1, policy.budget / blas_env);
  } else {
    policy.openblas_threads = policy.budget;
    policy.openmp_threads = 1;
  }

  // Say what was decided and from what.
  std::ostringstream reason;
  reason << "threads: OpenBLAS " << policy.openblas_threads << " x OpenMP " << policy.openmp_threads
         << " within a budget of " << policy.budget << " cores (" << environment.host_cores
         << " on the host, " << environment.affinity_cores << " allowed by affinity, "
         << environment.local_ranks << " ranks on this host from " << environment.local_ranks_source
         << ")";
  if (omp_env > 0) reason << "; OMP_NUM_THREADS=" << omp_env;
  if (blas_env > 0) reason << "; OPENBLAS_NUM_THREADS=" << blas_env;
  if (policy.openmp_threads * policy.openblas_threads > policy.budget) {
    reason << "; WARNING: the environment asks for more threads than cores, they will compete";
  }
  policy.reason = reason.str();
  return policy;
}

ThreadPolicy apply_thread_policy() {
  ThreadPolicy policy = choose_thread_policy(thread_environment_from_process());
  omp_set_num_threads(policy.openmp_threads);
  openblas_set_num_threads(policy.openblas_threads);
  if (policy.openmp_threads * policy.openblas_threads > policy.budget) {
    LOG(WARNING) << policy.reason;
  } else {
    VLOG(1) << policy.reason;  // begin_stage logs the counts into each job's log
  }
  return policy;
}

int current_openmp_threads() {
  return omp_get_max_threads();
}

int current_openblas_threads() {
  return openblas_get_num_threads();
}

}  // namespace steerlm
