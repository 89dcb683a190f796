// From conversations to token ids (DESIGN §4 "Tokenizing for training"), cached on disk, split
// into train and validation by prompt, and fitted to train.seq_len.
//
// A stage calls load_stage_data once (every rank may; the cache is written atomically) and then
// hands the splits to a DataLoader (pipeline/loader.h):
//
//   auto tokenizer = load_stage_tokenizer(config);
//   StageData data = load_stage_data(config, *tokenizer, SampleTask::kLanguageModel);
//   data.report.write(config.output_dir());           // skipped-record listing, counts logged
//   metrics.append(data.report.metrics_line());       // {"split": "data", ...}
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "configs/steerlm.pb.h"
#include "pipeline/bad_records.h"
#include "pipeline/chat_template.h"
#include "pipeline/conversation.h"
#include "pipeline/tokenizer.h"

namespace steerlm {

enum class SampleTask {
  kLanguageModel,  // ACSFT: one sample per conversation, loss on the trained spans
  kAttributes,     // attribute model: one sample per labelled assistant turn, targets (A)
};

struct TokenizeOptions {
  TemplateOptions template_options;
  SampleTask task = SampleTask::kLanguageModel;
  bool add_bos = true;
  bool add_eos = false;
};

struct TokenizedSample {
  std::vector<int32_t> tokens;           // (L): BOS? rendered text, EOS?
  std::vector<uint8_t> trained;          // (L): 1 where the token is in the ACSFT loss
  std::vector<float> attribute_targets;  // (A) for kAttributes, kMissingAttribute when missing
  uint64_t prompt_hash = 0;              // of the first user turn: the train/validation key
  int32_t part = 0;                      // which input file (data.train index) it came from
  std::string source;                    // "FILE:LINE" of its record
};

// Renders and tokenizes one conversation: one sample (kLanguageModel) or one per labelled
// assistant turn (kAttributes; an oasst message shared by several paths is scored once, via
// `seen_message_ids`). A token is trained when its first byte lies in a trained span; a
// zero-width piece (SentencePiece's lone dummy prefix) takes the flag of the token before it.
std::vector<TokenizedSample> tokenize_conversation(const Conversation& conversation,
                                                   const Tokenizer& tokenizer,
                                                   const TokenizeOptions& options,
                                                   std::vector<std::string>* seen_message_ids);

// Token ids of `text` with their trained flags under `rendered`'s spans (no BOS/EOS).
void tokenize_rendered(const RenderedText& rendered, const Tokenizer& tokenizer,
                       std::vector<int32_t>* tokens, std::vector<uint8_t>* trained);

struct TruncationCounts {
  int64_t truncated = 0;    // TRUNCATE_LEFT: samples shortened from the left
  int64_t dropped = 0;      // DROP: samples removed
  int64_t untrainable = 0;  // kLanguageModel samples left with no trained token (removed)
};

// Fits every sample to `seq_len` tokens. TRUNCATE_LEFT keeps BOS and drops the earliest tokens
// after it; DROP removes the sample; FAIL throws UserError naming the record, its length and the
// fix. Samples that end up with nothing to train (ACSFT) are removed and counted.
TruncationCounts fit_to_length(std::vector<TokenizedSample>* samples, int seq_len,
                               config::Truncation::Policy policy, SampleTask task, bool has_bos);

// Everything a stage learns about its data, for logs, metrics and the output directory.
struct DataReport {
  BadRecordLog bad_records;
  TruncationCounts train_truncation;
  TruncationCounts validation_truncation;
  int64_t conversations = 0;
  int64_t train_samples = 0;
  int64_t validation_samples = 0;
  int64_t ignored_attribute_values = 0;  // values of attributes outside the configured set

  // {"split": "data", "skipped": {reason: n}, "notes": {...}, "truncated": n, "dropped": n, ...}
  nlohmann::json metrics_line() const;
  // Writes <output_dir>/data/skipped_records.jsonl and logs the counts.
  void write(const std::string& output_dir) const;
};

struct StageData {
  std::vector<std::string> attributes;  // the resolved attribute set (label / target order)
  TemplateOptions template_options;
  std::vector<TokenizedSample> train;
  std::vector<TokenizedSample> validation;
  std::vector<float> part_weights;  // data.weights, or empty (each file as it is)
  DataReport report;
};

// The tokenizer a stage config names, with the markers as special tokens when configured.
std::unique_ptr<Tokenizer> load_stage_tokenizer(const config::StageConfig& config);

// Reads data.train (and data.validation, or a split of data.train by prompt), tokenizes through
// the on-disk cache (data.cache_dir, default <output_dir>/cache) and fits to train.seq_len.
StageData load_stage_data(const config::StageConfig& config, const Tokenizer& tokenizer,
                          SampleTask task);

// The key that splits train from validation: a hash of the conversation's first user turn.
uint64_t conversation_prompt_hash(const Conversation& conversation);

// The prompt keys load_stage_data holds out for validation when no validation file is given: a
// `fraction` of the distinct `prompts` (at least one, never all), chosen in seeded hash order.
std::set<uint64_t> held_out_prompts(std::vector<uint64_t> prompts, double fraction, uint64_t seed);

// The attribute set for `config` and the conversations: chat_template.attributes when set, else
// the attributes present in the data, in the combined order of DESIGN §1.
std::vector<std::string> resolve_attributes(const config::ChatTemplate& chat_template,
                                            const std::vector<Conversation>& conversations);

}  // namespace steerlm
