#include "runtime/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "runtime/error.h"

namespace steerlm {
namespace fs = std::filesystem;

namespace {

std::string errno_text() {
  return std::strerror(errno);
}

}  // namespace

void fsync_path(const fs::path& path) {
  int descriptor = ::open(path.c_str(), O_RDONLY);
  if (descriptor < 0) throw UserError("cannot open " + path.string() + ": " + errno_text());
  int result = ::fsync(descriptor);
  ::close(descriptor);
  if (result != 0) throw UserError("cannot fsync " + path.string() + ": " + errno_text());
}

void write_file_atomic(const fs::path& path, const std::string& contents) {
  fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code error;
  fs::create_directories(parent, error);
  if (error) throw UserError("cannot create directory " + parent.string() + ": " + error.message());

  // Write under a name unique to this process, so concurrent writers never share a temp file.
  fs::path temporary = path;
  temporary += ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw UserError("cannot write " + temporary.string() + ": " + errno_text());
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out) throw UserError("cannot write " + temporary.string() + ": " + errno_text());
  }
  fsync_path(temporary);
  fs::rename(temporary, path, error);
  if (error) throw UserError("cannot rename " + temporary.string() + ": " + error.message());
  fsync_path(parent);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError("cannot read " + path.string() + ": " + errno_text());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void publish_directory(const fs::path& temporary, const fs::path& path) {
  std::error_code error;
  fs::path old = path;
  old += ".old";
  fs::remove_all(old, error);
  if (fs::exists(path)) {
    fs::rename(path, old, error);
    if (error) throw UserError("cannot move aside " + path.string() + ": " + error.message());
  }
  fs::rename(temporary, path, error);
  if (error) throw UserError("cannot publish " + path.string() + ": " + error.message());
  fsync_path(path.has_parent_path() ? path.parent_path() : fs::path("."));
  fs::remove_all(old, error);
}

}  // namespace steerlm
