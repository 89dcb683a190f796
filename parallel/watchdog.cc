#include "parallel/watchdog.h"

#include <glog/logging.h>
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "runtime/check.h"
#include "runtime/process.h"

namespace steerlm {
namespace detail {

void PollBackoff::pause() {
  // A few bare yields keep small, fast collectives at MPI latency; after that the rank sleeps,
  // so oversubscribed ranks (8 on 2 cores) give their core to the ranks doing the work.
  constexpr int kYieldPolls = 64;
  constexpr std::chrono::microseconds kMaxSleep{250};
  if (++polls_ <= kYieldPolls) {
    std::this_thread::yield();
    return;
  }
  std::this_thread::sleep_for(sleep_);
  sleep_ = std::min(sleep_ * 2, kMaxSleep);
}

std::string stall_message(const OpDescription& description, double waited_s) {
  std::ostringstream waited;
  waited.setf(std::ios::fixed);
  waited.precision(1);
  waited << waited_s;
  std::ostringstream message;
  message << description.op << " on " << description.group << " stalled for " << waited.str()
          << " s at rank " << process_rank() << " (" << description.detail
          << "; deadline parallel.timeout_s = " << description.timeout_s
          << " s); aborting every rank. The other ranks of the group did not take part: look for "
             "an earlier error, a crash or a rank that skipped this operation";
  return message.str();
}

}  // namespace detail

namespace {

void log_error_now(const std::string& message) {
  LOG(ERROR) << message;
  google::FlushLogFiles(google::GLOG_INFO);
  std::fflush(stderr);
}

[[noreturn]] void end_every_rank() {
  int initialized = 0, finalized = 0;
  MPI_CHECK(MPI_Initialized(&initialized));
  MPI_CHECK(MPI_Finalized(&finalized));
  if (initialized && !finalized) {
    // Ends every rank of the job; the launcher (mpirun, srun) reports the non-zero status.
    MPI_CHECK(MPI_Abort(MPI_COMM_WORLD, EXIT_FAILURE));
  }
  std::_Exit(EXIT_FAILURE);
}

}  // namespace

CommRequest::CommRequest(std::unique_ptr<PendingOp> pending, OpDescription description,
                         std::vector<Tensor> buffers)
    : pending_(std::move(pending)),
      description_(std::move(description)),
      buffers_(std::move(buffers)) {}

CommRequest& CommRequest::operator=(CommRequest&& other) noexcept {
  if (this != &other) {
    // The operation this handle held must finish before its buffers can be released.
    wait();
    pending_ = std::move(other.pending_);
    description_ = std::move(other.description_);
    buffers_ = std::move(other.buffers_);
  }
  return *this;
}

CommRequest::~CommRequest() {
  wait();
}

bool CommRequest::test() {
  if (pending_ == nullptr) return true;
  PendingOp::Status status = pending_->poll();
  if (!status.error.empty()) abort_stalled(0.0, status.error);
  if (!status.done) return false;
  pending_.reset();
  buffers_.clear();
  return true;
}

void CommRequest::wait() {
  if (pending_ == nullptr) return;
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  detail::PollBackoff backoff;
  double* wait_total_s = description_.wait_total_s;  // test() may release the description
  while (!test()) {
    const double waited_s = std::chrono::duration<double>(Clock::now() - start).count();
    if (waited_s > description_.timeout_s) abort_stalled(waited_s, "");
    backoff.pause();
  }
  if (wait_total_s != nullptr) {
    *wait_total_s += std::chrono::duration<double>(Clock::now() - start).count();
  }
}

void CommRequest::abort_stalled(double waited_s, const std::string& backend_error) {
  std::string message = backend_error.empty()
                            ? detail::stall_message(description_, waited_s)
                            : description_.op + " on " + description_.group + " failed at rank " +
                                  std::to_string(process_rank()) + ": " + backend_error +
                                  "; aborting every rank";
  log_error_now(message);
  pending_->abort_backend();
  end_every_rank();
}

void wait_all(std::vector<CommRequest>& requests) {
  for (CommRequest& request : requests) request.wait();
}

void abort_job(const std::string& message) {
  log_error_now(message);
  end_every_rank();
}

}  // namespace steerlm
