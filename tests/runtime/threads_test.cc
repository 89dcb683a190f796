// Thread policy: each rank's share of the host, OpenMP x OpenBLAS within it, env overrides.
#include "runtime/threads.h"

#include <cblas.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace steerlm {
namespace {

ThreadEnvironment environment(int host_cores, int affinity_cores, int local_ranks) {
  ThreadEnvironment result;
  result.host_cores = host_cores;
  result.affinity_cores = affinity_cores;
  result.local_ranks = local_ranks;
  return result;
}

TEST(ThreadPolicyTest, OneRankGivesOpenBlasEveryCore) {
  ThreadPolicy policy = choose_thread_policy(environment(2, 2, 1));
  EXPECT_EQ(policy.budget, 2);
  EXPECT_EQ(policy.openblas_threads, 2);
  EXPECT_EQ(policy.openmp_threads, 1);
}

TEST(ThreadPolicyTest, RanksSharingAHostSplitItsCores) {
  // The quickstart: 4 ranks on 2 cores -> one thread each, never zero.
  ThreadPolicy oversubscribed = choose_thread_policy(environment(2, 2, 4));
  EXPECT_EQ(oversubscribed.budget, 1);
  EXPECT_EQ(oversubscribed.openblas_threads, 1);
  EXPECT_EQ(oversubscribed.openmp_threads, 1);

  ThreadPolicy shared = choose_thread_policy(environment(64, 64, 8));
  EXPECT_EQ(shared.budget, 8);
  EXPECT_EQ(shared.openblas_threads * shared.openmp_threads, 8);
}

TEST(ThreadPolicyTest, LauncherBindingIsTheTighterLimit) {
  // Bound to one core each: the share (4) would oversubscribe it.
  EXPECT_EQ(choose_thread_policy(environment(16, 1, 4)).budget, 1);
  // Bound to a 8-core socket shared by 4 ranks: the share (16 / 4 = 4) is the limit.
  EXPECT_EQ(choose_thread_policy(environment(16, 8, 4)).budget, 4);
}

TEST(ThreadPolicyTest, EnvironmentOverridesAreRespected) {
  ThreadEnvironment only_omp = environment(16, 16, 2);
  only_omp.omp_threads_env = 2;
  ThreadPolicy policy = choose_thread_policy(only_omp);
  EXPECT_EQ(policy.openmp_threads, 2);
  EXPECT_EQ(policy.openblas_threads, 4);  // 8 / 2: the product stays within the budget
  EXPECT_NE(policy.reason.find("OMP_NUM_THREADS=2"), std::string::npos) << policy.reason;

  ThreadEnvironment only_blas = environment(16, 16, 2);
  only_blas.openblas_threads_env = 3;
  policy = choose_thread_policy(only_blas);
  EXPECT_EQ(policy.openblas_threads, 3);
  EXPECT_EQ(policy.openmp_threads, 2);  // floor(8 / 3)

  // Both set: taken as given, with a warning when they oversubscribe.
  ThreadEnvironment both = environment(4, 4, 1);
  both.omp_threads_env = 4;
  both.openblas_threads_env = 4;
  policy = choose_thread_policy(both);
  EXPECT_EQ(policy.openmp_threads, 4);
  EXPECT_EQ(policy.openblas_threads, 4);
  EXPECT_NE(policy.reason.find("WARNING"), std::string::npos) << policy.reason;
}

TEST(ThreadPolicyTest, NeverExceedsTheBudgetWithoutOverrides) {
  for (int cores : {1, 2, 3, 7, 16, 96}) {
    for (int ranks : {1, 2, 3, 4, 8, 200}) {
      for (int omp : {0, 1, 2, 5}) {
        ThreadEnvironment input = environment(cores, cores, ranks);
        input.omp_threads_env = omp;
        ThreadPolicy policy = choose_thread_policy(input);
        ASSERT_GE(policy.openmp_threads, 1);
        ASSERT_GE(policy.openblas_threads, 1);
        if (omp <= policy.budget) {
          ASSERT_LE(policy.openmp_threads * policy.openblas_threads, policy.budget)
              << cores << " cores, " << ranks << " ranks, OMP " << omp;
        }
      }
    }
  }
}

// Sets environment variables for one test and restores them afterwards.
class ScopedEnvironment {
 public:
  void set(const std::string& name, const char* value) {
    const char* old = std::getenv(name.c_str());
    saved_.push_back({name, old ? std::optional<std::string>(old) : std::nullopt});
    if (value != nullptr) {
      setenv(name.c_str(), value, 1);
    } else {
      unsetenv(name.c_str());
    }
  }
  ~ScopedEnvironment() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        unsetenv(it->first.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

void clear_launcher_variables(ScopedEnvironment& scoped) {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMIX_LOCAL_SIZE",
                           "SLURM_STEP_TASKS_PER_NODE", "SLURM_NODEID", "SLURM_NTASKS_PER_NODE",
                           "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"}) {
    scoped.set(name, nullptr);
  }
}

TEST(ThreadEnvironmentTest, ReadsLocalRanksFromTheLauncher) {
  ScopedEnvironment scoped;
  clear_launcher_variables(scoped);
  EXPECT_EQ(thread_environment_from_process().local_ranks, 1);
  EXPECT_EQ(thread_environment_from_process().local_ranks_source, "default");

  // Slurm's compressed layout: nodes 0-2 run 2 tasks, node 3 runs 1.
  scoped.set("SLURM_STEP_TASKS_PER_NODE", "2(x3),1");
  scoped.set("SLURM_NODEID", "3");
  EXPECT_EQ(thread_environment_from_process().local_ranks, 1);
  scoped.set("SLURM_NODEID", "1");
  EXPECT_EQ(thread_environment_from_process().local_ranks, 2);

  // Open MPI's own count wins over Slurm's.
  scoped.set("OMPI_COMM_WORLD_LOCAL_SIZE", "4");
  ThreadEnvironment from_mpirun = thread_environment_from_process();
  EXPECT_EQ(from_mpirun.local_ranks, 4);
  EXPECT_EQ(from_mpirun.local_ranks_source, "OMPI_COMM_WORLD_LOCAL_SIZE");

  scoped.set("OMP_NUM_THREADS", "3");
  scoped.set("OPENBLAS_NUM_THREADS", "junk");  // unparsable counts as unset
  ThreadEnvironment with_env = thread_environment_from_process();
  EXPECT_EQ(with_env.omp_threads_env, 3);
  EXPECT_EQ(with_env.openblas_threads_env, 0);
  EXPECT_GE(with_env.host_cores, with_env.affinity_cores);
}

TEST(ThreadEnvironmentTest, ApplySetsOpenMpAndOpenBlas) {
  ScopedEnvironment scoped;
  clear_launcher_variables(scoped);
  const int omp_before = current_openmp_threads();
  const int blas_before = current_openblas_threads();
  scoped.set("OMP_NUM_THREADS", "1");
  scoped.set("OPENBLAS_NUM_THREADS", "2");

  ThreadPolicy policy = apply_thread_policy();

  EXPECT_EQ(policy.openmp_threads, 1);
  EXPECT_EQ(policy.openblas_threads, 2);
  EXPECT_EQ(current_openmp_threads(), 1);
  EXPECT_EQ(current_openblas_threads(), 2);

  // Put the counts back for the other tests; `scoped` then restores the variables.
  omp_set_num_threads(omp_before);
  openblas_set_num_threads(blas_before);
}

}  // namespace
}  // namespace steerlm
