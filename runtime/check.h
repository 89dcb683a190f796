// One check family for every library return code: MPI, CUDA, cuBLAS, NCCL (STYLE 4).
//
// A failed call logs the statement as written, the library's description of the code,
// file:line, the world rank and (with CUDA) the device, through glog FATAL, which prints a stack
// trace and aborts. Every such call in steerlm goes through one of these macros.
//
//   MPI_CHECK(MPI_Allreduce(...));
//   CUDA_CHECK(cudaMemcpyAsync(...));
//   CUDA_CHECK_LAUNCH();              // after every kernel launch
//   CUBLAS_CHECK(cublasLtMatmul(...));
//   NCCL_CHECK(ncclAllReduce(...));
#pragma once

#include <mpi.h>

#include <string>

#ifdef STEERLM_HAVE_CUDA
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <nccl.h>
#endif

namespace steerlm::detail {

[[noreturn]] void check_call_failed(const char* library, const char* statement, long code,
                                    const std::string& description, const char* file, int line);

std::string mpi_error_string(int code);

}  // namespace steerlm::detail

// Evaluates `statement` once; on a code other than `success`, reports and aborts.
#define STEERLM_CHECK_CALL(library, statement, success, describe)                             \
  do {                                                                                        \
    const auto steerlm_check_code = (statement);                                              \
    if (steerlm_check_code != (success)) {                                                    \
      ::steerlm::detail::check_call_failed(library, #statement,                               \
                                           static_cast<long>(steerlm_check_code),             \
                                           describe(steerlm_check_code), __FILE__, __LINE__); \
    }                                                                                         \
  } while (0)

#define MPI_CHECK(statement) \
  STEERLM_CHECK_CALL("MPI", statement, MPI_SUCCESS, ::steerlm::detail::mpi_error_string)

#ifdef STEERLM_HAVE_CUDA
#define CUDA_CHECK(statement) STEERLM_CHECK_CALL("CUDA", statement, cudaSuccess, cudaGetErrorString)
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
#define CUBLAS_CHECK(statement) \
  STEERLM_CHECK_CALL("cuBLAS", statement, CUBLAS_STATUS_SUCCESS, cublasGetStatusString)
#define NCCL_CHECK(statement) STEERLM_CHECK_CALL("NCCL", statement, ncclSuccess, ncclGetErrorString)
#endif
