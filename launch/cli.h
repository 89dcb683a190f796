// The steerlm command line: `steerlm <command> [--config FILE] [--set a.b.c=VALUE ...]`.
//
// Each command registers itself on the CLI11 app (launch/commands.cc lists them). run_cli()
// parses, runs the chosen command, and maps errors to exit codes (DESIGN §4): 0 success,
// 1 user error (one line on stderr), 2 usage error.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/config.h"

namespace steerlm {

// --config and --set, shared by every stage command.
struct StageOptions {
  std::string config_path;
  std::vector<std::string> overrides;
};

// Adds --config FILE and --set a.b.c=VALUE (repeatable) to `command`.
std::shared_ptr<StageOptions> add_stage_options(CLI::App* command);

// Loads the config, applies --set, then `flag_overrides` (stage flags such as --model win over
// the config), and validates it for `world_size` ranks. Throws UserError on any problem.
config::StageConfig load_validated_config(const StageOptions& options,
                                          const std::vector<std::string>& flag_overrides,
                                          int world_size, FieldLocations* locations);

class MpiSession;

// The session commands run on: the process's MPI session (MPI_COMM_WORLD), started on first use
// (under mpirun, srun, or as a singleton) and finalised at exit, or, while a pipeline job runs,
// that job's session over its ranks (ScopedJobSession). Commands that communicate call this;
// --help and parse errors never do.
MpiSession& process_mpi_session();

// The process's session over MPI_COMM_WORLD, whatever job is running.
MpiSession& world_mpi_session();

// While alive, process_mpi_session() returns `job`, so a command runs on a job's ranks only.
class ScopedJobSession {
 public:
  explicit ScopedJobSession(MpiSession& job);
  ~ScopedJobSession();
  ScopedJobSession(const ScopedJobSession&) = delete;
  ScopedJobSession& operator=(const ScopedJobSession&) = delete;

 private:
  MpiSession* previous_;
};

// Thrown by a command to end the process with `status` after printing `message` (rank 0), for
// outcomes other than success and user errors, e.g. a pipeline stopped by a signal (75).
class CommandExit : public std::runtime_error {
 public:
  CommandExit(int status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// Registers every command of DESIGN §4 on `app`.
void register_commands(CLI::App& app);

// Parses argv and runs the command; returns the process exit code.
int run_cli(int argc, char** argv);

}  // namespace steerlm
