// Every data file under ../shared/data loads with zero errors, with the conversation and
// labelled-turn counts measured on it (and checked by an independent Python count), renders
// losslessly, and tokenizes with the Llama 2 tokenizer.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "pipeline/dataset.h"
#include "pipeline/readers.h"

namespace steerlm {
namespace {

const std::string kData = STEERLM_SHARED_DATA;

struct Expected {
  std::string file;
  DataFormatKind format;
  size_t conversations;
  size_t labelled_turns;  // assistant turns with at least one attribute, over all conversations
  size_t notes;           // records that are in no conversation, listed as notes
};

class RealData : public ::testing::TestWithParam<Expected> {};

size_t labelled_turns(const std::vector<Conversation>& conversations) {
  size_t count = 0;
  for (const Conversation& conversation : conversations) {
    for (const Turn& turn : conversation.turns) {
      count += turn.role == Role::kAssistant && !turn.attributes.empty();
    }
  }
  return count;
}

TEST_P(RealData, LoadsWithZeroErrorsAndExpectedCounts) {
  const Expected& expected = GetParam();
  const std::string path = kData + "/" + expected.file;
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is absent";

  EXPECT_EQ(detect_format(path), expected.format);
  BadRecordLog bad(config::BadRecord::FAIL);  // any bad record throws
  const std::vector<Conversation> conversations = read_conversations(path, expected.format, &bad);
  EXPECT_EQ(conversations.size(), expected.conversations);
  EXPECT_EQ(labelled_turns(conversations), expected.labelled_turns);
  EXPECT_EQ(bad.skipped(), 0);
  EXPECT_EQ(bad.records().size(), expected.notes);

  // Segments concatenate to the text; trained spans are non-empty and in order.
  std::vector<std::string> attributes = format_attributes(expected.format);
  if (attributes.empty()) attributes = attributes_present(conversations);
  const TemplateOptions options = make_template_options(config::ChatTemplate(), attributes);
  for (const Conversation& conversation : conversations) {
    const RenderedText rendered = render_acsft(conversation, options);
    std::string joined;
    for (const Segment& segment : rendered.segments()) joined += segment.text;
    ASSERT_EQ(joined, rendered.text) << conversation.source.str();
    ASSERT_FALSE(rendered.trained.empty()) << conversation.source.str();
  }
}

INSTANTIATE_TEST_SUITE_P(
    SharedData, RealData,
    ::testing::Values(Expected{"helpsteer2/helpsteer2_train_first100.jsonl",
                               config::DataFormat::HELPSTEER, 100, 100, 0},
                      Expected{"helpsteer/helpsteer_train_sample.jsonl",
                               config::DataFormat::HELPSTEER, 398, 398, 0},
                      // 1554 messages in 153 trees; two messages belong to trees whose root is not
                      // in this export (lines 153 and 215): they are listed as notes, not errors.
                      Expected{"oasst1/oasst1_en_validation_messages.jsonl",
                               config::DataFormat::OASST_MESSAGES, 775, 1269, 2},
                      Expected{"nemo_aligner/sft_sample_extra_id_format.jsonl",
                               config::DataFormat::STEERLM, 448, 448, 0}),
    [](const ::testing::TestParamInfo<Expected>& info) {
      return std::filesystem::path(info.param.file).parent_path().string();
    });

TEST(RealData, NemoAlignerSampleKeepsEmptySystemAndHelpSteerLabels) {
  const std::string path = kData + "/nemo_aligner/sft_sample_extra_id_format.jsonl";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is absent";
  BadRecordLog bad;
  auto conversations = read_conversations(path, config::DataFormat::STEERLM, &bad);
  ASSERT_EQ(conversations.size(), 448u);
  EXPECT_EQ(attributes_present(conversations), kHelpSteerAttributes);
  const TemplateOptions options =
      make_template_options(config::ChatTemplate(), kHelpSteerAttributes);
  const std::string text = render_acsft(conversations[0], options).text;
  EXPECT_TRUE(text.starts_with("<extra_id_0>System\n\n<extra_id_1>User\nWrite a Python program"));
  EXPECT_NE(text.find("\n<extra_id_1>Assistant\n<extra_id_2>helpfulness:4,correctness:4,"
                      "coherence:4,complexity:3,verbosity:2\nTo create a Python program"),
            std::string::npos);
  EXPECT_TRUE(text.ends_with("execution.\n<extra_id_1>"));
  EXPECT_EQ(conversations[0].record["dataset"], "340b_8.07_synthetic");
}

// The attribute-model samples of oasst: one per labelled message, though paths share messages.
TEST(RealData, OasstAttributeSamplesScoreEachMessageOnce) {
  const std::string path = kData + "/oasst1/oasst1_en_validation_messages.jsonl";
  const std::string model = kData + "/tokenizers/llama2/tokenizer.model";
  if (!std::filesystem::exists(path) || !std::filesystem::exists(model)) GTEST_SKIP();
  config::StageConfig config;
  config.mutable_data()->add_train(path);
  config.mutable_data()->set_validation_fraction(0.1f);
  config.set_tokenizer(model);
  config.mutable_train()->set_seq_len(4096);
  auto tokenizer = load_stage_tokenizer(config);
  StageData data = load_stage_data(config, *tokenizer, SampleTask::kAttributes);
  EXPECT_EQ(data.attributes, kOasstAttributes);
  EXPECT_EQ(data.train.size() + data.validation.size(), 956u);
  EXPECT_EQ(data.report.bad_records.notes_by_reason().at("tree_root_absent"), 2);
  EXPECT_EQ(data.report.conversations, 775);
  // No prompt is in both splits.
  std::set<uint64_t> train_prompts;
  for (const TokenizedSample& sample : data.train) train_prompts.insert(sample.prompt_hash);
  for (const TokenizedSample& sample : data.validation) {
    EXPECT_EQ(train_prompts.count(sample.prompt_hash), 0u) << sample.source;
  }
  // Each sample ends with the marker the head reads: "<extra_id_2>" ends in ">".
  for (const TokenizedSample& sample : data.train) {
    ASSERT_EQ(tokenizer->decode({sample.tokens.back()}), ">");
    ASSERT_EQ(sample.attribute_targets.size(), 4u);
  }
}

}  // namespace
}  // namespace steerlm
