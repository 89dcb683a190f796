#include "pipeline/train_stage.h"

#include <glog/logging.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <set>
#include <sstream>

#include "model/checkpoint.h"
#include "model/pipeline_schedule.h"
#include "model/sharded_checkpoint.h"
#include "model/trainer.h"
#include "parallel/mpi_session.h"
#include "parallel/process_grid.h"
#include "pipeline/attribute_eval.h"
#include "pipeline/dataset.h"
#include "pipeline/loader.h"
#include "pipeline/readers.h"
#include "pipeline/synth.h"
#include "pipeline/tokenizer_sentencepiece.h"
#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace fs = std::filesystem;

const char* training_task_command(TrainingTask task) {
  return task == TrainingTask::kAttributeModel ? "train-attr" : "sft";
}

namespace {

// The loader's micro-batch (host vectors, -100 at untrained targets, -1 at padding) as the
// model's batch (host tensors, a loss mask, segment 0 at padding).
Batch to_model_batch(const LoaderBatch& source) {
  const Shape tokens_shape{source.rows, source.seq_len};
  Batch batch;
  batch.tokens = Tensor::from_ints(source.tokens, tokens_shape);        // (B, T) i32, cpu
  batch.positions = Tensor::from_ints(source.positions, tokens_shape);  // (B, T) i32, cpu
  batch.segments = Tensor::empty(tokens_shape, DType::kI32);            // (B, T) i32, cpu
  batch.targets = Tensor::empty(tokens_shape, DType::kI32);             // (B, T) i32, cpu
  batch.loss_mask = Tensor::empty(tokens_shape, DType::kF32);           // (B, T) f32, cpu
  for (int64_t i = 0; i < tokens_shape.numel(); ++i) {
    batch.segments.i32()[i] = source.sequence_ids[i] + 1;
    const bool trained = source.targets[i] != kIgnoreTarget;
    batch.targets.i32()[i] = trained ? source.targets[i] : 0;
    batch.loss_mask.f32()[i] = trained ? 1.0f : 0.0f;
  }
  if (source.attributes > 0) {
    const int64_t sequences = static_cast<int64_t>(source.lengths.size());
    batch.attribute_targets =
        Tensor::from_floats(source.attribute_targets, Shape{sequences, source.attributes});
  }
  return batch;
}

std::vector<Batch> to_model_batches(const std::vector<LoaderBatch>& sources) {
  std::vector<Batch> batches;
  for (const LoaderBatch& source : sources) {
    if (source.rows > 0) batches.push_back(to_model_batch(source));
  }
  return batches;
}

// This DP rank's view of the data loader, for the training loop.
class LoaderBatchSource : public BatchSource {
 public:
  LoaderBatchSource(DataLoader& loader, const ProcessGrid& grid, int micro_batches,
                    int64_t global_batch)
      : loader_(loader),
        dp_rank_(grid.dp_rank()),
        dp_size_(grid.dp_size()),
        micro_batches_(micro_batches),
        global_batch_(global_batch) {}

  std::vector<Batch> next_step() override {
    return to_model_batches(loader_.next_step(dp_rank_, dp_size_, micro_batches_));
  }
  std::string save_state() const override {
    return std::to_string(loader_.state().epoch) + " " + std::to_string(loader_.state().position);
  }
  void restore_state(const std::string& text) override {
    std::istringstream in(text);
    LoaderState state;
    if (!(in >> state.epoch >> state.position)) {
      throw UserError("checkpoint data_loader_state \"" + text + "\" is not \"EPOCH POSITION\"");
    }
    loader_.restore(state);
  }
  int64_t global_batch_sequences() const override { return global_batch_; }

 private:
  DataLoader& loader_;
  int dp_rank_, dp_size_, micro_batches_;
  int64_t global_batch_;
};

// The architecture: the checkpoint's when starting from one, else the config's, with the
// vocabulary taken from the tokenizer when the config leaves it out.
config::ModelConfig resolve_architecture(const config::StageConfig& config,
                                         const Tokenizer& tokenizer) {
  config::ModelConfig model = config.model().config();
  if (!config.model().init_from().empty()) {
    model = read_checkpoint_manifest(config.model().init_from()).model();
  }
  if (model.vocab_size() == 0) model.set_vocab_size(tokenizer.vocab_size());
  if (model.vocab_size() < tokenizer.vocab_size()) {
    throw UserError("model.config.vocab_size: " + std::to_string(model.vocab_size()) +
                    " is smaller than the tokenizer's " + std::to_string(tokenizer.vocab_size()) +
                    " pieces (" + config.tokenizer() + "); raise it or leave it unset");
  }
  return model;
}

// Starts from model.init_from, written at any layout: every trunk weight must be there; a head
// the checkpoint lacks (an attribute head on a language model) keeps its fresh initialisation.
void load_initial_weights(const std::string& directory, LlamaModel& model) {
  config::CheckpointManifest manifest = read_checkpoint_manifest(directory);
  check_checkpoint_matches(directory, manifest, model.config(), "");
  const auto is_head = [](const std::string& name) {
    return name.rfind("attribute_head.", 0) == 0 || name.rfind("lm_head.", 0) == 0;
  };
  const int loaded =
      load_sharded_weights(directory, manifest, model.parameters(), model.shard(), is_head);
  LOG(INFO) << "initialised " << loaded << " parameters from " << directory;
}

// The validation conversations again, with the assistant turns' labels permuted across
// conversations by a seeded shuffle: the same texts under wrong labels (issue 7). A model that
// reads its conditioning scores these worse than the true labels.
std::vector<TokenizedSample> shuffled_label_validation(const config::StageConfig& config,
                                                       const Tokenizer& tokenizer,
                                                       const StageData& data) {
  std::set<uint64_t> validation_prompts;
  for (const TokenizedSample& sample : data.validation)
    validation_prompts.insert(sample.prompt_hash);
  const auto& paths =
      config.data().validation_size() > 0 ? config.data().validation() : config.data().train();
  TokenizeOptions options{data.template_options, SampleTask::kLanguageModel,
                          config.chat_template().add_bos(), config.chat_template().add_eos()};

  // Find the validation conversations (records already reported bad are skipped silently here).
  std::vector<Conversation> conversations;
  BadRecordLog already_reported(config::BadRecord::SKIP);
  for (const std::string& path : paths) {
    for (Conversation& conversation : read_conversations(
             path, resolve_format(path, config.data().format()), &already_reported)) {
      std::vector<TokenizedSample> samples =
          tokenize_conversation(conversation, tokenizer, options, nullptr);
      if (!samples.empty() && validation_prompts.count(samples.front().prompt_hash) > 0) {
        conversations.push_back(std::move(conversation));
      }
    }
  }

  // Permute the labels of the labelled assistant turns across conversations.
  std::vector<std::map<std::string, float>*> labels;
  for (Conversation& conversation : conversations) {
    for (Turn& turn : conversation.turns) {
      if (turn.role == Role::kAssistant && !turn.attributes.empty())
        labels.push_back(&turn.attributes);
    }
  }
  std::vector<std::map<std::string, float>> values;
  for (auto* label : labels) values.push_back(*label);
  std::mt19937_64 random(config.train().seed());
  std::shuffle(values.begin(), values.end(), random);
  for (size_t i = 0; i < labels.size(); ++i) *labels[i] = values[i];

  std::vector<TokenizedSample> shuffled;
  for (const Conversation& conversation : conversations) {
    for (TokenizedSample& sample :
         tokenize_conversation(conversation, tokenizer, options, nullptr)) {
      shuffled.push_back(std::move(sample));
    }
  }
  fit_to_length(&shuffled, config.train().seq_len(), config.data().truncation(),
                SampleTask::kLanguageModel, options.add_bos);
  return shuffled;
}

// eval.json of an sft job: validation loss with the true and with shuffled labels.
void write_sft_evaluation(const config::StageConfig& config, const Tokenizer& tokenizer,
                          const StageData& data, const LoaderOptions& loader_options,
                          Trainer& trainer, ProcessGrid& grid) {
  const std::vector<Batch> true_labels = to_model_batches(
      validation_batches(data.validation, loader_options, grid.dp_rank(), grid.dp_size()));
  const std::vector<TokenizedSample> shuffled = shuffled_label_validation(config, tokenizer, data);
  const std::vector<Batch> wrong_labels = to_model_batches(
      validation_batches(shuffled, loader_options, grid.dp_rank(), grid.dp_size()));
  const double val_loss = trainer.validate(true_labels).loss.mean();
  const double shuffled_loss = trainer.validate(wrong_labels).loss.mean();
  if (grid.world_rank() != 0) return;
  LOG(INFO) << "sft evaluation: val_loss " << val_loss << ", with shuffled labels " << shuffled_loss
            << " (" << data.validation.size() << " validation samples)";
  nlohmann::json evaluation = {{"val_loss", val_loss},
                               {"val_loss_shuffled_labels", shuffled_loss},
                               {"validation_samples", data.validation.size()}};
  write_file_atomic(fs::path(config.output_dir()) / "eval.json", evaluation.dump(2) + "\n");
}

void write_done(const config::StageConfig& config) {
  write_file_atomic(fs::path(config.output_dir()) / "DONE", "");
}

}  // namespace

void run_training_stage(TrainingTask task, const config::StageConfig& stage_config,
                        const FieldLocations& where, MpiSession& mpi) {
  std::unique_ptr<ProcessGrid> grid = ProcessGrid::create(mpi, stage_config, where);
  const bool attribute_task = task == TrainingTask::kAttributeModel;

  // Data: tokenizer, samples (every rank reads; the token cache is written atomically).
  config::StageConfig config = stage_config;
  if (config.tokenizer().empty() && !config.model().init_from().empty()) {
    const fs::path directory = config.model().init_from();
    config.set_tokenizer(
        checkpoint_tokenizer_path(directory, read_checkpoint_manifest(directory)).string());
  }
  if (config.tokenizer().empty()) {
    throw UserError(
        "tokenizer: not set; name a SentencePiece .model or llama2.c .bin file, or "
        "embedded:default");
  }
  if (is_embedded_spec(config.tokenizer())) {
    // Checkpoints carry a copy of the tokenizer file, so the embedded one gets a real file.
    const fs::path materialised = fs::path(config.output_dir()) / "tokenizer.model";
    write_file_atomic(materialised, embedded_tokenizer_model());
    config.set_tokenizer(materialised.string());
  }
  std::unique_ptr<Tokenizer> tokenizer = load_stage_tokenizer(config);
  StageData data = load_stage_data(
      config, *tokenizer, attribute_task ? SampleTask::kAttributes : SampleTask::kLanguageModel);
  if (grid->world_rank() == 0) data.report.write(config.output_dir());

  // Model: from scratch or from model.init_from.
  const config::ModelConfig architecture = resolve_architecture(config, *tokenizer);
  ModelOptions options;
  options.init_std = config.model().init_std();
  options.activation_recompute = config.model().activation_recompute();
  options.shard = pipeline_model_shard(*grid, architecture);  // this rank's TP slice and stage
  options.tp_group = &grid->tp();
  LlamaModel model(architecture, attribute_task ? HeadKind::kAttribute : HeadKind::kLanguageModel,
                   static_cast<int>(data.attributes.size()), config.train().seed(), options);
  if (!config.model().init_from().empty()) load_initial_weights(config.model().init_from(), model);

  // The loop, fed by this rank's share of each global batch.
  LoaderOptions loader_options{config.train().global_batch_size(), config.train().seq_len(),
                               config.train().seed(), config.data().packing()};
  DataLoader loader(data.train, data.part_weights, loader_options);
  LoaderBatchSource source(loader, *grid, config.parallel().micro_batches(),
                           config.train().global_batch_size());
  TrainingEnvironment environment;
  environment.world_rank = grid->world_rank();
  environment.grid = grid.get();
  environment.tokenizer_path = config.tokenizer();
  environment.attribute_names = data.attributes;
  environment.validation_batches = to_model_batches(
      validation_batches(data.validation, loader_options, grid->dp_rank(), grid->dp_size()));
  environment.initial_metrics = {data.report.metrics_line()};
  environment.inject_nan_at_steps.assign(config.train().inject_nan_at_steps().begin(),
                                         config.train().inject_nan_at_steps().end());
  config::CheckpointManifest& manifest = environment.manifest_template;
  manifest.set_head(attribute_task ? kHeadAttribute : kHeadLanguageModel);
  for (const std::string& name : data.attributes) manifest.add_attributes(name);
  if (attribute_task) {
    // eval-attr's baselines (training mean, length line), fitted on this training split.
    for (const config::AttributeBaseline& baseline : training_attribute_baselines(config, data)) {
      *manifest.add_attribute_baselines() = baseline;
    }
  }
  // The template with every field explicit, so generation renders exactly what training saw.
  config::ChatTemplate& chat_template = *manifest.mutable_chat_template();
  chat_template = config.chat_template();
  chat_template.set_system_prompt(config.chat_template().system_prompt());
  chat_template.set_markers_as_special_tokens(config.chat_template().markers_as_special_tokens());
  chat_template.set_add_bos(config.chat_template().add_bos());
  chat_template.set_add_eos(config.chat_template().add_eos());

  Trainer trainer(config, model, source, std::move(environment));
  TrainingSummary summary = trainer.run();
  if (summary.stopped_by_signal) return;  // no DONE: a re-run resumes from the checkpoint
  if (task == TrainingTask::kSft && !data.validation.empty()) {
    write_sft_evaluation(config, *tokenizer, data, loader_options, trainer, *grid);
  }
  if (grid->world_rank() == 0) write_done(config);
}

}  // namespace steerlm
