#include "pipeline/annotate.h"

#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "model/checkpoint.h"
#include "model/sharded_checkpoint.h"
#include "parallel/process_grid.h"
#include "pipeline/bad_records.h"
#include "pipeline/readers.h"
#include "pipeline/tokenizer_sentencepiece.h"
#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::string annotation_label(const std::vector<float>& values,
                             const std::vector<std::string>& order) {
  CHECK_EQ(values.size(), order.size());
  std::string label;
  for (size_t i = 0; i < order.size(); ++i) {
    const double clamped = std::clamp(static_cast<double>(values[i]), 0.0, 4.0);
    label += (i == 0 ? "" : ",") + order[i] + ":" + std::to_string(round_half_even(clamped));
  }
  return label;
}

double json_float(float value) {
  char text[32];
  const auto result = std::to_chars(text, text + sizeof(text), value);  // shortest round trip
  CHECK(result.ec == std::errc());
  return std::strtod(std::string(text, result.ptr).c_str(), nullptr);
}

// ---- AttributeScorer ---------------------------------------------------------------------------

AttributeScorer::AttributeScorer(const std::string& checkpoint_dir, ProcessGrid* grid)
    : checkpoint_dir_(checkpoint_dir) {
  manifest_ = read_checkpoint_manifest(checkpoint_dir);
  if (manifest_.head() != kHeadAttribute || manifest_.attributes_size() == 0) {
    throw UserError("--model " + checkpoint_dir + ": head is \"" + manifest_.head() +
                    "\"; annotation needs an attribute model (steerlm train-attr)");
  }
  attributes_.assign(manifest_.attributes().begin(), manifest_.attributes().end());
  template_options_ = make_template_options(manifest_.chat_template(), attributes_);
  tokenizer_ = Tokenizer::load(checkpoint_tokenizer_path(checkpoint_dir, manifest_).string());
  if (manifest_.chat_template().markers_as_special_tokens()) {
    tokenizer_ = with_special_markers(std::move(tokenizer_));
  }
  ModelOptions model_options;
  if (grid != nullptr) {
    model_options.shard = pipeline_model_shard(*grid, manifest_.model());
    model_options.tp_group = &grid->tp();
  }
  model_ =
      std::make_unique<LlamaModel>(manifest_.model(), HeadKind::kAttribute,
                                   static_cast<int>(attributes_.size()), /*seed=*/0, model_options);
  // Any saved TP/PP layout, sliced for this rank's TP part and PP stage.
  load_sharded_weights(checkpoint_dir, manifest_, model_->parameters(), model_->shard());
  stages_ = std::make_unique<PipelineSchedule>(*model_, grid);
}

AttributeScorer::~AttributeScorer() = default;

std::vector<int32_t> AttributeScorer::turn_input(const Conversation& conversation,
                                                 size_t turn_index, bool fail_when_long) const {
  std::vector<int32_t> ids;
  const bool bos = manifest_.chat_template().add_bos();
  if (bos) ids.push_back(tokenizer_->bos_id());
  const std::vector<int32_t> text =
      tokenizer_->encode(render_attribute_input(conversation, turn_index, template_options_));
  ids.insert(ids.end(), text.begin(), text.end());
  const int64_t limit = max_tokens();
  const int64_t excess = static_cast<int64_t>(ids.size()) - limit;
  if (excess <= 0) return ids;
  if (fail_when_long) {
    throw UserError(conversation.source.str() + ": assistant turn " + std::to_string(turn_index) +
                    " is " + std::to_string(ids.size()) + " tokens, longer than the model's " +
                    "max_seq_len " + std::to_string(limit) +
                    " (data.truncation: FAIL); set data.truncation to TRUNCATE_LEFT");
  }
  // TRUNCATE_LEFT: keep BOS, drop the earliest context; the scored turn's end survives.
  const auto first_kept = ids.begin() + (bos ? 1 : 0);
  ids.erase(first_kept, first_kept + excess);
  return ids;
}

std::vector<std::vector<float>> AttributeScorer::score(
    const std::vector<std::vector<int32_t>>& inputs, int64_t batch_tokens) {
  // Longest first (ties by index, so batches are deterministic): rows of one batch have similar
  // lengths and little compute goes to padding.
  std::vector<size_t> order(inputs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return inputs[a].size() > inputs[b].size(); });
  const int64_t n_attributes = static_cast<int64_t>(attributes_.size());
  std::vector<std::vector<float>> values(inputs.size());
  for (size_t begin = 0; begin < order.size();) {
    const int64_t seq_len = static_cast<int64_t>(inputs[order[begin]].size());
    const size_t rows = std::max<size_t>(1, static_cast<size_t>(batch_tokens / seq_len));
    const size_t end = std::min(order.size(), begin + rows);
    std::vector<std::vector<int32_t>> sequences;
    for (size_t i = begin; i < end; ++i) sequences.push_back(inputs[order[i]]);
    const Tensor predicted =
        stages_->predict_attributes(make_padded_batch(sequences, seq_len));  // (S, A) f32, cpu
    CHECK_EQ(predicted.shape().numel(), static_cast<int64_t>(sequences.size()) * n_attributes);
    for (size_t i = begin; i < end; ++i) {
      const float* row = predicted.f32() + static_cast<int64_t>(i - begin) * n_attributes;
      values[order[i]].assign(row, row + n_attributes);
    }
    begin = end;
  }
  return values;
}

// ---- Output records ---------------------------------------------------------------------------

namespace {

// A SteerLM JSONL record for a conversation read from another format; the input's own fields
// are kept beside it.
json steerlm_record(const Conversation& conversation, const TemplateOptions& template_options) {
  json record = conversation.record.is_object() ? conversation.record : json::object();
  record["system"] = conversation.system.value_or(template_options.default_system);
  record["mask"] = "User";
  record["type"] = "VALUE_TO_TEXT";
  json turns = json::array();
  for (const Turn& turn : conversation.turns) {
    turns.push_back({{"from", role_name(turn.role)}, {"value", turn.text}});
  }
  record["conversations"] = std::move(turns);
  return record;
}

}  // namespace

json annotated_record(const Conversation& conversation,
                      const std::vector<std::vector<float>>& turn_values,
                      const std::vector<std::string>& attributes,
                      const TemplateOptions& template_options) {
  // SteerLM input is annotated in place; any other format is converted first.
  const json& input = conversation.record;
  const bool in_place = input.is_object() && input.contains("conversations") &&
                        input["conversations"].is_array() &&
                        input["conversations"].size() == conversation.turns.size();
  json record = in_place ? input : steerlm_record(conversation, template_options);
  size_t scored = 0;
  for (size_t i = 0; i < conversation.turns.size(); ++i) {
    if (conversation.turns[i].role != Role::kAssistant) continue;
    CHECK_LT(scored, turn_values.size());
    const std::vector<float>& values = turn_values[scored++];
    json raw = json::object();
    for (size_t a = 0; a < attributes.size(); ++a) raw[attributes[a]] = json_float(values[a]);
    json& turn = record["conversations"][i];
    turn["label"] = annotation_label(values, attributes);
    turn["attribute_values"] = std::move(raw);
  }
  CHECK_EQ(scored, turn_values.size());
  return record;
}

// ---- The job ----------------------------------------------------------------------------------

namespace {

struct ShardPlan {
  int64_t index = 0;
  size_t begin = 0;  // conversation range [begin, end)
  size_t end = 0;
};

fs::path shard_path(const AnnotateOptions& options, int64_t index, const char* extension) {
  char name[32];
  std::snprintf(name, sizeof(name), "shard_%06lld.%s", static_cast<long long>(index), extension);
  return fs::path(options.work_dir) / "shards" / name;
}

// What a shard's completion marker says: which records it holds, scored by which model with
// which batching, so that a shard from a run on other input or settings is never reused.
std::string shard_marker(const AnnotateOptions& options, const AttributeScorer& scorer,
                         const std::vector<Conversation>& conversations, const ShardPlan& shard) {
  json marker = {{"records", shard.end - shard.begin},
                 {"first", conversations[shard.begin].source.str()},
                 {"last", conversations[shard.end - 1].source.str()},
                 {"model", scorer.checkpoint_dir()},
                 {"model_step", scorer.manifest().step()},
                 {"batch_tokens", options.batch_tokens}};
  return marker.dump() + "\n";
}

bool shard_complete(const AnnotateOptions& options, const std::string& marker,
                    const ShardPlan& shard) {
  const fs::path done = shard_path(options, shard.index, "done");
  return fs::exists(done) && fs::exists(shard_path(options, shard.index, "jsonl")) &&
         read_file(done) == marker;
}

struct ShardWork {
  int64_t turns = 0;
  int64_t tokens = 0;
};

// Scores one shard's records and writes the shard, then its marker (each atomically).
// Every rank of the replica scores; only `writes` (the replica's first rank) writes the files.
ShardWork annotate_shard(const AnnotateOptions& options, AttributeScorer& scorer,
                         const std::vector<Conversation>& conversations, const ShardPlan& shard,
                         const std::string& marker, bool writes) {
  ShardWork work;
  std::vector<std::vector<int32_t>> inputs;
  for (size_t c = shard.begin; c < shard.end; ++c) {
    for (size_t t = 0; t < conversations[c].turns.size(); ++t) {
      if (conversations[c].turns[t].role != Role::kAssistant) continue;
      inputs.push_back(scorer.turn_input(conversations[c], t, options.fail_when_long));
      work.tokens += static_cast<int64_t>(inputs.back().size());
    }
  }
  work.turns = static_cast<int64_t>(inputs.size());
  const std::vector<std::vector<float>> values = scorer.score(inputs, options.batch_tokens);
  const TemplateOptions template_options =
      make_template_options(scorer.manifest().chat_template(), scorer.attributes());
  std::string text;
  size_t next = 0;
  for (size_t c = shard.begin; c < shard.end; ++c) {
    std::vector<std::vector<float>> turn_values;
    for (const Turn& turn : conversations[c].turns) {
      if (turn.role == Role::kAssistant) turn_values.push_back(values[next++]);
    }
    text += annotated_record(conversations[c], turn_values, scorer.attributes(), template_options)
                .dump() +
            "\n";
  }
  if (writes) {
    write_file_atomic(shard_path(options, shard.index, "jsonl"), text);
    write_file_atomic(shard_path(options, shard.index, "done"), marker);
  }
  return work;
}

// Rank 0's progress: shards, records, rates and the estimated time left. On a terminal, a bar
// redrawn in place on stderr (the log gets the last line); otherwise a log line per shard.
void log_progress(int64_t done, int64_t total, int64_t records, int64_t tokens, double seconds,
                  int dp_size) {
  const double rate = seconds > 0 ? records / seconds : 0.0;
  const double eta = done > 0 ? seconds * static_cast<double>(total - done) / done : 0.0;
  std::ostringstream line;
  line << "annotate: rank 0 shard " << done << "/" << total << ", " << records << " records, "
       << rate << " records/s, " << (seconds > 0 ? tokens / seconds : 0.0) << " tokens/s (x"
       << dp_size << " replicas), ETA " << static_cast<int64_t>(eta) << " s";
  static const bool terminal = ::isatty(STDERR_FILENO) == 1;
  if (!terminal) {
    LOG(INFO) << line.str();
    return;
  }
  constexpr int kWidth = 30;
  const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
  std::fprintf(stderr, "\r[%s%s] %lld/%lld shards, %.1f records/s, ETA %llds ",
               std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(),
               static_cast<long long>(done), static_cast<long long>(total), rate,
               static_cast<long long>(eta));
  if (done == total) {
    std::fprintf(stderr, "\n");
    LOG(INFO) << line.str();
  }
}

// Concatenates the shards, in order, into the output (atomically).
void merge_shards(const AnnotateOptions& options, int64_t shards) {
  std::string merged;
  for (int64_t i = 0; i < shards; ++i) merged += read_file(shard_path(options, i, "jsonl"));
  write_file_atomic(options.output, merged);
}

std::vector<ShardPlan> plan_shards(size_t records, int64_t shard_records) {
  CHECK_GT(shard_records, 0);
  std::vector<ShardPlan> shards;
  for (size_t begin = 0; begin < records; begin += static_cast<size_t>(shard_records)) {
    shards.push_back({static_cast<int64_t>(shards.size()), begin,
                      std::min(records, begin + static_cast<size_t>(shard_records))});
  }
  return shards;
}

}  // namespace

void require_one_rank_replicas(const ProcessGrid& grid, const std::string& command) {
  if (grid.tp_size() > 1 || grid.pp_size() > 1) {
    // TODO(annotate-tp): score and generate through a TP/PP-sharded model; the forward-only
    // paths run each data-parallel replica on a single rank for now.
    throw UserError("parallel.tp/parallel.pp: " + command +
                    " runs each data-parallel replica on one rank; set parallel.tp: 1 and "
                    "parallel.pp: 1 (DP = world size)");
  }
}

AnnotateSummary run_annotation(const AnnotateOptions& options, AttributeScorer& scorer,
                               ProcessGrid& grid) {
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };

  // Every rank reads the whole input (cheap next to scoring) and plans the same shards.
  BadRecordLog bad_records(options.on_bad_record);
  const std::vector<Conversation> conversations = read_conversations(
      options.input, resolve_format(options.input, options.format), &bad_records);
  if (grid.world_rank() == 0) {
    bad_records.write_listing((fs::path(options.work_dir) / "data" / "skipped_records.jsonl"));
    if (bad_records.skipped() > 0) {
      LOG(WARNING) << "annotate: skipped " << bad_records.skipped() << " bad records, listed in "
                   << options.work_dir << "/data/skipped_records.jsonl";
    }
  }
  const std::vector<ShardPlan> shards = plan_shards(conversations.size(), options.shard_records);
  fs::create_directories(fs::path(options.work_dir) / "shards");

  // This replica's shards: i % DP == dp_rank. The TP x PP ranks of a replica score together;
  // the replica's first rank decides what is already done (so all agree) and writes.
  AnnotateSummary summary;
  int64_t mine = 0, done = 0, records = 0, written = 0;
  for (const ShardPlan& shard : shards) mine += shard.index % grid.dp_size() == grid.dp_rank();
  for (const ShardPlan& shard : shards) {
    if (shard.index % grid.dp_size() != grid.dp_rank()) continue;
    const std::string marker = shard_marker(options, scorer, conversations, shard);
    Tensor complete = Tensor::from_ints({shard_complete(options, marker, shard) ? 1 : 0}, Shape{1});
    grid.model().broadcast(complete, 0);
    if (complete.i32()[0] != 0) {
      ++summary.shards_reused;
    } else {
      const ShardWork work =
          annotate_shard(options, scorer, conversations, shard, marker, grid.model().rank() == 0);
      summary.turns += work.turns;
      summary.tokens += work.tokens;
      records += static_cast<int64_t>(shard.end - shard.begin);
      if (++written == options.fail_after_shards && grid.world_rank() == options.fail_rank) {
        LOG(ERROR) << "annotate: annotate.fail_after_shards reached; exiting like a killed rank";
        std::_Exit(3);
      }
    }
    ++done;
    if (grid.world_rank() == 0) {
      log_progress(done, mine, records, summary.tokens, elapsed(), grid.dp_size());
    }
  }

  // Totals over the replicas, then rank 0 merges once every shard is written.
  Tensor totals = Tensor::from_floats(  // (4), cpu
      {static_cast<float>(records), static_cast<float>(summary.turns),
       static_cast<float>(summary.tokens), static_cast<float>(summary.shards_reused)},
      Shape{4});
  grid.dp().all_reduce(totals);
  grid.world().barrier();
  summary.records = static_cast<int64_t>(totals.f32()[0]);
  summary.turns = static_cast<int64_t>(totals.f32()[1]);
  summary.tokens = static_cast<int64_t>(totals.f32()[2]);
  summary.shards_reused = static_cast<int64_t>(totals.f32()[3]);
  summary.shards = static_cast<int64_t>(shards.size());
  summary.skipped = bad_records.skipped();
  if (grid.world_rank() == 0) merge_shards(options, summary.shards);
  summary.seconds = elapsed();
  return summary;
}

}  // namespace steerlm
