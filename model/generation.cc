#include "model/generation.h"

#include <glog/logging.h>

#include <algorithm>

#include "runtime/error.h"

namespace steerlm {
namespace {

// Per-sequence decoding state.
struct Decoding {
  TokenSampler sampler;
  Generation result;
  bool active = true;
};

// Takes row `row`'s sampled token: records it, or finishes the sequence.
void accept_token(Decoding& sequence, int32_t token, int max_new_tokens,
                  const GenerationOptions& options) {
  const auto& stops = options.stop_token_ids;
  if (std::find(stops.begin(), stops.end(), token) != stops.end()) {
    sequence.result.finish = FinishReason::kStopToken;
    sequence.active = false;
    return;
  }
  sequence.result.tokens.push_back(token);
  if (!options.stop_strings.empty()) {
    std::string text = options.detokenize(sequence.result.tokens);
    if (cut_at_stop_string(text, options.stop_strings)) {
      sequence.result.finish = FinishReason::kStopString;
      sequence.active = false;
      return;
    }
  }
  if (static_cast<int>(sequence.result.tokens.size()) >= max_new_tokens) {
    sequence.result.finish = FinishReason::kLength;
    sequence.active = false;
  }
}

// How many new tokens fit after the longest prompt within the model's context.
int fitted_max_new_tokens(const LlamaModel& model, int64_t longest_prompt,
                          const GenerationOptions& options) {
  const int64_t context = model.config().max_seq_len();
  if (longest_prompt >= context) {
    throw UserError("a prompt of " + std::to_string(longest_prompt) +
                    " tokens leaves no room to generate within the model's max_seq_len " +
                    std::to_string(context));
  }
  int64_t room = context - longest_prompt;
  if (options.max_new_tokens > room) {
    LOG(WARNING) << "max_new_tokens " << options.max_new_tokens << " shortened to " << room
                 << " to fit the model's max_seq_len " << context;
    return static_cast<int>(room);
  }
  return options.max_new_tokens;
}

}  // namespace

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStopToken: return "stop_token";
    case FinishReason::kStopString: return "stop_string";
    case FinishReason::kLength: return "length";
  }
  return "unknown";
}

bool cut_at_stop_string(std::string& text, const std::vector<std::string>& stop_strings) {
  size_t cut = std::string::npos;
  for (const std::string& stop : stop_strings) {
    if (!stop.empty()) cut = std::min(cut, text.find(stop));
  }
  if (cut == std::string::npos) return false;
  text.resize(cut);
  return true;
}

std::vector<Generation> generate(LlamaModel& model,
                                 const std::vector<std::vector<int32_t>>& prompts,
                                 const GenerationOptions& options) {
  CHECK(options.stop_strings.empty() || options.detokenize)
      << "stop strings need a detokenize function";
  const int64_t batch = static_cast<int64_t>(prompts.size());
  if (batch == 0) return {};
  const int64_t vocab = model.config().vocab_size();

  // Step 1: per-sequence samplers and the cache sized for the longest prompt.
  int64_t longest = 0;
  std::vector<Decoding> sequences;
  for (int64_t b = 0; b < batch; ++b) {
    CHECK(!prompts[b].empty()) << "prompt " << b << " is empty; start it with BOS";
    longest = std::max<int64_t>(longest, prompts[b].size());
    sequences.push_back(
        {TokenSampler(options.sampling, options.seed, options.first_sequence_index + b), {}});
  }
  const int max_new_tokens = fitted_max_new_tokens(model, longest, options);
  if (max_new_tokens <= 0) return std::vector<Generation>(batch);
  KvCache cache = model.new_kv_cache(batch, longest + max_new_tokens);

  // Step 2: prefill every prompt at once; rows are right-padded and only their length counts.
  Tensor tokens = Tensor::zeros(Shape{batch, longest}, DType::kI32);  // (B, T_prompt) i32, cpu
  std::vector<int> n_new(batch);
  for (int64_t b = 0; b < batch; ++b) {
    std::copy(prompts[b].begin(), prompts[b].end(), tokens.i32() + b * longest);
    n_new[b] = static_cast<int>(prompts[b].size());
  }
  auto decode = [&](const Tensor& new_tokens) {
    return options.decode_step ? options.decode_step(cache, new_tokens, n_new)
                               : model.forward_cached(cache, new_tokens, n_new);
  };
  Tensor logits = decode(tokens);  // (B, V) f32, cpu

  // Step 3: sample, append, repeat while any sequence is unfinished.
  Tensor next = Tensor::zeros(Shape{batch, 1}, DType::kI32);  // (B, 1) i32, cpu
  while (true) {
    bool any_active = false;
    for (int64_t b = 0; b < batch; ++b) {
      n_new[b] = 0;
      if (!sequences[b].active) continue;
      int32_t token = sequences[b].sampler.next(logits.f32() + b * vocab, vocab);
      accept_token(sequences[b], token, max_new_tokens, options);
      if (!sequences[b].active) continue;
      next.i32()[b] = token;
      n_new[b] = 1;
      any_active = true;
    }
    if (!any_active) break;
    logits = decode(next);
  }

  std::vector<Generation> results;
  for (Decoding& sequence : sequences) results.push_back(std::move(sequence.result));
  return results;
}

}  // namespace steerlm
