// Thread policy for the host backend: how many OpenMP and OpenBLAS threads each rank uses.
//
// Ranks on one host share its cores, so each rank's budget is its share:
//   budget = min(cores this process may run on, cores on the host / ranks on this host),
// where the ranks on this host come from the launcher (OMPI_COMM_WORLD_LOCAL_SIZE, MPI_LOCALNRANKS,
// SLURM_NTASKS_PER_NODE, SLURM_TASKS_PER_NODE, ...). The product OpenMP x OpenBLAS never exceeds
// the budget: OpenBLAS's pthread workers keep spinning for a while after each call, so an OpenMP
// team started between two GEMMs competes with them for the same cores (PLATFORM.md measured a
// slowdown). GEMM dominates a training step, so by default OpenBLAS gets the whole budget and the
// OpenMP kernels (memory-bound elementwise work) run on the calling thread.
//
// OMP_NUM_THREADS and OPENBLAS_NUM_THREADS, when set, are respected; when only one is set the
// other gets what is left of the budget.
#pragma once

#include <string>

namespace steerlm {

// What the policy decides from (read from the process and its environment, or made up in tests).
struct ThreadEnvironment {
  int host_cores = 1;            // logical CPUs on the host
  int affinity_cores = 1;        // CPUs this process may run on (a launcher may have bound it)
  int local_ranks = 1;           // ranks of this job on this host
  int omp_threads_env = 0;       // OMP_NUM_THREADS, 0 when unset
  int openblas_threads_env = 0;  // OPENBLAS_NUM_THREADS, 0 when unset
  std::string local_ranks_source = "default";  // the variable local_ranks came from
};

struct ThreadPolicy {
  int budget = 1;  // cores this rank may keep busy
  int openmp_threads = 1;
  int openblas_threads = 1;
  std::string reason;  // one line for the log
};

// Reads the host, the process affinity and the launcher's environment.
ThreadEnvironment thread_environment_from_process();

// Pure decision; see the header comment.
ThreadPolicy choose_thread_policy(const ThreadEnvironment& environment);

// Chooses, applies (omp_set_num_threads, openblas_set_num_threads) and logs the policy. The CLI
// calls it once at start-up, before any parallel work.
ThreadPolicy apply_thread_policy();

// Thread counts in effect now, for logs and tests: {OpenMP max threads, OpenBLAS threads}.
int current_openmp_threads();
int current_openblas_threads();

}  // namespace steerlm
