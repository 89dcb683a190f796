// steerlm train-attr and steerlm sft.
#include "launch/cli.h"
#include "launch/commands.h"
#include "runtime/process.h"

namespace steerlm {
namespace {

void add_training_command(CLI::App& app, const std::string& name, const std::string& help,
                          int issue) {
  CLI::App* command = app.add_subcommand(name, help);
  auto options = add_stage_options(command);
  command->callback([options, name, issue] {
    FieldLocations locations;
    load_validated_config(*options, {}, launcher_info_from_env().world_size, &locations);
    // TODO(training): the shared training loop lands with the model and parallelism issues.
    fail_not_built(name, issue);
  });
}

}  // namespace

void register_train_commands(CLI::App& app) {
  add_training_command(app, "train-attr", "train the attribute prediction model", 5);
  add_training_command(app, "sft", "attribute-conditioned supervised fine-tuning (ACSFT)", 5);
}

}  // namespace steerlm
