// NeMo-Aligner regression-RM JSONL (pre-rendered attribute-model inputs with 9 floats) and
// preference pairs (evaluation only).
#include "pipeline/chat_template.h"
#include "pipeline/readers.h"

namespace steerlm {
namespace reader_detail {
namespace {

// Splits `body` (the text after the system header) at each "\n<extra_id_1>User\n" or
// "\n<extra_id_1>Assistant\n"; the part before the first one is the system prompt.
bool split_rendered_turns(const std::string& body, Conversation* conversation) {
  const std::string user_header = std::string("\n") + kTurnMarker + "User\n";
  const std::string assistant_header = std::string("\n") + kTurnMarker + "Assistant\n";
  size_t position = 0;
  std::optional<Role> role;
  while (true) {
    size_t user = body.find(user_header, position);
    size_t assistant = body.find(assistant_header, position);
    size_t next = std::min(user, assistant);
    std::string piece = body.substr(position, next == std::string::npos ? next : next - position);
    if (!role) {
      conversation->system = piece;
    } else {
      conversation->turns.push_back({*role, piece, {}, ""});
    }
    if (next == std::string::npos) break;
    role = next == user ? Role::kUser : Role::kAssistant;
    position = next + (next == user ? user_header.size() : assistant_header.size());
  }
  return role.has_value();
}

}  // namespace

std::optional<Conversation> read_regression_rm(const JsonLine& line, BadRecordLog* bad_records) {
  std::string text;
  if (!get_string(line.value, "text", line.source, bad_records, &text)) return std::nullopt;
  auto labels = line.value.find("label");
  if (labels == line.value.end()) {
    fail(bad_records, line.source, bad_reason::kMissingField, "missing field 'label'");
    return std::nullopt;
  }
  if (!labels->is_array() || labels->size() != kCombinedAttributes.size()) {
    fail(bad_records, line.source, bad_reason::kWrongType,
         "field 'label' must be a list of 9 numbers (quality, toxicity, humor, creativity, "
         "helpfulness, correctness, coherence, complexity, verbosity; -100 when missing)");
    return std::nullopt;
  }

  // Parse the rendered text back into turns; it must re-render to exactly the same bytes.
  const std::string prefix = std::string(kSystemMarker) + "System\n";
  const std::string suffix = std::string("\n") + kLabelMarker;
  Conversation conversation;
  conversation.source = line.source;
  conversation.record = line.value;
  const bool framed = text.size() >= prefix.size() + suffix.size() && text.starts_with(prefix) &&
                      text.ends_with(suffix);
  if (!framed || !split_rendered_turns(
                     text.substr(prefix.size(), text.size() - prefix.size() - suffix.size() + 1),
                     &conversation)) {
    fail(bad_records, line.source, bad_reason::kNotInTemplate,
         "'text' is not a rendered conversation (<extra_id_0>System\\n...\\n<extra_id_2>)");
    return std::nullopt;
  }
  Turn& scored = conversation.turns.back();
  // The kept "\n" before <extra_id_2> is the last turn's template newline.
  if (!scored.text.empty() && scored.text.back() == '\n') scored.text.pop_back();
  if (scored.role != Role::kAssistant ||
      render_attribute_input(conversation, conversation.turns.size() - 1, {}) != text) {
    fail(bad_records, line.source, bad_reason::kNotInTemplate,
         "'text' does not end with an assistant turn followed by <extra_id_2>, in the template");
    return std::nullopt;
  }

  // The 9 values belong to the scored (last) turn; -100 marks a missing one.
  for (size_t i = 0; i < labels->size(); ++i) {
    const nlohmann::json& value = (*labels)[i];
    if (!value.is_number()) {
      fail(bad_records, line.source, bad_reason::kWrongType,
           "label[" + std::to_string(i) + "] must be a number, got " + value.dump());
      return std::nullopt;
    }
    if (value.get<double>() == kMissingAttribute) continue;
    scored.attributes[kCombinedAttributes[i]] = value.get<float>();
  }
  if (!check_attribute_range(scored, line.source, bad_records)) return std::nullopt;
  return conversation;
}

}  // namespace reader_detail

namespace {

using reader_detail::fail;
using reader_detail::get_string;

bool fill_pair(const reader_detail::JsonLine& line, BadRecordLog* bad_records,
               PreferencePair* pair) {
  std::string prompt;
  if (!get_string(line.value, "prompt", line.source, bad_records, &prompt)) return false;
  pair->context.source = line.source;
  pair->context.record = line.value;
  pair->context.turns.push_back({Role::kUser, prompt, {}, ""});

  if (line.value.contains("response_1")) {
    // HelpSteer2's form: negative strength means response_1 is better, about helpfulness.
    std::string first, second;
    if (!get_string(line.value, "response_1", line.source, bad_records, &first)) return false;
    if (!get_string(line.value, "response_2", line.source, bad_records, &second)) return false;
    const nlohmann::json strength = line.value.value("preference_strength", nlohmann::json());
    if (!strength.is_number_integer()) {
      return fail(bad_records, line.source,
                  strength.is_null() ? bad_reason::kMissingField : bad_reason::kWrongType,
                  "field 'preference_strength' must be an integer -3..3");
    }
    const int value = strength.get<int>();
    if (value < -3 || value > 3) {
      return fail(bad_records, line.source, bad_reason::kBadValue,
                  "preference_strength " + std::to_string(value) + " is outside -3..3");
    }
    pair->chosen = value <= 0 ? first : second;
    pair->rejected = value <= 0 ? second : first;
    pair->attribute = "helpfulness";
    pair->strength = value < 0 ? -value : value;
    pair->tie = value == 0;
  } else {
    if (!get_string(line.value, "chosen", line.source, bad_records, &pair->chosen)) return false;
    if (!get_string(line.value, "rejected", line.source, bad_records, &pair->rejected)) {
      return false;
    }
    if (!get_string(line.value, "attribute", line.source, bad_records, &pair->attribute)) {
      return false;
    }
  }
  if (pair->chosen.empty() || pair->rejected.empty()) {
    return fail(bad_records, line.source, bad_reason::kEmptyResponse, "empty response");
  }
  return true;
}

}  // namespace

std::vector<PreferencePair> read_preference_pairs(const std::string& path,
                                                  BadRecordLog* bad_records) {
  std::vector<PreferencePair> pairs;
  for (const reader_detail::JsonLine& line : reader_detail::read_json_lines(path, bad_records)) {
    PreferencePair pair;
    if (fill_pair(line, bad_records, &pair)) pairs.push_back(std::move(pair));
  }
  return pairs;
}

Conversation with_response(const PreferencePair& pair, bool chosen) {
  Conversation conversation = pair.context;
  conversation.turns.push_back({Role::kAssistant, chosen ? pair.chosen : pair.rejected, {}, ""});
  return conversation;
}

}  // namespace steerlm
