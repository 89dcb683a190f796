// Scratch directories and error capture for the checkpoint, conversion and generation tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>

#include "runtime/error.h"

namespace steerlm::testing_dirs {

// A fresh, empty directory unique to this process and test.
inline std::filesystem::path fresh_directory(const std::string& name) {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path directory = std::filesystem::path(::testing::TempDir()) /
                                    ("steerlm_" + std::to_string(::getpid()) + "_" +
                                     test->test_suite_name() + "_" + test->name() + "_" + name);
  std::filesystem::remove_all(directory);
  std::filesystem::create_directories(directory);
  return directory;
}

// The message of the UserError `action` throws; a test failure when it throws none.
inline std::string expect_user_error(const std::function<void()>& action) {
  try {
    action();
  } catch (const UserError& error) {
    return error.what();
  }
  ADD_FAILURE() << "no UserError thrown";
  return "";
}

}  // namespace steerlm::testing_dirs
