// eval-steer's and bootstrap's pure parts: the report (Pearson against a hand-computed value,
// per-level means, exactly the keys of DESIGN §4), the sample plans, the target label, prompt
// reading (cut after the last user turn, de-duplicated) and the prompt split matching sft's.
#include "pipeline/steer_eval.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "pipeline/chat_generation.h"
#include "pipeline/chat_template.h"
#include "pipeline/dataset.h"
#include "runtime/config.h"
#include "runtime/error.h"
#include "tests/pipeline/data_test_util.h"

namespace steerlm {
namespace {

using json = nlohmann::json;

const std::vector<std::string> kScored = {"helpfulness", "verbosity"};

SteerSample scored_sample(const std::string& steered, float level, float predicted,
                          const std::string& text) {
  SteerSample sample;
  sample.steered = steered;
  sample.requested = {{"helpfulness", 4.0f}, {steered, level}};
  sample.response.text = text;
  sample.predicted = {9.0f, predicted};  // helpfulness is not the steered one: never read
  return sample;
}

TEST(SteerReport, PearsonAndLevelMeansMatchHandComputedValues) {
  // requested (0, 0, 4, 4) against predicted (1, 2, 3, 4):
  //   means 2 and 2.5; covariance sum (-2)(-1.5) + (-2)(-0.5) + 2(0.5) + 2(1.5) = 8;
  //   sum of squares 16 and 5; r = 8 / sqrt(16 * 5) = 0.894427190999916.
  const std::vector<SteerSample> samples = {
      scored_sample("verbosity", 0, 1.0f, "a"), scored_sample("verbosity", 0, 2.0f, "abc"),
      scored_sample("verbosity", 4, 3.0f, "abcde"), scored_sample("verbosity", 4, 4.0f, "1234567")};
  SteerPlan plan;
  plan.attributes = {"verbosity"};
  plan.levels = {0, 4};
  const json report = steer_report(samples, kScored, plan);

  const json& verbosity = report["attributes"]["verbosity"];
  EXPECT_NEAR(verbosity["pearson"].get<double>(), 0.894427190999916, 1e-12);
  ASSERT_EQ(verbosity["levels"].size(), 2u);
  EXPECT_EQ(verbosity["levels"][0], json::parse(R"({"requested": 0, "mean_predicted": 1.5,
                                                    "mean_length": 2.0})"));
  EXPECT_EQ(verbosity["levels"][1], json::parse(R"({"requested": 4, "mean_predicted": 3.5,
                                                    "mean_length": 6.0})"));
}

TEST(SteerReport, HasExactlyThePromisedKeysAndNullForAConstantPrediction) {
  std::vector<SteerSample> samples = {scored_sample("verbosity", 0, 2.0f, "x"),
                                      scored_sample("verbosity", 4, 2.0f, "y")};
  samples.push_back(scored_sample("helpfulness", 1, 0.0f, "z"));
  samples.back().predicted = {1.0f, 0.0f};
  samples.push_back(scored_sample("helpfulness", 3, 0.0f, "zz"));
  samples.back().predicted = {2.0f, 0.0f};
  SteerPlan plan;
  plan.attributes = {"verbosity", "helpfulness"};
  plan.levels = {0, 4};
  samples[2].requested["helpfulness"] = 0;
  samples[3].requested["helpfulness"] = 4;
  const json report = steer_report(samples, kScored, plan);

  ASSERT_EQ(report.size(), 1u);
  ASSERT_EQ(report["attributes"].size(), 2u);
  for (const auto& [name, entry] : report["attributes"].items()) {
    std::set<std::string> keys;
    for (const auto& [key, value] : entry.items()) keys.insert(key);
    EXPECT_EQ(keys, (std::set<std::string>{"pearson", "levels"})) << name;
    for (const json& level : entry["levels"]) {
      std::set<std::string> level_keys;
      for (const auto& [key, value] : level.items()) level_keys.insert(key);
      EXPECT_EQ(level_keys, (std::set<std::string>{"requested", "mean_predicted", "mean_length"}));
    }
  }
  EXPECT_TRUE(report["attributes"]["verbosity"]["pearson"].is_null());  // predictions constant
  EXPECT_NEAR(report["attributes"]["helpfulness"]["pearson"].get<double>(), 1.0, 1e-12);
  EXPECT_NE(steer_table(report).find("verbosity"), std::string::npos);
  EXPECT_NE(steer_table(report).find("nan"), std::string::npos);
}

config::StageConfig steer_config(const std::string& text) {
  config::StageConfig config;
  parse_config_text(text, "test.pbtxt", &config, nullptr);
  return config;
}

TEST(SteerPlan, VariesOneAttributeAtATimeHoldingTheOthersFixed) {
  const std::vector<std::string> five = {"helpfulness", "correctness", "coherence", "complexity",
                                         "verbosity"};
  const config::StageConfig config = steer_config(
      R"(generate { default_attributes: "helpfulness=4,correctness=4,coherence=4,)"
      R"(complexity=2,verbosity=2" } eval { steer_attributes: ["verbosity", "complexity"] })");
  const SteerPlan plan = make_steer_plan(config, five, five);
  EXPECT_EQ(plan.levels, (std::vector<int>{0, 1, 2, 3, 4}));
  const std::vector<SteerSample> samples = plan_steer_samples(3, plan);
  ASSERT_EQ(samples.size(), 3u * 2 * 5);
  // Prompt 1, complexity at level 3: verbosity stays at its default 2.
  const SteerSample& sample = samples[1 * 10 + 5 + 3];
  EXPECT_EQ(sample.prompt, 1u);
  EXPECT_EQ(sample.steered, "complexity");
  EXPECT_EQ(sample.requested, (std::map<std::string, float>{{"helpfulness", 4},
                                                            {"correctness", 4},
                                                            {"coherence", 4},
                                                            {"complexity", 3},
                                                            {"verbosity", 2}}));
}

TEST(SteerPlan, ConfigMistakesNameTheFieldAndTheValidChoices) {
  const std::vector<std::string> two = {"helpfulness", "verbosity"};
  auto message = [&](const std::string& text) {
    try {
      make_steer_plan(steer_config(text), two, two);
    } catch (const UserError& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message(R"(eval { steer_attributes: "humor" })"),
            "eval.steer_attributes: 'humor' is not in the model's attribute set "
            "(helpfulness, verbosity)");
  EXPECT_EQ(message(R"(generate { default_attributes: "helpfulness=4,verbosity=2" }
                       eval { steer_attributes: "verbosity" levels: [0, 5] })"),
            "eval.levels: verbosity=5 is out of range; valid values are 0..4");
  EXPECT_EQ(message(R"(generate { default_attributes: "helpfulness=4" }
                       eval { steer_attributes: "verbosity" })"),
            "generate.default_attributes: no value for 'verbosity'; eval-steer holds every "
            "attribute it does not vary at these values, so give each of the model's attributes "
            "one");
}

TEST(Bootstrap, TargetIsTheBestLabelWithOverridesAndKSamplesPerPrompt) {
  EXPECT_EQ(bootstrap_target(kOasstAttributes, ""),
            (std::map<std::string, float>{
                {"quality", 4}, {"toxicity", 0}, {"humor", 4}, {"creativity", 4}}));
  EXPECT_EQ(bootstrap_target(kScored, "verbosity=2"),
            (std::map<std::string, float>{{"helpfulness", 4}, {"verbosity", 2}}));
  const std::vector<SteerSample> samples =
      plan_bootstrap_samples(2, bootstrap_target(kScored, ""), 3);
  ASSERT_EQ(samples.size(), 6u);
  EXPECT_EQ(samples[4].prompt, 1u);
  EXPECT_EQ(samples[4].sample, 1);
}

TEST(ReadPrompts, CutsAfterTheLastUserTurnDropsDuplicatesAndStopsAtMax) {
  testing_util::TempDir dir;
  const std::string path = dir.file(
      "in.jsonl",
      R"({"system": "s", "mask": "User", "conversations": [{"from": "User", "value": "q1"},)"
      R"( {"from": "Assistant", "value": "a1", "label": "verbosity:1"},)"
      R"( {"from": "User", "value": "q2"}, {"from": "Assistant", "value": "a2"}]})"
      "\n"
      R"({"system": "s", "mask": "User", "conversations": [{"from": "User", "value": "q1"},)"
      R"( {"from": "Assistant", "value": "a1", "label": "verbosity:1"},)"
      R"( {"from": "User", "value": "q2"}, {"from": "Assistant", "value": "other"}]})"
      "\n"
      R"({"system": "", "mask": "User", "conversations": [{"from": "User", "value": "q3"},)"
      R"( {"from": "Assistant", "value": "a3"}]})"
      "\n");
  BadRecordLog bad_records;
  const std::vector<Conversation> prompts =
      read_prompts({path}, config::DataConfig(), 0, &bad_records);
  ASSERT_EQ(prompts.size(), 2u);  // the second record repeats the first's prompt
  ASSERT_EQ(prompts[0].turns.size(), 3u);
  EXPECT_EQ(prompts[0].turns[2].text, "q2");
  EXPECT_EQ(prompts[0].turns[1].attributes.at("verbosity"), 1.0f);
  EXPECT_EQ(prompts[1].system, "");
  EXPECT_EQ(prompts[1].source.str(), path + ":3");
  EXPECT_EQ(read_prompts({path}, config::DataConfig(), 1, &bad_records).size(), 1u);
}

TEST(ReadPrompts, ReadsGeneratesPromptFilesAndRefusesPerLineAttributes) {
  testing_util::TempDir dir;
  const std::string path = dir.file("prompts.jsonl",
                                    "{\"prompt\": \"a\"}\n\n"
                                    "{\"prompt\": \"b\", \"system\": \"s\"}\n"
                                    "{\"prompt\": \"a\"}\n");
  BadRecordLog bad_records;
  const std::vector<Conversation> prompts =
      read_prompts({path}, config::DataConfig(), 0, &bad_records);
  ASSERT_EQ(prompts.size(), 2u);
  EXPECT_EQ(prompts[1].turns.size(), 1u);
  EXPECT_EQ(prompts[1].turns[0].text, "b");
  EXPECT_EQ(prompts[1].system, "s");
  EXPECT_EQ(prompts[0].system, std::nullopt);
  EXPECT_EQ(prompts[1].source.str(), path + ":3");

  const std::string labelled =
      dir.file("labelled.jsonl", R"({"prompt": "a", "attributes": {"verbosity": 1}})"
                                 "\n");
  try {
    read_prompts({labelled}, config::DataConfig(), 0, &bad_records);
    FAIL() << "per-line attributes were accepted";
  } catch (const UserError& error) {
    EXPECT_EQ(std::string(error.what()),
              labelled + ":1: attributes: eval-steer and bootstrap choose the requested label " +
                  "themselves (eval.*, generate.default_attributes); remove the field");
  }
}

TEST(ReadPromptLines, GenerateTakesMultiTurnConversationsEndingOnTheUser) {
  testing_util::TempDir dir;
  const std::string path =
      dir.file("multi.jsonl",
               R"({"system": "s", "conversations": [{"from": "User", "value": "q1"},)"
               R"( {"from": "Assistant", "value": "a1", "label": "verbosity:1"},)"
               R"( {"from": "User", "value": "q2"}], "attributes": {"verbosity": 4}, "id": 7})"
               "\n");
  EXPECT_TRUE(is_prompt_lines_file(path));
  const std::vector<PromptLine> lines = read_prompt_lines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].record["id"], 7);  // every field kept for the output
  const TemplateOptions options = make_template_options(config::ChatTemplate(), {"verbosity"});
  EXPECT_EQ(render_generation_prompt(lines[0].context, lines[0].attributes, options),
            "<extra_id_0>System\ns\n<extra_id_1>User\nq1\n<extra_id_1>Assistant\n"
            "<extra_id_2>verbosity:1\na1\n<extra_id_1>User\nq2\n<extra_id_1>Assistant\n"
            "<extra_id_2>verbosity:4\n");

  // A conversation that ends on the assistant has nothing to answer.
  const std::string ended =
      dir.file("ended.jsonl", R"({"conversations": [{"from": "User", "value": "q"}, )"
                              R"({"from": "Assistant", "value": "a"}]})"
                              "\n");
  EXPECT_FALSE(is_prompt_lines_file(ended));
  try {
    read_prompt_lines(ended);
    FAIL() << "a conversation ending on the assistant was accepted";
  } catch (const UserError& error) {
    EXPECT_EQ(std::string(error.what()),
              ended + ":1: conversations: must end on a User turn (the one to answer)");
  }
}

TEST(SplitPrompts, HeldOutAreSftsValidationSplitAndTrainingTheRest) {
  const config::StageConfig config = steer_config(
      R"(data { train: "embedded:default?n=120" validation_fraction: 0.2 } train { seed: 3 })");
  BadRecordLog bad_records;
  const std::vector<Conversation> prompts = held_out_prompts_for(config, &bad_records);

  // load_stage_data's validation split (byte tokenizer: only the prompt hashes matter here).
  config::StageConfig stage = config;
  stage.mutable_train()->set_seq_len(4096);
  testing_util::ByteTokenizer tokenizer;
  const StageData data = load_stage_data(stage, tokenizer, SampleTask::kLanguageModel);
  std::set<uint64_t> validation, held_out, train, training;
  for (const TokenizedSample& sample : data.validation) validation.insert(sample.prompt_hash);
  for (const Conversation& prompt : prompts) held_out.insert(conversation_prompt_hash(prompt));
  EXPECT_FALSE(held_out.empty());
  EXPECT_EQ(held_out, validation);
  for (const Conversation& prompt : prompts) EXPECT_EQ(prompt.turns.back().role, Role::kUser);

  // bootstrap's prompts are the other side: the ones sft trains on.
  for (const TokenizedSample& sample : data.train) train.insert(sample.prompt_hash);
  for (const Conversation& prompt : training_prompts_for(config, &bad_records)) {
    training.insert(conversation_prompt_hash(prompt));
  }
  EXPECT_EQ(training, train);
}

}  // namespace
}  // namespace steerlm
