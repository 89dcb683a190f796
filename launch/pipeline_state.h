// The pipeline's state file, <output_dir>/pipeline_state.json, and its log, <output_dir>/
// pipeline.log. The state file holds one entry per job:
//
//   {"pipeline": "configs/pipelines/quickstart.pbtxt",
//    "jobs": {"sft": {"state": "done", "command": "sft", "output_dir": "out/q/sft",
//                     "ranks": "0-3", "start": "2026-12-04T06:01:02Z", "end": "...",
//                     "start_s": 1.8e9, "end_s": 1.8e9, "duration_s": 41.2}}}
//
// state is pending, running, done or failed (with "error"). Updates take a lock, so jobs that
// Slurm runs at the same time do not lose each other's entries; the file is replaced atomically.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace steerlm {

// The state file's contents; an empty object when it does not exist. Corrupt: UserError.
nlohmann::json read_pipeline_state(const std::filesystem::path& file);

// Sets jobs.<name> to each entry of `jobs` (and "pipeline" to `pipeline_file`) under a lock.
void update_pipeline_state(const std::filesystem::path& file, const std::string& pipeline_file,
                           const std::map<std::string, nlohmann::json>& jobs);

// Seconds since the epoch, and their ISO 8601 UTC form.
double epoch_seconds();
std::string iso_utc(double epoch_s);

// Rank 0's pipeline log: each line, time-stamped, on stderr and appended to <output_dir>/
// pipeline.log. Other ranks' lines are dropped.
class PipelineLog {
 public:
  PipelineLog(const std::filesystem::path& output_dir, bool enabled);
  void line(const std::string& text) const;
  // Without the time stamp (the summary table).
  void raw(const std::string& text) const;

 private:
  std::filesystem::path file_;
  bool enabled_;
};

}  // namespace steerlm
