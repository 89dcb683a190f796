// Exact rendered strings and trained spans for a hand-written record of each format
// (DESIGN §1, §2): single- and multi-turn, with and without labels, ending on a user turn.
#include "pipeline/chat_template.h"

#include <gtest/gtest.h>

#include "pipeline/readers.h"
#include "tests/pipeline/data_test_util.h"

namespace steerlm {
namespace {

using testing_util::TempDir;

const std::string kSystem =
    "A chat between a curious user and an artificial intelligence assistant. The assistant "
    "gives helpful, detailed, and polite answers to the user's questions.";
const std::string kHeader = "<extra_id_0>System\n" + kSystem + "\n";

std::vector<Conversation> read_one(const std::string& contents, DataFormatKind format) {
  TempDir dir;
  const std::string path = dir.file("input.jsonl", contents);
  EXPECT_EQ(detect_format(path), format);
  BadRecordLog bad(config::BadRecord::FAIL);
  return read_conversations(path, format, &bad);
}

TemplateOptions options_for(const std::vector<std::string>& attributes) {
  return make_template_options(config::ChatTemplate(), attributes);
}

// Segments as (text, trained) pairs, for exact comparison.
std::vector<std::pair<std::string, bool>> pieces(const RenderedText& rendered) {
  std::vector<std::pair<std::string, bool>> out;
  for (const Segment& segment : rendered.segments()) out.push_back({segment.text, segment.trained});
  return out;
}

TEST(ChatTemplate, HelpSteerSingleTurnWithLabel) {
  auto conversations =
      read_one(R"({"prompt": "Hi", "response": "Hello!", "helpfulness": 3, "correctness": 4, )"
               R"("coherence": 4, "complexity": 1, "verbosity": 0})"
               "\n",
               config::DataFormat::HELPSTEER);
  ASSERT_EQ(conversations.size(), 1u);
  const RenderedText rendered =
      render_acsft(conversations[0], options_for(format_attributes(config::DataFormat::HELPSTEER)));
  const std::string context =
      kHeader +
      "<extra_id_1>User\nHi\n<extra_id_1>Assistant\n<extra_id_2>helpfulness:3,correctness:4,"
      "coherence:4,complexity:1,verbosity:0\n";
  EXPECT_EQ(rendered.text, context + "Hello!\n<extra_id_1>");
  std::vector<std::pair<std::string, bool>> expected = {{context, false},
                                                        {"Hello!\n<extra_id_1>", true}};
  EXPECT_EQ(pieces(rendered), expected);
  EXPECT_EQ(rendered.trained, (std::vector<TextSpan>{{context.size(), rendered.text.size()}}));
}

TEST(ChatTemplate, HelpSteer2MultiTurnPromptSplitsIntoTurns) {
  auto conversations =
      read_one(R"({"prompt": "Q1<extra_id_1>A1<extra_id_1>Q2", "response": "A2", "helpfulness": 2})"
               "\n",
               config::DataFormat::HELPSTEER);
  ASSERT_EQ(conversations.size(), 1u);
  ASSERT_EQ(conversations[0].turns.size(), 4u);
  const TemplateOptions options = options_for(kHelpSteerAttributes);
  const RenderedText rendered = render_acsft(conversations[0], options);
  std::vector<std::pair<std::string, bool>> expected = {
      {kHeader + "<extra_id_1>User\nQ1\n<extra_id_1>Assistant\n", false},
      {"A1\n<extra_id_1>", true},
      {"User\nQ2\n<extra_id_1>Assistant\n<extra_id_2>helpfulness:2\n", false},
      {"A2\n<extra_id_1>", true}};
  EXPECT_EQ(pieces(rendered), expected);
  // The attribute-model input of the last turn: no labels, ends "...A2\n<extra_id_2>".
  EXPECT_EQ(render_attribute_input(conversations[0], 3, options),
            kHeader +
                "<extra_id_1>User\nQ1\n<extra_id_1>Assistant\nA1\n<extra_id_1>User\nQ2\n"
                "<extra_id_1>Assistant\nA2\n<extra_id_2>");
}

TEST(ChatTemplate, SteerLmEmptySystemEndingOnUserTurnKeepsUnknownKeys) {
  auto conversations =
      read_one(R"({"system": "", "mask": "User", "dataset": "mine", "conversations": [)"
               R"({"from": "User", "value": "a", "label": null},)"
               R"({"from": "Assistant", "value": "b", "label": "verbosity:1,quality:4"},)"
               R"({"from": "User", "value": "c", "label": null}]})"
               "\n",
               config::DataFormat::STEERLM);
  ASSERT_EQ(conversations.size(), 1u);
  EXPECT_EQ(conversations[0].record["dataset"], "mine");
  EXPECT_EQ(attributes_present(conversations), (std::vector<std::string>{"quality", "verbosity"}));
  const RenderedText rendered =
      render_acsft(conversations[0], options_for(attributes_present(conversations)));
  std::vector<std::pair<std::string, bool>> expected = {
      {"<extra_id_0>System\n\n<extra_id_1>User\na\n<extra_id_1>Assistant\n"
       "<extra_id_2>quality:4,verbosity:1\n",
       false},
      {"b\n<extra_id_1>", true},
      {"User\nc\n", false}};
  EXPECT_EQ(pieces(rendered), expected);
}

TEST(ChatTemplate, SteerLmUnlabelledAssistantTurnHasNoLabelLine) {
  auto conversations =
      read_one(R"({"system": "S", "conversations": [{"from": "User", "value": "q"},)"
               R"({"from": "Assistant", "value": "r", "label": null}]})"
               "\n",
               config::DataFormat::STEERLM);
  ASSERT_EQ(conversations.size(), 1u);
  EXPECT_EQ(render_acsft(conversations[0], options_for(kHelpSteerAttributes)).text,
            "<extra_id_0>System\nS\n<extra_id_1>User\nq\n<extra_id_1>Assistant\nr\n<extra_id_1>");
}

const char* kOasstMessages =
    R"({"message_id": "q", "parent_id": null, "message_tree_id": "q", "role": "prompter", )"
    R"("text": "Q", "labels": {"name": ["quality"], "value": [0.9], "count": [3]}})"
    "\n"
    R"({"message_id": "a1", "parent_id": "q", "message_tree_id": "q", "role": "assistant", )"
    R"("text": "A1", "labels": {"name": ["spam", "quality", "humor"], )"
    R"("value": [0.0, 0.625, 0.125], "count": [3, 3, 3]}})"
    "\n"
    R"({"message_id": "a2", "parent_id": "q", "message_tree_id": "q", "role": "assistant", )"
    R"("text": "A2", "labels": null})"
    "\n"
    R"({"message_id": "q2", "parent_id": "a1", "message_tree_id": "q", "role": "prompter", )"
    R"("text": "Q2"})"
    "\n";

void expect_oasst_paths(const std::vector<Conversation>& conversations) {
  ASSERT_EQ(conversations.size(), 2u);
  const TemplateOptions options = options_for(kOasstAttributes);
  // 0.625 * 4 = 2.5 rounds to 2 and 0.125 * 4 = 0.5 to 0 (halves to even); user labels dropped.
  std::vector<std::pair<std::string, bool>> first = {
      {kHeader + "<extra_id_1>User\nQ\n<extra_id_1>Assistant\n<extra_id_2>quality:2,humor:0\n",
       false},
      {"A1\n<extra_id_1>", true},
      {"User\nQ2\n", false}};
  EXPECT_EQ(pieces(render_acsft(conversations[0], options)), first);
  std::vector<std::pair<std::string, bool>> second = {
      {kHeader + "<extra_id_1>User\nQ\n<extra_id_1>Assistant\n", false},
      {"A2\n<extra_id_1>", true}};
  EXPECT_EQ(pieces(render_acsft(conversations[1], options)), second);
}

TEST(ChatTemplate, OasstMessagesOneConversationPerPath) {
  auto conversations = read_one(kOasstMessages, config::DataFormat::OASST_MESSAGES);
  expect_oasst_paths(conversations);
  EXPECT_EQ(conversations[0].source.line, 4);  // the leaf names the path
}

TEST(ChatTemplate, OasstTreesOneConversationPerPath) {
  auto conversations = read_one(
      R"({"message_tree_id": "q", "prompt": {"message_id": "q", "role": "prompter", "text": "Q",)"
      R"( "replies": [{"message_id": "a1", "role": "assistant", "text": "A1", "labels": )"
      R"({"quality": {"value": 0.625, "count": 3}, "humor": {"value": 0.125, "count": 3}}, )"
      R"("replies": [{"message_id": "q2", "role": "prompter", "text": "Q2", "replies": []}]},)"
      R"( {"message_id": "a2", "role": "assistant", "text": "A2", "replies": []}]}})"
      "\n",
      config::DataFormat::OASST_TREES);
  expect_oasst_paths(conversations);
}

TEST(ChatTemplate, RegressionRmParsesBackToTheSameText) {
  const std::string text = kHeader +
                           "<extra_id_1>User\nQ\n\n<extra_id_1>Assistant\nA1\n<extra_id_1>User\n"
                           "Q2\n<extra_id_1>Assistant\nA2\n<extra_id_2>";
  nlohmann::json record = {{"text", text}, {"label", {-100, -100, -100, -100, 4, 3, 4, 2, 1}}};
  auto conversations = read_one(record.dump() + "\n", config::DataFormat::REGRESSION_RM);
  ASSERT_EQ(conversations.size(), 1u);
  const Conversation& conversation = conversations[0];
  ASSERT_EQ(conversation.turns.size(), 4u);
  EXPECT_EQ(conversation.turns[0].text, "Q\n");
  const TemplateOptions options = options_for(kCombinedAttributes);
  EXPECT_EQ(render_attribute_input(conversation, 3, options), text);
  EXPECT_EQ(format_label(conversation.turns[3].attributes, kCombinedAttributes),
            "helpfulness:4,correctness:3,coherence:4,complexity:2,verbosity:1");
  EXPECT_TRUE(conversation.turns[1].attributes.empty());
}

TEST(ChatTemplate, PreferencePairsBothForms) {
  TempDir dir;
  const std::string path =
      dir.file("pairs.jsonl",
               R"({"prompt": "P", "chosen": "C", "rejected": "R", "attribute": "verbosity"})"
               "\n"
               R"({"prompt": "P", "response_1": "X", "response_2": "Y", "preference_strength": 2})"
               "\n"
               R"({"prompt": "P", "response_1": "X", "response_2": "Y", "preference_strength": 0})"
               "\n");
  EXPECT_EQ(detect_format(path), config::DataFormat::PREFERENCE_PAIRS);
  BadRecordLog bad;
  auto pairs = read_preference_pairs(path, &bad);
  ASSERT_EQ(pairs.size(), 3u);
  EXPECT_EQ(pairs[0].chosen, "C");
  EXPECT_EQ(pairs[0].attribute, "verbosity");
  EXPECT_EQ(pairs[1].chosen, "Y");
  EXPECT_EQ(pairs[1].rejected, "X");
  EXPECT_EQ(pairs[1].attribute, "helpfulness");
  EXPECT_EQ(pairs[1].strength, 2);
  EXPECT_TRUE(pairs[2].tie);
  EXPECT_EQ(render_acsft(with_response(pairs[0], false), options_for(kHelpSteerAttributes)).text,
            kHeader + "<extra_id_1>User\nP\n<extra_id_1>Assistant\nR\n<extra_id_1>");
}

TEST(ChatTemplate, GenerationPromptEndsWithTheRequestedLabel) {
  Conversation conversation;
  conversation.system = "";
  conversation.turns.push_back({Role::kUser, "q", {}, ""});
  EXPECT_EQ(render_generation_prompt(conversation, {{"verbosity", 4}, {"helpfulness", 2}},
                                     options_for(kHelpSteerAttributes)),
            "<extra_id_0>System\n\n<extra_id_1>User\nq\n<extra_id_1>Assistant\n"
            "<extra_id_2>helpfulness:2,verbosity:4\n");
}

TEST(ChatTemplate, RoundHalfEvenMatchesPython) {
  EXPECT_EQ(round_half_even(2.5), 2);
  EXPECT_EQ(round_half_even(0.5), 0);
  EXPECT_EQ(round_half_even(1.5), 2);
  EXPECT_EQ(round_half_even(3.5), 4);
  EXPECT_EQ(round_half_even(2.6), 3);
}

}  // namespace
}  // namespace steerlm
