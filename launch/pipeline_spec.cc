#include "launch/pipeline_spec.h"

#include <algorithm>
#include <functional>
#include <map>
#include <regex>
#include <set>

#include "runtime/error.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;
namespace pb = google::protobuf;

// Every command a job may run. Stage commands read a StageConfig; the rest take flags only.
const std::vector<JobCommand>& job_commands() {
  static const std::vector<JobCommand> commands = {
      {"train-attr", {"train-attr"}, true, false},
      {"annotate", {"annotate"}, true, false},
      {"sft", {"sft"}, true, false},
      {"eval-attr", {"eval-attr"}, true, false},
      {"eval-steer", {"eval-steer"}, true, false},
      {"bootstrap", {"bootstrap"}, true, false},
      {"generate", {"generate"}, false, true},
      {"data-synth", {"data", "synth"}, false, true},
      {"tokenizer-train", {"tokenizer", "train"}, false, true},
  };
  return commands;
}

std::string command_names() {
  std::string names;
  for (const JobCommand& command : job_commands()) {
    names += (names.empty() ? "" : ", ") + std::string(command.name);
  }
  return names;
}

// "FILE:LINE: " of a job's field, else of the job's name, else the file.
std::string job_location(const PipelineSpec& spec, int index, const std::string& field) {
  const std::string job = "job." + std::to_string(index);
  for (const std::string& path : {job + "." + field, job + ".name", job + ".command"}) {
    const std::string where = spec.where.find(path);
    if (!where.empty()) return where + ": ";
  }
  return spec.file + ": ";
}

[[noreturn]] void fail_job(const PipelineSpec& spec, int index, const std::string& field,
                           const std::string& message) {
  throw UserError(job_location(spec, index, field) + "job '" + spec.job(index).name() +
                  "': " + field + ": " + message);
}

// The index of the job called `name`, or -1.
int find_job(const PipelineSpec& spec, const std::string& name) {
  for (int i = 0; i < spec.size(); ++i) {
    if (spec.job(i).name() == name) return i;
  }
  return -1;
}

// Jobs `index` depends on, directly or not.
std::set<int> ancestors(const PipelineSpec& spec, int index) {
  std::set<int> seen;
  std::vector<int> stack = spec.parents[index];
  while (!stack.empty()) {
    const int job = stack.back();
    stack.pop_back();
    if (!seen.insert(job).second) continue;
    stack.insert(stack.end(), spec.parents[job].begin(), spec.parents[job].end());
  }
  return seen;
}

// Replaces ${job} by that job's directory and ${output_dir} by the pipeline's. `field` names the
// text in errors.
std::string expand(const PipelineSpec& spec, int index, const std::string& field,
                   const std::string& text) {
  static const std::regex reference(R"(\$\{([A-Za-z0-9_]*)\})");
  const std::set<int> reachable = ancestors(spec, index);
  std::string result;
  auto begin = std::sregex_iterator(text.begin(), text.end(), reference);
  size_t copied = 0;
  for (auto match = begin; match != std::sregex_iterator(); ++match) {
    const std::string name = (*match)[1].str();
    result += text.substr(copied, match->position() - copied);
    copied = match->position() + match->length();
    if (name == "output_dir") {
      result += spec.config.output_dir();
      continue;
    }
    const int target = find_job(spec, name);
    if (target < 0) fail_job(spec, index, field, "${" + name + "} names no job");
    if (target != index && !reachable.count(target)) {
      fail_job(spec, index, field,
               "${" + name + "} is not a job it depends on; add \"" + name + "\" to depends_on");
    }
    result += spec.job_dir(target).string();
  }
  return result + text.substr(copied);
}

// Clears, in `target`, every repeated field that `source` sets, at any depth, so that a
// following MergeFrom replaces lists instead of appending to them.
void clear_lists_set_in(const pb::Message& source, pb::Message* target) {
  const pb::Reflection* reflection = source.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  reflection->ListFields(source, &fields);
  for (const pb::FieldDescriptor* field : fields) {
    if (field->is_repeated()) {
      target->GetReflection()->ClearField(target, field);
    } else if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      clear_lists_set_in(reflection->GetMessage(source, field),
                         target->GetReflection()->MutableMessage(target, field));
    }
  }
}

// Checks the fields of one job that need no other job.
void validate_job_fields(const PipelineSpec& spec, int index, int allocation_ranks) {
  const config::PipelineJob& job = spec.job(index);
  const JobCommand* command = find_job_command(job.command());
  if (command == nullptr) {
    fail_job(spec, index, "command",
             "unknown command '" + job.command() + "' (one of " + command_names() + ")");
  }
  if (job.ranks() < 1) fail_job(spec, index, "ranks", "must be at least 1");
  if (allocation_ranks > 0 && job.ranks() > allocation_ranks) {
    fail_job(spec, index, "ranks",
             std::to_string(job.ranks()) + " ranks, but the allocation has " +
                 std::to_string(allocation_ranks) + "; lower it or launch more ranks");
  }
  if (command->single_process && job.ranks() != 1) {
    fail_job(spec, index, "ranks", "'" + job.command() + "' runs on one process; set ranks: 1");
  }
  if (!command->takes_config && !spec.job_overrides[index].empty()) {
    throw UserError("--set " + job.name() + "." + spec.job_overrides[index][0] + ": job '" +
                    job.name() + "' runs '" + job.command() + "', which takes no stage config");
  }
  if (!command->takes_config && (job.has_config() || !job.config_file().empty())) {
    fail_job(spec, index, job.has_config() ? "config" : "config_file",
             "'" + job.command() + "' takes no stage config; pass its flags in args");
  }
  if (job.nodes() < 1) fail_job(spec, index, "nodes", "must be at least 1");
}

// Names: present, well formed and unique.
void validate_names(const PipelineSpec& spec) {
  static const std::regex valid_name("[A-Za-z0-9_]+");
  std::map<std::string, int> first;
  for (int i = 0; i < spec.size(); ++i) {
    const std::string& name = spec.job(i).name();
    if (!std::regex_match(name, valid_name)) {
      throw UserError(job_location(spec, i, "name") + "job " + std::to_string(i + 1) + ": name: '" +
                      name + "' must be letters, digits and '_'");
    }
    auto [it, inserted] = first.emplace(name, i);
    if (!inserted) {
      fail_job(spec, i, "name",
               "duplicate job name (first defined at " + job_location(spec, it->second, "name") +
                   "job " + std::to_string(it->second + 1) + ")");
    }
  }
}

// parents from depends_on, then a dependency order; a cycle is an error that spells it out.
void resolve_dependencies(PipelineSpec* spec) {
  spec->parents.assign(spec->size(), {});
  for (int i = 0; i < spec->size(); ++i) {
    for (const std::string& name : spec->job(i).depends_on()) {
      const int parent = find_job(*spec, name);
      if (parent < 0) fail_job(*spec, i, "depends_on", "unknown job '" + name + "'");
      spec->parents[i].push_back(parent);
    }
  }
  // Depth-first search; a job met again while still on the path closes a cycle.
  enum Mark { kNew, kOnPath, kDone };
  std::vector<Mark> marks(spec->size(), kNew);
  std::vector<int> path;
  std::function<void(int)> visit = [&](int job) {
    if (marks[job] == kDone) return;
    if (marks[job] == kOnPath) {
      std::string cycle;
      auto start = std::find(path.begin(), path.end(), job);
      for (auto it = start; it != path.end(); ++it) cycle += spec->job(*it).name() + " -> ";
      fail_job(*spec, job, "depends_on", "dependency cycle " + cycle + spec->job(job).name());
    }
    marks[job] = kOnPath;
    path.push_back(job);
    for (int parent : spec->parents[job]) visit(parent);
    path.pop_back();
    marks[job] = kDone;
    spec->order.push_back(job);
  };
  for (int i = 0; i < spec->size(); ++i) visit(i);
}

// References and the layout: each job's config and command line resolve, and its parallel
// layout divides its ranks.
void validate_job_inputs(const PipelineSpec& spec, int index) {
  const config::PipelineJob& job = spec.job(index);
  job_command_line(spec, index, "");
  if (!find_job_command(job.command())->takes_config) return;
  const config::StageConfig config = job_stage_config(spec, index);
  const int tp = std::max(1, config.parallel().tp()), pp = std::max(1, config.parallel().pp());
  if (job.ranks() % (tp * pp) != 0) {
    fail_job(spec, index, "ranks",
             std::to_string(job.ranks()) + " ranks do not divide into parallel.tp " +
                 std::to_string(tp) + " x parallel.pp " + std::to_string(pp));
  }
}

}  // namespace

const JobCommand* find_job_command(const std::string& name) {
  for (const JobCommand& command : job_commands()) {
    if (name == command.name) return &command;
  }
  return nullptr;
}

fs::path PipelineSpec::job_dir(int index) const {
  return fs::path(config.output_dir()) / job(index).name();
}

fs::path PipelineSpec::state_file() const {
  return fs::path(config.output_dir()) / "pipeline_state.json";
}

PipelineSpec load_pipeline(const std::string& file, const std::vector<std::string>& overrides,
                           int allocation_ranks) {
  // Parse, then the --set overrides.
  PipelineSpec spec;
  spec.file = file;
  if (file.empty()) throw UsageError("pipeline: no FILE given");
  parse_config_file(file, &spec.config, &spec.where);
  spec.job_overrides.assign(spec.size(), {});
  for (const std::string& assignment : overrides) {
    const std::string first = assignment.substr(0, assignment.find_first_of(".="));
    const int job =
        spec.config.GetDescriptor()->FindFieldByName(first) ? -1 : find_job(spec, first);
    if (job < 0) {
      apply_override(assignment, &spec.config, &spec.where);
    } else {
      spec.job_overrides[job].push_back(assignment.substr(first.size() + 1));
    }
  }

  // The spec as a whole, then each job, then the graph and what flows along it.
  if (spec.config.output_dir().empty()) {
    throw UserError(file + ": output_dir: not set; pass --set output_dir=DIR");
  }
  if (spec.size() == 0) throw UserError(file + ": job: the pipeline has no jobs");
  validate_names(spec);
  for (int i = 0; i < spec.size(); ++i) validate_job_fields(spec, i, allocation_ranks);
  resolve_dependencies(&spec);
  for (int i = 0; i < spec.size(); ++i) validate_job_inputs(spec, i);
  return spec;
}

config::StageConfig job_stage_config(const PipelineSpec& spec, int index) {
  // config_file, then the inline fields on top.
  const config::PipelineJob& job = spec.job(index);
  config::StageConfig config;
  FieldLocations file_locations;
  if (!job.config_file().empty()) {
    parse_config_file(job.config_file(), &config, &file_locations);
  }
  clear_lists_set_in(job.config(), &config);
  config.MergeFrom(job.config());
  for (const std::string& assignment : spec.job_overrides[index]) {
    apply_override(assignment, &config, &file_locations);
  }
  config.set_output_dir(spec.job_dir(index).string());

  // ${...} in any string field, through the text form.
  const std::string text = expand(spec, index, "config", config_to_text(config));
  config::StageConfig expanded;
  parse_config_text(text, spec.file + " (job " + job.name() + ")", &expanded, &file_locations);
  return expanded;
}

std::vector<std::string> job_command_line(const PipelineSpec& spec, int index,
                                          const std::string& config_path) {
  const config::PipelineJob& job = spec.job(index);
  const JobCommand& command = *find_job_command(job.command());
  std::vector<std::string> line(command.words.begin(), command.words.end());
  if (command.takes_config) {
    line.push_back("--config");
    line.push_back(config_path);
  }
  for (const std::string& arg : job.args()) line.push_back(expand(spec, index, "args", arg));
  return line;
}

}  // namespace steerlm
