// steerlm eval-attr (eval-steer lives in launch/steer_commands.cc with bootstrap).
//
// eval-attr --model CKPT --input JSONL --output DIR: scores labelled conversations (any reader
// format) or preference pairs with an attribute model; writes DIR/eval.json (DESIGN §4), the
// skipped-record listing under DIR/data/, and DONE last; prints a table on stdout.
#include <glog/logging.h>

#include <filesystem>
#include <iostream>

#include "launch/cli.h"
#include "launch/commands.h"
#include "launch/stage.h"
#include "parallel/mpi_session.h"
#include "pipeline/attribute_eval.h"
#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

struct EvalAttrFlags {
  std::string model;
  std::string input;
  std::string output;
};

void run_eval_attr_command(const StageOptions& stage_options, const EvalAttrFlags& flags) {
  // Validate first; the flags win over the config.
  MpiSession& mpi = process_mpi_session();
  FieldLocations where;
  const config::StageConfig config = load_validated_config(
      stage_options,
      {"model.init_from=" + flags.model, "data.train=" + flags.input, "output_dir=" + flags.output},
      mpi.world_size(), &where);
  begin_stage("eval-attr", config, mpi);
  if (mpi.world_rank() != 0) return;  // evaluation sets are small: rank 0 scores them alone

  EvalAttrOptions options;
  options.input = flags.input;
  options.format = config.data().format();
  options.on_bad_record = config.data().on_bad_record();
  options.fail_when_long = config.data().truncation() == config::Truncation::FAIL;
  options.batch_tokens = config.annotate().batch_tokens();
  AttributeScorer scorer(flags.model);
  BadRecordLog bad_records(options.on_bad_record);
  const nlohmann::json result = evaluate_attribute_model(options, scorer, &bad_records);

  const std::filesystem::path directory = config.output_dir();
  bad_records.write_listing(directory / "data" / "skipped_records.jsonl");
  write_file_atomic(directory / "eval.json", result.dump(2) + "\n");
  std::cout << eval_attr_table(result) << std::flush;
  LOG(INFO) << "eval-attr: wrote " << (directory / "eval.json").string() << "; "
            << bad_records.skipped() << " bad records skipped";
  write_file_atomic(directory / "DONE", "");
}

}  // namespace

void register_eval_commands(CLI::App& app) {
  CLI::App* eval_attr = app.add_subcommand("eval-attr", "evaluate an attribute model");
  auto stage_options = add_stage_options(eval_attr);
  auto flags = std::make_shared<EvalAttrFlags>();
  eval_attr->add_option("--model", flags->model, "attribute model checkpoint directory")
      ->required();
  eval_attr->add_option("--input", flags->input, "labelled JSONL, or preference pairs JSONL")
      ->required();
  eval_attr->add_option("--output", flags->output, "output directory (eval.json)")->required();
  eval_attr->callback([stage_options, flags] { run_eval_attr_command(*stage_options, *flags); });

  register_eval_steer_command(app);
}

}  // namespace steerlm
