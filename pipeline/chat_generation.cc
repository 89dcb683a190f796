#include "pipeline/chat_generation.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "model/checkpoint.h"
#include "model/generation.h"
#include "model/sharded_checkpoint.h"
#include "parallel/process_grid.h"
#include "pipeline/chat_template.h"
#include "pipeline/synth.h"
#include "pipeline/tokenizer_sentencepiece.h"
#include "runtime/error.h"

namespace steerlm {
namespace {

std::string joined(const std::vector<std::string>& names) {
  if (names.empty()) return "none: a plain language model";
  std::string list;
  for (const std::string& name : names) list += (list.empty() ? "" : ", ") + name;
  return list;
}

// The token ids a request is decoded from: BOS + the prompt as is, or + the chat template.
std::vector<int32_t> prompt_ids(const ChatGenerator& generator, const GenerationRequest& request) {
  std::vector<int32_t> ids = {generator.tokenizer->bos_id()};
  std::string text;
  if (generator.chat) {
    TemplateOptions options =
        make_template_options(generator.manifest.chat_template(), generator.attributes);
    text = render_generation_prompt(request.context, request.attributes, options);
  } else {
    CHECK(!request.context.turns.empty()) << "a plain language model needs a prompt turn";
    text = request.context.turns.front().text;
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

// `text` with every invalid UTF-8 sequence replaced by U+FFFD. Byte-fallback pieces can stop
// halfway through a character, and every output is JSON, which must be valid UTF-8.
std::string valid_utf8(const std::string& text) {
  using json = nlohmann::json;
  const std::string quoted = json(text).dump(-1, ' ', false, json::error_handler_t::replace);
  return json::parse(quoted).get<std::string>();
}

GenerationOptions generation_options(const ChatGenerator& generator,
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

// How many requests from `first` on go into one batch: at most `batch_size`, with consecutive
// sampling streams (generate() samples row b from stream first_sequence_index + b).
size_t batch_end(const std::vector<GenerationRequest>& requests, size_t first, size_t batch_size) {
  size_t end = first + 1;
  while (end < requests.size() && end - first < batch_size &&
         requests[end].stream == requests[end - 1].stream + 1) {
    ++end;
  }
  return end;
}

}  // namespace

ChatGenerator load_chat_generator(const std::string& directory, ProcessGrid* grid) {
  ChatGenerator generator;
  generator.checkpoint_dir = directory;
  generator.manifest = read_checkpoint_manifest(directory);
  if (generator.manifest.head() == kHeadAttribute) {
    throw UserError("checkpoint " + directory +
                    " is an attribute model; generation needs a language model (steerlm sft)");
  }
  generator.attributes.assign(generator.manifest.attributes().begin(),
                              generator.manifest.attributes().end());
  generator.chat = !generator.attributes.empty();
  generator.tokenizer =
      Tokenizer::load(checkpoint_tokenizer_path(directory, generator.manifest).string());
  if (generator.manifest.chat_template().markers_as_special_tokens())
    generator.tokenizer = with_special_markers(std::move(generator.tokenizer));
  ModelOptions options;
  if (grid != nullptr) {
    options.shard = pipeline_model_shard(*grid, generator.manifest.model());
    options.tp_group = &grid->tp();
  }
  generator.model = std::make_unique<LlamaModel>(generator.manifest.model(),
                                                 HeadKind::kLanguageModel, 0, /*seed=*/0, options);
  load_sharded_weights(directory, generator.manifest, generator.model->parameters(),
                       generator.model->shard());
  generator.stages = std::make_unique<PipelineSchedule>(*generator.model, grid);
  return generator;
}

void check_attribute_values(const std::map<std::string, float>& values,
                            const std::vector<std::string>& known, const std::string& where) {
  for (const auto& [name, value] : values) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      throw UserError(where + ": '" + name + "' is not in the model's attribute set (" +
                      joined(known) + ")");
    }
    if (!(value >= kMinAttributeValue && value <= kMaxAttributeValue)) {
      char range[64];
      std::snprintf(range, sizeof(range), "%g..%g", kMinAttributeValue, kMaxAttributeValue);
      std::ostringstream shown;
      shown << value;
      throw UserError(where + ": " + name + "=" + shown.str() + " is out of range; valid values " +
                      "are " + range);
    }
  }
}

std::map<std::string, float> parse_attribute_values(const std::string& text,
                                                    const std::vector<std::string>& known,
                                                    const std::string& where) {
  std::map<std::string, float> values;
  std::stringstream items(text);
  for (std::string item; std::getline(items, item, ',');) {
    size_t equals = item.find('=');
    if (equals == std::string::npos) throw UserError(where + ": '" + item + "' is not name=value");
    const std::string name = item.substr(0, equals);
    check_attribute_values({{name, 0.0f}}, known, where);  // the name first, then the value
    size_t parsed = 0;
    const std::string number = item.substr(equals + 1);
    try {
      values[name] = std::stof(number, &parsed);
    } catch (const std::exception&) {
      parsed = 0;
    }
    if (parsed == 0 || parsed != number.size())
      throw UserError(where + ": '" + item + "' has no numeric value");
  }
  check_attribute_values(values, known, where);
  return values;
}

void check_generate_config(const config::GenerateConfig& config) {
  if (config.temperature() < 0 || config.top_k() < 0 || config.top_p() <= 0 || config.top_p() > 1 ||
      config.max_new_tokens() < 0) {
    throw UserError(
        "generate: need temperature >= 0, top_k >= 0, 0 < top_p <= 1, "
        "max_new_tokens >= 0");
  }
}

std::vector<GeneratedText> generate_texts(ChatGenerator& generator,
                                          const std::vector<GenerationRequest>& requests,
                                          const config::GenerateConfig& config) {
  GenerationOptions options = generation_options(generator, config);
  const size_t batch_size = static_cast<size_t>(std::max(1, config.batch_size()));
  std::vector<GeneratedText> results;
  for (size_t first = 0; first < requests.size();) {
    // Step 1: the batch's prompt ids, sampled from streams stream(first), +1, ...
    const size_t end = batch_end(requests, first, batch_size);
    std::vector<std::vector<int32_t>> prompts;
    for (size_t i = first; i < end; ++i) prompts.push_back(prompt_ids(generator, requests[i]));
    options.first_sequence_index = requests[first].stream;

    // Step 2: decode, then the text each continuation adds, cut at the turn marker.
    std::vector<Generation> generations = generate(*generator.model, prompts, options);
    for (size_t i = 0; i < generations.size(); ++i) {
      GeneratedText result;
      result.text = generated_text(*generator.tokenizer, prompts[i], generations[i].tokens);
      cut_at_stop_string(result.text, options.stop_strings);
      result.text = valid_utf8(result.text);
      result.finish_reason = finish_reason_name(generations[i].finish);
      result.tokens = static_cast<int64_t>(generations[i].tokens.size());
      results.push_back(std::move(result));
    }
    LOG(INFO) << "generated " << results.size() << "/" << requests.size();
    first = end;
  }
  return results;
}

Conversation user_prompt_context(const std::string& prompt) {
  Conversation conversation;
  conversation.turns.push_back(Turn{Role::kUser, prompt, {}, {}});
  return conversation;
}

namespace {

// A multi-turn context in NeMo-Aligner's form: [{"from": "User"|"Assistant", "value": TEXT,
// "label"?: "name:v,..."}, ...], ending on a user turn. Throws json errors (caught by the reader)
// or std::invalid_argument naming what is wrong.
Conversation conversation_context(const nlohmann::json& turns) {
  Conversation context;
  for (const nlohmann::json& turn : turns) {
    const std::string from = turn.at("from").get<std::string>();
    if (from != "User" && from != "Assistant")
      throw std::invalid_argument("conversations: \"from\" is \"" + from +
                                  "\", not User/Assistant");
    Turn parsed{from == "User" ? Role::kUser : Role::kAssistant,
                turn.at("value").get<std::string>(),
                {},
                {}};
    if (turn.contains("label") && parsed.role == Role::kAssistant) {
      std::string error;
      const auto values = parse_label(turn["label"].get<std::string>(), &error);
      if (!values) throw std::invalid_argument("conversations: label: " + error);
      parsed.attributes = *values;
    }
    context.turns.push_back(std::move(parsed));
  }
  if (context.turns.empty() || context.turns.back().role != Role::kUser)
    throw std::invalid_argument("conversations: must end on a User turn (the one to answer)");
  return context;
}

}  // namespace

std::vector<PromptLine> read_prompt_lines(const std::string& path) {
  using json = nlohmann::json;
  std::ifstream in(path);
  if (!in) throw UserError("cannot read " + path);
  std::vector<PromptLine> prompts;
  int64_t line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    PromptLine prompt;
    const std::string where = path + ":" + std::to_string(line_number);
    try {
      prompt.record = json::parse(line);
      // One prompt, or a multi-turn conversation so far.
      prompt.context = prompt.record.contains("conversations")
                           ? conversation_context(prompt.record["conversations"])
                           : user_prompt_context(prompt.record.at("prompt").get<std::string>());
      if (prompt.record.contains("system"))
        prompt.context.system = prompt.record["system"].get<std::string>();
      if (prompt.record.contains("attributes")) {
        for (const auto& [name, value] : prompt.record["attributes"].items())
          prompt.attributes[name] = value.get<float>();
      }
    } catch (const json::exception& error) {
      throw UserError(where +
                      ": expected {\"prompt\": TEXT | \"conversations\": [{\"from\", "
                      "\"value\"}, ...], \"system\"?: TEXT, \"attributes\"?: {name: value}}: " +
                      error.what());
    } catch (const std::invalid_argument& error) {
      throw UserError(where + ": " + error.what());
    }
    prompt.context.source = SourceRef{path, line_number};
    prompts.push_back(std::move(prompt));
  }
  return prompts;
}

bool is_prompt_lines_file(const std::string& path) {
  if (is_embedded_spec(path)) return false;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object()) return false;
    if (record.contains("conversations") && record["conversations"].is_array()) {
      // A SteerLM record is a conversation to train on; a generation request ends on the user.
      const nlohmann::json& turns = record["conversations"];
      return !turns.empty() && turns.back().is_object() && turns.back().value("from", "") == "User";
    }
    if (!record.contains("prompt") || !record["prompt"].is_string()) return false;
    return !record.contains("response") && !record.contains("chosen") &&
           !record.contains("response_1");
  }
  return false;
}

}  // namespace steerlm
