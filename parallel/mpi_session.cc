#include "parallel/mpi_session.h"

#include <glog/logging.h>
#include <mpi.h>

#include <string>
#include <vector>

#include "runtime/check.h"
#include "runtime/process.h"

namespace steerlm {

MpiSession::MpiSession() {
  start(nullptr, nullptr);
}

MpiSession::MpiSession(int* argc, char*** argv) {
  start(argc, argv);
}

MpiSession::MpiSession(const MpiSession& process_session, MPI_Comm comm)
    : comm_(comm),
      local_rank_(process_session.local_rank_),
      local_size_(process_session.local_size_),
      thread_level_(process_session.thread_level_),
      launcher_(process_session.launcher_) {
  CHECK(comm != MPI_COMM_NULL) << "a job session needs a communicator";
  MPI_CHECK(MPI_Comm_rank(comm_, &world_rank_));
  MPI_CHECK(MPI_Comm_size(comm_, &world_size_));
}

void MpiSession::start(int* argc, char*** argv) {
  // Initialise MPI once per process, with the thread level steerlm relies on.
  int initialized = 0;
  MPI_CHECK(MPI_Initialized(&initialized));
  CHECK(!initialized) << "MPI is already initialised: create exactly one MpiSession per process";
  MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &thread_level_));
  owns_mpi_ = true;
  MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  CHECK_GE(thread_level_, MPI_THREAD_SERIALIZED)
      << "this MPI grants thread level " << thread_level_
      << "; steerlm needs MPI_THREAD_SERIALIZED or better";

  // Record the world rank so every log line and check failure names it.
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
  set_process_rank(world_rank_);

  // The rank among processes sharing this host decides which GPU the rank drives.
  MPI_Comm host_comm = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank_, MPI_INFO_NULL,
                                &host_comm));
  MPI_CHECK(MPI_Comm_rank(host_comm, &local_rank_));
  MPI_CHECK(MPI_Comm_size(host_comm, &local_size_));
  MPI_CHECK(MPI_Comm_free(&host_comm));

  launcher_ = launcher_info_from_env().launcher;
  VLOG(1) << "MPI started: rank " << world_rank_ << " of " << world_size_ << ", local rank "
          << local_rank_ << " of " << local_size_ << ", launcher " << launcher_ << ", thread level "
          << thread_level_;
}

MpiSession::~MpiSession() {
  if (!owns_mpi_) return;
  int finalized = 0;
  MPI_CHECK(MPI_Finalized(&finalized));
  if (!finalized) MPI_CHECK(MPI_Finalize());
}

std::string MpiSession::describe_hosts() const {
  // Fixed-width names gathered to rank 0 (host names are at most 255 bytes).
  constexpr int kWidth = 256;
  std::string mine = host_name().substr(0, kWidth - 1);
  mine.resize(kWidth, '\0');
  std::vector<char> all(world_rank_ == 0 ? static_cast<size_t>(kWidth) * world_size_ : 0);
  MPI_CHECK(MPI_Gather(mine.data(), kWidth, MPI_CHAR, all.data(), kWidth, MPI_CHAR, 0, comm_));
  if (world_rank_ != 0) return "";

  // Runs of consecutive ranks on the same host.
  std::string text;
  for (int first = 0; first < world_size_;) {
    const std::string host(all.data() + static_cast<size_t>(first) * kWidth);
    int last = first;
    while (last + 1 < world_size_ &&
           host == std::string(all.data() + static_cast<size_t>(last + 1) * kWidth)) {
      ++last;
    }
    text += (text.empty() ? "" : ", ") + host + " (rank" +
            (first == last ? " " + std::to_string(first)
                           : "s " + std::to_string(first) + "-" + std::to_string(last)) +
            ")";
    first = last + 1;
  }
  return text;
}

}  // namespace steerlm
