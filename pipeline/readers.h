// Readers for the input formats of DESIGN §2, all producing Conversation.
//
//   BadRecordLog bad(config::BadRecord::SKIP);
//   auto format = resolve_format("data.jsonl", config::DataFormat::AUTO);
//   std::vector<Conversation> conversations = read_conversations("data.jsonl", format, &bad);
//
// A path "embedded:default[?n=N&seed=S]" reads the embedded default dataset (pipeline/synth.h),
// synthesised in memory, as SteerLM JSONL. Paths are read as JSONL, one record per line; blank
// lines are not records.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "configs/steerlm.pb.h"
#include "pipeline/bad_records.h"
#include "pipeline/conversation.h"

namespace steerlm {

using DataFormatKind = config::DataFormat::Kind;

// "helpsteer", "oasst_messages", ... (the enum names, any case) -> kind; UserError otherwise.
DataFormatKind parse_format_name(const std::string& name);
std::string format_name(DataFormatKind format);  // lower case

// Guesses the format from the keys of the first record. Throws UserError naming the file and
// the keys it saw when no format matches (set data.format).
DataFormatKind detect_format(const std::string& path);
// `requested` unless it is AUTO, else detect_format(path).
DataFormatKind resolve_format(const std::string& path, DataFormatKind requested);

// The attribute set a format carries: HelpSteer's five, OASST's four, the combined nine for the
// regression-RM format. Empty for SteerLM JSONL, whose labels name their attributes.
std::vector<std::string> format_attributes(DataFormatKind format);

// Reads every conversation of `path` (any format but PREFERENCE_PAIRS).
std::vector<Conversation> read_conversations(const std::string& path, DataFormatKind format,
                                             BadRecordLog* bad_records);

// A preference pair for evaluation: the same context with two responses, `chosen` better on
// `attribute`. HelpSteer2's form (preference_strength -3..3, about helpfulness) gives a tie
// when the strength is 0.
struct PreferencePair {
  Conversation context;  // ends on the user turn
  std::string chosen;
  std::string rejected;
  std::string attribute;
  int strength = 0;  // |preference_strength| for HelpSteer2's form, else 0
  bool tie = false;
};
std::vector<PreferencePair> read_preference_pairs(const std::string& path,
                                                  BadRecordLog* bad_records);
// `pair.context` followed by the chosen (or rejected) response as an assistant turn.
Conversation with_response(const PreferencePair& pair, bool chosen);

// ---- For the format readers (pipeline/readers*.cc) --------------------------------------
namespace reader_detail {

// One parsed JSONL line; `ok` is false when it was bad and already reported.
struct JsonLine {
  SourceRef source;
  nlohmann::json value;
};
// Reads `path` (or the embedded dataset) into parsed JSON objects, reporting lines that are not
// valid UTF-8 or not a JSON object.
std::vector<JsonLine> read_json_lines(const std::string& path, BadRecordLog* bad_records);

// Reports a bad record and returns false, so checks read `if (!ok) return fail(...)`.
bool fail(BadRecordLog* bad_records, const SourceRef& source, const char* reason,
          const std::string& message);
// Checks that `object[key]` exists and is a string; reports missing_field / wrong_type.
bool get_string(const nlohmann::json& object, const char* key, const SourceRef& source,
                BadRecordLog* bad_records, std::string* out);
// Checks that every assistant turn has text and that there is one; reports otherwise.
bool check_turns(const Conversation& conversation, BadRecordLog* bad_records);
// Checks 0 <= value <= 4 for every attribute of `turn`.
bool check_attribute_range(const Turn& turn, const SourceRef& source, BadRecordLog* bad_records);

std::vector<Conversation> read_oasst_messages(const std::vector<JsonLine>& lines,
                                              BadRecordLog* bad_records);
std::vector<Conversation> read_oasst_trees(const std::vector<JsonLine>& lines,
                                           BadRecordLog* bad_records);
std::optional<Conversation> read_regression_rm(const JsonLine& line, BadRecordLog* bad_records);

}  // namespace reader_detail
}  // namespace steerlm
