// load_stage_data: read, resolve the attribute set, tokenize through the cache, split, fit.
#include <glog/logging.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "pipeline/data_rng.h"
#include "pipeline/dataset.h"
#include "pipeline/dataset_cache.h"
#include "pipeline/readers.h"
#include "runtime/error.h"

namespace steerlm {
namespace {

struct InputFile {
  std::string path;
  DataFormatKind format;
  std::vector<Conversation> conversations;
};

std::vector<InputFile> read_inputs(const google::protobuf::RepeatedPtrField<std::string>& paths,
                                   const config::DataConfig& data, DataReport* report) {
  std::vector<InputFile> inputs;
  for (const std::string& path : paths) {
    InputFile input{path, resolve_format(path, data.format()), {}};
    input.conversations = read_conversations(path, input.format, &report->bad_records);
    LOG(INFO) << "data: " << path << " (" << format_name(input.format)
              << "): " << input.conversations.size() << " conversations";
    report->conversations += input.conversations.size();
    inputs.push_back(std::move(input));
  }
  return inputs;
}

int64_t count_ignored_values(const std::vector<InputFile>& inputs,
                             const std::vector<std::string>& attributes) {
  const std::set<std::string> known(attributes.begin(), attributes.end());
  int64_t ignored = 0;
  for (const InputFile& input : inputs) {
    for (const Conversation& conversation : input.conversations) {
      for (const Turn& turn : conversation.turns) {
        for (const auto& [name, value] : turn.attributes) ignored += known.count(name) ? 0 : 1;
      }
    }
  }
  return ignored;
}

// Tokenizes one input through the cache.
std::vector<TokenizedSample> tokenize_input(const InputFile& input, int part,
                                            const config::StageConfig& config,
                                            const Tokenizer& tokenizer,
                                            const TokenizeOptions& options) {
  std::string cache_dir = config.data().cache_dir();
  if (cache_dir.empty() && !config.output_dir().empty()) cache_dir = config.output_dir() + "/cache";
  std::string cache_path;
  if (!cache_dir.empty()) {
    cache_path = cache_dir + "/" +
                 dataset_cache_name(input.path, input.format, config.tokenizer(),
                                    config.chat_template().markers_as_special_tokens(), options);
    if (auto cached = read_dataset_cache(cache_path)) {
      LOG(INFO) << "data: " << input.path << ": " << cached->size() << " samples from cache "
                << cache_path;
      for (TokenizedSample& sample : *cached) sample.part = part;
      return std::move(*cached);
    }
  }
  std::vector<TokenizedSample> samples;
  std::vector<std::string> seen_message_ids;
  for (const Conversation& conversation : input.conversations) {
    for (TokenizedSample& sample :
         tokenize_conversation(conversation, tokenizer, options, &seen_message_ids)) {
      sample.part = part;
      samples.push_back(std::move(sample));
    }
  }
  if (!cache_path.empty()) write_dataset_cache(cache_path, samples);
  return samples;
}

// Moves the samples of the held-out prompts into `validation`, so no prompt is in both splits.
void split_by_prompt(std::vector<TokenizedSample>* train, double fraction, uint64_t seed,
                     std::vector<TokenizedSample>* validation) {
  std::vector<uint64_t> prompts;
  for (const TokenizedSample& sample : *train) prompts.push_back(sample.prompt_hash);
  const std::set<uint64_t> held_out = held_out_prompts(std::move(prompts), fraction, seed);
  if (held_out.empty()) return;
  std::vector<TokenizedSample> kept;
  for (TokenizedSample& sample : *train) {
    (held_out.count(sample.prompt_hash) ? *validation : kept).push_back(std::move(sample));
  }
  *train = std::move(kept);
}

}  // namespace

std::set<uint64_t> held_out_prompts(std::vector<uint64_t> prompts, double fraction, uint64_t seed) {
  std::sort(prompts.begin(), prompts.end());
  prompts.erase(std::unique(prompts.begin(), prompts.end()), prompts.end());
  if (fraction <= 0 || prompts.size() < 2) return {};
  std::sort(prompts.begin(), prompts.end(), [seed](uint64_t a, uint64_t b) {
    return std::pair(mix_seed(seed, a), a) < std::pair(mix_seed(seed, b), b);
  });
  const size_t count = std::clamp<size_t>(static_cast<size_t>(fraction * prompts.size() + 0.5), 1,
                                          prompts.size() - 1);
  return std::set<uint64_t>(prompts.begin(), prompts.begin() + count);
}

StageData load_stage_data(const config::StageConfig& config, const Tokenizer& tokenizer,
                          SampleTask task) {
  const config::DataConfig& data = config.data();
  if (data.train_size() == 0) throw UserError("data.train: no training input set");
  if (data.weights_size() != 0 && data.weights_size() != data.train_size()) {
    throw UserError("data.weights: " + std::to_string(data.weights_size()) + " weights for " +
                    std::to_string(data.train_size()) +
                    " data.train files; give one weight per file or none");
  }
  StageData result;
  result.report.bad_records = BadRecordLog(data.on_bad_record());

  // Read every input, then fix the attribute set over all of them.
  std::vector<InputFile> train_inputs = read_inputs(data.train(), data, &result.report);
  std::vector<InputFile> validation_inputs = read_inputs(data.validation(), data, &result.report);
  std::vector<Conversation> all;
  for (const auto* inputs : {&train_inputs, &validation_inputs}) {
    for (const InputFile& input : *inputs) {
      all.insert(all.end(), input.conversations.begin(), input.conversations.end());
    }
  }
  result.attributes = resolve_attributes(config.chat_template(), all);
  result.template_options = make_template_options(config.chat_template(), result.attributes);
  result.report.ignored_attribute_values =
      count_ignored_values(train_inputs, result.attributes) +
      count_ignored_values(validation_inputs, result.attributes);

  // Tokenize (cached), then split by prompt unless validation files are given.
  TokenizeOptions options{result.template_options, task, config.chat_template().add_bos(),
                          config.chat_template().add_eos()};
  for (size_t i = 0; i < train_inputs.size(); ++i) {
    auto samples = tokenize_input(train_inputs[i], i, config, tokenizer, options);
    result.train.insert(result.train.end(), samples.begin(), samples.end());
  }
  for (const InputFile& input : validation_inputs) {
    auto samples = tokenize_input(input, 0, config, tokenizer, options);
    result.validation.insert(result.validation.end(), samples.begin(), samples.end());
  }
  if (validation_inputs.empty()) {
    split_by_prompt(&result.train, data.validation_fraction(), config.train().seed(),
                    &result.validation);
  }

  // Fit both splits to train.seq_len.
  const int seq_len = config.train().seq_len();
  const bool bos = options.add_bos;
  result.report.train_truncation =
      fit_to_length(&result.train, seq_len, data.truncation(), task, bos);
  result.report.validation_truncation =
      fit_to_length(&result.validation, seq_len, data.truncation(), task, bos);
  result.report.train_samples = result.train.size();
  result.report.validation_samples = result.validation.size();
  result.part_weights.assign(data.weights().begin(), data.weights().end());
  return result;
}

}  // namespace steerlm
