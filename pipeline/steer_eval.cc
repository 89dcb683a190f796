#include "pipeline/steer_eval.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>

#include "parallel/process_grid.h"
#include "pipeline/attribute_eval.h"
#include "pipeline/dataset.h"
#include "pipeline/readers.h"
#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// The conversation up to and including its last user turn; nullopt when it has none.
std::optional<Conversation> prompt_of(const Conversation& conversation) {
  size_t last_user = conversation.turns.size();
  for (size_t i = 0; i < conversation.turns.size(); ++i) {
    if (conversation.turns[i].role == Role::kUser) last_user = i;
  }
  if (last_user == conversation.turns.size()) return std::nullopt;
  Conversation prompt = conversation;
  prompt.turns.resize(last_user + 1);
  prompt.record = json();  // the prompt is a new conversation, not the input record
  return prompt;
}

// The conversations of a prompts file (generate's form) or of any conversation format.
std::vector<Conversation> read_prompt_source(const std::string& path,
                                             const config::DataConfig& data,
                                             BadRecordLog* bad_records) {
  if (data.format() != config::DataFormat::AUTO || !is_prompt_lines_file(path)) {
    return read_conversations(path, resolve_format(path, data.format()), bad_records);
  }
  std::vector<Conversation> conversations;
  for (PromptLine& line : read_prompt_lines(path)) {
    if (!line.attributes.empty()) {
      throw UserError(line.context.source.str() +
                      ": attributes: eval-steer and bootstrap choose the requested label "
                      "themselves (eval.*, generate.default_attributes); remove the field");
    }
    conversations.push_back(std::move(line.context));
  }
  return conversations;
}

// Identity of a prompt for de-duplication: its system prompt and every turn's text.
std::string prompt_key(const Conversation& prompt) {
  std::string key = prompt.system ? "S" + *prompt.system : "D";
  for (const Turn& turn : prompt.turns) key += '\0' + std::string(role_name(turn.role)) + turn.text;
  return key;
}

int64_t index_of(const std::vector<std::string>& names, const std::string& name) {
  auto found = std::find(names.begin(), names.end(), name);
  return found == names.end() ? -1 : found - names.begin();
}

fs::path part_path(const std::string& work_dir, int rank) {
  char name[32];
  std::snprintf(name, sizeof(name), "rank_%05d.jsonl", rank);
  return fs::path(work_dir) / "parts" / name;
}

// Samples [begin, end) of a rank's share as JSON lines, and back.
std::string part_lines(const std::vector<SteerSample>& samples, size_t begin, size_t end) {
  std::string lines;
  for (size_t i = begin; i < end; ++i) {
    const SteerSample& sample = samples[i];
    lines += json{{"index", i},
                  {"text", sample.response.text},
                  {"finish_reason", sample.response.finish_reason},
                  {"tokens", sample.response.tokens},
                  {"predicted", sample.predicted}}
                 .dump() +
             "\n";
  }
  return lines;
}

void read_part(const fs::path& path, std::vector<SteerSample>* samples) {
  std::istringstream lines(read_file(path));
  for (std::string line; std::getline(lines, line);) {
    const json part = json::parse(line);
    SteerSample& sample = (*samples)[part.at("index").get<size_t>()];
    sample.response.text = part.at("text").get<std::string>();
    sample.response.finish_reason = part.at("finish_reason").get<std::string>();
    sample.response.tokens = part.at("tokens").get<int64_t>();
    sample.predicted = part.at("predicted").get<std::vector<float>>();
  }
}

// Generates and scores samples [begin, end) on this rank.
void run_share(const std::vector<Conversation>& prompts, std::vector<SteerSample>* samples,
               size_t begin, size_t end, ChatGenerator& generator, AttributeScorer& scorer,
               const config::GenerateConfig& settings, int64_t batch_tokens) {
  // Step 1: generate; sample i samples from stream i whichever rank runs it.
  std::vector<GenerationRequest> requests;
  for (size_t i = begin; i < end; ++i) {
    const SteerSample& sample = (*samples)[i];
    requests.push_back({prompts[sample.prompt], sample.requested, static_cast<uint64_t>(i)});
  }
  std::vector<GeneratedText> texts = generate_texts(generator, requests, settings);

  // Step 2: score each response as the assistant turn after its prompt.
  std::vector<std::vector<int32_t>> inputs;
  for (size_t i = begin; i < end; ++i) {
    SteerSample& sample = (*samples)[i];
    sample.response = std::move(texts[i - begin]);
    const Conversation conversation = sample_conversation(prompts[sample.prompt], sample);
    inputs.push_back(scorer.turn_input(conversation, conversation.turns.size() - 1, false));
  }
  std::vector<std::vector<float>> values = scorer.score(inputs, batch_tokens);
  for (size_t i = begin; i < end; ++i) (*samples)[i].predicted = std::move(values[i - begin]);
}

}  // namespace

// ---- Prompts ----------------------------------------------------------------------------------

std::vector<Conversation> read_prompts(const std::vector<std::string>& paths,
                                       const config::DataConfig& data, int max_prompts,
                                       BadRecordLog* bad_records) {
  std::vector<Conversation> prompts;
  std::set<std::string> seen;
  for (const std::string& path : paths) {
    for (const Conversation& conversation : read_prompt_source(path, data, bad_records)) {
      std::optional<Conversation> prompt = prompt_of(conversation);
      if (!prompt) {
        bad_records->report(conversation.source, "no_user_turn",
                            "the conversation has no user turn to generate a response to");
        continue;
      }
      if (!seen.insert(prompt_key(*prompt)).second) continue;
      prompts.push_back(std::move(*prompt));
      if (max_prompts > 0 && static_cast<int>(prompts.size()) == max_prompts) return prompts;
    }
  }
  return prompts;
}

namespace {

// The prompts of data.train on one side of load_stage_data's split by prompt (the same
// data.validation_fraction and train.seed as sft), at most eval.max_prompts.
std::vector<Conversation> split_train_prompts(const config::StageConfig& config, bool held_out,
                                              BadRecordLog* bad_records) {
  const config::DataConfig& data = config.data();
  std::vector<Conversation> all =
      read_prompts({data.train().begin(), data.train().end()}, data, 0, bad_records);
  std::vector<uint64_t> hashes;
  for (const Conversation& prompt : all) hashes.push_back(conversation_prompt_hash(prompt));
  const std::set<uint64_t> validation =
      held_out_prompts(hashes, data.validation_fraction(), config.train().seed());
  const int max_prompts = config.eval().max_prompts();
  std::vector<Conversation> prompts;
  for (Conversation& prompt : all) {
    if (max_prompts > 0 && static_cast<int>(prompts.size()) == max_prompts) break;
    if ((validation.count(conversation_prompt_hash(prompt)) > 0) == held_out) {
      prompts.push_back(std::move(prompt));
    }
  }
  return prompts;
}

}  // namespace

std::vector<Conversation> held_out_prompts_for(const config::StageConfig& config,
                                               BadRecordLog* bad_records) {
  const config::DataConfig& data = config.data();
  if (data.validation_size() > 0) {
    return read_prompts({data.validation().begin(), data.validation().end()}, data,
                        config.eval().max_prompts(), bad_records);
  }
  if (data.train_size() == 0) {
    throw UserError("data.validation and data.train: no prompts; set one (or pass --input)");
  }
  std::vector<Conversation> prompts = split_train_prompts(config, true, bad_records);
  if (prompts.empty()) {
    throw UserError(
        "data.validation_fraction: no held-out prompts in data.train; set data.validation "
        "(or --input) or a validation_fraction > 0");
  }
  return prompts;
}

std::vector<Conversation> training_prompts_for(const config::StageConfig& config,
                                               BadRecordLog* bad_records) {
  const config::DataConfig& data = config.data();
  if (data.train_size() == 0) throw UserError("data.train: no prompts; set it or pass --input");
  if (data.validation_size() > 0) {
    return read_prompts({data.train().begin(), data.train().end()}, data,
                        config.eval().max_prompts(), bad_records);
  }
  std::vector<Conversation> prompts = split_train_prompts(config, false, bad_records);
  if (prompts.empty()) throw UserError("data.train: no prompts outside the validation split");
  return prompts;
}

// ---- Plans ------------------------------------------------------------------------------------

SteerPlan make_steer_plan(const config::StageConfig& config,
                          const std::vector<std::string>& generator_attributes,
                          const std::vector<std::string>& scorer_attributes) {
  SteerPlan plan;
  const config::EvalConfig& eval = config.eval();
  if (eval.steer_attributes_size() == 0) {
    throw UserError("eval.steer_attributes: not set; name the attributes to vary, e.g. " +
                    std::string("--set eval.steer_attributes=verbosity"));
  }
  for (const std::string& name : eval.steer_attributes()) {
    check_attribute_values({{name, 0.0f}}, generator_attributes, "eval.steer_attributes");
    check_attribute_values({{name, 0.0f}}, scorer_attributes,
                           "eval.steer_attributes (attribute model)");
    plan.attributes.push_back(name);
  }
  plan.levels.assign(eval.levels().begin(), eval.levels().end());
  if (plan.levels.empty()) plan.levels = {0, 1, 2, 3, 4};
  for (int level : plan.levels) {
    check_attribute_values({{plan.attributes.front(), static_cast<float>(level)}},
                           generator_attributes, "eval.levels");
  }
  plan.fixed = parse_attribute_values(config.generate().default_attributes(), generator_attributes,
                                      "generate.default_attributes");
  for (const std::string& name : generator_attributes) {
    if (!plan.fixed.count(name)) {
      throw UserError("generate.default_attributes: no value for '" + name +
                      "'; eval-steer holds every attribute it does not vary at these values, "
                      "so give each of the model's attributes one");
    }
  }
  plan.samples_per_level = eval.samples_per_prompt();
  if (plan.samples_per_level < 1) throw UserError("eval.samples_per_prompt: must be at least 1");
  return plan;
}

std::vector<SteerSample> plan_steer_samples(size_t prompts, const SteerPlan& plan) {
  std::vector<SteerSample> samples;
  for (size_t prompt = 0; prompt < prompts; ++prompt) {
    for (const std::string& name : plan.attributes) {
      for (int level : plan.levels) {
        for (int sample = 0; sample < plan.samples_per_level; ++sample) {
          SteerSample planned{prompt, name, sample, plan.fixed, {}, {}};
          planned.requested[name] = static_cast<float>(level);
          samples.push_back(std::move(planned));
        }
      }
    }
  }
  return samples;
}

std::map<std::string, float> bootstrap_target(const std::vector<std::string>& attributes,
                                              const std::string& overrides) {
  std::map<std::string, float> target;
  for (const std::string& name : attributes) {
    target[name] = name == "toxicity" ? kMinAttributeValue : kMaxAttributeValue;
  }
  for (const auto& [name, value] :
       parse_attribute_values(overrides, attributes, "generate.default_attributes")) {
    target[name] = value;
  }
  return target;
}

std::vector<SteerSample> plan_bootstrap_samples(size_t prompts,
                                                const std::map<std::string, float>& target,
                                                int samples_per_prompt) {
  if (samples_per_prompt < 1) throw UserError("eval.samples_per_prompt: must be at least 1");
  std::vector<SteerSample> samples;
  for (size_t prompt = 0; prompt < prompts; ++prompt) {
    for (int sample = 0; sample < samples_per_prompt; ++sample) {
      samples.push_back(SteerSample{prompt, "", sample, target, {}, {}});
    }
  }
  return samples;
}

// ---- The distributed run ----------------------------------------------------------------------

void run_steer_samples(const std::vector<Conversation>& prompts, std::vector<SteerSample>* samples,
                       ChatGenerator& generator, AttributeScorer& scorer,
                       const config::GenerateConfig& settings, int64_t batch_tokens,
                       ProcessGrid& grid, const std::string& work_dir) {
  require_one_rank_replicas(grid, "generation for eval-steer/bootstrap");

  // Step 1: this rank's contiguous share.
  const size_t n = samples->size();
  const size_t ranks = static_cast<size_t>(grid.dp_size());
  const size_t rank = static_cast<size_t>(grid.dp_rank());
  const size_t begin = n * rank / ranks, end = n * (rank + 1) / ranks;
  LOG(INFO) << "steer: rank " << rank << " generates samples [" << begin << ", " << end << ") of "
            << n;
  run_share(prompts, samples, begin, end, generator, scorer, settings, batch_tokens);
  if (ranks == 1) return;

  // Step 2: the other ranks publish their shares; rank 0 reads them once all have.
  if (rank != 0) {
    write_file_atomic(part_path(work_dir, static_cast<int>(rank)),
                      part_lines(*samples, begin, end));
  }
  grid.world().barrier();
  if (rank != 0) return;
  for (size_t other = 1; other < ranks; ++other) {
    read_part(part_path(work_dir, static_cast<int>(other)), samples);
  }
}

// ---- Outputs ----------------------------------------------------------------------------------

Conversation sample_conversation(const Conversation& prompt, const SteerSample& sample) {
  Conversation conversation = prompt;
  conversation.turns.push_back(Turn{Role::kAssistant, sample.response.text, {}, {}});
  return conversation;
}

json steer_report(const std::vector<SteerSample>& samples,
                  const std::vector<std::string>& scorer_attributes, const SteerPlan& plan) {
  json attributes = json::object();
  for (const std::string& name : plan.attributes) {
    const int64_t column = index_of(scorer_attributes, name);
    CHECK_GE(column, 0) << name << " is not scored by the attribute model";

    // Per level: mean prediction and length; all responses feed the correlation.
    std::vector<double> requested, predicted;
    json levels = json::array();
    for (int level : plan.levels) {
      double sum_predicted = 0, sum_length = 0, count = 0;
      for (const SteerSample& sample : samples) {
        if (sample.steered != name || sample.requested.at(name) != static_cast<float>(level))
          continue;
        requested.push_back(level);
        predicted.push_back(sample.predicted.at(column));
        sum_predicted += predicted.back();
        sum_length += static_cast<double>(sample.response.text.size());
        count += 1;
      }
      CHECK_GT(count, 0) << "no samples for " << name << " at level " << level;
      levels.push_back({{"requested", level},
                        {"mean_predicted", sum_predicted / count},
                        {"mean_length", sum_length / count}});
    }
    const double pearson = attribute_metrics(predicted, requested).pearson;
    attributes[name] = {{"pearson", std::isnan(pearson) ? json(nullptr) : json(pearson)},
                        {"levels", std::move(levels)}};
  }
  return {{"attributes", std::move(attributes)}};
}

std::string steer_table(const json& report) {
  std::string table;
  char line[160];
  std::snprintf(line, sizeof(line), "%-14s %8s %10s %15s %12s\n", "attribute", "pearson",
                "requested", "mean_predicted", "mean_length");
  table += line;
  for (const auto& [name, entry] : report["attributes"].items()) {
    bool first = true;
    for (const json& level : entry["levels"]) {
      std::snprintf(line, sizeof(line), "%-14s %8s %10d %15s %12.1f\n", first ? name.c_str() : "",
                    first ? format_metric(entry["pearson"]).c_str() : "",
                    level["requested"].get<int>(), format_metric(level["mean_predicted"]).c_str(),
                    level["mean_length"].get<double>());
      table += line;
      first = false;
    }
  }
  return table;
}

std::string generations_jsonl(const std::vector<Conversation>& prompts,
                              const std::vector<SteerSample>& samples,
                              const std::vector<std::string>& scorer_attributes) {
  std::string lines;
  for (const SteerSample& sample : samples) {
    const Conversation& prompt = prompts[sample.prompt];
    json predicted = json::object();
    for (size_t a = 0; a < scorer_attributes.size(); ++a) {
      predicted[scorer_attributes[a]] = json_float(sample.predicted.at(a));
    }
    json line = {{"prompt", prompt.turns.back().text},
                 {"source", prompt.source.str()},
                 {"steered", sample.steered},
                 {"sample", sample.sample},
                 {"requested", sample.requested},
                 {"response", sample.response.text},
                 {"finish_reason", sample.response.finish_reason},
                 {"tokens", sample.response.tokens},
                 {"predicted", std::move(predicted)}};
    if (prompt.system) line["system"] = *prompt.system;
    lines += line.dump() + "\n";
  }
  return lines;
}

std::string bootstrap_jsonl(const std::vector<Conversation>& prompts,
                            const std::vector<SteerSample>& samples, AttributeScorer& scorer,
                            int64_t batch_tokens, BadRecordLog* left_out, int64_t* records) {
  // Step 1: score the earlier assistant turns of multi-turn prompts, once per prompt.
  std::vector<std::vector<int32_t>> inputs;
  std::vector<std::pair<size_t, size_t>> owners;  // (prompt, turn) of each input
  for (size_t p = 0; p < prompts.size(); ++p) {
    for (size_t t = 0; t < prompts[p].turns.size(); ++t) {
      if (prompts[p].turns[t].role != Role::kAssistant) continue;
      inputs.push_back(scorer.turn_input(prompts[p], t, false));
      owners.emplace_back(p, t);
    }
  }
  const std::vector<std::vector<float>> scored = scorer.score(inputs, batch_tokens);
  std::vector<std::vector<std::vector<float>>> context_values(prompts.size());
  for (size_t i = 0; i < owners.size(); ++i) context_values[owners[i].first].push_back(scored[i]);

  // Step 2: one annotated SteerLM record per sample, its origin kept beside the fields.
  const TemplateOptions template_options =
      make_template_options(scorer.manifest().chat_template(), scorer.attributes());
  std::string lines;
  *records = 0;
  for (const SteerSample& sample : samples) {
    if (sample.response.text.empty()) {
      left_out->note(prompts[sample.prompt].source, bad_reason::kEmptyResponse,
                     "sample " + std::to_string(sample.sample) +
                         ": empty response (the model ended its turn at once); left out");
      continue;
    }
    ++*records;
    Conversation conversation = sample_conversation(prompts[sample.prompt], sample);
    conversation.record = {{"bootstrap",
                            {{"source", conversation.source.str()},
                             {"sample", sample.sample},
                             {"requested", sample.requested}}}};
    std::vector<std::vector<float>> turn_values = context_values[sample.prompt];
    turn_values.push_back(sample.predicted);
    lines +=
        annotated_record(conversation, turn_values, scorer.attributes(), template_options).dump() +
        "\n";
  }
  return lines;
}

}  // namespace steerlm
