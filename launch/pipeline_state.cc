#include "launch/pipeline_state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>

#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;

// An exclusive flock on FILE.lock for the lifetime of the object.
class StateLock {
 public:
  explicit StateLock(const fs::path& file) {
    const std::string lock_path = file.string() + ".lock";
    fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT, 0644);
    if (fd_ < 0) throw UserError("cannot open " + lock_path + " to lock the pipeline state");
    ::flock(fd_, LOCK_EX);
  }
  ~StateLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  StateLock(const StateLock&) = delete;
  StateLock& operator=(const StateLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace

nlohmann::json read_pipeline_state(const fs::path& file) {
  if (!fs::exists(file)) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(read_file(file));
  } catch (const nlohmann::json::exception& error) {
    throw UserError(file.string() + ": not a pipeline state file (" + error.what() +
                    "); delete it to start the pipeline's bookkeeping afresh");
  }
}

void update_pipeline_state(const fs::path& file, const std::string& pipeline_file,
                           const std::map<std::string, nlohmann::json>& jobs) {
  fs::create_directories(file.parent_path());
  StateLock lock(file);
  nlohmann::json state = read_pipeline_state(file);
  state["pipeline"] = pipeline_file;
  for (const auto& [name, entry] : jobs) state["jobs"][name] = entry;
  write_file_atomic(file, state.dump(2) + "\n");
}

double epoch_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string iso_utc(double epoch_s) {
  const std::time_t seconds = static_cast<std::time_t>(epoch_s);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

PipelineLog::PipelineLog(const fs::path& output_dir, bool enabled)
    : file_(output_dir / "pipeline.log"), enabled_(enabled) {
  if (enabled_) fs::create_directories(output_dir);
}

void PipelineLog::line(const std::string& text) const {
  raw("[" + iso_utc(epoch_seconds()) + "] " + text);
}

void PipelineLog::raw(const std::string& text) const {
  if (!enabled_) return;
  std::cerr << "pipeline: " << text << std::endl;
  std::ofstream out(file_, std::ios::app);
  out << text << "\n";
}

}  // namespace steerlm
