// Config loading: protobuf text files, `--set` overrides through reflection, and validation
// whose errors name the field and where it was set (DESIGN §4).
//
//   FieldLocations where;
//   StageConfig config = load_stage_config("configs/stages/sft_tiny.pbtxt",
//                                          {"train.steps=3", "data.train=a.jsonl,b.jsonl"},
//                                          &where);
//   validate_stage_config(config, where, world_size);   // throws UserError "FILE:LINE: ..."
#pragma once

#include <google/protobuf/message.h>

#include <map>
#include <string>
#include <vector>

#include "configs/steerlm.pb.h"

namespace steerlm {

// Where each field was last set: dotted path ("parallel.tp") -> "FILE:LINE" (1-based) or
// "--set parallel.tp=3". Used to point error messages at the right place.
class FieldLocations {
 public:
  void record(const std::string& path, const std::string& where) { locations_[path] = where; }
  // Takes the locations of `other` for paths this one has not recorded.
  void merge_missing(const FieldLocations& other) {
    locations_.insert(other.locations_.begin(), other.locations_.end());
  }
  // The location of `path`, or of its nearest recorded ancestor; "" when unknown.
  std::string find(const std::string& path) const;
  // "WHERE: " for `path`, or "" when unknown; prefix for error messages.
  std::string prefix(const std::string& path) const;

 private:
  std::map<std::string, std::string> locations_;
};

// Parses a text-format file into `message`. Errors throw UserError "FILE:LINE: ...".
void parse_config_file(const std::string& path, google::protobuf::Message* message,
                       FieldLocations* locations, const std::string& path_prefix = "");
// Parses text-format `text` (as if it were the file `name`).
void parse_config_text(const std::string& text, const std::string& name,
                       google::protobuf::Message* message, FieldLocations* locations,
                       const std::string& path_prefix = "");

// Applies one "a.b.c=VALUE" override through reflection. Strings need no quotes; a repeated field
// is replaced by the comma-separated values; message fields are reached by their dotted path.
void apply_override(const std::string& assignment, google::protobuf::Message* message,
                    FieldLocations* locations);

// A stage config: the file, then the overrides, then model.config_file underneath model.config.
config::StageConfig load_stage_config(const std::string& path,
                                      const std::vector<std::string>& overrides,
                                      FieldLocations* locations);

// The resolved architecture: model.config_file's fields with model.config's on top.
void resolve_model_config(config::StageConfig* config, FieldLocations* locations);

// Checks everything that can be checked before any work: required fields, value ranges, and the
// parallel layout against `world_size`. Throws UserError naming the field and its location.
void validate_stage_config(const config::StageConfig& config, const FieldLocations& locations,
                           int world_size);

// Text format of any config message, as written to <output_dir>/config.pbtxt.
std::string config_to_text(const google::protobuf::Message& message);

}  // namespace steerlm
