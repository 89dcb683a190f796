// Stage 4 of SteerLM: measuring steerability (steerlm eval-steer; DESIGN §6) and bootstrapping a
// second-round ACSFT dataset (steerlm bootstrap; paper §3.4, DESIGN §1 "Bootstrapping").
//
// Both generate responses with an ACSFT model under requested labels and score every response
// with an attribute model (input form of DESIGN §1: the response as the assistant turn, then
// <extra_id_2>):
//
//   SteerPlan plan = make_steer_plan(config, generator.attributes, scorer.attributes());
//   std::vector<Conversation> prompts = held_out_prompts_for(config, &bad_records);
//   std::vector<SteerSample> samples = plan_steer_samples(prompts.size(), plan);
//   run_steer_samples(prompts, &samples, generator, scorer, config.generate(), batch_tokens,
//                     grid, output_dir);                                        // collective
//   nlohmann::json result = steer_report(samples, scorer.attributes(), plan);  // eval.json
//
// Samples are spread over the data-parallel ranks in contiguous shares; sample i always samples
// from stream i, so the text does not depend on the number of ranks. Rank 0 gathers the results
// through <work_dir>/parts/ (the output directory is shared, as for annotate).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "configs/steerlm.pb.h"
#include "pipeline/annotate.h"
#include "pipeline/bad_records.h"
#include "pipeline/chat_generation.h"
#include "pipeline/conversation.h"

namespace steerlm {

class ProcessGrid;

// The prompts of `paths`: generate's prompts files ({"prompt", "system"?} lines, when
// data.format is AUTO) or any conversation format, each conversation cut after its last user
// turn; duplicates (same system and turns) left out; at most `max_prompts` (0: all), in order.
std::vector<Conversation> read_prompts(const std::vector<std::string>& paths,
                                       const config::DataConfig& data, int max_prompts,
                                       BadRecordLog* bad_records);

// eval-steer's held-out prompts: data.validation when set, else the prompts of data.train that
// load_stage_data holds out for validation (same data.validation_fraction and train.seed).
std::vector<Conversation> held_out_prompts_for(const config::StageConfig& config,
                                               BadRecordLog* bad_records);

// bootstrap's prompts, those sft trains on: data.train, less the prompts held out for validation
// when data.validation is not set (data.validation_fraction: 0 keeps them all).
std::vector<Conversation> training_prompts_for(const config::StageConfig& config,
                                               BadRecordLog* bad_records);

// One response to generate and score.
struct SteerSample {
  size_t prompt = 0;    // index into the prompts
  std::string steered;  // the attribute varied (eval-steer), "" for bootstrap
  int sample = 0;       // which of the prompt's samples under the same label
  std::map<std::string, float> requested;
  GeneratedText response;
  std::vector<float> predicted;  // (A) in the attribute model's order
};

// What eval-steer varies: each attribute of `attributes` at each of `levels`, the others held at
// `fixed`; `samples_per_level` responses per prompt and level.
struct SteerPlan {
  std::vector<std::string> attributes;
  std::vector<int> levels;
  std::map<std::string, float> fixed;
  int samples_per_level = 1;
};

// Resolves eval.steer_attributes, eval.levels (empty: 0..4) and generate.default_attributes
// against the two models' attribute sets; UserError naming the field on a mismatch.
SteerPlan make_steer_plan(const config::StageConfig& config,
                          const std::vector<std::string>& generator_attributes,
                          const std::vector<std::string>& scorer_attributes);

// Per prompt, per steered attribute, per level, per sample, in that order.
std::vector<SteerSample> plan_steer_samples(size_t prompts, const SteerPlan& plan);

// The high-quality target label of bootstrapping: every attribute at its best (4; toxicity 0),
// then the values `overrides` names ("name=v,...", from generate.default_attributes).
std::map<std::string, float> bootstrap_target(const std::vector<std::string>& attributes,
                                              const std::string& overrides);

// `samples_per_prompt` samples of every prompt under `target`, prompt by prompt.
std::vector<SteerSample> plan_bootstrap_samples(size_t prompts,
                                                const std::map<std::string, float>& target,
                                                int samples_per_prompt);

// Generates and scores every sample (collective over `grid`, which must have TP = PP = 1). On
// return rank 0 holds every sample's response and predicted values; other ranks their share.
void run_steer_samples(const std::vector<Conversation>& prompts, std::vector<SteerSample>* samples,
                       ChatGenerator& generator, AttributeScorer& scorer,
                       const config::GenerateConfig& settings, int64_t batch_tokens,
                       ProcessGrid& grid, const std::string& work_dir);

// eval.json's object (DESIGN §4): attributes.<name>.{pearson, levels: [{requested,
// mean_predicted, mean_length}]}. Pearson is taken over individual responses of that attribute
// (null when requested or predicted values are constant); mean_length is in bytes of text.
nlohmann::json steer_report(const std::vector<SteerSample>& samples,
                            const std::vector<std::string>& scorer_attributes,
                            const SteerPlan& plan);

// A fixed-width table of steer_report's object for the terminal.
std::string steer_table(const nlohmann::json& report);

// The conversation a sample's response completes: the prompt plus the response as the
// assistant turn.
Conversation sample_conversation(const Conversation& prompt, const SteerSample& sample);

// generations.jsonl: one line per sample with the prompt, its source, the requested attributes,
// the response and the predicted values (name -> raw float).
std::string generations_jsonl(const std::vector<Conversation>& prompts,
                              const std::vector<SteerSample>& samples,
                              const std::vector<std::string>& scorer_attributes);

// The bootstrapped ACSFT dataset: NeMo-Aligner SteerLM JSONL, one record per sample, labelled
// like annotate's output (label clamped and rounded, attribute_values raw) on every assistant
// turn: the new response with its sample's predicted values, and the earlier assistant turns of
// a multi-turn prompt scored here (once per prompt, on the calling rank). A sample whose response
// is empty (the model ended its turn at once) would be a bad record for sft: it is left out and
// noted in `left_out` with reason empty_response. `records` receives the number written.
std::string bootstrap_jsonl(const std::vector<Conversation>& prompts,
                            const std::vector<SteerSample>& samples, AttributeScorer& scorer,
                            int64_t batch_tokens, BadRecordLog* left_out, int64_t* records);

}  // namespace steerlm
