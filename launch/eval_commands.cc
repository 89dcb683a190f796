// steerlm eval-attr and steerlm eval-steer.
#include "launch/commands.h"

namespace steerlm {

void register_eval_commands(CLI::App& app) {
  CLI::App* eval_attr = add_unbuilt_command(app, "eval-attr", "evaluate an attribute model", 6);
  eval_attr->add_option("--model", "attribute model checkpoint directory")->required();
  eval_attr->add_option("--input", "labelled JSONL, or preference pairs JSONL")->required();
  eval_attr->add_option("--output", "output directory (eval.json)")->required();

  add_unbuilt_command(app, "eval-steer", "measure steerability (generate, score, correlate)", 7);
}

}  // namespace steerlm
