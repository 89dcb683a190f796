// Commands whose implementations land with later issues. Each validates its config first and
// then says it is not built yet; the issue that builds it moves it into its own file.
#include "launch/commands.h"

namespace steerlm {

void register_bootstrap_command(CLI::App& app) {
  add_unbuilt_command(app, "bootstrap", "build a second-round ACSFT dataset (paper 3.4)", 7);
}

}  // namespace steerlm
