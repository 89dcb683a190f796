// <output_dir>/metrics.jsonl: one JSON object a line (DESIGN §4). Optimizer-step lines have no
// "split" key; every other line has one ("val", "data", "summary").
//
// Only rank 0 writes. Each line is flushed as it is written, so an operator can tail the file
// and a crash loses at most the line being written.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace steerlm {

class MetricsLog {
 public:
  // Opens `path` for appending. With `resume_step` >= 0, first drops optimizer-step and "val"
  // lines after that step (written by a run that was interrupted before its next checkpoint),
  // so a resumed run's file reads as if it had never stopped.
  explicit MetricsLog(const std::filesystem::path& path, int64_t resume_step = -1);

  void write(const nlohmann::json& line);

 private:
  std::filesystem::path path_;
  std::ofstream out_;
};

}  // namespace steerlm
