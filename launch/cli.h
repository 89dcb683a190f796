// The steerlm command line: `steerlm <command> [--config FILE] [--set a.b.c=VALUE ...]`.
//
// Each command registers itself on the CLI11 app (launch/commands.cc lists them). run_cli()
// parses, runs the chosen command, and maps errors to exit codes (DESIGN §4): 0 success,
// 1 user error (one line on stderr), 2 usage error.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
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

// The process's MPI session, started on first use (under mpirun, srun, or as a singleton) and
// finalised at exit. Commands that communicate call this; --help and parse errors never do.
MpiSession& process_mpi_session();

// Registers every command of DESIGN §4 on `app`.
void register_commands(CLI::App& app);

// Parses argv and runs the command; returns the process exit code.
int run_cli(int argc, char** argv);

}  // namespace steerlm
