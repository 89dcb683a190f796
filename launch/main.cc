// steerlm: the command-line entry point. Everything lives in launch/cli.cc and the commands.
#include "launch/cli.h"
#include "runtime/logging.h"
#include "runtime/threads.h"

int main(int argc, char** argv) {
  steerlm::init_logging(argv[0]);
  // OpenBLAS and OpenMP threads sized to this rank's share of the host's cores.
  steerlm::apply_thread_policy();
  return steerlm::run_cli(argc, argv);
}
