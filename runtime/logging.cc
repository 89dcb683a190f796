#include "runtime/logging.h"

#include <cblas.h>
#include <glog/logging.h>
#include <google/protobuf/stubs/common.h>
#include <mpi.h>

#include <cstdio>
#include <filesystem>
#include <iomanip>

#include "runtime/error.h"
#include "runtime/process.h"

#ifdef STEERLM_HAVE_CUDA
#include <cuda_runtime_api.h>
#include <nccl.h>
#endif

namespace steerlm {
namespace {

// "I1203 18:47:24.123456 r3 trainer.cc:88] ..." — glog's layout with the rank instead of the tid.
void rank_prefix(std::ostream& out, const google::LogMessageInfo& info, void*) {
  out << info.severity[0] << std::setw(2) << std::setfill('0') << 1 + info.time.month()
      << std::setw(2) << info.time.day() << ' ' << std::setw(2) << info.time.hour() << ':'
      << std::setw(2) << info.time.min() << ':' << std::setw(2) << info.time.sec() << '.'
      << std::setw(6) << info.time.usec() << std::setfill(' ') << " r" << process_rank() << ' '
      << info.filename << ':' << info.line_number << ']';
}

}  // namespace

void init_logging(const char* argv0) {
  if (google::IsGoogleLoggingInitialized()) return;
  FLAGS_logtostderr = true;
  FLAGS_colorlogtostderr = false;
  google::InitGoogleLogging(argv0, &rank_prefix, nullptr);
  google::InstallFailureSignalHandler();
}

void log_to_directory(const std::string& output_dir, int rank) {
  namespace fs = std::filesystem;
  fs::path directory = fs::path(output_dir) / "logs";
  std::error_code error;
  fs::create_directories(directory, error);
  if (error)
    throw UserError("cannot create log directory " + directory.string() + ": " + error.message());
  // One file per rank with every severity in it; no per-severity files, no symlinks.
  std::string base = (directory / ("steerlm.rank" + std::to_string(rank) + ".log")).string();
  google::SetLogDestination(google::INFO, base.c_str());
  google::SetLogDestination(google::WARNING, "");
  google::SetLogDestination(google::ERROR, "");
  google::SetLogDestination(google::FATAL, "");
  google::SetLogSymlink(google::INFO, "");
  google::SetLogFilenameExtension("");
  FLAGS_timestamp_in_logfile_name = false;
  FLAGS_logtostderr = false;
  FLAGS_alsologtostderr = rank == 0;
  FLAGS_stderrthreshold = rank == 0 ? google::INFO : google::WARNING;
  FLAGS_logbuflevel = -1;  // unbuffered: an operator tailing the file sees lines at once
}

Provenance current_provenance() {
  Provenance provenance;
  provenance.steerlm_version = STEERLM_VERSION;
  provenance.commit = STEERLM_GIT_COMMIT;
  provenance.compiler = std::string("g++ ") + __VERSION__;
  char mpi_version[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
  int length = 0;
  MPI_Get_library_version(mpi_version, &length);
  std::string mpi(mpi_version, length);
  mpi = mpi.substr(0, mpi.find(','));
  provenance.libraries = "protobuf " +
                         google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION) + ", " +
                         mpi + ", " + std::string(openblas_get_config());
#ifdef STEERLM_HAVE_CUDA
  int cuda_runtime = 0;
  cudaRuntimeGetVersion(&cuda_runtime);
  int nccl = 0;
  ncclGetVersion(&nccl);
  provenance.libraries +=
      ", CUDA runtime " + std::to_string(cuda_runtime) + ", NCCL " + std::to_string(nccl);
#endif
  provenance.host = host_name();
  return provenance;
}

std::string provenance_line(const Provenance& provenance) {
  return "steerlm " + provenance.steerlm_version + " (commit " + provenance.commit + "), " +
         provenance.compiler + ", " + provenance.libraries + ", host " + provenance.host;
}

}  // namespace steerlm
