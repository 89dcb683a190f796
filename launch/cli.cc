#include "launch/cli.h"

#include <glog/logging.h>
#include <mpi.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "parallel/mpi_session.h"
#include "runtime/check.h"
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
  if (config.device() == config::Device::CUDA) {
    // TODO(cuda-model): a device path for LlamaCore (bf16 weights, the runtime/cuda kernels,
    // NCCL gradients); until then a CUDA run would silently compute on the CPU, so refuse it.
    throw UserError(
        "device: CUDA: the model's layers run on the CPU backend only for now (the CUDA kernels "
        "in runtime/cuda are not yet wired into model/); set device: CPU");
  }
  return config;
}

namespace {

// The running pipeline job's session, if any (see ScopedJobSession).
MpiSession* job_session = nullptr;

}  // namespace

MpiSession& world_mpi_session() {
  // MPI is initialised once per process and finalised at exit, after every command has
  // destroyed its process grid.
  static MpiSession session;
  return session;
}

MpiSession& process_mpi_session() {
  return job_session != nullptr ? *job_session : world_mpi_session();
}

ScopedJobSession::ScopedJobSession(MpiSession& job) : previous_(job_session) {
  job_session = &job;
}

ScopedJobSession::~ScopedJobSession() {
  job_session = previous_;
}

namespace {

// Only rank 0 prints a user error, so an error every rank hits appears once.
void print_error_line(const std::string& message) {
  if (process_rank() == 0) std::cerr << "steerlm: error: " << message << std::endl;
}

// After a user error in a multi-rank job: when every rank failed alike (a config or data error
// each rank found), all reach the barrier and exit 1 quietly. When only some did, the others are
// inside a collective; the barrier times out and the failing rank reports and aborts the job, so
// nothing hangs until the watchdog deadline.
void leave_multi_rank_job(const std::string& message) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return;
  int world_size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  if (world_size == 1) return;
  constexpr double kAgreementSeconds = 10.0;
  MPI_Request request;
  MPI_CHECK(MPI_Ibarrier(MPI_COMM_WORLD, &request));
  const double deadline = MPI_Wtime() + kAgreementSeconds;
  int done = 0;
  while (!done && MPI_Wtime() < deadline) {
    MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (done) return;
  std::cerr << "steerlm: error on rank " << process_rank() << ": " << message
            << " (other ranks are still running; aborting the job)" << std::endl;
  MPI_Abort(MPI_COMM_WORLD, 1);
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
  } catch (const CommandExit& exit) {
    print_error_line(exit.what());
    return exit.status();
  } catch (const UsageError& error) {
    print_error_line(error.what());
    leave_multi_rank_job(error.what());
    return 2;
  } catch (const UserError& error) {
    print_error_line(error.what());
    leave_multi_rank_job(error.what());
    return 1;
  }
  return 0;
}

}  // namespace steerlm
