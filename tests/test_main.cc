// gtest main for the single-process suites: glog on stderr, failure signal handler installed.
#include <gtest/gtest.h>

#include "runtime/logging.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  steerlm::init_logging(argv[0]);
  return RUN_ALL_TESTS();
}
