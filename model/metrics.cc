#include "model/metrics.h"

#include <sstream>
#include <vector>

#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

// Whether a line written before an interruption belongs after the step being resumed from.
bool is_after_step(const std::string& text, int64_t step) {
  nlohmann::json line = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (line.is_discarded() || !line.is_object() || !line.contains("step")) return false;
  const bool step_line = !line.contains("split") || line["split"] == "val";
  return step_line && line["step"].is_number_integer() && line["step"].get<int64_t>() > step;
}

}  // namespace

MetricsLog::MetricsLog(const std::filesystem::path& path, int64_t resume_step) : path_(path) {
  if (resume_step >= 0 && std::filesystem::exists(path)) {
    std::istringstream existing(read_file(path));
    std::string kept, text;
    while (std::getline(existing, text)) {
      if (!is_after_step(text, resume_step)) kept += text + "\n";
    }
    write_file_atomic(path, kept);
  }
  std::filesystem::create_directories(path.parent_path().empty() ? "." : path.parent_path());
  out_.open(path, std::ios::app);
  if (!out_) throw UserError("cannot open " + path.string() + " for appending");
}

void MetricsLog::write(const nlohmann::json& line) {
  out_ << line.dump() << '\n';
  out_.flush();
}

}  // namespace steerlm
