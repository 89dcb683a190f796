// Annotation output: label strings (clamped, rounded half to even, exact strings), raw values in
// their shortest float form, every input field kept, SteerLM records built for other formats.
#include "pipeline/annotate.h"

#include <gtest/gtest.h>

namespace steerlm {
namespace {

const std::vector<std::string> kFive = {"helpfulness", "correctness", "coherence", "complexity",
                                        "verbosity"};

TEST(AnnotationLabel, ClampsAndRoundsHalfToEven) {
  EXPECT_EQ(annotation_label({2.5f, 3.5f, 0.5f, 1.5f, 4.5f}, kFive),
            "helpfulness:2,correctness:4,coherence:0,complexity:2,verbosity:4");
  EXPECT_EQ(annotation_label({-0.7f, 4.49f, 2.51f, 2.49f, 9.0f}, kFive),
            "helpfulness:0,correctness:4,coherence:3,complexity:2,verbosity:4");
  EXPECT_EQ(annotation_label({-0.5f, 3.4999998f, 1.5000001f, 0.0f, 3.0f}, kFive),
            "helpfulness:0,correctness:3,coherence:2,complexity:0,verbosity:3");
}

TEST(AnnotationLabel, RawValuesPrintInShortestFloatForm) {
  EXPECT_EQ(nlohmann::json(json_float(2.1f)).dump(), "2.1");
  EXPECT_EQ(nlohmann::json(json_float(-0.123456f)).dump(), "-0.123456");
  EXPECT_EQ(nlohmann::json(json_float(3.0f)).dump(), "3.0");
}

TEST(AnnotatedRecord, SteerLmRecordKeepsEveryFieldAndLabelsAssistantTurns) {
  Conversation conversation;
  conversation.system = "sys";
  conversation.turns = {{Role::kUser, "hi", {}, {}},
                        {Role::kAssistant, "hello", {{"helpfulness", 1.0f}}, {}},
                        {Role::kUser, "more", {}, {}},
                        {Role::kAssistant, "sure", {}, {}}};
  conversation.record = nlohmann::json::parse(
      R"({"system":"sys","mask":"User","dataset":"x","conversations":[)"
      R"({"from":"User","value":"hi","extra":1},)"
      R"({"from":"Assistant","value":"hello","label":"helpfulness:1"},)"
      R"({"from":"User","value":"more"},{"from":"Assistant","value":"sure"}]})");
  const std::vector<std::string> two = {"helpfulness", "verbosity"};
  const nlohmann::json record = annotated_record(conversation, {{2.5f, 0.25f}, {3.5f, 4.75f}}, two,
                                                 TemplateOptions{two, "default"});
  EXPECT_EQ(
      record.dump(),
      R"({"conversations":[{"extra":1,"from":"User","value":"hi"},)"
      R"({"attribute_values":{"helpfulness":2.5,"verbosity":0.25},"from":"Assistant",)"
      R"("label":"helpfulness:2,verbosity:0","value":"hello"},{"from":"User","value":"more"},)"
      R"({"attribute_values":{"helpfulness":3.5,"verbosity":4.75},"from":"Assistant",)"
      R"("label":"helpfulness:4,verbosity:4","value":"sure"}],"dataset":"x","mask":"User",)"
      R"("system":"sys"})");
}

TEST(AnnotatedRecord, OtherFormatsBecomeSteerLmRecordsWithTheirFieldsKept) {
  Conversation conversation;  // e.g. HelpSteer: no system field, so the default applies
  conversation.turns = {{Role::kUser, "q", {}, {}}, {Role::kAssistant, "a", {}, {}}};
  conversation.record = nlohmann::json::parse(R"({"prompt":"q","response":"a","helpfulness":3})");
  const std::vector<std::string> one = {"helpfulness"};
  const nlohmann::json record =
      annotated_record(conversation, {{1.5f}}, one, TemplateOptions{one, "default system"});
  EXPECT_EQ(record.dump(),
            R"({"conversations":[{"from":"User","value":"q"},{"attribute_values":)"
            R"({"helpfulness":1.5},"from":"Assistant","label":"helpfulness:2","value":"a"}],)"
            R"("helpfulness":3,"mask":"User","prompt":"q","response":"a",)"
            R"("system":"default system","type":"VALUE_TO_TEXT"})");
}

}  // namespace
}  // namespace steerlm
