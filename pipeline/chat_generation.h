// Text in, text out decoding with a checkpoint: the chat template with a requested label for a
// SteerLM chat model, the prompt as is for a plain language model (DESIGN §1 "Inference", §4
// "generate's output"). Shared by steerlm generate, eval-steer and bootstrap.
//
//   ChatGenerator generator = load_chat_generator("out/sft/checkpoint");
//   auto values = parse_attribute_values("verbosity=4", generator.attributes, "--attributes");
//   GenerationRequest request;
//   request.context.turns.push_back(Turn{Role::kUser, "Name a colour.", {}, {}});
//   request.attributes = values;
//   std::vector<GeneratedText> out = generate_texts(generator, {request}, config.generate());
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "configs/steerlm.pb.h"
#include "model/llama.h"
#include "model/pipeline_schedule.h"
#include "pipeline/conversation.h"
#include "pipeline/tokenizer.h"

namespace steerlm {

// A checkpoint loaded for decoding (forward only): the whole model on one rank, or this rank's
// TP slice and PP stage of a grid, whose ranks then all decode every request together.
struct ChatGenerator {
  std::string checkpoint_dir;
  config::CheckpointManifest manifest;
  std::vector<std::string> attributes;  // the manifest's attribute set; empty: plain LM
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<PipelineSchedule> stages;  // runs each decoding step through the PP stages
  bool chat = false;  // the manifest records an attribute set: apply the chat template
};

// Throws UserError when `directory` holds an attribute model rather than a language model.
// Reads any saved TP/PP layout; with a `grid`, the TP ranks decode on all-gathered logits and
// the PP stages on the last stage's broadcast logits, so every rank samples the same tokens.
ChatGenerator load_chat_generator(const std::string& directory, ProcessGrid* grid = nullptr);

// Attribute values a user may request: 0..4, like the labels the model was trained on.
inline constexpr float kMinAttributeValue = 0.0f;
inline constexpr float kMaxAttributeValue = 4.0f;

// Checks that every name is in `known` and every value in [0, 4]. The UserError starts with
// `where` and lists the valid names or the valid range.
void check_attribute_values(const std::map<std::string, float>& values,
                            const std::vector<std::string>& known, const std::string& where);

// "helpfulness=4,verbosity=2" -> values, checked as above.
std::map<std::string, float> parse_attribute_values(const std::string& text,
                                                    const std::vector<std::string>& known,
                                                    const std::string& where);

// Throws UserError unless temperature >= 0, top_k >= 0, 0 < top_p <= 1, max_new_tokens >= 0.
void check_generate_config(const config::GenerateConfig& config);

// One text to generate.
struct GenerationRequest {
  // A chat model: the conversation so far, ending on a user turn (system nullopt: the model's
  // configured default). A plain LM: the first turn's text is the prompt, continued as is.
  Conversation context;
  std::map<std::string, float> attributes;  // the requested label (chat models)
  // Sampling stream of this request: the same (seed, stream) gives the same text, however
  // requests are batched or spread over ranks.
  uint64_t stream = 0;
};

struct GeneratedText {
  std::string text;           // cut before <extra_id_1> for chat models; valid UTF-8
  std::string finish_reason;  // "stop_token", "stop_string" or "length"
  int64_t tokens = 0;         // generated tokens, stop token excluded
};

// Decodes `requests` in batches of config.batch_size; results in request order.
std::vector<GeneratedText> generate_texts(ChatGenerator& generator,
                                          const std::vector<GenerationRequest>& requests,
                                          const config::GenerateConfig& config);

// A single-turn context: `prompt` as the user turn.
Conversation user_prompt_context(const std::string& prompt);

// One line of a prompts file (generate --input, and eval-steer/bootstrap --input):
// {"prompt": TEXT, "system"?: TEXT, "attributes"?: {name: value}}, or a multi-turn conversation
// so far in place of "prompt": "conversations": [{"from": "User"|"Assistant", "value": TEXT,
// "label"?: "name:v,..."}, ...] ending on the user turn to answer.
struct PromptLine {
  Conversation context;                     // the prompt as a user turn; source is FILE:LINE
  std::map<std::string, float> attributes;  // as written, not yet checked
  nlohmann::json record;                    // the whole line, for writers that keep its fields
};

// Reads every non-blank line; UserError naming FILE:LINE for a line of another form.
std::vector<PromptLine> read_prompt_lines(const std::string& path);

// Whether `path`'s first record has that form: a string "prompt" and no response of its own
// (HelpSteer, preference pairs and oasst trees also have a "prompt" key), or "conversations"
// that end on a user turn.
bool is_prompt_lines_file(const std::string& path);

}  // namespace steerlm
