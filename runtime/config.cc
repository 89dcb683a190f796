#include "runtime/config.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <charconv>
#include <cmath>
#include <regex>
#include <sstream>

#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace pb = google::protobuf;

// ---- FieldLocations ---------------------------------------------------------------------------

std::string FieldLocations::find(const std::string& path) const {
  std::string current = path;
  while (true) {
    auto found = locations_.find(current);
    if (found != locations_.end()) return found->second;
    size_t dot = current.rfind('.');
    if (dot == std::string::npos) return "";
    current = current.substr(0, dot);
  }
}

std::string FieldLocations::prefix(const std::string& path) const {
  std::string where = find(path);
  return where.empty() ? "" : where + ": ";
}

namespace {

// ---- Parsing text files -----------------------------------------------------------------------

std::string valid_field_names(const pb::Descriptor* descriptor) {
  std::string names;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    names += (i ? ", " : "") + descriptor->field(i)->name();
  }
  return names;
}

std::string line_of(const std::string& text, int zero_based_line) {
  std::istringstream in(text);
  std::string line;
  for (int i = 0; i <= zero_based_line && std::getline(in, line); ++i) {
  }
  return line;
}

// Turns protobuf's parser messages into ones that name the field and what is valid.
std::string explain_parse_error(const std::string& message, const std::string& source_line) {
  static const std::regex unknown_field(
      R"(Message type \"([\w.]+)\" has no field named \"(\w+)\")");
  std::smatch match;
  if (std::regex_search(message, match, unknown_field)) {
    const pb::Descriptor* descriptor =
        pb::DescriptorPool::generated_pool()->FindMessageTypeByName(match[1].str());
    std::string valid = descriptor ? "; valid fields: " + valid_field_names(descriptor) : "";
    return "unknown field \"" + match[2].str() + "\" in " + match[1].str() + valid;
  }
  static const std::regex field_name(R"(^\s*(\w+)\s*:)");
  if (std::regex_search(source_line, match, field_name)) {
    return "field \"" + match[1].str() + "\": " + message;
  }
  return message;
}

class FirstErrorCollector : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (!has_error) {
      has_error = true;
      error_line = line;
      error_message = message;
    }
  }
  bool has_error = false;
  int error_line = 0;
  std::string error_message;
};

void record_locations(const pb::Message& message, const pb::TextFormat::ParseInfoTree& tree,
                      const std::string& name, const std::string& path_prefix,
                      FieldLocations* locations) {
  const pb::Reflection* reflection = message.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const pb::FieldDescriptor* field : fields) {
    std::string path = path_prefix.empty() ? field->name() : path_prefix + "." + field->name();
    int count = field->is_repeated() ? reflection->FieldSize(message, field) : 1;
    for (int index = 0; index < count; ++index) {
      int tree_index = field->is_repeated() ? index : -1;
      pb::TextFormat::ParseLocation location = tree.GetLocation(field, tree_index);
      if (location.line >= 0 && index == 0) {
        locations->record(path, name + ":" + std::to_string(location.line + 1));
      }
      if (field->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) continue;
      const pb::TextFormat::ParseInfoTree* nested = tree.GetTreeForNested(field, tree_index);
      if (nested == nullptr) continue;
      const pb::Message& child = field->is_repeated()
                                     ? reflection->GetRepeatedMessage(message, field, index)
                                     : reflection->GetMessage(message, field);
      std::string child_path = field->is_repeated() ? path + "." + std::to_string(index) : path;
      record_locations(child, *nested, name, child_path, locations);
    }
  }
}

// ---- Overrides --------------------------------------------------------------------------------

template <typename T>
bool parse_integer(const std::string& text, T* value) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size();
}

bool parse_double(const std::string& text, double* value) {
  if (text.empty()) return false;
  char* end = nullptr;
  *value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && std::isfinite(*value);
}

std::string unquote(const std::string& text) {
  if (text.size() >= 2 && (text.front() == '"' || text.front() == '\'') &&
      text.back() == text.front()) {
    return text.substr(1, text.size() - 2);
  }
  return text;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, ',')) parts.push_back(part);
  if (!text.empty() && text.back() == ',') parts.push_back("");
  return parts;
}

// Sets (or, for a repeated field, appends) one scalar value. Returns "" or why it failed.
std::string set_scalar(pb::Message* message, const pb::FieldDescriptor* field,
                       const std::string& raw_text) {
  const pb::Reflection* reflection = message->GetReflection();
  const bool repeated = field->is_repeated();
  const std::string text = unquote(raw_text);
  switch (field->cpp_type()) {
#define STEERLM_SET_INTEGER(cpptype, type, Name)                                          \
  case pb::FieldDescriptor::cpptype: {                                                    \
    type value{};                                                                         \
    if (!parse_integer(text, &value)) return "expected an integer, got \"" + text + "\""; \
    repeated ? reflection->Add##Name(message, field, value)                               \
             : reflection->Set##Name(message, field, value);                              \
    return "";                                                                            \
  }
    STEERLM_SET_INTEGER(CPPTYPE_INT32, int32_t, Int32)
    STEERLM_SET_INTEGER(CPPTYPE_INT64, int64_t, Int64)
    STEERLM_SET_INTEGER(CPPTYPE_UINT32, uint32_t, UInt32)
    STEERLM_SET_INTEGER(CPPTYPE_UINT64, uint64_t, UInt64)
#undef STEERLM_SET_INTEGER
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
    case pb::FieldDescriptor::CPPTYPE_DOUBLE: {
      double value = 0;
      if (!parse_double(text, &value)) return "expected a number, got \"" + text + "\"";
      if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_FLOAT) {
        repeated ? reflection->AddFloat(message, field, static_cast<float>(value))
                 : reflection->SetFloat(message, field, static_cast<float>(value));
      } else {
        repeated ? reflection->AddDouble(message, field, value)
                 : reflection->SetDouble(message, field, value);
      }
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_BOOL: {
      bool value = text == "true" || text == "1";
      if (!value && text != "false" && text != "0") {
        return "expected true or false, got \"" + text + "\"";
      }
      repeated ? reflection->AddBool(message, field, value)
               : reflection->SetBool(message, field, value);
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      const pb::EnumValueDescriptor* value = field->enum_type()->FindValueByName(text);
      if (value == nullptr) {
        std::string valid;
        for (int i = 0; i < field->enum_type()->value_count(); ++i) {
          valid += (i ? ", " : "") + field->enum_type()->value(i)->name();
        }
        return "unknown value \"" + text + "\"; valid values: " + valid;
      }
      repeated ? reflection->AddEnum(message, field, value)
               : reflection->SetEnum(message, field, value);
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_STRING:
      repeated ? reflection->AddString(message, field, text)
               : reflection->SetString(message, field, text);
      return "";
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      return "is a message; set one of its fields: " + valid_field_names(field->message_type());
  }
  return "unsupported field type";
}

}  // namespace

void parse_config_text(const std::string& text, const std::string& name, pb::Message* message,
                       FieldLocations* locations, const std::string& path_prefix) {
  FirstErrorCollector errors;
  pb::TextFormat::Parser parser;
  pb::TextFormat::ParseInfoTree tree;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(text, message)) {
    std::string source_line = line_of(text, errors.error_line);
    throw UserError(name + ":" + std::to_string(errors.error_line + 1) + ": " +
                    explain_parse_error(errors.error_message, source_line));
  }
  if (locations != nullptr) record_locations(*message, tree, name, path_prefix, locations);
}

void parse_config_file(const std::string& path, pb::Message* message, FieldLocations* locations,
                       const std::string& path_prefix) {
  parse_config_text(read_file(path), path, message, locations, path_prefix);
}

void apply_override(const std::string& assignment, pb::Message* message,
                    FieldLocations* locations) {
  const std::string where = "--set " + assignment;
  size_t equals = assignment.find('=');
  if (equals == std::string::npos || equals == 0) {
    throw UsageError(where + ": expected FIELD=VALUE, e.g. --set train.steps=10");
  }
  const std::string path = assignment.substr(0, equals);
  const std::string value = assignment.substr(equals + 1);

  // Walk to the message that holds the last path component.
  pb::Message* current = message;
  std::string walked;
  std::istringstream components(path);
  std::string component;
  std::vector<std::string> parts;
  while (std::getline(components, component, '.')) parts.push_back(component);
  for (size_t i = 0; i < parts.size(); ++i) {
    const pb::Descriptor* descriptor = current->GetDescriptor();
    const pb::FieldDescriptor* field = descriptor->FindFieldByName(parts[i]);
    std::string context = walked.empty() ? descriptor->full_name() : walked;
    if (field == nullptr) {
      throw UserError(where + ": unknown field \"" + parts[i] + "\" in " + context +
                      "; valid fields: " + valid_field_names(descriptor));
    }
    walked += (walked.empty() ? "" : ".") + parts[i];
    if (i + 1 < parts.size()) {
      if (field->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE || field->is_repeated()) {
        throw UserError(where + ": \"" + walked + "\" has no sub-fields");
      }
      current = current->GetReflection()->MutableMessage(current, field);
      continue;
    }
    // The last component: replace the value (the whole list, for a repeated field).
    std::vector<std::string> values = {value};
    if (field->is_repeated()) {
      current->GetReflection()->ClearField(current, field);
      values = value.empty() ? std::vector<std::string>{} : split_commas(value);
    }
    for (const std::string& item : values) {
      std::string problem = set_scalar(current, field, item);
      if (!problem.empty()) throw UserError(where + ": field \"" + walked + "\" " + problem);
    }
  }
  if (locations != nullptr) locations->record(path, where);
}

void resolve_model_config(config::StageConfig* config, FieldLocations* locations) {
  if (!config->has_model() || config->model().config_file().empty()) return;
  config::ModelConfig resolved;
  FieldLocations file_locations;
  parse_config_file(config->model().config_file(), &resolved, &file_locations, "model.config");
  if (locations != nullptr) locations->merge_missing(file_locations);
  resolved.MergeFrom(config->model().config());  // inline fields win over the file's
  *config->mutable_model()->mutable_config() = resolved;
}

config::StageConfig load_stage_config(const std::string& path,
                                      const std::vector<std::string>& overrides,
                                      FieldLocations* locations) {
  config::StageConfig config;
  if (!path.empty()) parse_config_file(path, &config, locations);
  for (const std::string& assignment : overrides) apply_override(assignment, &config, locations);
  resolve_model_config(&config, locations);
  return config;
}

std::string config_to_text(const pb::Message& message) {
  std::string text;
  pb::TextFormat::Printer printer;
  printer.PrintToString(message, &text);
  return text;
}

}  // namespace steerlm
