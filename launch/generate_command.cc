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
#include "parallel/mpi_session.h"
#include "parallel/process_grid.h"
#include "pipeline/chat_generation.h"
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

// The requests of a prompts file; `records` keeps each line for the output.
std::vector<GenerationRequest> read_requests(const std::string& path,
                                             const ChatGenerator& generator,
                                             const std::map<std::string, float>& defaults,
                                             std::vector<json>* records) {
  std::vector<GenerationRequest> requests;
  for (PromptLine& line : read_prompt_lines(path)) {
    GenerationRequest request{std::move(line.context), defaults, requests.size()};
    for (const auto& [name, value] : line.attributes) request.attributes[name] = value;
    check_attribute_values(request.attributes, generator.attributes,
                           request.context.source.str() + ": attributes");
    records->push_back(std::move(line.record));
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
  check_generate_config(settings);

  // Step 2: the layout, the model, its tokenizer, and the attribute values asked for. Every
  // rank decodes every request (a TP x PP model decodes together); world rank 0 alone writes.
  std::unique_ptr<ProcessGrid> grid = ProcessGrid::create(mpi, config, locations);
  LOG_IF(WARNING, grid->dp_size() > 1 && mpi.world_rank() == 0)
      << "generate: " << grid->dp_size() << " data-parallel replicas all decode every request; "
      << "run with parallel.tp x parallel.pp ranks only";
  const bool writes_output = mpi.world_rank() == 0;
  ChatGenerator generator = load_chat_generator(flags.model, grid.get());
  std::string attribute_text =
      flags.attributes.empty() ? settings.default_attributes() : flags.attributes;
  if (!generator.chat && !attribute_text.empty()) {
    throw UserError("--attributes: checkpoint " + flags.model +
                    " records no attribute set (a plain language model)");
  }
  const std::map<std::string, float> attributes =
      parse_attribute_values(attribute_text, generator.attributes, "--attributes");

  // Step 3: one prompt to stdout, or a JSONL file to a JSONL file.
  if (flags.has_prompt) {
    GenerationRequest request{user_prompt_context(flags.prompt), attributes, 0};
    const std::string text = generate_texts(generator, {request}, settings)[0].text;
    if (writes_output) std::cout << text << std::endl;
    return;
  }
  std::vector<json> records;
  std::vector<GenerationRequest> requests =
      read_requests(flags.input, generator, attributes, &records);
  const std::vector<GeneratedText> results = generate_texts(generator, requests, settings);
  if (!writes_output) return;
  std::string lines;
  for (size_t i = 0; i < requests.size(); ++i) {
    records[i]["generation"] = results[i].text;
    records[i]["finish_reason"] = results[i].finish_reason;
    lines += records[i].dump() + "\n";
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
                       "JSONL of {\"prompt\" (or \"conversations\": [{\"from\", \"value\"}, ...] "
                       "ending on User), \"system\"?, \"attributes\"?: {name: value}}");
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
