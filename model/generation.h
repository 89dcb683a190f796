// Batched decoding with the model's KV cache: a prefill of every prompt, then one token per step
// per unfinished sequence until it emits a stop token, produces a stop string, or reaches
// max_new_tokens.
//
//   GenerationOptions options;
//   options.sampling.temperature = 0.7f;
//   options.stop_token_ids = {tokenizer.eos_id()};
//   options.stop_strings = {"<extra_id_1>"};              // SteerLM chat models
//   options.detokenize = [&](const auto& ids) { return tokenizer.decode(ids); };
//   std::vector<Generation> out = generate(model, prompts, options);
//
// Text stays out of this layer (model/ sits below the tokenizer in pipeline/): stop strings are
// checked on the text that `detokenize` gives for the generated ids.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/llama.h"
#include "model/sampling.h"

namespace steerlm {

struct GenerationOptions {
  SamplingOptions sampling;
  int max_new_tokens = 128;
  uint64_t seed = 1234;
  // Sequence i of a call samples from stream (seed, first_sequence_index + i), so splitting a
  // dataset into batches does not change what is generated.
  uint64_t first_sequence_index = 0;
  std::vector<int32_t> stop_token_ids;  // not included in the output
  std::vector<std::string> stop_strings;
  std::function<std::string(const std::vector<int32_t>&)> detokenize;  // needed for stop strings
  // One decoding step; LlamaModel::forward_cached when empty. Under PP,
  // PipelineSchedule::decode_step, which runs the stages in turn.
  std::function<Tensor(KvCache&, const Tensor&, const std::vector<int>&)> decode_step;
};

enum class FinishReason { kStopToken, kStopString, kLength };
const char* finish_reason_name(FinishReason reason);  // "stop_token", "stop_string", "length"

struct Generation {
  std::vector<int32_t> tokens;  // generated ids, without the prompt and without a stop token
  FinishReason finish = FinishReason::kLength;
};

// Generates a continuation of every prompt (each non-empty, e.g. starting with BOS). Prompts are
// decoded together; the KV cache holds the longest prompt plus max_new_tokens. Prompt plus new
// tokens are limited to the model's max_seq_len: a longer prompt is a UserError, and
// max_new_tokens is shortened (with a warning) to fit.
std::vector<Generation> generate(LlamaModel& model,
                                 const std::vector<std::vector<int32_t>>& prompts,
                                 const GenerationOptions& options);

// Cuts `text` before the first occurrence of any stop string; true when one was found.
bool cut_at_stop_string(std::string& text, const std::vector<std::string>& stop_strings);

}  // namespace steerlm
