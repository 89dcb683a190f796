// A pipeline spec (configs/pipelines/*.pbtxt, PipelineConfig in configs/steerlm.proto): named
// jobs, each a steerlm command on its own number of ranks, with dependencies between them.
//
//   job {
//     name: "sft"  command: "sft"  ranks: 4  depends_on: "annotate"
//     config_file: "configs/stages/sft_tiny.pbtxt"
//     config { parallel { tp: 2 } data { train: "${annotate}/annotated.jsonl" } }
//   }
//
// Job `name` writes under <output_dir>/<name>/. `${job}` in args and in the job's config strings
// is that job's output directory; a job may name only itself and the jobs it depends on, directly
// or not. load_pipeline() validates everything that can be checked before any work, so a bad spec
// is one error line naming the job and field: unknown commands and dependencies, duplicate names,
// cycles, and rank counts the allocation cannot hold.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "configs/steerlm.pb.h"
#include "runtime/config.h"

namespace steerlm {

// A job command: the steerlm command line it runs.
struct JobCommand {
  const char* name;                // the `command:` value, e.g. "tokenizer-train"
  std::vector<const char*> words;  // its CLI words, e.g. {"tokenizer", "train"}
  bool takes_config;               // a stage command: gets --config <job dir>/job_config.pbtxt
  bool single_process;             // uses no MPI: must run on one rank
};

// The command named `name`, or nullptr.
const JobCommand* find_job_command(const std::string& name);

struct PipelineSpec {
  std::string file;
  config::PipelineConfig config;
  FieldLocations where;
  // Job indices in an order where every job follows the jobs it depends on.
  std::vector<int> order;
  // For each job, the indices of the jobs it depends on directly.
  std::vector<std::vector<int>> parents;
  // For each job, the --set JOB.a.b=V overrides of its stage config, as "a.b=V".
  std::vector<std::vector<std::string>> job_overrides;

  int size() const { return config.job_size(); }
  const config::PipelineJob& job(int index) const { return config.job(index); }
  // <output_dir>/<job name>
  std::filesystem::path job_dir(int index) const;
  std::filesystem::path state_file() const;
};

// Reads `file`, applies `overrides` and validates the DAG for an allocation of `allocation_ranks`
// ranks (0: any). Throws UserError "FILE:LINE: job 'x': field: ...". An override sets a pipeline
// field ("output_dir=D") or, when its first name is a job's, that job's stage config
// ("sft.train.steps=3").
PipelineSpec load_pipeline(const std::string& file, const std::vector<std::string>& overrides,
                           int allocation_ranks);

// The job's stage config: config_file, with the inline config on top (a repeated field set
// inline replaces the file's list), then the job's --set overrides, output_dir set to the job's
// directory and ${...} expanded.
config::StageConfig job_stage_config(const PipelineSpec& spec, int index);

// The command line of job `index` after "steerlm", with ${...} expanded. A stage command reads
// its config from `config_path`.
std::vector<std::string> job_command_line(const PipelineSpec& spec, int index,
                                          const std::string& config_path);

}  // namespace steerlm
