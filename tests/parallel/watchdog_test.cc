// The watchdog end to end: parallel_watchdog_driver runs under mpirun with one rank skipping an
// operation; every rank must exit non-zero within the deadline plus a few seconds, and the log
// must name the stalled operation, its group and the rank that waited.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace steerlm {
namespace {

struct LauncherRun {
  int exit_status = -1;
  double seconds = 0;
  std::string output;
};

// Runs `command` through the shell with stderr merged into stdout.
LauncherRun run_command(const std::string& command) {
  LauncherRun run;
  const auto start = std::chrono::steady_clock::now();
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) run.output += buffer;
  const int status = pclose(pipe);
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

std::string driver_command(int ranks, const std::string& scenario, double timeout_s) {
  return std::string("OMP_NUM_THREADS=1 ") + STEERLM_MPIEXEC_LINE + " -np " +
         std::to_string(ranks) + " " + STEERLM_WATCHDOG_DRIVER + " " + scenario + " " +
         std::to_string(timeout_s);
}

// Launching ranks on a shared 2-core machine takes a second or two; the watchdog itself must
// fire at the deadline, and the abort must end every rank right after.
constexpr double kTimeoutS = 3.0;
constexpr double kLaunchAndAbortS = 6.0;

TEST(Watchdog, StalledAllReduceAbortsEveryRank) {
  LauncherRun run = run_command(driver_command(4, "all_reduce", kTimeoutS));
  EXPECT_NE(run.exit_status, 0) << run.output;
  EXPECT_GE(run.seconds, kTimeoutS) << run.output;
  EXPECT_LT(run.seconds, kTimeoutS + kLaunchAndAbortS) << run.output;
  EXPECT_NE(run.output.find("all_reduce on tp group (ranks 0,1) stalled for 3."), std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("at rank 0 (2 x f32 on cpu, sum; deadline parallel.timeout_s = 3 s)"),
            std::string::npos)
      << run.output;
  EXPECT_EQ(run.output.find("finished without the watchdog firing"), std::string::npos)
      << run.output;
}

TEST(Watchdog, StalledPipelineRecvAbortsEveryRank) {
  LauncherRun run = run_command(driver_command(2, "recv", kTimeoutS));
  EXPECT_NE(run.exit_status, 0) << run.output;
  EXPECT_GE(run.seconds, kTimeoutS) << run.output;
  EXPECT_LT(run.seconds, kTimeoutS + kLaunchAndAbortS) << run.output;
  EXPECT_NE(run.output.find("recv from rank 0 on pp group (ranks 0,1) stalled for 3."),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("at rank 1 (8 x f32 on cpu, tag 1;"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace steerlm
