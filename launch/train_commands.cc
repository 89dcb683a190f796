// steerlm train-attr and steerlm sft.
#include "launch/commands.h"

namespace steerlm {

void register_train_commands(CLI::App& app) {
  // TODO(training): the shared training loop lands with the model and parallelism issues.
  add_unbuilt_command(app, "train-attr", "train the attribute prediction model", 5);
  add_unbuilt_command(app, "sft", "attribute-conditioned supervised fine-tuning (ACSFT)", 5);
}

}  // namespace steerlm
