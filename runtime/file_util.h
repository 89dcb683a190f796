// File helpers that keep the "nothing half-written" promise: outputs are written to a temporary
// name in the same directory, fsynced, then renamed into place.
#pragma once

#include <filesystem>
#include <string>

namespace steerlm {

// Writes `contents` to `path` atomically. Creates parent directories. Throws UserError naming
// the path when the file system refuses.
void write_file_atomic(const std::filesystem::path& path, const std::string& contents);

// Reads a whole file; throws UserError "cannot read PATH: reason" when it cannot.
std::string read_file(const std::filesystem::path& path);

// fsyncs a file or directory (by path); used before renames that publish a result.
void fsync_path(const std::filesystem::path& path);

// Renames a fully written temporary directory into place, replacing any previous one.
void publish_directory(const std::filesystem::path& temporary, const std::filesystem::path& path);

}  // namespace steerlm
