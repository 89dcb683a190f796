// main() for the multi-rank GoogleTest binaries (tests/parallel/*_mpi_test.cc), which ctest
// starts under `mpirun --oversubscribe -np N`. Every rank runs every test, in the same order, so
// the collectives inside the tests match up; rank 0 prints gtest's full report and the others
// only their failures. The exit status is non-zero on every rank if any rank failed.
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>

#include "configs/steerlm.pb.h"
#include "parallel/mpi_session.h"
#include "runtime/check.h"
#include "runtime/logging.h"

namespace steerlm::testing_mpi {

// The process's MPI session, for tests that build grids.
inline MpiSession*& session_slot() {
  static MpiSession* session = nullptr;
  return session;
}

inline const MpiSession& mpi() {
  return *session_slot();
}

// A TP x PP layout (DP takes the rest) whose deadline is short: a broken test aborts in 30 s
// instead of hanging ctest.
inline config::ParallelConfig layout(int tp, int pp) {
  config::ParallelConfig parallel;
  parallel.set_tp(tp);
  parallel.set_pp(pp);
  parallel.set_timeout_s(30);
  return parallel;
}

inline int run_all_ranks(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  init_logging(argv[0]);
  MpiSession session(&argc, &argv);
  session_slot() = &session;
  if (session.world_rank() != 0) GTEST_FLAG_SET(brief, true);

  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;

  // Agree on the outcome, so that mpirun's status reflects a failure on any rank.
  int any_failed = 0;
  MPI_CHECK(MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  session_slot() = nullptr;
  return any_failed;
}

}  // namespace steerlm::testing_mpi
