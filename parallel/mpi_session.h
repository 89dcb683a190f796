// MpiSession: MPI start-up and shutdown for the whole process. parallel/ owns them.
//
//   int main(int argc, char** argv) {
//     steerlm::init_logging(argv[0]);
//     steerlm::MpiSession mpi(&argc, &argv);   // MPI_Init_thread; records the world rank
//     ...                                       // ProcessGrid grid(mpi, config.parallel(), ...)
//   }                                           // grid destroyed first, then MPI_Finalize
//
// Works under `mpirun` (Open MPI), under Slurm's `srun --mpi=pmix`, and as a singleton (a plain
// `./steerlm ...` becomes a world of one rank). MPI_THREAD_MULTIPLE is requested so that any
// thread may use MPI; steerlm itself calls MPI from one thread at a time, so SERIALIZED is the
// minimum accepted. MPI_COMM_WORLD is switched to MPI_ERRORS_RETURN so that failed calls reach
// MPI_CHECK, which names the statement, file:line and rank before aborting.
//
// One per process: MPI cannot be initialised twice. Every ProcessGrid/ProcessGroup must be
// destroyed before the session, since MPI_Finalize frees nothing that is still in use.
//
// A session is also the set of ranks a job runs on. The process's session covers
// MPI_COMM_WORLD; `steerlm pipeline run` runs a job on a subset of the ranks through a job
// session, MpiSession(process_session, job_comm), whose world_rank()/world_size() are the rank
// and size inside job_comm. Everything built from a session (ProcessGrid) then sees only the
// job's ranks, so a stage runs unchanged on a sub-communicator.
#pragma once

#include <mpi.h>

#include <string>

namespace steerlm {

class MpiSession {
 public:
  MpiSession();  // without command-line arguments (tests, library use)
  MpiSession(int* argc, char*** argv);
  // A job session over `comm`, a communicator of `process_session`'s ranks. It neither starts
  // nor finalises MPI and does not free `comm`, which must outlive it.
  MpiSession(const MpiSession& process_session, MPI_Comm comm);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  // Rank and size within comm(): MPI_COMM_WORLD, or a job's communicator.
  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  MPI_Comm comm() const { return comm_; }

  // Collective over comm(): on rank 0, "host (ranks a-b), ..." for every host of the session in
  // rank order; empty on the other ranks.
  std::string describe_hosts() const;
  // Rank among the processes on this host (MPI_COMM_TYPE_SHARED); picks the GPU. A job session
  // keeps the process's values, so jobs sharing a host never pick the same GPU.
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  // The thread level MPI granted: MPI_THREAD_SERIALIZED or MPI_THREAD_MULTIPLE.
  int thread_level() const { return thread_level_; }
  // "mpirun", "srun" or "none" (singleton), from the launcher's environment.
  const std::string& launcher() const { return launcher_; }

 private:
  void start(int* argc, char*** argv);

  MPI_Comm comm_ = MPI_COMM_WORLD;
  int world_rank_ = 0;
  int world_size_ = 1;
  int local_rank_ = 0;
  int local_size_ = 1;
  int thread_level_ = 0;
  std::string launcher_;
  bool owns_mpi_ = false;
};

}  // namespace steerlm
