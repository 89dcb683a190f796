// `steerlm generate --model DIR (--prompt TEXT | --input JSONL --output JSONL) [--attributes
//  name=v,...] [--temperature T] [--top-k K] [--top-p P] [--max-new-tokens N] [--seed S]`
//
// Output rules (DESIGN §4): only the generated text goes to stdout, logs go to stderr. The chat
// template applies only when the checkpoint's manifest records an attribute set; a plain language
// model (e.g. imported llama2.c) continues the prompt as it is, from BOS.
#include <glog/logging.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "launch/cli.h"
#include "launch/commands.h"
#include "model/checkpoint.h"
#include "model/generation.h"
#include "model/pipeline_schedule.h"
#include "model/sharded_checkpoint.h"
#include "parallel/mpi_session.h"
#include "parallel/process_grid.h"
#include "pipeline/chat_template.h"
#include "pipeline/tokenizer.h"
#include "pipeline/tokenizer_sentencepiece.h"
#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

using json = nlohmann::json;

struct GenerateFlags {
  std::string model;
  std::string prompt;
  bool has_prompt = false;
  std::string input;
  std::string output;
  std::string attributes;
};

// One request: the user's text, an optional system prompt, the requested attribute values.
struct Request {
  std::string prompt;
  std::optional<std::string> system;
  std::map<std::string, float> attributes;
  json record;  // the input line, kept in the output
};

// A loaded checkpoint ready to decode.
struct Generator {
  config::CheckpointManifest manifest;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<PipelineSchedule> stages;  // passes decode states between PP stages
  bool chat = false;  // the manifest records an attribute set: apply the chat template
};

// "helpfulness=4,verbosity=2" -> values; names must belong to the model's attribute set.
std::map<std::string, float> parse_attributes(const std::string& text,
                                              const std::vector<std::string>& known) {
  std::map<std::string, float> values;
  std::stringstream items(text);
  for (std::string item; std::getline(items, item, ',');) {
    size_t equals = item.find('=');
    if (equals == std::string::npos)
      throw UserError("--attributes: '" + item + "' is not name=value");
    std::string name = item.substr(0, equals);
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string list;
      for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
      throw UserError("--attributes: '" + name + "' is not in the model's attribute set (" + list +
                      ")");
    }
    try {
      values[name] = std::stof(item.substr(equals + 1));
    } catch (const std::exception&) {
      throw UserError("--attributes: '" + item + "' has no numeric value");
    }
  }
  return values;
}

// Loads `directory` (any saved TP/PP layout) as this rank's TP slice and PP stage of `grid`.
Generator load_generator(const std::string& directory, ProcessGrid& grid) {
  Generator generator;
  generator.manifest = read_checkpoint_manifest(directory);
  if (generator.manifest.head() == kHeadAttribute) {
    throw UserError("checkpoint " + directory +
                    " is an attribute model; generate needs a language model");
  }
  generator.chat = generator.manifest.attributes_size() > 0;
  generator.tokenizer =
      Tokenizer::load(checkpoint_tokenizer_path(directory, generator.manifest).string());
  if (generator.manifest.chat_template().markers_as_special_tokens())
    generator.tokenizer = with_special_markers(std::move(generator.tokenizer));
  ModelOptions options;
  options.shard = pipeline_model_shard(grid, generator.manifest.model());
  options.tp_group = &grid.tp();
  generator.model = std::make_unique<LlamaModel>(generator.manifest.model(),
                                                 HeadKind::kLanguageModel, 0, /*seed=*/0, options);
  load_sharded_weights(directory, generator.manifest, generator.model->parameters(),
                       generator.model->shard());
  generator.stages = std::make_unique<PipelineSchedule>(*generator.model, &grid);
  return generator;
}

// The token ids a request is decoded from: BOS + the prompt as is, or + the chat template.
std::vector<int32_t> prompt_ids(const Generator& generator, const Request& request) {
  std::vector<int32_t> ids = {generator.tokenizer->bos_id()};
  std::string text = request.prompt;
  if (generator.chat) {
    std::vector<std::string> attributes(generator.manifest.attributes().begin(),
                                        generator.manifest.attributes().end());
    TemplateOptions options = make_template_options(generator.manifest.chat_template(), attributes);
    Conversation conversation;
    conversation.system = request.system;
    conversation.turns.push_back(Turn{Role::kUser, request.prompt, {}, {}});
    text = render_generation_prompt(conversation, request.attributes, options);
  }
  std::vector<int32_t> encoded = generator.tokenizer->encode(text);
  ids.insert(ids.end(), encoded.begin(), encoded.end());
  return ids;
}

// The text the new tokens add to the prompt's text (so a continuation keeps its spacing).
std::string generated_text(const Tokenizer& tokenizer, const std::vector<int32_t>& prompt,
                           const std::vector<int32_t>& generated) {
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), generated.begin(), generated.end());
  std::string full = tokenizer.decode(all);
  std::string base = tokenizer.decode(prompt);
  if (full.compare(0, base.size(), base) == 0) return full.substr(base.size());
  return tokenizer.decode(generated);
}

GenerationOptions generation_options(const Generator& generator,
                                     const config::GenerateConfig& config) {
  GenerationOptions options;
  options.sampling.temperature = config.temperature();
  options.sampling.top_k = config.top_k();
  options.sampling.top_p = config.top_p();
  options.max_new_tokens = config.max_new_tokens();
  options.seed = config.seed();
  // A generated BOS starts a new document (llama2.c's runner stops there too).
  options.stop_token_ids = {generator.tokenizer->eos_id(), generator.tokenizer->bos_id()};
  PipelineSchedule* stages = generator.stages.get();
  options.decode_step = [stages](KvCache& cache, const Tensor& tokens, const std::vector<int>& n) {
    return stages->decode_step(cache, tokens, n);
  };
  if (generator.chat) {
    options.stop_strings = {kTurnMarker};
    const Tokenizer* tokenizer = generator.tokenizer.get();
    options.detokenize = [tokenizer](const std::vector<int32_t>& ids) {
      return tokenizer->decode(ids);
    };
  }
  return options;
}

// Decodes `requests` in batches; returns (text, finish reason) per request, in order.
std::vector<std::pair<std::string, std::string>> run_requests(
    Generator& generator, const std::vector<Request>& requests,
    const config::GenerateConfig& config) {
  GenerationOptions options = generation_options(generator, config);
  const size_t batch_size = std::max(1, config.batch_size());
  std::vector<std::pair<std::string, std::string>> results;
  for (size_t first = 0; first < requests.size(); first += batch_size) {
    std::vector<std::vector<int32_t>> prompts;
    for (size_t i = first; i < std::min(requests.size(), first + batch_size); ++i)
      prompts.push_back(prompt_ids(generator, requests[i]));
    options.first_sequence_index = first;
    std::vector<Generation> generations = generate(*generator.model, prompts, options);
    for (size_t i = 0; i < generations.size(); ++i) {
      std::string text = generated_text(*generator.tokenizer, prompts[i], generations[i].tokens);
      cut_at_stop_string(text, options.stop_strings);
      results.push_back({text, finish_reason_name(generations[i].finish)});
    }
    LOG(INFO) << "generated " << results.size() << "/" << requests.size();
  }
  return results;
}

std::vector<Request> read_requests(const std::string& path, const Generator& generator,
                                   const std::map<std::string, float>& default_attributes) {
  std::ifstream in(path);
  if (!in) throw UserError("cannot read " + path);
  std::vector<std::string> known(generator.manifest.attributes().begin(),
                                 generator.manifest.attributes().end());
  std::vector<Request> requests;
  int64_t line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_number);
    Request request;
    request.attributes = default_attributes;
    try {
      request.record = json::parse(line);
      request.prompt = request.record.at("prompt").get<std::string>();
      if (request.record.contains("system"))
        request.system = request.record["system"].get<std::string>();
      if (request.record.contains("attributes")) {
        for (const auto& [name, value] : request.record["attributes"].items())
          request.attributes[name] = value.get<float>();
      }
    } catch (const json::exception& error) {
      throw UserError(where +
                      ": expected {\"prompt\": TEXT, \"system\"?: TEXT, "
                      "\"attributes\"?: {name: value}}: " +
                      error.what());
    }
    for (const auto& [name, value] : request.attributes) {
      if (std::find(known.begin(), known.end(), name) == known.end())
        throw UserError(where + ": attribute '" + name + "' is not in the model's attribute set");
    }
    requests.push_back(std::move(request));
  }
  return requests;
}

void run_generate(const GenerateFlags& flags, const StageOptions& stage,
                  const std::vector<std::string>& overrides) {
  // Step 1: flags and config.
  if (flags.has_prompt == !flags.input.empty())
    throw UsageError("generate needs exactly one of --prompt TEXT and --input JSONL");
  if (!flags.input.empty() && flags.output.empty())
    throw UsageError("generate --input needs --output JSONL");
  std::vector<std::string> all_overrides = overrides;
  all_overrides.push_back("model.init_from=" + flags.model);
  MpiSession& mpi = process_mpi_session();
  FieldLocations locations;
  config::StageConfig config =
      load_validated_config(stage, all_overrides, mpi.world_size(), &locations);
  const config::GenerateConfig& settings = config.generate();
  if (settings.temperature() < 0 || settings.top_k() < 0 || settings.top_p() <= 0 ||
      settings.top_p() > 1 || settings.max_new_tokens() < 0) {
    throw UserError(
        "generate: need temperature >= 0, top_k >= 0, 0 < top_p <= 1, "
        "max_new_tokens >= 0");
  }

  // Step 2: the layout, the model, its tokenizer, and the attribute values asked for. Every
  // rank decodes every request (the TP ranks of a stage on identical all-gathered logits, the PP
  // stages on the last stage's broadcast logits, so all sample the same tokens); world rank 0
  // alone writes the output.
  std::unique_ptr<ProcessGrid> grid = ProcessGrid::create(mpi, config, locations);
  LOG_IF(WARNING, grid->dp_size() > 1 && mpi.world_rank() == 0)
      << "generate: " << grid->dp_size() << " data-parallel replicas all decode every request; "
      << "run with parallel.tp x parallel.pp ranks only";
  const bool writes_output = mpi.world_rank() == 0;
  Generator generator = load_generator(flags.model, *grid);
  std::vector<std::string> known(generator.manifest.attributes().begin(),
                                 generator.manifest.attributes().end());
  std::string attribute_text =
      flags.attributes.empty() ? settings.default_attributes() : flags.attributes;
  if (!generator.chat && !attribute_text.empty()) {
    throw UserError("--attributes: checkpoint " + flags.model +
                    " records no attribute set (a plain language model)");
  }
  std::map<std::string, float> attributes = parse_attributes(attribute_text, known);

  // Step 3: one prompt to stdout, or a JSONL file to a JSONL file.
  if (flags.has_prompt) {
    Request request{flags.prompt, std::nullopt, attributes, {}};
    auto results = run_requests(generator, {request}, settings);
    if (writes_output) std::cout << results[0].first << std::endl;
    return;
  }
  std::vector<Request> requests = read_requests(flags.input, generator, attributes);
  auto results = run_requests(generator, requests, settings);
  if (!writes_output) return;
  std::string lines;
  for (size_t i = 0; i < requests.size(); ++i) {
    json record = requests[i].record;
    record["generation"] = results[i].first;
    record["finish_reason"] = results[i].second;
    lines += record.dump() + "\n";
  }
  write_file_atomic(flags.output, lines);
  LOG(INFO) << "wrote " << requests.size() << " generations to " << flags.output;
}

}  // namespace

void register_generate_command(CLI::App& app) {
  auto flags = std::make_shared<GenerateFlags>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  CLI::App* generate = app.add_subcommand("generate", "generate text steered by attribute values");
  auto stage = add_stage_options(generate);
  generate->add_option("--model", flags->model, "checkpoint directory")->required();
  generate->add_option("--prompt", flags->prompt, "a single prompt; \"\" decodes from BOS alone");
  generate->add_option("--input", flags->input,
                       "JSONL of {\"prompt\", \"system\"?, \"attributes\"?: {name: value}}");
  generate->add_option("--output", flags->output, "JSONL to write generations to");
  generate->add_option("--attributes", flags->attributes, "requested attribute values, name=v,...");
  // Sampling flags become generate.* overrides, so they win over --config and --set.
  auto add_setting = [&](const char* flag, const char* field, const char* help) {
    generate->add_option_function<std::string>(
        flag,
        [overrides, field](const std::string& value) {
          overrides->push_back(std::string("generate.") + field + "=" + value);
        },
        help);
  };
  add_setting("--temperature", "temperature", "sampling temperature; 0 is greedy");
  add_setting("--top-k", "top_k", "sample from the k most likely tokens");
  add_setting("--top-p", "top_p", "nucleus sampling threshold");
  add_setting("--max-new-tokens", "max_new_tokens", "tokens to generate at most");
  add_setting("--seed", "seed", "sampling seed");
  generate->callback([flags, stage, overrides, generate] {
    flags->has_prompt = generate->count("--prompt") > 0;
    run_generate(*flags, *stage, *overrides);
  });
}

}  // namespace steerlm
