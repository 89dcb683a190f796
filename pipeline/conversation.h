// The one internal form every reader produces (DESIGN §2): a system prompt and turns, each with
// a role, its text, and the attribute values it carries (any of them may be missing). Each record
// remembers where it came from (file:line) so that errors and skip listings can point at it.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace steerlm {

// Attribute sets of DESIGN §1. kCombinedAttributes is the order of NeMo's 9-output model.
extern const std::vector<std::string> kOasstAttributes;
extern const std::vector<std::string> kHelpSteerAttributes;
extern const std::vector<std::string> kCombinedAttributes;

// The value written for a missing attribute target; excluded from the loss.
constexpr float kMissingAttribute = -100.0f;

enum class Role { kUser, kAssistant };
const char* role_name(Role role);  // "User" / "Assistant", as in NeMo-Aligner's `from`

// Where a record came from: "FILE:LINE" (1-based line), or "embedded:default#N".
struct SourceRef {
  std::string file;
  int64_t line = 0;
  std::string str() const { return file + ":" + std::to_string(line); }
};

struct Turn {
  Role role = Role::kUser;
  std::string text;
  // Attribute name -> value (0..4 for labels; raw floats for regression-RM inputs).
  std::map<std::string, float> attributes;
  // oasst message id, so a message shared by several root-to-leaf paths is scored once.
  std::string message_id;
};

struct Conversation {
  // nullopt: the format has no system field, so the configured default applies.
  std::optional<std::string> system;
  std::vector<Turn> turns;
  SourceRef source;
  // The input record as read (SteerLM JSONL), so that writers keep every field, known or not.
  nlohmann::json record;
};

// Python's round(): halves go to the even neighbour (0.625*4 = 2.5 -> 2).
int round_half_even(double value);

// "name:value,..." in `order`, listing only attributes present in `values`. Integral values print
// without a decimal point; others in their shortest round-trip form. Names not in `order` are
// left out (they are outside the configured attribute set).
std::string format_label(const std::map<std::string, float>& values,
                         const std::vector<std::string>& order);

// Parses a NeMo-Aligner label string "helpfulness:4,verbosity:1". Returns nullopt and sets
// `error` when it is malformed.
std::optional<std::map<std::string, float>> parse_label(const std::string& label,
                                                        std::string* error);

// Attribute names present in `conversations`, kCombinedAttributes order first, then any others in
// order of first appearance.
std::vector<std::string> attributes_present(const std::vector<Conversation>& conversations);

}  // namespace steerlm
