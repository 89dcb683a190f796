#include "launch/pipeline_summary.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "launch/pipeline_state.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.4g", value);
  return text;
}

// The last optimizer-step line and the last validation line of metrics.jsonl.
std::string training_metrics(const fs::path& file) {
  std::ifstream in(file);
  json last_step, last_val;
  for (std::string line; std::getline(in, line);) {
    const json parsed = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_object()) continue;
    if (!parsed.contains("split")) last_step = parsed;
    if (parsed.value("split", "") == "val") last_val = parsed;
  }
  std::string text;
  if (last_step.contains("loss")) {
    text = "step " + std::to_string(last_step.value("step", 0)) + " loss " +
           number(last_step["loss"].get<double>());
  }
  if (last_val.contains("loss") && last_val["loss"].is_number()) {
    text += " val loss " + number(last_val["loss"].get<double>());
  }
  return text;
}

// Top-level numbers of eval.json, and each attribute's pearson.
std::string eval_metrics(const fs::path& file) {
  const json eval = json::parse(read_file(file), nullptr, /*allow_exceptions=*/false);
  if (!eval.is_object()) return "";
  std::string text;
  for (const auto& [key, value] : eval.items()) {
    if (value.is_number_float()) text += " " + key + " " + number(value.get<double>());
  }
  if (eval.contains("attributes") && eval["attributes"].is_object()) {
    for (const auto& [name, metrics] : eval["attributes"].items()) {
      if (metrics.contains("pearson") && metrics["pearson"].is_number()) {
        text += " " + name + ".pearson " + number(metrics["pearson"].get<double>());
      }
    }
  }
  return text;
}

std::string key_metrics(const fs::path& dir) {
  std::string text;
  if (fs::exists(dir / "metrics.jsonl")) text = training_metrics(dir / "metrics.jsonl");
  if (fs::exists(dir / "eval.json")) text += eval_metrics(dir / "eval.json");
  return text;
}

// eval-steer's levels: requested value -> mean predicted value and mean length.
std::string steerability_table(const std::string& job, const fs::path& file) {
  const json eval = json::parse(read_file(file), nullptr, /*allow_exceptions=*/false);
  if (!eval.is_object() || !eval.contains("attributes")) return "";
  std::ostringstream out;
  out << "steerability (" << job << "): requested -> mean predicted (mean length)\n";
  for (const auto& [name, metrics] : eval["attributes"].items()) {
    if (!metrics.contains("levels")) continue;
    out << "  " << name << " (pearson " << number(metrics.value("pearson", 0.0)) << "):";
    for (const json& level : metrics["levels"]) {
      out << "  " << number(level.value("requested", 0.0)) << " -> "
          << number(level.value("mean_predicted", 0.0)) << " ("
          << number(level.value("mean_length", 0.0)) << ")";
    }
    out << "\n";
  }
  return out.str();
}

}  // namespace

std::string format_seconds(double seconds) {
  char text[32];
  if (seconds < 60) {
    std::snprintf(text, sizeof(text), "%.1f s", seconds);
  } else {
    std::snprintf(text, sizeof(text), "%d min %02d s", static_cast<int>(seconds) / 60,
                  static_cast<int>(seconds) % 60);
  }
  return text;
}

std::string pipeline_summary(const PipelineSpec& spec) {
  const json state = read_pipeline_state(spec.state_file());
  std::ostringstream out;
  std::string steerability;
  char row[160];
  std::snprintf(row, sizeof(row), "%-16s %-8s %-7s %-12s %s\n", "job", "state", "ranks", "duration",
                "metrics");
  out << "summary of " << spec.config.output_dir() << ":\n" << row;
  for (int i : spec.order) {
    const std::string& name = spec.job(i).name();
    json entry = state.contains("jobs") && state["jobs"].contains(name) ? state["jobs"][name]
                                                                        : json::object();
    const fs::path dir = spec.job_dir(i);
    std::string job_state = entry.value("state", "pending");
    if (fs::exists(dir / "DONE")) job_state = "done";
    const std::string duration =
        entry.contains("duration_s") ? format_seconds(entry["duration_s"].get<double>()) : "-";
    std::snprintf(row, sizeof(row), "%-16s %-8s %-7s %-12s", name.c_str(), job_state.c_str(),
                  entry.value("ranks", "-").c_str(), duration.c_str());
    out << row << key_metrics(dir) << "\n";
    if (entry.contains("error")) out << "    error: " << entry["error"].get<std::string>() << "\n";
    if (spec.job(i).command() == "eval-steer" && fs::exists(dir / "eval.json")) {
      steerability += steerability_table(name, dir / "eval.json");
    }
  }
  return out.str() + steerability;
}

}  // namespace steerlm
