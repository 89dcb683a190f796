// JSONL plumbing, format detection, and the flat formats: HelpSteer, SteerLM, regression-RM,
// preference pairs. The oasst formats live in readers_oasst.cc.
#include "pipeline/readers.h"

#include <glog/logging.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "pipeline/chat_template.h"
#include "pipeline/synth.h"
#include "runtime/error.h"

namespace steerlm {
namespace reader_detail {
namespace {

// Returns the offset of the first byte that breaks UTF-8, or npos when `text` is valid.
size_t invalid_utf8_offset(const std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char lead = static_cast<unsigned char>(text[i]);
    size_t extra = 0;
    if (lead < 0x80) {
      extra = 0;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      extra = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      extra = 2;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      extra = 3;
    } else {
      return i;
    }
    if (text.size() - i <= extra) return i;
    for (size_t k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return i;
    }
    i += extra + 1;
  }
  return std::string::npos;
}

std::vector<JsonLine> embedded_lines(const std::string& spec) {
  std::vector<JsonLine> lines;
  int64_t index = 0;
  for (nlohmann::json& record : synth_from_spec(spec)) {
    lines.push_back({{spec, ++index}, std::move(record)});
  }
  return lines;
}

}  // namespace

bool fail(BadRecordLog* bad_records, const SourceRef& source, const char* reason,
          const std::string& message) {
  bad_records->report(source, reason, message);
  return false;
}

std::vector<JsonLine> read_json_lines(const std::string& path, BadRecordLog* bad_records) {
  if (is_embedded_spec(path)) return embedded_lines(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError("cannot read data file " + path + ": no such file or unreadable");

  std::vector<JsonLine> lines;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (std::all_of(line.begin(), line.end(), [](unsigned char c) { return std::isspace(c); })) {
      continue;
    }
    SourceRef source{path, number};
    if (size_t bad = invalid_utf8_offset(line); bad != std::string::npos) {
      fail(bad_records, source, bad_reason::kInvalidUtf8,
           "invalid UTF-8 at byte " + std::to_string(bad + 1) + " of the line");
      continue;
    }
    nlohmann::json value = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded() || !value.is_object()) {
      std::string why;
      try {
        const nlohmann::json parsed = nlohmann::json::parse(line);
        why = std::string("a record must be a JSON object, got ") + parsed.type_name();
      } catch (const nlohmann::json::parse_error& error) {
        why = error.what();
      }
      fail(bad_records, source, bad_reason::kMalformedJson, "malformed JSON: " + why);
      continue;
    }
    lines.push_back({source, std::move(value)});
  }
  return lines;
}

bool get_string(const nlohmann::json& object, const char* key, const SourceRef& source,
                BadRecordLog* bad_records, std::string* out) {
  auto found = object.find(key);
  if (found == object.end() || found->is_null()) {
    return fail(bad_records, source, bad_reason::kMissingField,
                std::string("missing field '") + key + "'");
  }
  if (!found->is_string()) {
    return fail(bad_records, source, bad_reason::kWrongType,
                std::string("field '") + key + "' must be a string, got " + found->type_name());
  }
  *out = found->get<std::string>();
  return true;
}

bool check_attribute_range(const Turn& turn, const SourceRef& source, BadRecordLog* bad_records) {
  for (const auto& [name, value] : turn.attributes) {
    if (!(value >= 0.0f && value <= 4.0f)) {
      std::ostringstream message;
      message << "attribute '" << name << "' = " << value << " is outside 0..4";
      return fail(bad_records, source, bad_reason::kAttributeOutOfRange, message.str());
    }
  }
  return true;
}

bool check_turns(const Conversation& conversation, BadRecordLog* bad_records) {
  bool has_assistant = false;
  for (size_t i = 0; i < conversation.turns.size(); ++i) {
    const Turn& turn = conversation.turns[i];
    if (turn.role != Role::kAssistant) continue;
    has_assistant = true;
    if (turn.text.empty()) {
      return fail(bad_records, conversation.source, bad_reason::kEmptyResponse,
                  "empty response (assistant turn " + std::to_string(i + 1) + ")");
    }
  }
  if (!has_assistant) {
    return fail(bad_records, conversation.source, bad_reason::kNoAssistantTurn,
                "the conversation has no assistant turn, so nothing to train or score");
  }
  return true;
}

}  // namespace reader_detail

namespace {

using reader_detail::fail;
using reader_detail::get_string;
using reader_detail::JsonLine;

// Reads one 0..4 integer attribute of a flat HelpSteer row, when present.
bool read_integer_attribute(const JsonLine& line, const std::string& name, Turn* turn,
                            BadRecordLog* bad_records) {
  auto found = line.value.find(name);
  if (found == line.value.end() || found->is_null()) return true;
  const bool integral = found->is_number_integer() ||
                        (found->is_number_float() &&
                         found->get<double>() == static_cast<double>(found->get<int64_t>()));
  if (!integral) {
    return fail(bad_records, line.source, bad_reason::kWrongType,
                "attribute '" + name + "' must be an integer 0..4, got " + found->dump());
  }
  turn->attributes[name] = static_cast<float>(found->get<int64_t>());
  return true;
}

// HelpSteer2 multi-turn prompts separate earlier turns with <extra_id_1>: user, assistant, ...,
// user. They become turns of their own; earlier assistant turns carry no label.
std::vector<Turn> split_prompt(const std::string& prompt) {
  std::vector<Turn> turns;
  size_t start = 0;
  const std::string marker = kTurnMarker;
  while (true) {
    size_t next = prompt.find(marker, start);
    Turn turn;
    turn.role = turns.size() % 2 == 0 ? Role::kUser : Role::kAssistant;
    turn.text = prompt.substr(start, next == std::string::npos ? next : next - start);
    turns.push_back(std::move(turn));
    if (next == std::string::npos) break;
    start = next + marker.size();
  }
  return turns;
}

std::optional<Conversation> read_helpsteer(const JsonLine& line, BadRecordLog* bad_records) {
  Conversation conversation;
  conversation.source = line.source;
  std::string prompt, response;
  if (!get_string(line.value, "prompt", line.source, bad_records, &prompt)) return std::nullopt;
  if (!get_string(line.value, "response", line.source, bad_records, &response)) return {};

  conversation.turns = split_prompt(prompt);
  if (conversation.turns.back().role != Role::kUser) {
    fail(bad_records, line.source, bad_reason::kBadValue,
         "a multi-turn prompt must end on a user turn (odd number of <extra_id_1>-separated "
         "parts)");
    return std::nullopt;
  }
  Turn answer;
  answer.role = Role::kAssistant;
  answer.text = response;
  for (const std::string& name : kHelpSteerAttributes) {
    if (!read_integer_attribute(line, name, &answer, bad_records)) return std::nullopt;
  }
  if (!reader_detail::check_attribute_range(answer, line.source, bad_records)) return {};
  conversation.turns.push_back(std::move(answer));
  return conversation;
}

std::optional<Turn> read_steerlm_turn(const nlohmann::json& value, size_t index,
                                      const SourceRef& source, BadRecordLog* bad_records) {
  const std::string where = "conversations[" + std::to_string(index) + "]";
  if (!value.is_object()) {
    fail(bad_records, source, bad_reason::kWrongType, where + " must be an object");
    return std::nullopt;
  }
  Turn turn;
  std::string from;
  if (!get_string(value, "from", source, bad_records, &from)) return std::nullopt;
  if (!get_string(value, "value", source, bad_records, &turn.text)) return std::nullopt;
  if (from != "User" && from != "Assistant") {
    fail(bad_records, source, bad_reason::kBadValue,
         where + ".from is '" + from + "'; expected User or Assistant");
    return std::nullopt;
  }
  turn.role = from == "User" ? Role::kUser : Role::kAssistant;

  auto label = value.find("label");
  if (label == value.end() || label->is_null()) return turn;
  if (!label->is_string()) {
    fail(bad_records, source, bad_reason::kWrongType, where + ".label must be a string or null");
    return std::nullopt;
  }
  if (label->get<std::string>().empty()) return turn;
  std::string error;
  auto values = parse_label(label->get<std::string>(), &error);
  if (!values) {
    fail(bad_records, source, bad_reason::kBadValue, where + ": " + error);
    return std::nullopt;
  }
  // NeMo-Aligner ignores labels on user turns; so do we, by keeping them off the turn.
  if (turn.role == Role::kAssistant) turn.attributes = std::move(*values);
  if (!reader_detail::check_attribute_range(turn, source, bad_records)) return std::nullopt;
  return turn;
}

std::optional<Conversation> read_steerlm(const JsonLine& line, BadRecordLog* bad_records) {
  Conversation conversation;
  conversation.source = line.source;
  conversation.record = line.value;
  if (line.value.contains("system") && !line.value["system"].is_null()) {
    std::string system;
    if (!get_string(line.value, "system", line.source, bad_records, &system)) return {};
    conversation.system = system;
  }
  auto turns = line.value.find("conversations");
  if (turns == line.value.end()) {
    fail(bad_records, line.source, bad_reason::kMissingField, "missing field 'conversations'");
    return std::nullopt;
  }
  if (!turns->is_array()) {
    fail(bad_records, line.source, bad_reason::kWrongType,
         std::string("field 'conversations' must be an array, got ") + turns->type_name());
    return std::nullopt;
  }
  for (size_t i = 0; i < turns->size(); ++i) {
    std::optional<Turn> turn = read_steerlm_turn((*turns)[i], i, line.source, bad_records);
    if (!turn) return std::nullopt;
    conversation.turns.push_back(std::move(*turn));
  }
  return conversation;
}

}  // namespace

std::vector<Conversation> read_conversations(const std::string& path, DataFormatKind format,
                                             BadRecordLog* bad_records) {
  if (format == config::DataFormat::PREFERENCE_PAIRS) {
    throw UserError(path +
                    ": preference pairs are for evaluation only (eval-attr); they do not "
                    "make training conversations");
  }
  std::vector<JsonLine> lines = reader_detail::read_json_lines(path, bad_records);
  if (format == config::DataFormat::OASST_MESSAGES) {
    return reader_detail::read_oasst_messages(lines, bad_records);
  }
  if (format == config::DataFormat::OASST_TREES) {
    return reader_detail::read_oasst_trees(lines, bad_records);
  }

  std::vector<Conversation> conversations;
  for (const JsonLine& line : lines) {
    std::optional<Conversation> conversation;
    switch (format) {
      case config::DataFormat::HELPSTEER: conversation = read_helpsteer(line, bad_records); break;
      case config::DataFormat::STEERLM: conversation = read_steerlm(line, bad_records); break;
      case config::DataFormat::REGRESSION_RM:
        conversation = reader_detail::read_regression_rm(line, bad_records);
        break;
      default: LOG(FATAL) << "unresolved data format " << format_name(format);
    }
    if (conversation && reader_detail::check_turns(*conversation, bad_records)) {
      conversations.push_back(std::move(*conversation));
    }
  }
  return conversations;
}

DataFormatKind parse_format_name(const std::string& name) {
  std::string upper = name;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  DataFormatKind kind;
  if (!config::DataFormat::Kind_Parse(upper, &kind)) {
    throw UsageError("unknown data format '" + name +
                     "'; expected auto, helpsteer, oasst_messages, oasst_trees, steerlm, "
                     "regression_rm or preference_pairs");
  }
  return kind;
}

std::string format_name(DataFormatKind format) {
  std::string name = config::DataFormat::Kind_Name(format);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return name;
}

DataFormatKind detect_format(const std::string& path) {
  if (is_embedded_spec(path)) return config::DataFormat::STEERLM;
  BadRecordLog ignore(config::BadRecord::SKIP);
  std::vector<JsonLine> lines = reader_detail::read_json_lines(path, &ignore);
  if (lines.empty()) {
    throw UserError(path + ": no JSON object records to detect the format from; set data.format");
  }
  const nlohmann::json& record = lines.front().value;
  auto has = [&](const char* key) { return record.contains(key); };
  if (has("conversations")) return config::DataFormat::STEERLM;
  if (has("text") && has("label")) return config::DataFormat::REGRESSION_RM;
  if ((has("chosen") && has("rejected")) || (has("response_1") && has("response_2"))) {
    return config::DataFormat::PREFERENCE_PAIRS;
  }
  if (has("prompt") && has("response")) return config::DataFormat::HELPSTEER;
  if (has("message_id") && has("role")) return config::DataFormat::OASST_MESSAGES;
  if (has("prompt") && record["prompt"].is_object()) return config::DataFormat::OASST_TREES;
  std::string keys;
  for (const auto& item : record.items()) keys += (keys.empty() ? "" : ", ") + item.key();
  throw UserError(lines.front().source.str() + ": cannot detect the data format from keys {" +
                  keys + "}; set data.format (or --format)");
}

DataFormatKind resolve_format(const std::string& path, DataFormatKind requested) {
  return requested == config::DataFormat::AUTO ? detect_format(path) : requested;
}

std::vector<std::string> format_attributes(DataFormatKind format) {
  switch (format) {
    case config::DataFormat::HELPSTEER: return kHelpSteerAttributes;
    case config::DataFormat::OASST_MESSAGES:
    case config::DataFormat::OASST_TREES: return kOasstAttributes;
    case config::DataFormat::REGRESSION_RM: return kCombinedAttributes;
    case config::DataFormat::PREFERENCE_PAIRS: return kHelpSteerAttributes;
    default: return {};
  }
}

}  // namespace steerlm
