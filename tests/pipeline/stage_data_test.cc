// load_stage_data: tokenizes once through the on-disk cache, splits by prompt, reports counts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "pipeline/dataset.h"
#include "pipeline/dataset_cache.h"
#include "runtime/error.h"
#include "tests/pipeline/data_test_util.h"

namespace steerlm {
namespace {

using testing_util::TempDir;

std::vector<std::string> cache_files(const std::string& directory) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    files.push_back(entry.path().string());
  }
  return files;
}

TEST(StageData, TokenizesOnceThroughTheCacheAndSplitsByPrompt) {
  TempDir dir;
  config::StageConfig config;
  config.set_output_dir(dir.path());
  config.mutable_data()->add_train("embedded:default?n=200&seed=3");
  config.set_tokenizer("embedded:default");
  config.mutable_train()->set_seq_len(256);
  auto tokenizer = load_stage_tokenizer(config);

  // First load writes one cache file; no prompt is in both splits.
  StageData first = load_stage_data(config, *tokenizer, SampleTask::kLanguageModel);
  EXPECT_EQ(first.attributes, kHelpSteerAttributes);
  EXPECT_EQ(first.report.conversations, 200);
  EXPECT_EQ(first.train.size() + first.validation.size(), 200u);
  EXPECT_GT(first.validation.size(), 0u);
  std::set<uint64_t> train_prompts;
  for (const TokenizedSample& sample : first.train) train_prompts.insert(sample.prompt_hash);
  for (const TokenizedSample& sample : first.validation) {
    EXPECT_EQ(train_prompts.count(sample.prompt_hash), 0u);
  }
  const auto files = cache_files(dir.path() + "/cache");
  ASSERT_EQ(files.size(), 1u);

  // The second load reads the cache: planting a one-sample cache proves it is used.
  auto cached = read_dataset_cache(files[0]);
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ(cached->size(), 200u);
  write_dataset_cache(files[0], {cached->front()});
  StageData second = load_stage_data(config, *tokenizer, SampleTask::kLanguageModel);
  EXPECT_EQ(second.train.size() + second.validation.size(), 1u);

  // A different template config is a different key; a corrupt cache is rebuilt.
  config.mutable_chat_template()->set_system_prompt("another default");
  load_stage_data(config, *tokenizer, SampleTask::kLanguageModel);
  EXPECT_EQ(cache_files(dir.path() + "/cache").size(), 2u);
  std::ofstream(files[0], std::ios::trunc) << "garbage";
  config.mutable_chat_template()->clear_system_prompt();
  StageData rebuilt = load_stage_data(config, *tokenizer, SampleTask::kLanguageModel);
  EXPECT_EQ(rebuilt.train.size() + rebuilt.validation.size(), 200u);

  const nlohmann::json metrics = rebuilt.report.metrics_line();
  EXPECT_EQ(metrics["split"], "data");
  EXPECT_EQ(metrics["train_samples"], static_cast<int64_t>(rebuilt.train.size()));
}

TEST(StageData, WeightsMustMatchTheInputs) {
  config::StageConfig config;
  config.mutable_data()->add_train("embedded:default?n=10");
  config.mutable_data()->add_weights(1);
  config.mutable_data()->add_weights(2);
  config.set_tokenizer("embedded:default");
  auto tokenizer = load_stage_tokenizer(config);
  EXPECT_THROW(load_stage_data(config, *tokenizer, SampleTask::kLanguageModel), UserError);
}

}  // namespace
}  // namespace steerlm
