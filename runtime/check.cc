#include "runtime/check.h"

#include <glog/logging.h>

#include "runtime/process.h"

namespace steerlm::detail {

namespace {

std::string device_description() {
#ifdef STEERLM_HAVE_CUDA
  int device = -1;
  if (cudaGetDevice(&device) == cudaSuccess) return "cuda:" + std::to_string(device);
  return "cuda:none";
#else
  return "cpu";
#endif
}

}  // namespace

void check_call_failed(const char* library, const char* statement, long code,
                       const std::string& description, const char* file, int line) {
  google::LogMessageFatal(file, line).stream()
      << library << " call failed: " << statement << " returned " << code << " (" << description
      << ") on rank " << process_rank() << ", device " << device_description();
  __builtin_unreachable();
}

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "unknown MPI error";
  return std::string(text, length);
}

}  // namespace steerlm::detail
