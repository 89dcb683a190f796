// Watchdog: every collective and point-to-point transfer has a deadline (DESIGN §5).
//
// Operations start without blocking (parallel/communicator.h) and are finished by
// CommRequest::wait(), which polls the backend, yielding the CPU between polls (first
// std::this_thread::yield, then sleeps that grow to 250 us), until the operation completes. If
// it has not completed `timeout_s` (ParallelConfig.timeout_s) after wait() began, or the backend
// reports an asynchronous error, the rank logs at ERROR what stalled, for example
//
//   all_reduce on tp group (ranks 0,1) stalled for 30.0 s at rank 1 (16 x f32, sum; deadline
//   parallel.timeout_s = 30 s); aborting every rank
//
// then aborts the backend's communicator (ncclCommAbort on GPUs) and calls MPI_Abort, which ends
// every rank of the job with a non-zero exit status. Nothing in parallel/ waits without a deadline,
// so a job never hangs in communication.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"

namespace steerlm {

// What an operation is, in the words the watchdog logs.
struct OpDescription {
  std::string op;      // "all_reduce", "recv from rank 0"
  std::string group;   // "tp group (ranks 0,1)"
  std::string detail;  // "16 x f32, sum"
  double timeout_s = 600;
  // The group's running total of seconds spent in wait() (ProcessGroup::wait_seconds).
  double* wait_total_s = nullptr;
};

// A handle on one operation in flight. Move-only; the destructor waits for an unfinished
// operation, because MPI and NCCL still own its buffers until it completes.
class CommRequest {
 public:
  CommRequest() = default;  // an operation that is already complete
  // `buffers` keeps the operation's tensors alive until it completes.
  CommRequest(std::unique_ptr<PendingOp> pending, OpDescription description,
              std::vector<Tensor> buffers);
  CommRequest(CommRequest&& other) noexcept = default;
  CommRequest& operator=(CommRequest&& other) noexcept;
  CommRequest(const CommRequest&) = delete;
  CommRequest& operator=(const CommRequest&) = delete;
  ~CommRequest();

  // One poll; true once the operation has completed. Aborts the job on a backend error.
  bool test();
  // Returns once the operation has completed; aborts the job at the deadline (see above).
  void wait();
  bool done() const { return pending_ == nullptr; }

 private:
  [[noreturn]] void abort_stalled(double waited_s, const std::string& backend_error);

  std::unique_ptr<PendingOp> pending_;
  OpDescription description_;
  std::vector<Tensor> buffers_;
};

// Waits for every request in order (each with its own deadline).
void wait_all(std::vector<CommRequest>& requests);

// Logs `message` at ERROR on this rank, flushes the logs and ends every rank with MPI_Abort.
[[noreturn]] void abort_job(const std::string& message);

// Polls `done()` with the watchdog's back-off until it returns true; aborts the job with a
// message naming `description` once `description.timeout_s` has passed. For waits that are not
// a PendingOp, such as NCCL communicator creation.
template <typename Done>
void wait_with_deadline(const OpDescription& description, Done&& done);

namespace detail {

// Sleeps a little longer each time it is called, so short waits stay fast and long ones idle.
class PollBackoff {
 public:
  void pause();

 private:
  int polls_ = 0;
  std::chrono::microseconds sleep_{20};
};

std::string stall_message(const OpDescription& description, double waited_s);

}  // namespace detail

template <typename Done>
void wait_with_deadline(const OpDescription& description, Done&& done) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  detail::PollBackoff backoff;
  while (!done()) {
    const double waited_s = std::chrono::duration<double>(Clock::now() - start).count();
    if (waited_s > description.timeout_s) {
      abort_job(detail::stall_message(description, waited_s));
    }
    backoff.pause();
  }
}

}  // namespace steerlm
