#include "pipeline/dataset.h"

#include <glog/logging.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "pipeline/data_rng.h"
#include "pipeline/dataset_cache.h"
#include "pipeline/readers.h"
#include "pipeline/synth.h"
#include "pipeline/tokenizer_sentencepiece.h"
#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

std::vector<float> attribute_targets(const Turn& turn, const std::vector<std::string>& order) {
  std::vector<float> targets(order.size(), kMissingAttribute);
  for (size_t i = 0; i < order.size(); ++i) {
    auto found = turn.attributes.find(order[i]);
    if (found != turn.attributes.end()) targets[i] = found->second;
  }
  return targets;
}

bool has_configured_attribute(const Turn& turn, const std::vector<std::string>& order) {
  for (const std::string& name : order) {
    if (turn.attributes.count(name)) return true;
  }
  return false;
}

}  // namespace

uint64_t conversation_prompt_hash(const Conversation& conversation) {
  for (const Turn& turn : conversation.turns) {
    if (turn.role == Role::kUser) return fnv1a(turn.text);
  }
  return fnv1a("");
}

void tokenize_rendered(const RenderedText& rendered, const Tokenizer& tokenizer,
                       std::vector<int32_t>* tokens, std::vector<uint8_t>* trained) {
  for (const TokenSpan& span : tokenizer.encode_with_spans(rendered.text)) {
    bool is_trained = rendered.is_trained(span.begin);
    // A zero-width piece covers no character of its own; it belongs with its predecessor.
    if (span.begin == span.end && !trained->empty()) is_trained = trained->back() != 0;
    tokens->push_back(span.id);
    trained->push_back(is_trained ? 1 : 0);
  }
}

std::vector<TokenizedSample> tokenize_conversation(const Conversation& conversation,
                                                   const Tokenizer& tokenizer,
                                                   const TokenizeOptions& options,
                                                   std::vector<std::string>* seen_message_ids) {
  std::vector<TokenizedSample> samples;
  const std::vector<std::string>& order = options.template_options.attributes;
  auto start_sample = [&] {
    TokenizedSample sample;
    sample.prompt_hash = conversation_prompt_hash(conversation);
    sample.source = conversation.source.str();
    if (options.add_bos) sample.tokens.push_back(tokenizer.bos_id());
    if (options.add_bos) sample.trained.push_back(0);
    return sample;
  };

  if (options.task == SampleTask::kLanguageModel) {
    const RenderedText rendered = render_acsft(conversation, options.template_options);
    TokenizedSample sample = start_sample();
    tokenize_rendered(rendered, tokenizer, &sample.tokens, &sample.trained);
    if (options.add_eos) {
      // EOS continues whatever the text ended with: trained after a trained final marker.
      const bool ends_trained =
          !rendered.trained.empty() && rendered.trained.back().end == rendered.text.size();
      sample.tokens.push_back(tokenizer.eos_id());
      sample.trained.push_back(ends_trained ? 1 : 0);
    }
    samples.push_back(std::move(sample));
    return samples;
  }

  // Attribute model: one input per labelled assistant turn; no EOS, so that the last real token
  // is the <extra_id_2> the head reads.
  for (size_t i = 0; i < conversation.turns.size(); ++i) {
    const Turn& turn = conversation.turns[i];
    if (turn.role != Role::kAssistant || !has_configured_attribute(turn, order)) continue;
    if (!turn.message_id.empty()) {
      if (std::find(seen_message_ids->begin(), seen_message_ids->end(), turn.message_id) !=
          seen_message_ids->end()) {
        continue;
      }
      seen_message_ids->push_back(turn.message_id);
    }
    TokenizedSample sample = start_sample();
    RenderedText input{render_attribute_input(conversation, i, options.template_options), {}};
    tokenize_rendered(input, tokenizer, &sample.tokens, &sample.trained);
    sample.attribute_targets = attribute_targets(turn, order);
    samples.push_back(std::move(sample));
  }
  return samples;
}

TruncationCounts fit_to_length(std::vector<TokenizedSample>* samples, int seq_len,
                               config::Truncation::Policy policy, SampleTask task, bool has_bos) {
  CHECK_GT(seq_len, 1);
  // FAIL checks every sample before anything changes, so a failed call leaves them intact.
  if (policy == config::Truncation::FAIL) {
    for (const TokenizedSample& sample : *samples) {
      if (static_cast<int64_t>(sample.tokens.size()) <= seq_len) continue;
      throw UserError(sample.source + ": sample is " + std::to_string(sample.tokens.size()) +
                      " tokens, longer than train.seq_len " + std::to_string(seq_len) +
                      " (data.truncation: FAIL); raise train.seq_len or set data.truncation "
                      "to TRUNCATE_LEFT or DROP");
    }
  }
  TruncationCounts counts;
  std::vector<TokenizedSample> kept;
  kept.reserve(samples->size());
  for (TokenizedSample& sample : *samples) {
    const int64_t length = static_cast<int64_t>(sample.tokens.size());
    if (length > seq_len) {
      if (policy == config::Truncation::DROP) {
        ++counts.dropped;
        continue;
      }
      // TRUNCATE_LEFT: keep BOS, drop the earliest context after it.
      const int64_t keep_head = has_bos ? 1 : 0;
      const int64_t cut = length - seq_len;
      sample.tokens.erase(sample.tokens.begin() + keep_head,
                          sample.tokens.begin() + keep_head + cut);
      sample.trained.erase(sample.trained.begin() + keep_head,
                           sample.trained.begin() + keep_head + cut);
      ++counts.truncated;
    }
    // A trained token at position 0 has no prediction before it, so it does not count.
    const bool trainable = task == SampleTask::kAttributes ||
                           std::any_of(sample.trained.begin() + 1, sample.trained.end(),
                                       [](uint8_t flag) { return flag != 0; });
    if (!trainable) {
      ++counts.untrainable;
      continue;
    }
    kept.push_back(std::move(sample));
  }
  *samples = std::move(kept);
  return counts;
}

std::vector<std::string> resolve_attributes(const config::ChatTemplate& chat_template,
                                            const std::vector<Conversation>& conversations) {
  if (chat_template.attributes_size() > 0) {
    return {chat_template.attributes().begin(), chat_template.attributes().end()};
  }
  return attributes_present(conversations);
}

nlohmann::json DataReport::metrics_line() const {
  return {{"split", "data"},
          {"conversations", conversations},
          {"train_samples", train_samples},
          {"validation_samples", validation_samples},
          {"skipped", bad_records.skipped_by_reason()},
          {"notes", bad_records.notes_by_reason()},
          {"truncated", train_truncation.truncated + validation_truncation.truncated},
          {"dropped", train_truncation.dropped + validation_truncation.dropped},
          {"untrainable", train_truncation.untrainable + validation_truncation.untrainable},
          {"ignored_attribute_values", ignored_attribute_values}};
}

void DataReport::write(const std::string& output_dir) const {
  const std::string listing = output_dir + "/data/skipped_records.jsonl";
  bad_records.write_listing(listing);
  LOG(INFO) << "data: " << metrics_line().dump();
  if (!bad_records.records().empty()) {
    LOG(WARNING) << "data: " << bad_records.skipped() << " records skipped, "
                 << bad_records.records().size() - bad_records.skipped()
                 << " noted; each is listed in " << listing;
  }
}

std::unique_ptr<Tokenizer> load_stage_tokenizer(const config::StageConfig& config) {
  if (config.tokenizer().empty()) {
    throw UserError(
        "tokenizer: no tokenizer file set; set tokenizer (a SentencePiece .model, a "
        "llama2.c .bin, or embedded:default)");
  }
  std::unique_ptr<Tokenizer> tokenizer = Tokenizer::load(config.tokenizer());
  if (config.chat_template().markers_as_special_tokens()) {
    tokenizer = with_special_markers(std::move(tokenizer));
  }
  return tokenizer;
}

}  // namespace steerlm
