#include "launch/commands.h"

#include "launch/cli.h"
#include "launch/stage.h"
#include "parallel/mpi_session.h"
#include "runtime/error.h"

namespace steerlm {

void fail_not_built(const std::string& command, int issue) {
  throw UserError("'steerlm " + command + "' is not built yet (tracked in issue #" +
                  std::to_string(issue) + ")");
}

CLI::App* add_unbuilt_command(CLI::App& parent, const std::string& name, const std::string& help,
                              int issue) {
  CLI::App* command = parent.add_subcommand(name, help);
  auto options = add_stage_options(command);
  std::string full_name = parent.get_parent() ? parent.get_name() + " " + name : name;
  command->callback([options, full_name, issue] {
    if (!options->config_path.empty() || !options->overrides.empty()) {
      MpiSession& mpi = process_mpi_session();
      FieldLocations locations;
      config::StageConfig config =
          load_validated_config(*options, {}, mpi.world_size(), &locations);
      if (!config.output_dir().empty()) {
        begin_stage(full_name, config, mpi);
      }
    }
    fail_not_built(full_name, issue);
  });
  return command;
}

void register_commands(CLI::App& app) {
  register_train_commands(app);
  register_eval_commands(app);
  register_annotate_command(app);
  register_generate_command(app);
  register_bootstrap_command(app);
  register_data_commands(app);
  register_convert_command(app);
  register_pipeline_commands(app);
}

}  // namespace steerlm
