// Error kinds that decide how steerlm exits (DESIGN §4, STYLE 9).
//
// A user's mistake (CLI, config, data, files) is thrown as UserError: main prints its message as
// one line on stderr and exits 1 (UsageError: exit 2). Failed library calls and broken
// invariants are not exceptions: they go through glog FATAL (runtime/check.h) with a stack trace.
#pragma once

#include <stdexcept>
#include <string>

namespace steerlm {

class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& message) : std::runtime_error(message) {}
};

// A malformed command line: unknown flag, missing argument. Exits 2.
class UsageError : public UserError {
 public:
  explicit UsageError(const std::string& message) : UserError(message) {}
};

}  // namespace steerlm
