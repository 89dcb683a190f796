#include "launch/pipeline_run.h"

#include <glog/logging.h>
#include <mpi.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <limits>
#include <thread>

#include "launch/cli.h"
#include "launch/pipeline_spec.h"
#include "launch/pipeline_state.h"
#include "launch/pipeline_summary.h"
#include "model/stop_signal.h"
#include "parallel/mpi_session.h"
#include "runtime/check.h"
#include "runtime/error.h"
#include "runtime/file_util.h"
#include "runtime/logging.h"
#include "runtime/process.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;

// A job's status as all-reduced with MPI_MAX: a failure anywhere wins over a stop, which wins
// over success.
enum JobStatus : int {
  kPending = 0,
  kDone = 1,
  kStopped = 2,  // a signal stopped it; a re-run resumes it
  kFailed = 3,
  kBlocked = 4,  // a job it depends on failed: never runs in this run
};

// What one job's rank 0 reports at the end of a wave.
struct JobOutcome {
  double status = kPending;
  double start_s = 0;
  double end_s = 0;
};

// Waits for `request`, polling and sleeping so a waiting rank leaves its core to others. With a
// deadline (seconds >= 0), returns false when it passes first.
bool wait_politely(MPI_Request* request, double seconds = -1) {
  const double deadline = MPI_Wtime() + seconds;
  int done = 0;
  while (true) {
    MPI_CHECK(MPI_Test(request, &done, MPI_STATUS_IGNORE));
    if (done) return true;
    if (seconds >= 0 && MPI_Wtime() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// Parses and runs one command line (without "steerlm") in this process, as run_cli would.
void run_command_line(const std::vector<std::string>& line) {
  CLI::App app{"steerlm"};
  app.name("steerlm");
  app.require_subcommand(1);
  register_commands(app);
  std::vector<const char*> argv = {"steerlm"};
  for (const std::string& word : line) argv.push_back(word.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& error) {
    throw UsageError(std::string(error.what()) + " (in the job's args)");
  }
}

// The job's status agreed by all its ranks. A rank that failed waits a few seconds for the
// others: if they are stuck in a collective of the failed job, it aborts the whole run instead
// of letting it hang (as run_cli does after a user error).
int agree_on_status(MPI_Comm comm, int status, const std::string& job, const std::string& error) {
  constexpr double kAgreementSeconds = 10.0;
  int agreed = kPending;
  MPI_Request request;
  MPI_CHECK(MPI_Iallreduce(&status, &agreed, 1, MPI_INT, MPI_MAX, comm, &request));
  if (!wait_politely(&request, status == kFailed ? kAgreementSeconds : -1)) {
    std::cerr << "steerlm: error: job '" << job << "' failed on rank " << process_rank() << ": "
              << error << " (its other ranks are still running; aborting the pipeline)"
              << std::endl;
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return agreed;
}

// After a failure: the failing rank lowest in the job prints the error and leaves it in
// <job dir>/FAILED for the state file.
void report_failure(MPI_Comm comm, int job_rank, const fs::path& dir, const std::string& job,
                    const std::string& error) {
  const int mine = error.empty() ? std::numeric_limits<int>::max() : job_rank;
  int lowest = 0;
  MPI_CHECK(MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, comm));
  if (job_rank != lowest) return;
  std::cerr << "steerlm: error: job '" << job << "': " << error << std::endl;
  write_file_atomic(dir / "FAILED", error + "\n");
}

// Runs job `index` on the ranks of `comm`; every rank of the job returns the same status, and
// the job's rank 0 the times.
JobOutcome run_job(const PipelineSpec& spec, int index, MPI_Comm comm) {
  // A job session over the job's ranks, and this rank's glog file under the job's directory.
  MpiSession session(world_mpi_session(), comm);
  const fs::path dir = spec.job_dir(index);
  const std::string& name = spec.job(index).name();
  log_to_directory(dir.string(), session.world_rank());
  const auto line = job_command_line(spec, index, (dir / "job_config.pbtxt").string());
  std::string text = "steerlm";
  for (const std::string& word : line) text += " " + word;
  LOG(INFO) << "pipeline " << spec.file << ", job " << name << " on " << session.world_size()
            << " rank(s): " << text;

  // The command, as `steerlm ...` on these ranks would run it.
  JobOutcome outcome;
  outcome.start_s = epoch_seconds();
  std::string error;
  try {
    ScopedJobSession scope(session);
    run_command_line(line);
  } catch (const std::exception& exception) {  // UserError, or a filesystem error
    error = exception.what();
    if (error.empty()) error = "failed";
  }
  outcome.end_s = epoch_seconds();

  // One status for the job; DONE for commands that do not write it themselves.
  int status = !error.empty() ? kFailed : stop_requested() ? kStopped : kDone;
  status = agree_on_status(comm, status, name, error);
  if (status == kFailed) report_failure(comm, session.world_rank(), dir, name, error);
  if (status == kStopped && fs::exists(dir / "DONE")) status = kDone;
  if (status == kDone && session.world_rank() == 0 && !fs::exists(dir / "DONE")) {
    write_file_atomic(dir / "DONE", "");
  }
  outcome.status = status;
  return outcome;
}

std::string rank_range(int first, int count) {
  return count == 1 ? std::to_string(first)
                    : std::to_string(first) + "-" + std::to_string(first + count - 1);
}

// The state of a pipeline run, the same on every rank.
struct PipelineRun {
  const PipelineSpec& spec;
  MpiSession& world;
  PipelineLog log;
  std::vector<int> status;           // JobStatus per job
  std::vector<std::string> ranks;    // the world ranks each job ran on, e.g. "0-1"
  std::vector<JobOutcome> outcomes;  // this run's times
  bool stopped = false;

  bool leader() const { return world.world_rank() == 0; }
};

// The state-file entry of job `index`.
nlohmann::json state_entry(const PipelineRun& run, int index, const std::string& state) {
  const JobOutcome& outcome = run.outcomes[index];
  nlohmann::json entry = {{"state", state},
                          {"command", run.spec.job(index).command()},
                          {"output_dir", run.spec.job_dir(index).string()}};
  if (!run.ranks[index].empty()) entry["ranks"] = run.ranks[index];
  if (outcome.start_s > 0) {
    entry["start"] = iso_utc(outcome.start_s);
    entry["start_s"] = outcome.start_s;
  }
  if (outcome.end_s > 0) {
    entry["end"] = iso_utc(outcome.end_s);
    entry["end_s"] = outcome.end_s;
    entry["duration_s"] = outcome.end_s - outcome.start_s;
  }
  if (state == "failed" && fs::exists(run.spec.job_dir(index) / "FAILED")) {
    std::string error = read_file(run.spec.job_dir(index) / "FAILED");
    while (!error.empty() && error.back() == '\n') error.pop_back();
    entry["error"] = error;
  }
  return entry;
}

// Which jobs are done already (DONE in their directory): rank 0 looks, everyone learns.
void find_finished_jobs(PipelineRun* run, const std::string& only_job) {
  const PipelineSpec& spec = run->spec;
  run->status.assign(spec.size(), kPending);
  if (run->leader()) {
    for (int i = 0; i < spec.size(); ++i) {
      if (fs::exists(spec.job_dir(i) / "DONE")) run->status[i] = kDone;
    }
  }
  MPI_CHECK(MPI_Bcast(run->status.data(), spec.size(), MPI_INT, 0, MPI_COMM_WORLD));
  if (only_job.empty()) return;

  // --job NAME: that job alone, once its dependencies are done (Slurm's afterok chain).
  for (int i = 0; i < spec.size(); ++i) {
    if (spec.job(i).name() == only_job) continue;
    if (run->status[i] != kDone) run->status[i] = kBlocked;
  }
  for (int i = 0; i < spec.size(); ++i) {
    if (spec.job(i).name() != only_job) continue;
    if (spec.job(i).ranks() > run->world.world_size()) {
      throw UserError("--job " + only_job + ": it needs " + std::to_string(spec.job(i).ranks()) +
                      " ranks, but the allocation has " + std::to_string(run->world.world_size()));
    }
    for (int parent : spec.parents[i]) {
      if (run->status[parent] != kDone) {
        throw UserError("--job " + only_job + ": it depends on '" + spec.job(parent).name() +
                        "', which is not done (no " + (spec.job_dir(parent) / "DONE").string() +
                        ")");
      }
    }
    return;
  }
  throw UsageError("--job " + only_job + ": no such job in " + spec.file);
}

// Rank 0 logs which jobs are skipped or resumed and marks the rest pending in the state file.
void record_start(PipelineRun* run) {
  if (!run->leader()) return;
  const PipelineSpec& spec = run->spec;
  const nlohmann::json previous = read_pipeline_state(spec.state_file());
  std::map<std::string, nlohmann::json> entries;
  for (int i : spec.order) {
    const std::string& name = spec.job(i).name();
    const nlohmann::json* before = nullptr;
    if (previous.contains("jobs") && previous["jobs"].contains(name)) {
      before = &previous["jobs"][name];
    }
    if (run->status[i] == kDone) {
      run->log.line("job " + name + " skipped: " + (spec.job_dir(i) / "DONE").string() + " exists");
      if (before == nullptr) entries[name] = state_entry(*run, i, "done");
      continue;
    }
    if (run->status[i] != kPending) continue;
    if (before != nullptr && before->value("state", "") == "running") {
      run->log.line("job " + name + " was interrupted; it runs again and resumes from " +
                    (spec.job_dir(i) / "checkpoint").string() + " where there is one");
    }
    entries[name] = state_entry(*run, i, "pending");
  }
  if (!entries.empty()) update_pipeline_state(spec.state_file(), spec.file, entries);
}

// The next wave: ready jobs in dependency order, each on the next free range of world ranks.
// Returns (job, first rank) pairs.
std::vector<std::pair<int, int>> plan_wave(const PipelineRun& run) {
  std::vector<std::pair<int, int>> wave;
  int next_rank = 0;
  for (int i : run.spec.order) {
    if (run.status[i] != kPending) continue;
    bool ready = true;
    for (int parent : run.spec.parents[i]) ready = ready && run.status[parent] == kDone;
    const int ranks = run.spec.job(i).ranks();
    if (!ready || next_rank + ranks > run.world.world_size()) continue;
    wave.emplace_back(i, next_rank);
    next_rank += ranks;
  }
  return wave;
}

// Rank 0, before the wave: each job's resolved config file, "running" in the state file, a log
// line. The config files exist before any job rank leaves the MPI_Comm_split that follows.
void announce_wave(PipelineRun* run, const std::vector<std::pair<int, int>>& wave) {
  std::map<std::string, nlohmann::json> entries;
  for (const auto& [job, first] : wave) {
    run->ranks[job] = rank_range(first, run->spec.job(job).ranks());
    run->outcomes[job].start_s = epoch_seconds();
    if (!run->leader()) continue;
    const fs::path dir = run->spec.job_dir(job);
    fs::create_directories(dir);
    fs::remove(dir / "FAILED");
    if (find_job_command(run->spec.job(job).command())->takes_config) {
      write_file_atomic(dir / "job_config.pbtxt", config_to_text(job_stage_config(run->spec, job)));
    }
    entries[run->spec.job(job).name()] = state_entry(*run, job, "running");
    run->log.line("job " + run->spec.job(job).name() + " started on rank(s) " + run->ranks[job] +
                  ": steerlm " + run->spec.job(job).command() + ", output " + dir.string());
  }
  if (run->leader()) update_pipeline_state(run->spec.state_file(), run->spec.file, entries);
}

// Runs this rank's job of the wave, if it has one, then shares every job's outcome.
void run_wave(PipelineRun* run, const std::vector<std::pair<int, int>>& wave) {
  const int rank = run->world.world_rank(), jobs = run->spec.size();
  int color = MPI_UNDEFINED;
  for (const auto& [job, first] : wave) {
    if (rank >= first && rank < first + run->spec.job(job).ranks()) color = job;
  }
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, color, rank, &comm));
  std::vector<double> mine(3 * jobs, 0.0), all(3 * jobs, 0.0);
  if (comm != MPI_COMM_NULL) {
    const JobOutcome outcome = run_job(run->spec, color, comm);
    int job_rank = 0;
    MPI_CHECK(MPI_Comm_rank(comm, &job_rank));
    MPI_CHECK(MPI_Comm_free(&comm));
    if (job_rank == 0) {
      mine[3 * color] = outcome.status;
      mine[3 * color + 1] = outcome.start_s;
      mine[3 * color + 2] = outcome.end_s;
    }
  }
  // Ranks without a job, or done early, wait here without spinning.
  MPI_Request request;
  MPI_CHECK(MPI_Iallreduce(mine.data(), all.data(), 3 * jobs, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD,
                           &request));
  wait_politely(&request);
  for (const auto& [job, first] : wave) {
    run->status[job] = static_cast<int>(all[3 * job]);
    run->outcomes[job] = {all[3 * job], all[3 * job + 1], all[3 * job + 2]};
  }
}

// Rank 0, after the wave: state file and log lines. Dependants of a failed job are blocked.
void record_wave(PipelineRun* run, const std::vector<std::pair<int, int>>& wave) {
  std::map<std::string, nlohmann::json> entries;
  for (const auto& [job, first] : wave) {
    const std::string& name = run->spec.job(job).name();
    const JobOutcome& outcome = run->outcomes[job];
    const std::string took = format_seconds(outcome.end_s - outcome.start_s);
    if (run->status[job] == kStopped) {
      run->stopped = true;
      run->status[job] = kPending;
      entries[name] = state_entry(*run, job, "pending");
      run->log.line("job " + name + " stopped by a signal after " + took +
                    "; its checkpoint is saved and a re-run resumes it");
      continue;
    }
    const bool done = run->status[job] == kDone;
    entries[name] = state_entry(*run, job, done ? "done" : "failed");
    run->log.line("job " + name + (done ? " done in " : " FAILED after ") + took +
                  (done ? "" : " (see " + (run->spec.job_dir(job) / "logs").string() + ")"));
  }
  if (run->leader()) update_pipeline_state(run->spec.state_file(), run->spec.file, entries);
  for (int i : run->spec.order) {
    if (run->status[i] != kPending) continue;
    for (int parent : run->spec.parents[i]) {
      if (run->status[parent] != kFailed && run->status[parent] != kBlocked) continue;
      run->status[i] = kBlocked;
      run->log.line("job " + run->spec.job(i).name() + " not run: it depends on '" +
                    run->spec.job(parent).name() + "', which did not finish");
      break;
    }
  }
}

// The exit status, after the log's last line.
int finish(PipelineRun* run) {
  std::vector<std::string> failed;
  for (int i : run->spec.order) {
    if (run->status[i] == kFailed) failed.push_back(run->spec.job(i).name());
  }
  if (run->leader()) run->log.raw(pipeline_summary(run->spec));
  if (!failed.empty()) {
    std::string names;
    for (const std::string& name : failed) names += (names.empty() ? "" : ", ") + name;
    run->log.line("pipeline FAILED: job(s) " + names + " failed; fix and re-run to continue");
    return 1;
  }
  if (run->stopped) {
    run->log.line("pipeline stopped by a signal; re-run it to resume");
    return kExitStopped;
  }
  run->log.line("pipeline done: " + run->spec.config.output_dir());
  return 0;
}

}  // namespace

int run_pipeline(const PipelineRunOptions& options) {
  // Validation first, on every rank alike, so a bad spec is one error line and exit 1.
  MpiSession& world = world_mpi_session();
  // With --job, the other jobs run in other allocations: only that job must fit this one.
  const int allocation = options.only_job.empty() ? world.world_size() : 0;
  const PipelineSpec spec = load_pipeline(options.file, options.overrides, allocation);
  install_stop_signal_handlers();
  PipelineRun run{spec,
                  world,
                  PipelineLog(spec.config.output_dir(), world.world_rank() == 0),
                  {},
                  std::vector<std::string>(spec.size(), ""),
                  std::vector<JobOutcome>(spec.size()),
                  false};
  run.log.line("pipeline " + spec.file + ": " + std::to_string(spec.size()) + " job(s) on " +
               std::to_string(world.world_size()) + " rank(s), output " + spec.config.output_dir());
  find_finished_jobs(&run, options.only_job);
  record_start(&run);

  // Waves until nothing is ready, or a signal asked to stop.
  while (!run.stopped) {
    const std::vector<std::pair<int, int>> wave = plan_wave(run);
    if (wave.empty()) break;
    announce_wave(&run, wave);
    run_wave(&run, wave);
    record_wave(&run, wave);
  }
  return finish(&run);
}

}  // namespace steerlm
