// Checkpoint directories: the files written, an exact round trip of weights, optimizer state and
// manifest, atomic replacement, and the errors that say what differs.
#include "model/checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>

#include "runtime/error.h"
#include "runtime/file_util.h"
#include "tests/model/test_dirs.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;
using testing_dirs::expect_user_error;

config::ModelConfig small_config() {
  config::ModelConfig config;
  config.set_name("unit");
  config.set_dim(8);
  config.set_n_layers(1);
  config.set_n_heads(2);
  config.set_n_kv_heads(1);
  config.set_ffn_hidden(12);
  config.set_vocab_size(5);
  return config;
}

// A parameter set whose values are distinct, awkward floats.
ParameterSet filled_parameters(float offset) {
  ParameterSet parameters;
  parameters.add("model.embed_tokens.weight", {5, 8}, true);
  parameters.add("model.norm.weight", {8}, false);
  parameters.add("lm_head.weight", {5, 8}, true);
  int64_t counter = 0;
  for (Parameter& parameter : parameters) {
    for (int64_t i = 0; i < parameter.value.numel(); ++i)
      parameter.value.f32()[i] = offset + 0.1f * static_cast<float>(counter++) - 1.0f / 3.0f;
  }
  return parameters;
}

fs::path write_tokenizer(const fs::path& directory, const std::string& name,
                         const std::string& contents) {
  write_file_atomic(directory / name, contents);
  return directory / name;
}

std::vector<std::string> file_names(const fs::path& directory) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(directory))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Checkpoint, SaveLoadRoundTripIsExact) {
  fs::path scratch = testing_dirs::fresh_directory("ckpt");
  fs::path tokenizer = write_tokenizer(scratch, "tok512.bin", std::string("tok\0en", 6));
  ParameterSet saved = filled_parameters(0.0f);
  OptimizerState adam;
  adam.step = 17;
  for (const Parameter& parameter : saved) {
    adam.exp_avg.push_back({parameter.name, parameter.value.clone()});
    Tensor squares = parameter.value.clone();
    for (int64_t i = 0; i < squares.numel(); ++i) squares.f32()[i] *= squares.f32()[i];
    adam.exp_avg_sq.push_back({parameter.name, squares});
  }
  config::CheckpointManifest manifest;
  *manifest.mutable_model() = small_config();
  manifest.set_head(kHeadLanguageModel);
  manifest.add_attributes("helpfulness");
  manifest.add_attributes("verbosity");
  manifest.set_step(42);
  manifest.set_consumed_samples(336);
  manifest.set_data_loader_state(std::string("epoch\0\x01\xff", 8));
  manifest.set_rng_state(std::string("\x00\x7f\x80", 3));

  fs::path directory = scratch / "checkpoint";
  save_checkpoint(directory, manifest, tokenizer.string(), named_tensors(saved), &adam);

  // The directory holds exactly the promised files; the temporary one is gone.
  EXPECT_EQ(file_names(directory),
            (std::vector<std::string>{"manifest.pbtxt", "model_tp0_pp0.safetensors",
                                      "optimizer_tp0_pp0_dp0.safetensors", "tokenizer.bin"}));
  EXPECT_EQ(file_names(scratch), (std::vector<std::string>{"checkpoint", "tok512.bin"}));

  // The manifest: everything the caller set, plus version, layout, tokenizer and provenance.
  config::CheckpointManifest loaded = read_checkpoint_manifest(directory);
  EXPECT_EQ(loaded.format_version(), kCheckpointFormatVersion);
  EXPECT_EQ(loaded.model().vocab_size(), 5);
  EXPECT_TRUE(loaded.model().has_rope_theta());  // defaults are written explicitly
  EXPECT_EQ(loaded.model().rope_theta(), 10000.0f);
  EXPECT_EQ(loaded.head(), "language_model");
  ASSERT_EQ(loaded.attributes_size(), 2);
  EXPECT_EQ(loaded.attributes(1), "verbosity");
  EXPECT_EQ(loaded.step(), 42);
  EXPECT_EQ(loaded.consumed_samples(), 336);
  EXPECT_EQ(loaded.data_loader_state(), std::string("epoch\0\x01\xff", 8));
  EXPECT_EQ(loaded.rng_state(), std::string("\x00\x7f\x80", 3));
  EXPECT_EQ(loaded.optimizer_step(), 17);
  EXPECT_EQ(loaded.parallel().tp(), 1);
  ASSERT_EQ(loaded.shards_size(), 1);
  EXPECT_EQ(loaded.shards(0).file(), "model_tp0_pp0.safetensors");
  EXPECT_EQ(loaded.tokenizer_file(), "tokenizer.bin");
  EXPECT_EQ(loaded.tokenizer_bytes(), 6);
  EXPECT_EQ(read_file(checkpoint_tokenizer_path(directory, loaded)), std::string("tok\0en", 6));
  EXPECT_FALSE(loaded.provenance().commit().empty());
  EXPECT_FALSE(loaded.provenance().libraries().empty());
  EXPECT_EQ(loaded.provenance().hosts_size(), 1);

  // Weights and optimizer state come back bit for bit.
  check_checkpoint_matches(directory, loaded, small_config(), tokenizer.string());
  ParameterSet restored = filled_parameters(5.0f);
  load_checkpoint_parameters(directory, loaded, restored);
  for (const Parameter& parameter : saved) {
    const Tensor& value = restored.at(parameter.name).value;
    EXPECT_EQ(std::memcmp(value.raw(), parameter.value.raw(), value.nbytes()), 0) << parameter.name;
  }
  OptimizerState restored_adam;
  load_checkpoint_optimizer(directory, loaded, &restored_adam);
  EXPECT_EQ(restored_adam.step, 17);
  ASSERT_EQ(restored_adam.exp_avg_sq.size(), 3u);
  EXPECT_EQ(restored_adam.exp_avg_sq[2].name, "lm_head.weight");
  EXPECT_EQ(restored_adam.exp_avg_sq[2].tensor.to_floats(), adam.exp_avg_sq[2].tensor.to_floats());
  EXPECT_EQ(restored_adam.exp_avg[0].tensor.to_floats(), adam.exp_avg[0].tensor.to_floats());
}

TEST(Checkpoint, SavingAgainReplacesTheDirectoryWhole) {
  fs::path scratch = testing_dirs::fresh_directory("ckpt");
  fs::path tokenizer = write_tokenizer(scratch, "tokenizer.model", "spm");
  config::CheckpointManifest manifest;
  *manifest.mutable_model() = small_config();
  fs::path directory = scratch / "checkpoint";
  ParameterSet first = filled_parameters(0.0f);
  OptimizerState adam;
  save_checkpoint(directory, manifest, tokenizer.string(), named_tensors(first), &adam);
  ParameterSet second = filled_parameters(1.0f);
  manifest.set_step(2);
  save_checkpoint(directory, manifest, tokenizer.string(), named_tensors(second));

  // The second save has no optimizer file and the second weights; no .old or .tmp remains.
  EXPECT_EQ(
      file_names(directory),
      (std::vector<std::string>{"manifest.pbtxt", "model_tp0_pp0.safetensors", "tokenizer.model"}));
  EXPECT_EQ(file_names(scratch), (std::vector<std::string>{"checkpoint", "tokenizer.model"}));
  config::CheckpointManifest loaded = read_checkpoint_manifest(directory);
  EXPECT_EQ(loaded.step(), 2);
  ParameterSet restored = filled_parameters(9.0f);
  load_checkpoint_parameters(directory, loaded, restored);
  EXPECT_EQ(restored.at("model.norm.weight").value.to_floats(),
            second.at("model.norm.weight").value.to_floats());
}

TEST(Checkpoint, MismatchesSayExactlyWhatDiffers) {
  fs::path scratch = testing_dirs::fresh_directory("ckpt");
  fs::path tokenizer = write_tokenizer(scratch, "a.bin", "first tokenizer");
  fs::path other_tokenizer = write_tokenizer(scratch, "b.model", "another one");
  config::CheckpointManifest manifest;
  *manifest.mutable_model() = small_config();
  fs::path directory = scratch / "checkpoint";
  save_checkpoint(directory, manifest, tokenizer.string(), named_tensors(filled_parameters(0)));
  config::CheckpointManifest loaded = read_checkpoint_manifest(directory);

  // The name is a label and may differ; a default written explicitly equals an unset field.
  config::ModelConfig renamed = small_config();
  renamed.set_name("other");
  renamed.set_max_seq_len(2048);
  check_checkpoint_matches(directory, loaded, renamed, tokenizer.string());

  config::ModelConfig expected = small_config();
  expected.set_dim(16);
  expected.set_vocab_size(32000);
  expected.set_tie_embeddings(true);
  EXPECT_EQ(expect_user_error([&] {
              check_checkpoint_matches(directory, loaded, expected, other_tokenizer.string());
            }),
            "checkpoint " + directory.string() +
                " does not match: model.dim is 8 in the checkpoint but 16 is expected; "
                "vocabulary size (model.vocab_size) is 5 in the checkpoint but 32000 is "
                "expected; model.tie_embeddings is false in the checkpoint but true is expected; "
                "tokenizer tokenizer.bin (15 bytes) differs from " +
                other_tokenizer.string() + " (11 bytes)");

  // Parameters: missing, unexpected and mis-shaped tensors are all listed.
  ParameterSet different;
  different.add("model.embed_tokens.weight", {5, 8}, true);
  different.add("model.norm.weight", {4}, false);
  different.add("attribute_head.weight", {3, 8}, true);
  EXPECT_EQ(expect_user_error([&] { load_checkpoint_parameters(directory, loaded, different); }),
            (directory / "model_tp0_pp0.safetensors").string() +
                " does not match the model: missing attribute_head.weight; unexpected "
                "lm_head.weight; shape (file vs model) model.norm.weight (8) vs (4)");

  // No optimizer state was saved.
  OptimizerState adam;
  EXPECT_EQ(expect_user_error([&] { load_checkpoint_optimizer(directory, loaded, &adam); }),
            "checkpoint " + directory.string() +
                " has 0 optimizer files for its shard; one is expected (saved without ZeRO-1)");
}

TEST(Checkpoint, ManifestErrorsNameTheFile) {
  fs::path scratch = testing_dirs::fresh_directory("ckpt");
  EXPECT_EQ(expect_user_error([&] { read_checkpoint_manifest(scratch); }),
            scratch.string() + " is not a steerlm checkpoint: " +
                (scratch / "manifest.pbtxt").string() + " does not exist");
  write_file_atomic(scratch / "manifest.pbtxt", "format_version: 7\n");
  EXPECT_EQ(
      expect_user_error([&] { read_checkpoint_manifest(scratch); }),
      (scratch / "manifest.pbtxt").string() + ": format_version 7 is not supported (expected 1)");

  config::CheckpointManifest sharded;
  sharded.mutable_parallel()->set_tp(2);
  sharded.add_shards();
  sharded.add_shards();
  ParameterSet parameters = filled_parameters(0);
  EXPECT_EQ(expect_user_error([&] { load_checkpoint_parameters(scratch, sharded, parameters); }),
            "checkpoint " + scratch.string() +
                " was written with tp=2 pp=1; loading it into a single rank needs resharding, "
                "which is not built yet");
}

}  // namespace
}  // namespace steerlm
