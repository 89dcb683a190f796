// `steerlm generate` on a SteerLM chat model (a manifest with an attribute set): the prompt is the
// NeMo chat template with the requested label, decoding stops at <extra_id_1>, and JSONL in/out
// keeps every input field.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "model/checkpoint.h"
#include "model/generation.h"
#include "model/llama.h"
#include "pipeline/chat_template.h"
#include "pipeline/tokenizer.h"
#include "runtime/file_util.h"
#include "tests/model/test_dirs.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;

// A random tiny model over the embedded tokenizer, saved twice: as a chat model (with an
// attribute set) and as a plain language model with the same weights.
void save_models(const fs::path& scratch, int vocab_size) {
  config::ModelConfig config;
  config.set_name("chat-test");
  config.set_dim(32);
  config.set_n_layers(2);
  config.set_n_heads(4);
  config.set_n_kv_heads(2);
  config.set_ffn_hidden(48);
  config.set_vocab_size(vocab_size);
  config.set_max_seq_len(256);
  ModelOptions options;
  options.init_std = 0.3f;
  LlamaModel model(config, HeadKind::kLanguageModel, 0, 5, options);
  config::CheckpointManifest manifest;
  *manifest.mutable_model() = config;
  manifest.set_head(kHeadLanguageModel);
  save_checkpoint(scratch / "plain", manifest, "embedded:default",
                  named_tensors(model.parameters()));
  manifest.add_attributes("helpfulness");
  manifest.add_attributes("verbosity");
  manifest.mutable_chat_template();
  save_checkpoint(scratch / "chat", manifest, "embedded:default",
                  named_tensors(model.parameters()));
}

// The NeMo template text the chat path must decode from.
std::string rendered_prompt(const std::string& prompt, const std::map<std::string, float>& label) {
  TemplateOptions options =
      make_template_options(config::ChatTemplate(), {"helpfulness", "verbosity"});
  Conversation conversation;
  conversation.turns.push_back(Turn{Role::kUser, prompt, {}, {}});
  return render_generation_prompt(conversation, label, options);
}

int run_steerlm(const std::string& arguments, const fs::path& out, const fs::path& err) {
  std::string command = std::string(STEERLM_BINARY_DIR) + "/bin/steerlm " + arguments + " > " +
                        out.string() + " 2> " + err.string();
  return WEXITSTATUS(std::system(command.c_str()));
}

TEST(GenerateChat, AttributeModelsUseTheTemplateAndJsonlKeepsFields) {
  fs::path scratch = testing_dirs::fresh_directory("chat");
  std::unique_ptr<Tokenizer> tokenizer = Tokenizer::load("embedded:default");
  save_models(scratch, tokenizer->vocab_size());
  fs::path model = scratch / "chat", out = scratch / "out.txt", err = scratch / "err.txt";
  const std::string flags = " --max-new-tokens 24";

  // Reference: the plain model continues the rendered template as is (same weights, same ids);
  // the chat path must give that text, cut at the first <extra_id_1>.
  nlohmann::json requests = {
      {{"prompt", rendered_prompt("Name a colour.", {{"helpfulness", 4}, {"verbosity", 1}})}},
      {{"prompt", rendered_prompt("Hi", {{"helpfulness", 4}, {"verbosity", 3}})}}};
  write_file_atomic(scratch / "plain.jsonl", requests[0].dump() + "\n" + requests[1].dump() + "\n");
  ASSERT_EQ(run_steerlm("generate --model " + (scratch / "plain").string() + " --input " +
                            (scratch / "plain.jsonl").string() + " --output " +
                            (scratch / "plain_out.jsonl").string() + flags,
                        out, err),
            0)
      << read_file(err);
  std::ifstream plain_lines(scratch / "plain_out.jsonl");
  std::vector<std::string> expected(2);
  for (std::string& text : expected) {
    std::string line;
    std::getline(plain_lines, line);
    text = nlohmann::json::parse(line)["generation"];
    cut_at_stop_string(text, {kTurnMarker});
  }

  // --prompt on the chat model.
  ASSERT_EQ(
      run_steerlm("generate --model " + model.string() +
                      " --prompt \"Name a colour.\" --attributes helpfulness=4,verbosity=1" + flags,
                  out, err),
      0)
      << read_file(err);
  EXPECT_EQ(read_file(out), expected[0] + "\n");

  // --input/--output: fields kept, per-record attributes override --attributes.
  write_file_atomic(scratch / "in.jsonl",
                    R"({"prompt": "Name a colour.", "id": 7})"
                    "\n"
                    R"({"prompt": "Hi", "attributes": {"verbosity": 3}, "dataset": "x"})"
                    "\n");
  ASSERT_EQ(run_steerlm("generate --model " + model.string() + " --input " +
                            (scratch / "in.jsonl").string() + " --output " +
                            (scratch / "gen.jsonl").string() +
                            " --attributes helpfulness=4,verbosity=1" + flags,
                        out, err),
            0)
      << read_file(err);
  EXPECT_EQ(read_file(out), "");
  std::ifstream lines(scratch / "gen.jsonl");
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  auto record = nlohmann::json::parse(first);
  EXPECT_EQ(record["id"], 7);
  EXPECT_EQ(record["generation"], expected[0]);
  auto other = nlohmann::json::parse(second);
  EXPECT_EQ(other["dataset"], "x");
  EXPECT_EQ(other["generation"], expected[1]);
  EXPECT_EQ(other["generation"].get<std::string>().find(kTurnMarker), std::string::npos);

  // Attributes outside the model's set, and conflicting flags, are errors.
  EXPECT_EQ(run_steerlm("generate --model " + model.string() + " --prompt x --attributes humor=2",
                        out, err),
            1);
  EXPECT_EQ(read_file(err),
            "steerlm: error: --attributes: 'humor' is not in the model's attribute set "
            "(helpfulness, verbosity)\n");
  EXPECT_EQ(run_steerlm("generate --model " + model.string() +
                            " --prompt x --attributes helpfulness=4,verbosity=7",
                        out, err),
            1);
  EXPECT_EQ(read_file(err),
            "steerlm: error: --attributes: verbosity=7 is out of range; valid values are 0..4\n");
  write_file_atomic(scratch / "range.jsonl", R"({"prompt": "Hi", "attributes": {"verbosity": -1}})"
                                             "\n");
  EXPECT_EQ(run_steerlm("generate --model " + model.string() + " --input " +
                            (scratch / "range.jsonl").string() + " --output " +
                            (scratch / "range_out.jsonl").string(),
                        out, err),
            1);
  EXPECT_EQ(read_file(err), "steerlm: error: " + (scratch / "range.jsonl").string() +
                                ":1: attributes: verbosity=-1 is out of range; valid values are "
                                "0..4\n");
  EXPECT_EQ(
      run_steerlm("generate --model " + model.string() + " --prompt x --input y.jsonl", out, err),
      2);
  EXPECT_EQ(read_file(err),
            "steerlm: error: generate needs exactly one of --prompt TEXT and --input JSONL\n");
}

TEST(GenerateChat, SameSeedSameTextAndAnotherSeedAnotherText) {
  fs::path scratch = testing_dirs::fresh_directory("chat_seed");
  std::unique_ptr<Tokenizer> tokenizer = Tokenizer::load("embedded:default");
  save_models(scratch, tokenizer->vocab_size());
  fs::path out = scratch / "out.txt", err = scratch / "err.txt";
  auto sampled = [&](int seed) {
    const std::string command = "generate --model " + (scratch / "chat").string() +
                                " --prompt \"Name a colour.\" --attributes verbosity=3 " +
                                "--temperature 1 --top-k 50 --max-new-tokens 24 --seed " +
                                std::to_string(seed);
    EXPECT_EQ(run_steerlm(command, out, err), 0) << read_file(err);
    return read_file(out);
  };
  const std::string first = sampled(11);
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(sampled(11), first);
  EXPECT_NE(sampled(12), first);
}

}  // namespace
}  // namespace steerlm
