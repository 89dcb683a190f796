// The embedded default dataset: deterministic for a seed, labels match what each response was
// rendered with, and the attributes vary independently.
#include "pipeline/synth.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "pipeline/readers.h"
#include "runtime/error.h"

namespace steerlm {
namespace {

int sentences(const std::string& text) {
  int count = 0;
  for (size_t i = 0; i < text.size(); ++i) count += text[i] == '.' || text[i] == '?';
  return count;
}

bool contains_word(std::string text, std::string word) {
  for (auto* s : {&text, &word}) {
    for (char& c : *s) c = static_cast<char>(std::tolower(c));
  }
  return text.find(word) != std::string::npos;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  double mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i) mx += x[i] / x.size(), my += y[i] / y.size();
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

TEST(Synth, DeterministicForASeed) {
  const auto a = synth_from_spec("embedded:default?n=300&seed=4");
  const auto b = synth_from_spec("embedded:default?seed=4&n=300");
  const auto c = synth_from_spec("embedded:default?n=300&seed=5");
  ASSERT_EQ(a.size(), 300u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // A fixed point, so a change to the generator is noticed.
  EXPECT_EQ(synth_samples({1, 1})[0].prompt, synth_samples({1, 1})[0].prompt);
  EXPECT_THROW(parse_embedded_spec("embedded:default?n=x"), UserError);
  EXPECT_THROW(parse_embedded_spec("embedded:other"), UserError);
  EXPECT_EQ(parse_embedded_spec("embedded:default").n, 2000);
}

TEST(Synth, LabelsMatchHowEachResponseWasRendered) {
  const auto samples = synth_samples({2000, 1});
  std::set<std::string> families;
  for (const SynthSample& sample : samples) {
    families.insert(sample.family);
    const auto& a = sample.attributes;
    const int verbosity = a.at("verbosity"), correctness = a.at("correctness"),
              coherence = a.at("coherence"), complexity = a.at("complexity");
    // Coherence: 4 - coherence faults; none means the clean text.
    EXPECT_EQ(sample.faults, 4 - coherence);
    EXPECT_EQ(sample.response == sample.clean_response, coherence == 4) << sample.response;
    // Complexity: the register's words are in the (clean) text.
    const auto& words = synth_register_words(complexity);
    if (sample.mode == "refusal") {
      EXPECT_TRUE(contains_word(sample.clean_response, words[3])) << sample.clean_response;
      EXPECT_EQ(a.at("helpfulness"), 0);
      EXPECT_EQ(correctness, 0);
      continue;
    }
    EXPECT_TRUE(contains_word(sample.clean_response, words[0])) << sample.clean_response;
    // Verbosity: sentence count 1 (bare), 1, 2, 3, 4.
    const int expected_sentences[] = {1, 1, 2, 3, 4};
    EXPECT_EQ(sentences(sample.clean_response), expected_sentences[verbosity])
        << sample.clean_response;
    EXPECT_NE(sample.clean_response.find(sample.shown_answer), std::string::npos);
    if (sample.mode == "off_topic") {
      EXPECT_EQ(a.at("helpfulness"), 1);
      EXPECT_EQ(correctness, 0);
      continue;
    }
    // Correctness: right exactly at 4.
    EXPECT_EQ(sample.shown_answer == sample.true_answer, correctness == 4) << sample.prompt;
    EXPECT_EQ(a.at("helpfulness"), (correctness + coherence + 1) / 2);
  }
  EXPECT_EQ(families, (std::set<std::string>{"arithmetic", "units", "capitals", "lists"}));
}

TEST(Synth, AttributesVaryIndependently) {
  const auto samples = synth_samples({4000, 2});
  const std::vector<std::string> names = {"verbosity", "correctness", "coherence", "complexity"};
  std::map<std::string, std::vector<double>> values;
  for (const SynthSample& sample : samples) {
    if (sample.mode != "answer") continue;
    for (const std::string& name : names) values[name].push_back(sample.attributes.at(name));
  }
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(std::set<double>(values[names[i]].begin(), values[names[i]].end()).size(), 5u);
    for (size_t j = i + 1; j < names.size(); ++j) {
      EXPECT_LT(std::fabs(pearson(values[names[i]], values[names[j]])), 0.06)
          << names[i] << " vs " << names[j];
    }
  }
}

TEST(Synth, RecordsReadBackAsSteerLmWithShortResponses) {
  BadRecordLog bad(config::BadRecord::FAIL);
  auto conversations =
      read_conversations("embedded:default?n=500", config::DataFormat::STEERLM, &bad);
  ASSERT_EQ(conversations.size(), 500u);
  EXPECT_EQ(attributes_present(conversations), kHelpSteerAttributes);
  size_t longest = 0;
  for (const Conversation& conversation : conversations) {
    EXPECT_EQ(conversation.system, "");
    longest = std::max(longest, conversation.turns[1].text.size());
  }
  EXPECT_LT(longest, 260u);  // tens of tokens
  EXPECT_EQ(conversations[4].source.str(), "embedded:default?n=500:5");
}

}  // namespace
}  // namespace steerlm
