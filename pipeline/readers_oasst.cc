// OpenAssistant readers: the Hugging Face message export (flat, rebuilt from parent_id) and the
// nested trees export. Conversations are the root-to-leaf paths with two or more turns, as in
// NeMo-Aligner's preprocess_openassistant_data.py; labels are kept on assistant turns only and
// mapped from 0..1 to 0..4 by round(v * 4), halves to even.
#include <map>
#include <set>

#include "pipeline/readers.h"

namespace steerlm {
namespace reader_detail {
namespace {

// One oasst message, as read from either export.
struct OasstMessage {
  SourceRef source;
  std::string id;
  std::string parent_id;
  std::string tree_id;
  Turn turn;
  std::vector<size_t> children;  // indices into the message table, in file order
};

// Maps the OASST attributes of `labels` (value in 0..1) onto turn->attributes.
bool map_oasst_label(const std::string& name, const nlohmann::json& value, const SourceRef& source,
                     BadRecordLog* bad_records, Turn* turn) {
  if (value.is_null()) return true;
  if (!value.is_number()) {
    return fail(bad_records, source, bad_reason::kWrongType,
                "label '" + name + "' must be a number in 0..1, got " + value.dump());
  }
  const double raw = value.get<double>();
  if (!(raw >= 0.0 && raw <= 1.0)) {
    return fail(bad_records, source, bad_reason::kAttributeOutOfRange,
                "label '" + name + "' = " + value.dump() + " is outside 0..1");
  }
  turn->attributes[name] = static_cast<float>(round_half_even(raw * 4.0));
  return true;
}

// Reads `labels` in either layout: {name:[], value:[], count:[]} or {name: {value, count}}.
bool read_oasst_labels(const nlohmann::json& labels, const SourceRef& source,
                       BadRecordLog* bad_records, Turn* turn) {
  if (labels.is_null()) return true;
  if (!labels.is_object()) {
    return fail(bad_records, source, bad_reason::kWrongType, "field 'labels' must be an object");
  }
  const bool parallel_lists = labels.contains("name") && labels["name"].is_array();
  if (parallel_lists) {
    const nlohmann::json& names = labels["name"];
    const nlohmann::json values = labels.value("value", nlohmann::json::array());
    if (!values.is_array() || values.size() != names.size()) {
      return fail(bad_records, source, bad_reason::kWrongType,
                  "labels.value must be a list as long as labels.name");
    }
    for (size_t i = 0; i < names.size(); ++i) {
      if (!names[i].is_string()) {
        return fail(bad_records, source, bad_reason::kWrongType, "labels.name must hold strings");
      }
      const std::string name = names[i].get<std::string>();
      if (std::find(kOasstAttributes.begin(), kOasstAttributes.end(), name) ==
          kOasstAttributes.end()) {
        continue;
      }
      if (!map_oasst_label(name, values[i], source, bad_records, turn)) return false;
    }
    return true;
  }
  for (const std::string& name : kOasstAttributes) {
    if (!labels.contains(name)) continue;
    const nlohmann::json& entry = labels[name];
    if (!entry.is_object() || !entry.contains("value")) {
      return fail(bad_records, source, bad_reason::kWrongType,
                  "labels." + name + " must be an object with a 'value'");
    }
    if (!map_oasst_label(name, entry["value"], source, bad_records, turn)) return false;
  }
  return true;
}

// Reads the fields shared by both exports into `message`.
bool read_oasst_message(const nlohmann::json& object, const SourceRef& source,
                        BadRecordLog* bad_records, OasstMessage* message) {
  message->source = source;
  std::string role;
  if (!get_string(object, "role", source, bad_records, &role)) return false;
  if (!get_string(object, "text", source, bad_records, &message->turn.text)) return false;
  if (role != "prompter" && role != "assistant") {
    return fail(bad_records, source, bad_reason::kBadValue,
                "role is '" + role + "'; expected prompter or assistant");
  }
  message->turn.role = role == "prompter" ? Role::kUser : Role::kAssistant;
  if (object.contains("message_id") && object["message_id"].is_string()) {
    message->id = object["message_id"].get<std::string>();
    message->turn.message_id = message->id;
  }
  // NeMo-Aligner drops the labels of user turns; only assistant turns are scored.
  if (message->turn.role == Role::kAssistant && object.contains("labels")) {
    if (!read_oasst_labels(object["labels"], source, bad_records, &message->turn)) return false;
  }
  return true;
}

// Appends every root-to-leaf path under `index` with at least two turns.
void collect_paths(const std::vector<OasstMessage>& messages, size_t index,
                   std::vector<size_t>* path, std::vector<Conversation>* out) {
  path->push_back(index);
  const OasstMessage& message = messages[index];
  if (message.children.empty() && path->size() >= 2) {
    Conversation conversation;
    for (size_t step : *path) conversation.turns.push_back(messages[step].turn);
    // The leaf names the path: it is the one message no other path ends on.
    conversation.source = message.source;
    out->push_back(std::move(conversation));
  }
  for (size_t child : message.children) collect_paths(messages, child, path, out);
  path->pop_back();
}

// Keeps the paths that pass the per-conversation checks (non-empty responses).
void append_checked(std::vector<Conversation> paths, BadRecordLog* bad_records,
                    std::vector<Conversation>* out) {
  for (Conversation& conversation : paths) {
    if (check_turns(conversation, bad_records)) out->push_back(std::move(conversation));
  }
}

// Reports messages not reachable from a root: an unknown parent is a broken tree (an error),
// a whole subtree whose tree root is absent from the file is a partial export (a note).
void report_unreachable(const std::vector<OasstMessage>& messages,
                        const std::vector<bool>& reachable, BadRecordLog* bad_records) {
  std::map<std::string, size_t> by_id;
  for (size_t i = 0; i < messages.size(); ++i) by_id[messages[i].id] = i;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (reachable[i]) continue;
    const OasstMessage& message = messages[i];
    const bool tree_root_present = by_id.count(message.tree_id) > 0;
    if (!tree_root_present && !message.tree_id.empty()) {
      bad_records->note(message.source, bad_reason::kTreeRootAbsent,
                        "message_tree_id '" + message.tree_id +
                            "' has no root message in this file (a partial export); the "
                            "message is in no conversation");
    } else if (!by_id.count(message.parent_id)) {
      bad_records->report(message.source, bad_reason::kUnknownParent,
                          "parent_id '" + message.parent_id + "' is not a message in this file");
    } else {
      bad_records->report(message.source, bad_reason::kUnknownParent,
                          "an ancestor of this message has an unknown parent (line " +
                              std::to_string(messages[by_id[message.parent_id]].source.line) +
                              " is not reachable from a root)");
    }
  }
}

void mark_reachable(const std::vector<OasstMessage>& messages, size_t index,
                    std::vector<bool>* reachable) {
  (*reachable)[index] = true;
  for (size_t child : messages[index].children) mark_reachable(messages, child, reachable);
}

// Nested export: one tree per line; `prompt` holds the root, each message its `replies`.
bool flatten_tree(const nlohmann::json& node, const SourceRef& source, const std::string& tree_id,
                  BadRecordLog* bad_records, std::vector<OasstMessage>* messages) {
  if (!node.is_object()) {
    return fail(bad_records, source, bad_reason::kWrongType, "a tree node must be an object");
  }
  OasstMessage message;
  if (!read_oasst_message(node, source, bad_records, &message)) return false;
  message.tree_id = tree_id;
  const size_t index = messages->size();
  messages->push_back(std::move(message));
  if (!node.contains("replies") || node["replies"].is_null()) return true;
  if (!node["replies"].is_array()) {
    return fail(bad_records, source, bad_reason::kWrongType, "'replies' must be an array");
  }
  for (const nlohmann::json& reply : node["replies"]) {
    const size_t child = messages->size();
    if (!flatten_tree(reply, source, tree_id, bad_records, messages)) return false;
    (*messages)[index].children.push_back(child);
  }
  return true;
}

}  // namespace

std::vector<Conversation> read_oasst_messages(const std::vector<JsonLine>& lines,
                                              BadRecordLog* bad_records) {
  // Read every message and index it by id.
  std::vector<OasstMessage> messages;
  std::map<std::string, size_t> by_id;
  for (const JsonLine& line : lines) {
    OasstMessage message;
    if (!read_oasst_message(line.value, line.source, bad_records, &message)) continue;
    if (message.id.empty()) {
      fail(bad_records, line.source, bad_reason::kMissingField, "missing field 'message_id'");
      continue;
    }
    const nlohmann::json& parent = line.value.value("parent_id", nlohmann::json());
    if (!parent.is_null() && !parent.is_string()) {
      fail(bad_records, line.source, bad_reason::kWrongType, "parent_id must be a string or null");
      continue;
    }
    message.parent_id = parent.is_null() ? "" : parent.get<std::string>();
    message.tree_id = line.value.value("message_tree_id", std::string());
    by_id[message.id] = messages.size();
    messages.push_back(std::move(message));
  }

  // Rebuild the trees from parent_id, children in file order.
  std::vector<size_t> roots;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].parent_id.empty()) {
      roots.push_back(i);
    } else if (auto parent = by_id.find(messages[i].parent_id); parent != by_id.end()) {
      messages[parent->second].children.push_back(i);
    }
  }

  // Every message must hang off a root; then one conversation per root-to-leaf path.
  std::vector<bool> reachable(messages.size(), false);
  for (size_t root : roots) mark_reachable(messages, root, &reachable);
  report_unreachable(messages, reachable, bad_records);
  std::vector<Conversation> conversations;
  for (size_t root : roots) {
    std::vector<Conversation> paths;
    std::vector<size_t> path;
    collect_paths(messages, root, &path, &paths);
    append_checked(std::move(paths), bad_records, &conversations);
  }
  return conversations;
}

std::vector<Conversation> read_oasst_trees(const std::vector<JsonLine>& lines,
                                           BadRecordLog* bad_records) {
  std::vector<Conversation> conversations;
  for (const JsonLine& line : lines) {
    if (!line.value.contains("prompt")) {
      fail(bad_records, line.source, bad_reason::kMissingField, "missing field 'prompt'");
      continue;
    }
    std::vector<OasstMessage> messages;
    const std::string tree_id = line.value.value("message_tree_id", std::string());
    if (!flatten_tree(line.value["prompt"], line.source, tree_id, bad_records, &messages)) {
      continue;
    }
    std::vector<Conversation> paths;
    std::vector<size_t> path;
    collect_paths(messages, 0, &path, &paths);
    append_checked(std::move(paths), bad_records, &conversations);
  }
  return conversations;
}

}  // namespace reader_detail
}  // namespace steerlm
