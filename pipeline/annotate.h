// Stage 2 of SteerLM: score every assistant turn of a dataset with a trained attribute model
// (DESIGN §1 "Annotation", §4 "Annotation output").
//
//   AttributeScorer scorer("out/attr/checkpoint");
//   AnnotateOptions options;  // input, output, work_dir, ...
//   AnnotateSummary summary = run_annotation(options, scorer, grid);
//
// Records are cut into shards of consecutive records; shard i belongs to data-parallel replica
// i % DP. Each shard is written atomically to <work_dir>/shards/shard_NNNNN.jsonl, then its
// completion marker shard_NNNNN.done. A re-run keeps every shard whose marker matches and redoes
// the rest. Rank 0 then concatenates the shards, in order, into the output (atomically). Batches
// never cross a shard, so the bytes of a shard do not depend on the layout or on re-runs.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "configs/steerlm.pb.h"
#include "model/llama.h"
#include "model/pipeline_schedule.h"
#include "pipeline/chat_template.h"
#include "pipeline/conversation.h"
#include "pipeline/tokenizer.h"

namespace steerlm {

class ProcessGrid;

// The label written for annotation: each value clamped to [0, 4] and rounded half to even,
// "name:value,..." in `order` (values[i] belongs to order[i]).
std::string annotation_label(const std::vector<float>& values,
                             const std::vector<std::string>& order);

// A float as the JSON number that prints in its shortest round-trip float form (2.1, not
// 2.0999999046325684), so that annotation files stay readable and deterministic.
double json_float(float value);

// An attribute model loaded from a checkpoint, ready to score conversations (forward only).
class AttributeScorer {
 public:
  // Throws UserError when `checkpoint_dir` is not an attribute model. With a `grid`, this rank
  // holds its TP slice and PP stage of the model, and every rank of the replica must call
  // score() with the same inputs; every one of them gets the values.
  explicit AttributeScorer(const std::string& checkpoint_dir, ProcessGrid* grid = nullptr);
  ~AttributeScorer();

  const std::vector<std::string>& attributes() const { return attributes_; }
  const config::CheckpointManifest& manifest() const { return manifest_; }
  const std::string& checkpoint_dir() const { return checkpoint_dir_; }
  int64_t max_tokens() const { return manifest_.model().max_seq_len(); }

  // The model input for assistant turn `turn_index` (DESIGN §1): BOS (when the template adds
  // it), then the conversation up to that turn and <extra_id_2>. Longer than the model's
  // max_seq_len: the earliest tokens after BOS are dropped, or UserError when `fail_when_long`.
  std::vector<int32_t> turn_input(const Conversation& conversation, size_t turn_index,
                                  bool fail_when_long) const;

  // Scores inputs batched by length (longest first, at most `batch_tokens` padded tokens a
  // batch, at least one sequence). Returns (N, A) values in the order of `inputs`.
  std::vector<std::vector<float>> score(const std::vector<std::vector<int32_t>>& inputs,
                                        int64_t batch_tokens);

 private:
  std::string checkpoint_dir_;
  config::CheckpointManifest manifest_;
  std::vector<std::string> attributes_;
  TemplateOptions template_options_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<PipelineSchedule> stages_;  // the forward through the PP stages
};

// One conversation's output record: the input record (every field kept; SteerLM JSONL shape
// built when the input format is another one) with `label` and `attribute_values` (name -> raw
// float) on every assistant turn. `turn_values` holds one entry per assistant turn, in order.
nlohmann::json annotated_record(const Conversation& conversation,
                                const std::vector<std::vector<float>>& turn_values,
                                const std::vector<std::string>& attributes,
                                const TemplateOptions& template_options);

struct AnnotateOptions {
  std::string input;
  std::string output;    // the merged JSONL
  std::string work_dir;  // shards/, data/skipped_records.jsonl, DONE
  config::DataFormat::Kind format = config::DataFormat::AUTO;
  config::BadRecord::Policy on_bad_record = config::BadRecord::FAIL;
  bool fail_when_long = false;  // data.truncation: FAIL
  int64_t shard_records = 256;
  int64_t batch_tokens = 8192;
  // Test hook (annotate.fail_after_shards / fail_rank): world rank `fail_rank` exits abruptly,
  // as a killed rank would, once it has written this many shards. 0: never.
  int fail_after_shards = 0;
  int fail_rank = 0;
};

struct AnnotateSummary {
  int64_t records = 0;        // annotated records, all ranks
  int64_t turns = 0;          // scored assistant turns, all ranks
  int64_t tokens = 0;         // input tokens scored, all ranks
  int64_t skipped = 0;        // bad records skipped (data.on_bad_record: SKIP)
  int64_t shards = 0;         // shards in the plan
  int64_t shards_reused = 0;  // complete shards found from an earlier run, all ranks
  double seconds = 0;
};

// Forward-only stages (annotate, eval-steer, bootstrap) run each data-parallel replica on one
// rank: UserError naming parallel.tp/parallel.pp when the layout has TP or PP > 1.
void require_one_rank_replicas(const ProcessGrid& grid, const std::string& command);

// Runs the whole job on every rank of `grid` (collective). Rank 0 writes the output and DONE.
AnnotateSummary run_annotation(const AnnotateOptions& options, AttributeScorer& scorer,
                               ProcessGrid& grid);

}  // namespace steerlm
