#include "pipeline/conversation.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

namespace steerlm {

const std::vector<std::string> kOasstAttributes = {"quality", "toxicity", "humor", "creativity"};
const std::vector<std::string> kHelpSteerAttributes = {"helpfulness", "correctness", "coherence",
                                                       "complexity", "verbosity"};
const std::vector<std::string> kCombinedAttributes = {"quality",    "toxicity",    "humor",
                                                      "creativity", "helpfulness", "correctness",
                                                      "coherence",  "complexity",  "verbosity"};

const char* role_name(Role role) {
  return role == Role::kUser ? "User" : "Assistant";
}

int round_half_even(double value) {
  return static_cast<int>(std::nearbyint(value));
}

namespace {

std::string format_value(float value) {
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e9f) {
    return std::to_string(static_cast<long long>(value));
  }
  char buffer[32];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

}  // namespace

std::string format_label(const std::map<std::string, float>& values,
                         const std::vector<std::string>& order) {
  std::string label;
  for (const std::string& name : order) {
    auto found = values.find(name);
    if (found == values.end()) continue;
    if (!label.empty()) label += ",";
    label += name + ":" + format_value(found->second);
  }
  return label;
}

std::optional<std::map<std::string, float>> parse_label(const std::string& label,
                                                        std::string* error) {
  std::map<std::string, float> values;
  size_t start = 0;
  while (start <= label.size()) {
    size_t comma = label.find(',', start);
    std::string pair = label.substr(start, comma == std::string::npos ? comma : comma - start);
    size_t colon = pair.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == pair.size()) {
      *error = "label '" + label + "' is not name:value,... (at '" + pair + "')";
      return std::nullopt;
    }
    const std::string value_text = pair.substr(colon + 1);
    float value = 0;
    auto parsed = std::from_chars(value_text.data(), value_text.data() + value_text.size(), value);
    if (parsed.ec != std::errc() || parsed.ptr != value_text.data() + value_text.size()) {
      *error = "label '" + label + "' has a non-numeric value '" + value_text + "'";
      return std::nullopt;
    }
    values[pair.substr(0, colon)] = value;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return values;
}

std::vector<std::string> attributes_present(const std::vector<Conversation>& conversations) {
  std::set<std::string> seen;
  std::vector<std::string> others;
  for (const Conversation& conversation : conversations) {
    for (const Turn& turn : conversation.turns) {
      for (const auto& [name, value] : turn.attributes) {
        if (!seen.insert(name).second) continue;
        bool known = std::find(kCombinedAttributes.begin(), kCombinedAttributes.end(), name) !=
                     kCombinedAttributes.end();
        if (!known) others.push_back(name);
      }
    }
  }
  std::vector<std::string> names;
  for (const std::string& name : kCombinedAttributes) {
    if (seen.count(name)) names.push_back(name);
  }
  names.insert(names.end(), others.begin(), others.end());
  return names;
}

}  // namespace steerlm
