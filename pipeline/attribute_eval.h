// Evaluation of an attribute model (steerlm eval-attr; DESIGN §4 eval.json keys):
//
//   AttributeScorer scorer(checkpoint_dir);
//   nlohmann::json result = evaluate_attribute_model(options, scorer);   // eval.json's object
//   std::cout << eval_attr_table(result);
//
// Per attribute: MAE, RMSE, Pearson and exact-after-rounding accuracy (the prediction clamped to
// [0, 4] and rounded half to even, equal to the label rounded the same way). The same metrics
// for two baselines stored in the checkpoint's manifest by train-attr: the training mean, and a
// least-squares line on the response's length in bytes. Preference pairs instead give, per
// attribute, the share of (non-tied) pairs where `chosen` scores above `rejected`.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "configs/steerlm.pb.h"
#include "pipeline/annotate.h"
#include "pipeline/bad_records.h"
#include "pipeline/conversation.h"

namespace steerlm {

struct StageData;

struct AttributeMetrics {
  double mae = 0;
  double rmse = 0;
  double pearson = 0;  // NaN when either side is constant
  double accuracy = 0;
  int64_t count = 0;
};

// Metrics of `predicted` against `target` (same length, at least one value).
AttributeMetrics attribute_metrics(const std::vector<double>& predicted,
                                   const std::vector<double>& target);

// Per attribute in `attributes`: the mean value and the least-squares length line over every
// assistant turn carrying that attribute (length = the turn's text in bytes).
std::vector<config::AttributeBaseline> fit_attribute_baselines(
    const std::vector<Conversation>& conversations, const std::vector<std::string>& attributes);

// For train-attr: the baselines over the conversations of data.train whose samples landed in
// the training split (`data.train`, matched by source FILE:LINE).
std::vector<config::AttributeBaseline> training_attribute_baselines(
    const config::StageConfig& config, const StageData& data);

struct EvalAttrOptions {
  std::string input;
  config::DataFormat::Kind format = config::DataFormat::AUTO;
  config::BadRecord::Policy on_bad_record = config::BadRecord::FAIL;
  bool fail_when_long = false;
  int64_t batch_tokens = 8192;
};

// Scores the input and returns eval.json's object: attributes.<name>.{mae,rmse,pearson,accuracy,
// count}, baselines.{mean,length}.<name>.{...}, or pairs.<name>.{accuracy,count} for pairs.
// Bad records go to `bad_records` (FAIL throws, SKIP lists them).
nlohmann::json evaluate_attribute_model(const EvalAttrOptions& options, AttributeScorer& scorer,
                                        BadRecordLog* bad_records);

// A metric for a table: "%.4f", or "nan" for null (an undefined Pearson).
std::string format_metric(const nlohmann::json& value);

// A fixed-width table of `result` for the terminal.
std::string eval_attr_table(const nlohmann::json& result);

}  // namespace steerlm
