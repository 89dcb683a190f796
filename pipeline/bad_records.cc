#include "pipeline/bad_records.h"

#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {

void BadRecordLog::report(const SourceRef& source, const std::string& reason,
                          const std::string& message) {
  if (policy_ == config::BadRecord::FAIL) {
    throw UserError(source.str() + ": " + message + " [" + reason +
                    "] (set data.on_bad_record: SKIP to skip such records)");
  }
  records_.push_back({source, reason, message, false});
}

void BadRecordLog::note(const SourceRef& source, const std::string& reason,
                        const std::string& message) {
  records_.push_back({source, reason, message, true});
}

void BadRecordLog::merge(const BadRecordLog& other) {
  records_.insert(records_.end(), other.records_.begin(), other.records_.end());
}

std::map<std::string, int64_t> BadRecordLog::skipped_by_reason() const {
  std::map<std::string, int64_t> counts;
  for (const BadRecord& record : records_) {
    if (!record.note) ++counts[record.reason];
  }
  return counts;
}

std::map<std::string, int64_t> BadRecordLog::notes_by_reason() const {
  std::map<std::string, int64_t> counts;
  for (const BadRecord& record : records_) {
    if (record.note) ++counts[record.reason];
  }
  return counts;
}

int64_t BadRecordLog::skipped() const {
  int64_t count = 0;
  for (const BadRecord& record : records_) count += record.note ? 0 : 1;
  return count;
}

void BadRecordLog::write_listing(const std::string& path) const {
  std::string lines;
  for (const BadRecord& record : records_) {
    nlohmann::json line = {{"source", record.source.str()},
                           {"reason", record.reason},
                           {"message", record.message},
                           {"note", record.note}};
    lines += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  write_file_atomic(path, lines);
}

}  // namespace steerlm
