// Commands whose implementations land with later issues. Each validates its config first and
// then says it is not built yet; the issue that builds it moves it into its own file.
#include "launch/commands.h"

namespace steerlm {

void register_pipeline_commands(CLI::App& app) {
  CLI::App* pipeline = app.add_subcommand("pipeline", "run, submit or report on a pipeline");
  pipeline->require_subcommand(1);
  for (const char* verb : {"run", "submit", "status"}) {
    CLI::App* command = add_unbuilt_command(*pipeline, verb, std::string(verb) + " a pipeline", 8);
    command->add_option("file", "pipeline config (protobuf text)")->required();
  }
}

}  // namespace steerlm
