// eval-attr's metrics and baselines against values worked out by hand on tiny fixtures.
#include "pipeline/attribute_eval.h"

#include <gtest/gtest.h>

#include <cmath>

namespace steerlm {
namespace {

TEST(AttributeMetrics, MatchHandComputedValues) {
  // Errors 0, -0.4, 0.5, 0.2: MAE 1.1/4, RMSE sqrt(0.45/4). Rounded predictions 1, 3, 4, 0
  // against 1, 3, 3, 0: accuracy 3/4. Pearson: cov 6.525 / sqrt(6.7275 * 6.75).
  const AttributeMetrics metrics = attribute_metrics({1.0, 2.6, 3.5, 0.2}, {1, 3, 3, 0});
  EXPECT_NEAR(metrics.mae, 0.275, 1e-12);
  EXPECT_NEAR(metrics.rmse, 0.33541019662496846, 1e-12);
  EXPECT_NEAR(metrics.pearson, 0.9682818167765578, 1e-12);
  EXPECT_DOUBLE_EQ(metrics.accuracy, 0.75);
  EXPECT_EQ(metrics.count, 4);
}

TEST(AttributeMetrics, AccuracyClampsAndRoundsHalfToEven) {
  // 2.5 -> 2 (== 2), -1 -> 0 (== 0), 4.7 -> 4 (== 4), 1.5 -> 2 (!= 1).
  const AttributeMetrics metrics = attribute_metrics({2.5, -1.0, 4.7, 1.5}, {2, 0, 4, 1});
  EXPECT_DOUBLE_EQ(metrics.accuracy, 0.75);
}

TEST(AttributeMetrics, PearsonIsNanForAConstantPrediction) {
  const AttributeMetrics metrics = attribute_metrics({2, 2, 2}, {1, 2, 4});
  EXPECT_TRUE(std::isnan(metrics.pearson));
  EXPECT_NEAR(metrics.mae, 1.0, 1e-12);  // |1| + 0 + |-2|, over 3
}

Conversation labelled(const std::string& response, std::map<std::string, float> values) {
  Conversation conversation;
  conversation.turns = {{Role::kUser, "q", {}, {}},
                        {Role::kAssistant, response, std::move(values), {}}};
  return conversation;
}

TEST(AttributeBaselines, MeanAndLeastSquaresLineIgnoreMissingValues) {
  // verbosity: lengths 2, 4, 6 with values 1, 2, 4: mean 7/3; slope sum(dx dy)/sum(dx^2) = 6/8;
  // intercept 7/3 - 0.75 * 4 = -2/3. The third record lacks helpfulness (-100 in the input).
  const std::vector<Conversation> conversations = {
      labelled("ab", {{"verbosity", 1}, {"helpfulness", 3}}),
      labelled("abcd", {{"verbosity", 2}, {"helpfulness", 1}}),
      labelled("abcdef", {{"verbosity", 4}})};
  const auto baselines = fit_attribute_baselines(conversations, {"helpfulness", "verbosity"});
  ASSERT_EQ(baselines.size(), 2u);
  EXPECT_EQ(baselines[0].name(), "helpfulness");
  EXPECT_EQ(baselines[0].samples(), 2);
  EXPECT_NEAR(baselines[0].mean(), 2.0, 1e-12);
  EXPECT_NEAR(baselines[0].length_slope(), -1.0, 1e-12);  // (2,3), (4,1)
  EXPECT_NEAR(baselines[0].length_intercept(), 5.0, 1e-12);
  EXPECT_EQ(baselines[1].samples(), 3);
  EXPECT_NEAR(baselines[1].mean(), 7.0 / 3.0, 1e-12);
  EXPECT_NEAR(baselines[1].length_slope(), 0.75, 1e-12);
  EXPECT_NEAR(baselines[1].length_intercept(), -2.0 / 3.0, 1e-12);
}

TEST(AttributeBaselines, EqualLengthsGiveAFlatLineAtTheMean) {
  const auto baselines = fit_attribute_baselines(
      {labelled("ab", {{"verbosity", 1}}), labelled("cd", {{"verbosity", 3}})}, {"verbosity"});
  EXPECT_NEAR(baselines[0].length_slope(), 0.0, 1e-12);
  EXPECT_NEAR(baselines[0].length_intercept(), 2.0, 1e-12);
}

}  // namespace
}  // namespace steerlm
