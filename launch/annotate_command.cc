// steerlm annotate --model CKPT --input JSONL --output JSONL [--config FILE] [--set ...]
//
// The flags win over the config (model.init_from, data.train). The job's own directory, with
// logs/, config.pbtxt, shards/, data/skipped_records.jsonl and DONE, is output_dir, by default
// <output>.work next to the output.
#include <glog/logging.h>

#include "launch/cli.h"
#include "launch/commands.h"
#include "launch/stage.h"
#include "parallel/mpi_session.h"
#include "parallel/process_grid.h"
#include "pipeline/annotate.h"
#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

struct AnnotateFlags {
  std::string model;
  std::string input;
  std::string output;
};

void run_annotate_command(const StageOptions& stage_options, const AnnotateFlags& flags) {
  // Validate first; the flags win over the config.
  MpiSession& mpi = process_mpi_session();
  FieldLocations where;
  config::StageConfig config = load_validated_config(
      stage_options, {"model.init_from=" + flags.model, "data.train=" + flags.input},
      mpi.world_size(), &where);
  if (config.output_dir().empty()) config.set_output_dir(flags.output + ".work");
  if (config.data().truncation() == config::Truncation::DROP) {
    throw UserError(
        "data.truncation: DROP would leave assistant turns unscored in annotate; "
        "use TRUNCATE_LEFT or FAIL");
  }
  std::unique_ptr<ProcessGrid> grid = ProcessGrid::create(mpi, config, where);
  begin_stage("annotate", config, mpi);

  AnnotateOptions options;
  options.input = flags.input;
  options.output = flags.output;
  options.work_dir = config.output_dir();
  options.format = config.data().format();
  options.on_bad_record = config.data().on_bad_record();
  options.fail_when_long = config.data().truncation() == config::Truncation::FAIL;
  options.shard_records = config.annotate().shard_records();
  options.batch_tokens = config.annotate().batch_tokens();
  options.fail_after_shards = config.annotate().fail_after_shards();
  options.fail_rank = config.annotate().fail_rank();
  if (options.shard_records <= 0 || options.batch_tokens <= 0) {
    throw UserError("annotate.shard_records and annotate.batch_tokens must be positive");
  }
  AttributeScorer scorer(flags.model, grid.get());
  const AnnotateSummary summary = run_annotation(options, scorer, *grid);

  if (grid->world_rank() == 0) {
    LOG(INFO) << "annotate: " << summary.records << " records (" << summary.turns
              << " assistant turns, " << summary.tokens << " tokens) scored in " << summary.seconds
              << " s: " << summary.records / summary.seconds << " records/s, "
              << summary.tokens / summary.seconds << " tokens/s; " << summary.shards_reused << "/"
              << summary.shards << " shards reused from an earlier run; " << summary.skipped
              << " bad records skipped; wrote " << flags.output;
    write_file_atomic(std::filesystem::path(config.output_dir()) / "DONE", "");
  }
}

}  // namespace

void register_annotate_command(CLI::App& app) {
  CLI::App* annotate = app.add_subcommand("annotate", "score a dataset with an attribute model");
  auto stage_options = add_stage_options(annotate);
  auto flags = std::make_shared<AnnotateFlags>();
  annotate->add_option("--model", flags->model, "attribute model checkpoint directory")->required();
  annotate->add_option("--input", flags->input, "input JSONL (any conversation format)")
      ->required();
  annotate->add_option("--output", flags->output, "output JSONL (NeMo-Aligner SteerLM format)")
      ->required();
  annotate->callback([stage_options, flags] { run_annotate_command(*stage_options, *flags); });
}

}  // namespace steerlm
