// steerlm pipeline run|submit|status FILE [--set output_dir=D ...] (launch/pipeline_*.h).
#include <filesystem>
#include <iostream>

#include "launch/cli.h"
#include "launch/commands.h"
#include "launch/pipeline_run.h"
#include "launch/pipeline_spec.h"
#include "launch/pipeline_state.h"
#include "launch/pipeline_submit.h"
#include "launch/pipeline_summary.h"
#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;

// The FILE argument and --set of every pipeline command.
CLI::App* add_pipeline_command(CLI::App& pipeline, const std::string& verb, const std::string& help,
                               std::string* file, std::vector<std::string>* overrides) {
  CLI::App* command = pipeline.add_subcommand(verb, help);
  command->add_option("file", *file, "pipeline config (protobuf text)")->required();
  command->add_option("--set", *overrides, "override a pipeline field, e.g. --set output_dir=D")
      ->take_all()
      ->allow_extra_args(false);
  return command;
}

void run_command(const PipelineRunOptions& options) {
  const int status = run_pipeline(options);
  if (status == 1) throw UserError("pipeline " + options.file + " failed (see pipeline.log)");
  if (status != 0) {
    throw CommandExit(
        status, "pipeline " + options.file + " stopped by a signal; re-run it to " + "resume");
  }
}

void status_command(const std::string& file, const std::vector<std::string>& overrides) {
  const PipelineSpec spec = load_pipeline(file, overrides, 0);
  std::cout << pipeline_summary(spec);
  const fs::path submitted = fs::path(spec.config.output_dir()) / "slurm" / "jobs.json";
  if (fs::exists(submitted)) {
    std::cout << "slurm job ids: " << read_file(submitted);
  }
}

}  // namespace

void register_pipeline_commands(CLI::App& app) {
  CLI::App* pipeline = app.add_subcommand("pipeline", "run, submit or report on a pipeline");
  pipeline->require_subcommand(1);

  auto run = std::make_shared<PipelineRunOptions>();
  CLI::App* run_app = add_pipeline_command(
      *pipeline, "run", "run every job of a pipeline inside this allocation (mpirun or srun)",
      &run->file, &run->overrides);
  run_app->add_option("--job", run->only_job, "run this job alone; its dependencies must be done");
  run_app->callback([run] { run_command(*run); });

  auto submit = std::make_shared<PipelineSubmitOptions>();
  CLI::App* submit_app = add_pipeline_command(
      *pipeline, "submit", "submit each job to Slurm with sbatch, chained with afterok",
      &submit->file, &submit->overrides);
  submit_app->add_flag("--dry-run", submit->dry_run, "write the sbatch scripts; submit nothing");
  submit_app->callback([submit] { submit_pipeline(*submit); });

  auto status = std::make_shared<PipelineRunOptions>();
  CLI::App* status_app = add_pipeline_command(*pipeline, "status", "print each job's state",
                                              &status->file, &status->overrides);
  status_app->callback([status] { status_command(status->file, status->overrides); });
}

}  // namespace steerlm
