// steerlm: the command-line entry point. Everything lives in launch/cli.cc and the commands.
#include "launch/cli.h"
#include "runtime/logging.h"

int main(int argc, char** argv) {
  steerlm::init_logging(argv[0]);
  return steerlm::run_cli(argc, argv);
}
