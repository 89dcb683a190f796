// steerlm eval-steer and steerlm bootstrap (issue 7): generate with an ACSFT model under
// requested labels and score the responses with an attribute model (pipeline/steer_eval.h).
//
// eval-steer [--model SFT_CKPT] [--attribute-model ATTR_CKPT] [--input PROMPTS] [--output DIR]:
//   the flags override model.init_from, eval.attribute_model, data.validation and output_dir.
//   Writes DIR/eval.json (DESIGN §4), DIR/generations.jsonl, a table on stdout, DONE last.
// bootstrap [--model ...] [--attribute-model ...] [--input PROMPTS] [--output JSONL]:
//   k = eval.samples_per_prompt samples per prompt sft trains on (data.train less the validation
//   split, or every prompt of --input) under high-quality labels, annotated, written as
//   NeMo-Aligner SteerLM JSONL to JSONL (default <output_dir>/bootstrap.jsonl); the job
//   directory (logs, config.pbtxt, DONE) is output_dir, by default JSONL.work.
// Both run data-parallel over the world (TP = PP = 1), rank 0 gathering.
#include <glog/logging.h>

#include <filesystem>
#include <iostream>

#include "launch/cli.h"
#include "launch/commands.h"
#include "launch/stage.h"
#include "parallel/mpi_session.h"
#include "parallel/process_grid.h"
#include "pipeline/steer_eval.h"
#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;

struct SteerFlags {
  std::string model;
  std::string attribute_model;
  std::string input;
  std::string output;
};

// What both commands load after validating their config.
struct SteerJob {
  config::StageConfig config;
  std::unique_ptr<ProcessGrid> grid;
  ChatGenerator generator;
  std::unique_ptr<AttributeScorer> scorer;
};

// Validates the config (flags over --config/--set), starts the stage, loads both models.
SteerJob start_steer_job(const std::string& command, const StageOptions& options,
                         const std::vector<std::string>& flag_overrides,
                         const std::string& default_output_dir) {
  MpiSession& mpi = process_mpi_session();
  FieldLocations where;
  SteerJob job;
  job.config = load_validated_config(options, flag_overrides, mpi.world_size(), &where);
  if (job.config.output_dir().empty()) job.config.set_output_dir(default_output_dir);
  if (job.config.model().init_from().empty()) {
    throw UserError("model.init_from: not set; pass --model SFT_CHECKPOINT (an ACSFT model)");
  }
  if (job.config.eval().attribute_model().empty()) {
    throw UserError("eval.attribute_model: not set; pass --attribute-model ATTRIBUTE_CHECKPOINT");
  }
  check_generate_config(job.config.generate());
  job.grid = ProcessGrid::create(mpi, job.config, where);
  require_one_rank_replicas(*job.grid, command);
  begin_stage(command, job.config, mpi);

  job.generator = load_chat_generator(job.config.model().init_from());
  if (!job.generator.chat) {
    throw UserError("model.init_from: " + job.config.model().init_from() +
                    " records no attribute set; " + command + " needs an ACSFT model");
  }
  job.scorer = std::make_unique<AttributeScorer>(job.config.eval().attribute_model());
  return job;
}

std::vector<std::string> flag_overrides(const SteerFlags& flags, const std::string& input_field,
                                        bool output_is_dir) {
  std::vector<std::string> overrides;
  if (!flags.model.empty()) overrides.push_back("model.init_from=" + flags.model);
  if (!flags.attribute_model.empty())
    overrides.push_back("eval.attribute_model=" + flags.attribute_model);
  if (!flags.input.empty()) overrides.push_back(input_field + "=" + flags.input);
  // bootstrap --input: every prompt of the file (no validation split held back).
  if (!flags.input.empty() && input_field == "data.train")
    overrides.push_back("data.validation_fraction=0");
  if (output_is_dir && !flags.output.empty()) overrides.push_back("output_dir=" + flags.output);
  return overrides;
}

// Writes <directory>/data/skipped_records.jsonl (rank 0): bad input records and left-out samples.
void log_skipped(const BadRecordLog& bad_records, const fs::path& directory, int rank) {
  if (rank != 0) return;
  bad_records.write_listing(directory / "data" / "skipped_records.jsonl");
  if (bad_records.skipped() > 0) {
    LOG(WARNING) << bad_records.skipped() << " bad records skipped, listed in "
                 << (directory / "data" / "skipped_records.jsonl").string();
  }
}

void run_eval_steer_command(const StageOptions& options, const SteerFlags& flags) {
  // Step 1: config, models, and what to vary.
  SteerJob job =
      start_steer_job("eval-steer", options, flag_overrides(flags, "data.validation", true), "");
  const SteerPlan plan =
      make_steer_plan(job.config, job.generator.attributes, job.scorer->attributes());

  // Step 2: held-out prompts, then every (prompt, attribute, level, sample) generated and scored.
  const fs::path directory = job.config.output_dir();
  BadRecordLog bad_records(job.config.data().on_bad_record());
  const std::vector<Conversation> prompts = held_out_prompts_for(job.config, &bad_records);
  log_skipped(bad_records, directory, job.grid->world_rank());
  std::vector<SteerSample> samples = plan_steer_samples(prompts.size(), plan);
  LOG(INFO) << "eval-steer: " << prompts.size() << " prompts, " << samples.size() << " generations";
  run_steer_samples(prompts, &samples, job.generator, *job.scorer, job.config.generate(),
                    job.config.annotate().batch_tokens(), *job.grid, directory.string());
  if (job.grid->world_rank() != 0) return;

  // Step 3: rank 0 writes the generations, eval.json and the table; DONE last.
  write_file_atomic(directory / "generations.jsonl",
                    generations_jsonl(prompts, samples, job.scorer->attributes()));
  const nlohmann::json report = steer_report(samples, job.scorer->attributes(), plan);
  write_file_atomic(directory / "eval.json", report.dump(2) + "\n");
  std::cout << steer_table(report) << std::flush;
  LOG(INFO) << "eval-steer: wrote " << (directory / "eval.json").string();
  write_file_atomic(directory / "DONE", "");
}

// bootstrap's dataset: --output, else <output_dir>/bootstrap.jsonl (e.g. a pipeline job's).
std::string bootstrap_output(const SteerFlags& flags, const config::StageConfig& config) {
  if (!flags.output.empty()) return flags.output;
  return (fs::path(config.output_dir()) / "bootstrap.jsonl").string();
}

void run_bootstrap_command(const StageOptions& options, const SteerFlags& flags) {
  // Step 1: config and models; sampling defaults to top-k 50 at temperature 1 (paper §3.4).
  SteerJob job = start_steer_job("bootstrap", options, flag_overrides(flags, "data.train", false),
                                 flags.output.empty() ? "" : flags.output + ".work");
  const std::string output = bootstrap_output(flags, job.config);
  config::GenerateConfig settings = job.config.generate();
  if (!settings.has_top_k()) settings.set_top_k(50);
  if (!settings.has_temperature()) settings.set_temperature(1.0f);
  const int k = job.config.eval().samples_per_prompt();
  if (settings.temperature() == 0 && k > 1) {
    throw UserError("generate.temperature: 0 (greedy) makes the " + std::to_string(k) +
                    " samples of a prompt identical; set it above 0 or eval.samples_per_prompt: 1");
  }
  const std::map<std::string, float> target =
      bootstrap_target(job.generator.attributes, settings.default_attributes());

  // Step 2: prompts of data.train, k samples each, generated and scored.
  const fs::path directory = job.config.output_dir();
  BadRecordLog bad_records(job.config.data().on_bad_record());
  const std::vector<Conversation> prompts = training_prompts_for(job.config, &bad_records);
  std::vector<SteerSample> samples = plan_bootstrap_samples(prompts.size(), target, k);
  LOG(INFO) << "bootstrap: " << prompts.size() << " prompts x " << k << " samples, top_k "
            << settings.top_k() << ", temperature " << settings.temperature();
  const int64_t batch_tokens = job.config.annotate().batch_tokens();
  run_steer_samples(prompts, &samples, job.generator, *job.scorer, settings, batch_tokens,
                    *job.grid, directory.string());
  if (job.grid->world_rank() != 0) return;

  // Step 3: rank 0 writes the dataset (atomically) and what it left out, then DONE.
  int64_t records = 0;
  const std::string lines =
      bootstrap_jsonl(prompts, samples, *job.scorer, batch_tokens, &bad_records, &records);
  log_skipped(bad_records, directory, 0);
  const int64_t empty = static_cast<int64_t>(samples.size()) - records;
  if (records == 0) {
    throw UserError("bootstrap: all " + std::to_string(samples.size()) +
                    " responses were empty; nothing to write to " + output +
                    " (check generate.max_new_tokens and the model)");
  }
  write_file_atomic(output, lines);
  LOG(INFO) << "bootstrap: wrote " << records << " records to " << output << "; " << empty
            << " empty responses left out (listed in "
            << (directory / "data" / "skipped_records.jsonl").string() << ")";
  write_file_atomic(directory / "DONE", "");
}

// --model, --attribute-model, --input and --output on `command`.
std::shared_ptr<SteerFlags> add_steer_flags(CLI::App* command, const char* input_help,
                                            const char* output_help) {
  auto flags = std::make_shared<SteerFlags>();
  command->add_option("--model", flags->model, "ACSFT checkpoint (model.init_from)");
  command->add_option("--attribute-model", flags->attribute_model,
                      "attribute model checkpoint (eval.attribute_model)");
  command->add_option("--input", flags->input, input_help);
  command->add_option("--output", flags->output, output_help);
  return flags;
}

}  // namespace

void register_eval_steer_command(CLI::App& app) {
  CLI::App* command =
      app.add_subcommand("eval-steer", "measure steerability (generate, score, correlate)");
  auto options = add_stage_options(command);
  auto flags = add_steer_flags(command,
                               "held-out prompts (data.validation): generate's "
                               "prompts JSONL or any conversation format",
                               "output directory (output_dir)");
  command->callback([options, flags] { run_eval_steer_command(*options, *flags); });
}

void register_bootstrap_command(CLI::App& app) {
  CLI::App* command =
      app.add_subcommand("bootstrap", "build a second-round ACSFT dataset (paper 3.4)");
  auto options = add_stage_options(command);
  auto flags = add_steer_flags(
      command, "prompts (data.train): generate's prompts JSONL or any conversation format",
      "the new ACSFT dataset, SteerLM JSONL (default: <output_dir>/bootstrap.jsonl)");
  command->callback([options, flags] { run_bootstrap_command(*options, *flags); });
}

}  // namespace steerlm
