#include "pipeline/attribute_eval.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>

#include "pipeline/dataset.h"
#include "pipeline/readers.h"
#include "runtime/error.h"

namespace steerlm {
using json = nlohmann::json;

AttributeMetrics attribute_metrics(const std::vector<double>& predicted,
                                   const std::vector<double>& target) {
  CHECK_EQ(predicted.size(), target.size());
  CHECK(!predicted.empty());
  const double n = static_cast<double>(predicted.size());
  AttributeMetrics metrics;
  metrics.count = static_cast<int64_t>(predicted.size());
  double mean_p = 0, mean_t = 0, squared = 0, absolute = 0, exact = 0;
  for (size_t i = 0; i < predicted.size(); ++i) {
    const double error = predicted[i] - target[i];
    absolute += std::abs(error);
    squared += error * error;
    mean_p += predicted[i] / n;
    mean_t += target[i] / n;
    exact += round_half_even(std::clamp(predicted[i], 0.0, 4.0)) ==
             round_half_even(std::clamp(target[i], 0.0, 4.0));
  }
  double covariance = 0, variance_p = 0, variance_t = 0;
  for (size_t i = 0; i < predicted.size(); ++i) {
    covariance += (predicted[i] - mean_p) * (target[i] - mean_t);
    variance_p += (predicted[i] - mean_p) * (predicted[i] - mean_p);
    variance_t += (target[i] - mean_t) * (target[i] - mean_t);
  }
  metrics.mae = absolute / n;
  metrics.rmse = std::sqrt(squared / n);
  metrics.accuracy = exact / n;
  metrics.pearson = variance_p > 0 && variance_t > 0
                        ? covariance / std::sqrt(variance_p * variance_t)
                        : std::numeric_limits<double>::quiet_NaN();
  return metrics;
}

std::vector<config::AttributeBaseline> fit_attribute_baselines(
    const std::vector<Conversation>& conversations, const std::vector<std::string>& attributes) {
  std::vector<config::AttributeBaseline> baselines;
  for (const std::string& name : attributes) {
    // Sums for the mean and the least-squares line y = a + b x, x the response length.
    double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (const Conversation& conversation : conversations) {
      for (const Turn& turn : conversation.turns) {
        const auto value = turn.attributes.find(name);
        if (turn.role != Role::kAssistant || value == turn.attributes.end()) continue;
        const double x = static_cast<double>(turn.text.size()), y = value->second;
        n += 1, sx += x, sy += y, sxx += x * x, sxy += x * y;
      }
    }
    config::AttributeBaseline baseline;
    baseline.set_name(name);
    baseline.set_samples(static_cast<int64_t>(n));
    const double mean = n > 0 ? sy / n : 0.0;
    const double spread = n * sxx - sx * sx;  // n^2 var(x); 0: every length equal
    const double slope = spread > 0 ? (n * sxy - sx * sy) / spread : 0.0;
    baseline.set_mean(mean);
    baseline.set_length_slope(slope);
    baseline.set_length_intercept(n > 0 ? mean - slope * sx / n : 0.0);
    baselines.push_back(baseline);
  }
  return baselines;
}

std::vector<config::AttributeBaseline> training_attribute_baselines(
    const config::StageConfig& config, const StageData& data) {
  std::set<std::string> train_sources;
  for (const TokenizedSample& sample : data.train) train_sources.insert(sample.source);
  // The files were read (and their bad records reported) once already; skip them quietly here.
  BadRecordLog ignored(config::BadRecord::SKIP);
  std::vector<Conversation> kept;
  for (const std::string& path : config.data().train()) {
    for (Conversation& conversation :
         read_conversations(path, resolve_format(path, config.data().format()), &ignored)) {
      if (train_sources.count(conversation.source.str())) kept.push_back(std::move(conversation));
    }
  }
  return fit_attribute_baselines(kept, data.attributes);
}

namespace {

json metrics_json(const AttributeMetrics& metrics) {
  return {{"mae", metrics.mae},
          {"rmse", metrics.rmse},
          {"pearson", metrics.pearson},
          {"accuracy", metrics.accuracy},
          {"count", metrics.count}};
}

// One scored response with its labels.
struct ScoredTurn {
  std::vector<float> predicted;  // (A) in the model's attribute order
  std::map<std::string, float> labels;
  double length = 0;  // response bytes
};

json labelled_metrics(const std::vector<ScoredTurn>& turns, const AttributeScorer& scorer) {
  std::map<std::string, const config::AttributeBaseline*> stored;
  for (const config::AttributeBaseline& baseline : scorer.manifest().attribute_baselines()) {
    stored[baseline.name()] = &baseline;
  }
  json result = {{"attributes", json::object()}};
  for (size_t a = 0; a < scorer.attributes().size(); ++a) {
    const std::string& name = scorer.attributes()[a];
    std::vector<double> predicted, target, mean, length;
    const config::AttributeBaseline* baseline = stored.count(name) ? stored[name] : nullptr;
    for (const ScoredTurn& turn : turns) {
      const auto label = turn.labels.find(name);
      if (label == turn.labels.end()) continue;  // missing (-100) values are not evaluated
      predicted.push_back(turn.predicted[a]);
      target.push_back(label->second);
      if (baseline == nullptr) continue;
      mean.push_back(baseline->mean());
      length.push_back(baseline->length_intercept() + baseline->length_slope() * turn.length);
    }
    if (predicted.empty()) continue;
    result["attributes"][name] = metrics_json(attribute_metrics(predicted, target));
    if (baseline == nullptr) {
      LOG(WARNING) << "eval-attr: the checkpoint's manifest has no baselines for " << name
                   << " (trained before train-attr stored them)";
      continue;
    }
    result["baselines"]["mean"][name] = metrics_json(attribute_metrics(mean, target));
    result["baselines"]["length"][name] = metrics_json(attribute_metrics(length, target));
  }
  return result;
}

json evaluate_labelled(const EvalAttrOptions& options, AttributeScorer& scorer,
                       const std::vector<Conversation>& conversations) {
  std::vector<ScoredTurn> turns;
  std::vector<std::vector<int32_t>> inputs;
  for (const Conversation& conversation : conversations) {
    for (size_t t = 0; t < conversation.turns.size(); ++t) {
      const Turn& turn = conversation.turns[t];
      if (turn.role != Role::kAssistant || turn.attributes.empty()) continue;
      inputs.push_back(scorer.turn_input(conversation, t, options.fail_when_long));
      turns.push_back({{}, turn.attributes, static_cast<double>(turn.text.size())});
    }
  }
  if (turns.empty()) {
    throw UserError(options.input + ": no assistant turn carries an attribute label to evaluate");
  }
  std::vector<std::vector<float>> values = scorer.score(inputs, options.batch_tokens);
  for (size_t i = 0; i < turns.size(); ++i) turns[i].predicted = std::move(values[i]);
  return labelled_metrics(turns, scorer);
}

json evaluate_pairs(const EvalAttrOptions& options, AttributeScorer& scorer,
                    BadRecordLog* bad_records) {
  const std::vector<PreferencePair> pairs = read_preference_pairs(options.input, bad_records);
  const std::vector<std::string>& names = scorer.attributes();
  std::vector<std::vector<int32_t>> inputs;
  std::vector<std::pair<size_t, size_t>> scored;  // (pair, attribute index)
  for (size_t p = 0; p < pairs.size(); ++p) {
    const auto found = std::find(names.begin(), names.end(), pairs[p].attribute);
    if (pairs[p].tie) continue;
    if (found == names.end()) {
      throw UserError(pairs[p].context.source.str() + ": attribute '" + pairs[p].attribute +
                      "' is not in the model's attribute set");
    }
    for (bool chosen : {true, false}) {
      const Conversation conversation = with_response(pairs[p], chosen);
      inputs.push_back(
          scorer.turn_input(conversation, conversation.turns.size() - 1, options.fail_when_long));
    }
    scored.emplace_back(p, static_cast<size_t>(found - names.begin()));
  }
  if (scored.empty()) throw UserError(options.input + ": no untied preference pair to evaluate");
  const std::vector<std::vector<float>> values = scorer.score(inputs, options.batch_tokens);
  std::map<std::string, std::pair<int64_t, int64_t>> wins;  // name -> (chosen above, pairs)
  for (size_t i = 0; i < scored.size(); ++i) {
    const size_t a = scored[i].second;
    auto& [above, total] = wins[names[a]];
    above += values[2 * i][a] > values[2 * i + 1][a];
    ++total;
  }
  json result = {{"pairs", json::object()}};
  for (const auto& [name, counts] : wins) {
    result["pairs"][name] = {{"accuracy", static_cast<double>(counts.first) / counts.second},
                             {"count", counts.second}};
  }
  return result;
}

}  // namespace

std::string format_metric(const json& value) {
  if (!value.is_number()) return "nan";
  char text[32];
  std::snprintf(text, sizeof(text), "%.4f", value.get<double>());
  return text;
}

json evaluate_attribute_model(const EvalAttrOptions& options, AttributeScorer& scorer,
                              BadRecordLog* bad_records) {
  const DataFormatKind format = resolve_format(options.input, options.format);
  if (format == config::DataFormat::PREFERENCE_PAIRS) {
    return evaluate_pairs(options, scorer, bad_records);
  }
  return evaluate_labelled(options, scorer, read_conversations(options.input, format, bad_records));
}

std::string eval_attr_table(const json& result) {
  std::string table;
  char line[160];
  if (result.contains("pairs")) {
    std::snprintf(line, sizeof(line), "%-14s %10s %8s\n", "attribute", "pair_acc", "pairs");
    table += line;
    for (const auto& [name, entry] : result["pairs"].items()) {
      std::snprintf(line, sizeof(line), "%-14s %10s %8lld\n", name.c_str(),
                    format_metric(entry["accuracy"]).c_str(), entry["count"].get<long long>());
      table += line;
    }
    return table;
  }
  std::snprintf(line, sizeof(line), "%-14s %-8s %8s %8s %8s %8s %6s\n", "attribute", "source",
                "mae", "rmse", "pearson", "acc", "n");
  table += line;
  for (const auto& [name, entry] : result["attributes"].items()) {
    std::vector<std::pair<std::string, json>> rows = {{"model", entry}};
    for (const char* kind : {"mean", "length"}) {
      if (result.contains("baselines") && result["baselines"][kind].contains(name)) {
        rows.emplace_back(kind, result["baselines"][kind][name]);
      }
    }
    for (const auto& [source, metrics] : rows) {
      std::snprintf(line, sizeof(line), "%-14s %-8s %8s %8s %8s %8s %6lld\n", name.c_str(),
                    source.c_str(), format_metric(metrics["mae"]).c_str(),
                    format_metric(metrics["rmse"]).c_str(),
                    format_metric(metrics["pearson"]).c_str(),
                    format_metric(metrics["accuracy"]).c_str(), metrics["count"].get<long long>());
      table += line;
    }
  }
  return table;
}

}  // namespace steerlm
