// Bad input under FAIL (the promised message) and SKIP (exact counts, listing); truncation
// policies with exact counts.
#include <gtest/gtest.h>

#include "pipeline/dataset.h"
#include "pipeline/readers.h"
#include "runtime/error.h"
#include "runtime/file_util.h"
#include "tests/pipeline/data_test_util.h"

namespace steerlm {
namespace {

using testing_util::ByteTokenizer;
using testing_util::TempDir;

const std::string kGood = R"({"prompt": "p", "response": "r", "helpfulness": 2})";

struct BadCase {
  std::string line;
  std::string reason;
  std::string message;  // a part of the FAIL message
};

const std::vector<BadCase> kHelpSteerCases = {
    {R"({"prompt": "p", "response": )", "malformed_json", "malformed JSON"},
    {"{\"prompt\": \"p\xff\", \"response\": \"r\"}", "invalid_utf8", "invalid UTF-8 at byte 14"},
    {R"({"prompt": "p", "helpfulness": 1})", "missing_field", "missing field 'response'"},
    {R"({"prompt": "p", "response": 5})", "wrong_type",
     "field 'response' must be a string, got number"},
    {R"({"prompt": "p", "response": "r", "helpfulness": "high"})", "wrong_type",
     "attribute 'helpfulness' must be an integer 0..4"},
    {R"({"prompt": "p", "response": "r", "verbosity": 7})", "attribute_out_of_range",
     "attribute 'verbosity' = 7 is outside 0..4"},
    {R"({"prompt": "p", "response": ""})", "empty_response", "empty response"},
};

TEST(BadRecords, EachKindFailsWithFileLineAndReason) {
  TempDir dir;
  for (const BadCase& bad : kHelpSteerCases) {
    const std::string path = dir.file("bad.jsonl", kGood + "\n" + bad.line + "\n");
    BadRecordLog log(config::BadRecord::FAIL);
    try {
      read_conversations(path, config::DataFormat::HELPSTEER, &log);
      FAIL() << "no error for " << bad.reason;
    } catch (const UserError& error) {
      const std::string message = error.what();
      EXPECT_TRUE(message.starts_with(path + ":2: ")) << message;
      EXPECT_NE(message.find(bad.message), std::string::npos) << message;
      EXPECT_NE(message.find("[" + bad.reason + "]"), std::string::npos) << message;
      EXPECT_NE(message.find("data.on_bad_record: SKIP"), std::string::npos) << message;
    }
  }
}

TEST(BadRecords, SkipCountsEachReasonAndListsEveryRecord) {
  TempDir dir;
  std::string contents = kGood + "\n";
  for (const BadCase& bad : kHelpSteerCases) contents += bad.line + "\n";
  contents += "\n" + kGood + "\n";  // a blank line is not a record
  const std::string path = dir.file("bad.jsonl", contents);
  BadRecordLog log(config::BadRecord::SKIP);
  auto conversations = read_conversations(path, config::DataFormat::HELPSTEER, &log);
  EXPECT_EQ(conversations.size(), 2u);
  EXPECT_EQ(conversations[1].source.line, 10);
  const std::map<std::string, int64_t> expected = {
      {"malformed_json", 1}, {"invalid_utf8", 1},           {"missing_field", 1},
      {"wrong_type", 2},     {"attribute_out_of_range", 1}, {"empty_response", 1}};
  EXPECT_EQ(log.skipped_by_reason(), expected);
  EXPECT_EQ(log.skipped(), 7);
  for (size_t i = 0; i < log.records().size(); ++i) {
    EXPECT_EQ(log.records()[i].source.line, static_cast<int64_t>(i) + 2);
  }
  const std::string listing = dir.path() + "/skipped.jsonl";
  log.write_listing(listing);
  const std::string written = read_file(listing);
  EXPECT_EQ(std::count(written.begin(), written.end(), '\n'), 7);
  EXPECT_NE(written.find(path + ":3"), std::string::npos);
}

TEST(BadRecords, OasstUnknownParentFailsAndSkipsTheSubtree) {
  TempDir dir;
  const std::string contents =
      R"({"message_id": "r", "parent_id": null, "message_tree_id": "r", "role": "prompter", "text": "Q"})"
      "\n"
      R"({"message_id": "a", "parent_id": "r", "message_tree_id": "r", "role": "assistant", "text": "A"})"
      "\n"
      R"({"message_id": "b", "parent_id": "gone", "message_tree_id": "r", "role": "assistant", "text": "B"})"
      "\n"
      R"({"message_id": "c", "parent_id": "b", "message_tree_id": "r", "role": "prompter", "text": "C"})"
      "\n";
  const std::string path = dir.file("oasst.jsonl", contents);
  BadRecordLog fail_log(config::BadRecord::FAIL);
  try {
    read_conversations(path, config::DataFormat::OASST_MESSAGES, &fail_log);
    FAIL() << "expected UserError";
  } catch (const UserError& error) {
    EXPECT_NE(
        std::string(error.what()).find(path + ":3: parent_id 'gone' is not a message in this file"),
        std::string::npos)
        << error.what();
  }
  BadRecordLog skip_log(config::BadRecord::SKIP);
  auto conversations = read_conversations(path, config::DataFormat::OASST_MESSAGES, &skip_log);
  EXPECT_EQ(conversations.size(), 1u);
  EXPECT_EQ(skip_log.skipped_by_reason(), (std::map<std::string, int64_t>{{"unknown_parent", 2}}));
}

TEST(BadRecords, SteerLmAndRegressionKinds) {
  TempDir dir;
  const std::string contents =
      R"({"conversations": "no"})"
      "\n"
      R"({"conversations": [{"from": "Robot", "value": "x"}]})"
      "\n"
      R"({"conversations": [{"from": "User", "value": "x"}, {"from": "Assistant", "value": "y", "label": "helpfulness=4"}]})"
      "\n"
      R"({"conversations": [{"from": "User", "value": "x"}]})"
      "\n";
  BadRecordLog log(config::BadRecord::SKIP);
  read_conversations(dir.file("s.jsonl", contents), config::DataFormat::STEERLM, &log);
  EXPECT_EQ(log.skipped_by_reason(),
            (std::map<std::string, int64_t>{
                {"wrong_type", 1}, {"bad_value", 2}, {"no_assistant_turn", 1}}));

  BadRecordLog rm_log(config::BadRecord::SKIP);
  read_conversations(dir.file("r.jsonl", R"({"text": "plain text", "label": [1,1,1,1,1,1,1,1,1]})"
                                         "\n"
                                         R"({"text": "x", "label": [1]})"
                                         "\n"),
                     config::DataFormat::REGRESSION_RM, &rm_log);
  EXPECT_EQ(rm_log.skipped_by_reason(),
            (std::map<std::string, int64_t>{{"not_in_template", 1}, {"wrong_type", 1}}));
}

// Samples of known byte lengths: ByteTokenizer gives one token per byte, plus BOS.
std::vector<TokenizedSample> byte_samples(const std::vector<Conversation>& conversations) {
  ByteTokenizer tokenizer;
  TokenizeOptions options{{kHelpSteerAttributes, ""}, SampleTask::kLanguageModel, true, false};
  std::vector<TokenizedSample> samples;
  std::vector<std::string> seen;
  for (const Conversation& conversation : conversations) {
    auto more = tokenize_conversation(conversation, tokenizer, options, &seen);
    samples.insert(samples.end(), more.begin(), more.end());
  }
  return samples;
}

Conversation make_conversation(const std::string& user, const std::string& answer,
                               const std::string& follow_up = "") {
  Conversation conversation;
  conversation.system = "";
  conversation.source = {"t.jsonl", 1};
  conversation.turns.push_back({Role::kUser, user, {}, ""});
  conversation.turns.push_back({Role::kAssistant, answer, {}, ""});
  if (!follow_up.empty()) conversation.turns.push_back({Role::kUser, follow_up, {}, ""});
  return conversation;
}

class Truncation : public ::testing::Test {
 protected:
  void SetUp() override {
    // The empty-system header, one user and one assistant turn take 61 template bytes.
    conversations_ = {make_conversation("short", "ok"),
                      make_conversation(std::string(100, 'u'), "long answer"),
                      make_conversation("q", "a", std::string(200, 'f'))};
    samples_ = byte_samples(conversations_);
    lengths_ = {samples_[0].tokens.size(), samples_[1].tokens.size(), samples_[2].tokens.size()};
  }
  std::vector<Conversation> conversations_;
  std::vector<TokenizedSample> samples_;
  std::vector<size_t> lengths_;
};

TEST_F(Truncation, ByteLengthsAreAsRendered) {
  // BOS + 61 template bytes + texts + "<extra_id_1>" when ending on the assistant turn.
  EXPECT_EQ(lengths_, (std::vector<size_t>{1 + 61 + 5 + 2 + 12, 1 + 61 + 100 + 11 + 12,
                                           1 + 61 + 1 + 1 + 17 + 200 + 1}));
}

TEST_F(Truncation, TruncateLeftKeepsBosAndTheTail) {
  auto samples = samples_;
  const std::vector<TokenizedSample> original = samples_;
  TruncationCounts counts = fit_to_length(&samples, 120, config::Truncation::TRUNCATE_LEFT,
                                          SampleTask::kLanguageModel, true);
  // Sample 2 ends on the long user turn: cut to its last 119 bytes, nothing is left to train.
  EXPECT_EQ(counts.truncated, 2);
  EXPECT_EQ(counts.dropped, 0);
  EXPECT_EQ(counts.untrainable, 1);
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[1].tokens.size(), 120u);
  EXPECT_EQ(samples[1].tokens.front(), 1);
  EXPECT_TRUE(std::equal(samples[1].tokens.begin() + 1, samples[1].tokens.end(),
                         original[1].tokens.end() - 119));
  EXPECT_EQ(samples[0].tokens, original[0].tokens);
}

TEST_F(Truncation, DropRemovesLongSamples) {
  auto samples = samples_;
  TruncationCounts counts =
      fit_to_length(&samples, 120, config::Truncation::DROP, SampleTask::kLanguageModel, true);
  EXPECT_EQ(counts.dropped, 2);
  EXPECT_EQ(counts.truncated, 0);
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].tokens.size(), lengths_[0]);
}

TEST_F(Truncation, FailNamesTheRecordAndTheFix) {
  auto samples = samples_;
  try {
    fit_to_length(&samples, 120, config::Truncation::FAIL, SampleTask::kLanguageModel, true);
    FAIL() << "expected UserError";
  } catch (const UserError& error) {
    EXPECT_EQ(std::string(error.what()),
              "t.jsonl:1: sample is 185 tokens, longer than train.seq_len 120 "
              "(data.truncation: FAIL); raise train.seq_len or set data.truncation to "
              "TRUNCATE_LEFT or DROP");
  }
  // Everything fits: nothing changes.
  TruncationCounts counts =
      fit_to_length(&samples, 400, config::Truncation::FAIL, SampleTask::kLanguageModel, true);
  EXPECT_EQ(counts.truncated + counts.dropped + counts.untrainable, 0);
  EXPECT_EQ(samples.size(), 3u);
}

}  // namespace
}  // namespace steerlm
