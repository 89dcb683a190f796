// One register function per command group; each lives in its own file under launch/.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace steerlm {

void register_train_commands(CLI::App& app);     // train-attr, sft
void register_eval_commands(CLI::App& app);      // eval-attr, eval-steer
void register_annotate_command(CLI::App& app);   // annotate
void register_generate_command(CLI::App& app);   // generate
void register_bootstrap_command(CLI::App& app);  // bootstrap
void register_data_commands(CLI::App& app);      // data inspect, data synth, tokenizer train
void register_convert_command(CLI::App& app);    // convert
void register_pipeline_commands(CLI::App& app);  // pipeline run|submit|status

// Called by register_eval_commands, so that eval-steer is listed beside eval-attr.
void register_eval_steer_command(CLI::App& app);  // launch/steer_commands.cc

}  // namespace steerlm
