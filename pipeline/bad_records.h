// Bad input records (issue 4 item 6): nothing is ever dropped silently.
//
// Under data.on_bad_record FAIL (the default) the first bad record throws UserError
// "FILE:LINE: reason". Under SKIP it is recorded here; the stage writes the listing to its output
// directory (write_listing) and the per-reason counts to metrics.jsonl (metrics_line).
//
// Notes are records that are legitimately not usable but are not errors (for example an oasst
// message whose tree root is not in the export): they never fail a run, and they are listed too.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "configs/steerlm.pb.h"
#include "pipeline/conversation.h"

namespace steerlm {

// Reason codes, stable: they key the per-reason counts.
namespace bad_reason {
inline constexpr const char* kMalformedJson = "malformed_json";
inline constexpr const char* kInvalidUtf8 = "invalid_utf8";
inline constexpr const char* kMissingField = "missing_field";
inline constexpr const char* kWrongType = "wrong_type";
inline constexpr const char* kBadValue = "bad_value";
inline constexpr const char* kAttributeOutOfRange = "attribute_out_of_range";
inline constexpr const char* kEmptyResponse = "empty_response";
inline constexpr const char* kNoAssistantTurn = "no_assistant_turn";
inline constexpr const char* kUnknownParent = "unknown_parent";
inline constexpr const char* kNotInTemplate = "not_in_template";
// Notes (never errors).
inline constexpr const char* kTreeRootAbsent = "tree_root_absent";
}  // namespace bad_reason

struct BadRecord {
  SourceRef source;
  std::string reason;   // a bad_reason code
  std::string message;  // one line, says what is wrong and what was expected
  bool note = false;
};

class BadRecordLog {
 public:
  explicit BadRecordLog(config::BadRecord::Policy policy = config::BadRecord::FAIL)
      : policy_(policy) {}

  // Reports a bad record: throws UserError under FAIL, records it under SKIP.
  void report(const SourceRef& source, const std::string& reason, const std::string& message);
  // Records a note; never throws.
  void note(const SourceRef& source, const std::string& reason, const std::string& message);
  void merge(const BadRecordLog& other);

  const std::vector<BadRecord>& records() const { return records_; }
  // Skipped records (notes excluded) per reason.
  std::map<std::string, int64_t> skipped_by_reason() const;
  std::map<std::string, int64_t> notes_by_reason() const;
  int64_t skipped() const;
  config::BadRecord::Policy policy() const { return policy_; }

  // One JSON line per record: {"source", "reason", "message", "note"}; written atomically.
  void write_listing(const std::string& path) const;

 private:
  config::BadRecord::Policy policy_;
  std::vector<BadRecord> records_;
};

}  // namespace steerlm
