#include "launch/pipeline_submit.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "launch/pipeline_run.h"
#include "launch/pipeline_spec.h"
#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;

// `text` as one single-quoted shell word.
std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// The steerlm binary the scripts run: slurm.steerlm, else this very executable.
std::string steerlm_binary(const config::SlurmConfig& slurm) {
  if (!slurm.steerlm().empty()) return fs::absolute(slurm.steerlm()).string();
  return fs::read_symlink("/proc/self/exe").string();
}

// The #SBATCH lines of job `index`.
std::string sbatch_header(const PipelineSpec& spec, int index) {
  const config::PipelineJob& job = spec.job(index);
  const config::SlurmConfig& slurm = spec.config.slurm();
  std::ostringstream out;
  out << "#SBATCH --job-name=steerlm-" << job.name() << "\n"
      << "#SBATCH --nodes=" << job.nodes() << "\n"
      << "#SBATCH --ntasks=" << job.ranks() << "\n"
      << "#SBATCH --output=" << fs::absolute(spec.job_dir(index)).string() << "/slurm-%j.out\n"
      << "#SBATCH --open-mode=append\n"
      << "#SBATCH --signal=USR1@" << slurm.signal_grace_s() << "\n"
      << "#SBATCH --requeue\n";
  const std::string& time = job.time_limit().empty() ? slurm.time_limit() : job.time_limit();
  if (!time.empty()) out << "#SBATCH --time=" << time << "\n";
  if (!slurm.partition().empty()) out << "#SBATCH --partition=" << slurm.partition() << "\n";
  if (slurm.overcommit()) out << "#SBATCH --overcommit\n";
  for (const std::string& option : slurm.sbatch_options()) out << "#SBATCH " << option << "\n";
  return out.str();
}

// The whole script of job `index`.
std::string sbatch_script(const PipelineSpec& spec, int index,
                          const std::vector<std::string>& overrides) {
  const config::SlurmConfig& slurm = spec.config.slurm();
  std::ostringstream out;
  out << "#!/bin/bash\n"
      << "# steerlm pipeline " << spec.file << ", job " << spec.job(index).name() << " (steerlm "
      << spec.job(index).command() << "), written by `steerlm pipeline submit`.\n"
      << sbatch_header(spec, index) << "set -u\n"
      << "cd " << shell_quote(fs::current_path().string()) << "\n";
  if (slurm.overcommit()) out << "export OMPI_MCA_mpi_yield_when_idle=1\n";
  for (const std::string& variable : slurm.environment()) out << "export " << variable << "\n";
  out << "status=0\n"
      << "srun --mpi=pmix" << (slurm.overcommit() ? " -O" : "") << " "
      << shell_quote(steerlm_binary(slurm)) << " pipeline run "
      << shell_quote(fs::absolute(spec.file).string()) << " --job " << spec.job(index).name();
  for (const std::string& assignment : overrides) out << " --set " << shell_quote(assignment);
  out << " --set " << shell_quote("output_dir=" + spec.config.output_dir()) << " || status=$?\n"
      << "# " << kExitStopped << ": a signal (USR1 before the time limit) stopped the job after a "
      << "checkpoint; requeued, it resumes.\n"
      << "if [ \"$status\" -eq " << kExitStopped
      << " ]; then scontrol requeue \"$SLURM_JOB_ID\"; fi\n"
      << "exit \"$status\"\n";
  return out.str();
}

// Runs `command` and returns its stdout; a non-zero exit is a UserError naming it.
std::string run_capturing(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) throw UserError("cannot run " + command);
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  const int status = ::pclose(pipe);
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  if (status != 0) throw UserError(command + " failed: " + output);
  return output;
}

// sbatch --parsable prints "ID" or "ID;CLUSTER".
std::string submit_script(const fs::path& script, const std::vector<std::string>& after) {
  std::string command = "sbatch --parsable";
  if (!after.empty()) {
    command += " --dependency=afterok";
    for (const std::string& id : after) command += ":" + id;
  }
  const std::string output = run_capturing(command + " " + shell_quote(script.string()));
  return output.substr(0, output.find(';'));
}

}  // namespace

void submit_pipeline(const PipelineSubmitOptions& options) {
  const PipelineSpec spec = load_pipeline(options.file, options.overrides, 0);
  const fs::path scripts = fs::path(spec.config.output_dir()) / "slurm";
  std::vector<std::string> forwarded;
  for (const std::string& assignment : options.overrides) {
    if (assignment.rfind("output_dir=", 0) != 0) forwarded.push_back(assignment);
  }

  // In dependency order, so every job's dependencies have ids; finished jobs are not submitted.
  std::map<int, std::string> ids;
  nlohmann::json submitted = nlohmann::json::object();
  for (int i : spec.order) {
    const std::string& name = spec.job(i).name();
    if (fs::exists(spec.job_dir(i) / "DONE")) {
      std::cout << name << " done (not submitted)\n";
      continue;
    }
    const fs::path script = scripts / (name + ".sbatch");
    fs::create_directories(spec.job_dir(i));
    write_file_atomic(script, sbatch_script(spec, i, forwarded));
    fs::permissions(script, fs::perms::owner_exec, fs::perm_options::add);
    std::vector<std::string> after;
    for (int parent : spec.parents[i]) {
      if (ids.count(parent)) after.push_back(ids[parent]);
    }
    ids[i] = options.dry_run ? "dry-run" : submit_script(script, after);
    submitted[name] = ids[i];
    std::string dependency = after.empty() ? "-" : "afterok";
    for (const std::string& id : after) dependency += ":" + id;
    std::cout << name << " " << ids[i] << " " << dependency << " " << script.string() << std::endl;
  }
  if (!options.dry_run) write_file_atomic(scripts / "jobs.json", submitted.dump(2) + "\n");
}

}  // namespace steerlm
