#include "launch/cli.h"

#include <glog/logging.h>

#include <iostream>

#include "runtime/error.h"
#include "runtime/process.h"

namespace steerlm {

std::shared_ptr<StageOptions> add_stage_options(CLI::App* command) {
  auto options = std::make_shared<StageOptions>();
  command->add_option("--config", options->config_path, "config file (protobuf text format)");
  command
      ->add_option("--set", options->overrides,
                   "override a config field, e.g. --set train.steps=10 (repeatable)")
      ->take_last()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false);
  return options;
}

config::StageConfig load_validated_config(const StageOptions& options,
                                          const std::vector<std::string>& flag_overrides,
                                          int world_size, FieldLocations* locations) {
  std::vector<std::string> overrides = options.overrides;
  overrides.insert(overrides.end(), flag_overrides.begin(), flag_overrides.end());
  config::StageConfig config = load_stage_config(options.config_path, overrides, locations);
  validate_stage_config(config, *locations, world_size);
  return config;
}

namespace {

// Only rank 0 prints a user error, so an error every rank hits appears once.
void print_error_line(const std::string& message) {
  if (process_rank() == 0) std::cerr << "steerlm: error: " << message << std::endl;
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{
      "steerlm: the SteerLM recipe (attribute model, annotation, attribute-conditioned "
      "SFT, steerable generation) on CPU and GPU clusters"};
  app.name("steerlm");
  app.require_subcommand(1);
  app.fallthrough(false);
  register_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForAllHelp& help) {
    return app.exit(help);
  } catch (const CLI::ParseError& error) {
    print_error_line(std::string(error.what()) + " (run 'steerlm --help')");
    return 2;
  } catch (const UsageError& error) {
    print_error_line(error.what());
    return 2;
  } catch (const UserError& error) {
    print_error_line(error.what());
    return 1;
  }
  return 0;
}

}  // namespace steerlm
