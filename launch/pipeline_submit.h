// `steerlm pipeline submit FILE`: one sbatch script per job under <output_dir>/slurm/, submitted
// in dependency order, each with --dependency=afterok on the jobs it depends on. A script runs
// `srun --mpi=pmix steerlm pipeline run FILE --job NAME`, so a Slurm job keeps the state file,
// DONE markers and logs that `pipeline run` keeps. It asks for --signal=USR1@<grace> and
// --requeue: at a time limit the training loop checkpoints, the run exits 75 and the script
// requeues the job, which then resumes from its checkpoint.
#pragma once

#include <string>
#include <vector>

namespace steerlm {

struct PipelineSubmitOptions {
  std::string file;
  std::vector<std::string> overrides;
  bool dry_run = false;  // write the scripts, print them, submit nothing
};

// Prints "JOB SLURM_ID afterok:ID:ID|- SCRIPT" per submitted job on stdout. Errors throw UserError.
void submit_pipeline(const PipelineSubmitOptions& options);

}  // namespace steerlm
