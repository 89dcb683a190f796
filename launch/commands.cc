#include "launch/commands.h"

namespace steerlm {

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
