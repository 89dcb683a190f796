// NcclCommunicator: the Communicator backend for CUDA tensors (CUDA builds only).
//
// The group's rank 0 creates an NCCL unique id and broadcasts it over the group's MPI
// communicator; every rank then joins with ncclCommInitRankConfig in non-blocking mode
// (config.blocking = 0), so no NCCL call can block the host: each one returns at once, and
// ncclCommGetAsyncError reports progress and errors. Operations run on the calling thread's
// current CUDA stream (runtime/cuda/stream.h), in order with the model's kernels; a PendingOp
// completes when a CUDA event recorded after the operation has fired. On a stall or an asynchronous
// error the watchdog calls ncclCommAbort.
#pragma once

#include <mpi.h>

#include <memory>
#include <string>

#include "parallel/communicator.h"

namespace steerlm {

// Creates the NCCL communicator over the ranks of `comm` for tensors on `device` (a CUDA
// device). Collective over `comm`; waits at most `timeout_s`, naming `group` if it stalls.
// Fails loudly in a build without CUDA.
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, Device device, double timeout_s,
                                                     const std::string& group);

}  // namespace steerlm
