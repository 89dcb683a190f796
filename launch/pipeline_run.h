// `steerlm pipeline run FILE`: every job of a pipeline inside one allocation (mpirun or srun).
//
// Scheduling happens in waves. Every rank knows every job's state; a wave takes the jobs whose
// dependencies are done, in the file's dependency order, and gives each a disjoint range of world
// ranks while their rank counts fit. MPI_Comm_split makes one communicator per job, and each job
// runs its command in-process on a job MpiSession over that communicator (launch/cli.h
// ScopedJobSession), so jobs that do not depend on each other run at the same time. Ranks
// without a job wait in a non-blocking all-reduce that polls and sleeps, leaving the cores to
// the jobs. At the end of a wave the jobs' outcomes and times are all-reduced to every rank, and
// rank 0 records them in the state file and the log.
//
// A job whose directory holds DONE is skipped. A job that failed stops its dependants; the others
// go on, and the run exits 1 naming it. A training job that a signal stopped (SIGTERM, or Slurm's
// USR1 before a time limit) has saved a checkpoint; the run stops after the wave and exits
// kExitStopped, and a re-run resumes it from <job dir>/checkpoint.
#pragma once

#include <string>
#include <vector>

namespace steerlm {

// Exit status of a run that a signal stopped before the pipeline finished (EX_TEMPFAIL): the
// sbatch scripts of `pipeline submit` requeue the job on it.
inline constexpr int kExitStopped = 75;

struct PipelineRunOptions {
  std::string file;
  std::vector<std::string> overrides;  // --set, e.g. output_dir=D
  std::string only_job;                // --job NAME: that job alone (its dependencies are done)
};

// Returns the exit status: 0, 1 (a job failed) or kExitStopped. Spec errors throw UserError.
int run_pipeline(const PipelineRunOptions& options);

}  // namespace steerlm
