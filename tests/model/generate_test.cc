// Decoding: the sampler's distribution against a float64 reference, reproducibility, batch
// independence, the KV cache against full forwards, stop rules, and real weights end to end.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "model/generation.h"
#include "model/sampling.h"
#include "runtime/file_util.h"
#include "tests/model/test_dirs.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;

TEST(Sampling, DistributionAppliesTemperatureTopKAndTopP) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 0.5f, 2.9f};
  // Reference: softmax(logits / 0.5) in float64, sorted: ids 1, 4, 2, 0, 3.
  std::vector<double> p(5);
  double total = 0;
  for (int i = 0; i < 5; ++i) total += (p[i] = std::exp(logits[i] / 0.5));
  for (double& value : p) value /= total;

  // top_k = 3 keeps ids 1, 4, 2.
  TokenSampler top_k({0.5f, 3, 1.0f}, 1, 0);
  std::vector<double> kept = top_k.distribution(logits.data(), 5);
  double mass = p[1] + p[4] + p[2];
  EXPECT_NEAR(kept[1], p[1] / mass, 1e-15);
  EXPECT_NEAR(kept[4], p[4] / mass, 1e-15);
  EXPECT_NEAR(kept[2], p[2] / mass, 1e-15);
  EXPECT_EQ(kept[0], 0.0);
  EXPECT_EQ(kept[3], 0.0);

  // top_p just above p[1] keeps ids 1 and 4 (the smallest prefix reaching it).
  TokenSampler top_p({0.5f, 0, static_cast<float>(p[1] + 1e-4)}, 1, 0);
  kept = top_p.distribution(logits.data(), 5);
  EXPECT_NEAR(kept[1], p[1] / (p[1] + p[4]), 1e-15);
  EXPECT_NEAR(kept[4], p[4] / (p[1] + p[4]), 1e-15);
  EXPECT_EQ(kept[2], 0.0);

  // Greedy: the first maximum.
  TokenSampler greedy({0.0f, 0, 1.0f}, 1, 0);
  const std::vector<float> ties = {0.0f, 5.0f, 5.0f, 1.0f};
  EXPECT_EQ(greedy.next(ties.data(), 4), 1);
}

TEST(Sampling, SameSeedSameDrawsAndFrequenciesFollowTheDistribution) {
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(3.0f), std::log(4.0f)};
  auto draws = [&](uint64_t seed, uint64_t index, int n) {
    TokenSampler sampler({1.0f, 0, 1.0f}, seed, index);
    std::vector<int32_t> tokens;
    for (int i = 0; i < n; ++i) tokens.push_back(sampler.next(logits.data(), 4));
    return tokens;
  };
  EXPECT_EQ(draws(7, 0, 50), draws(7, 0, 50));
  EXPECT_NE(draws(7, 0, 50), draws(8, 0, 50));
  EXPECT_NE(draws(7, 0, 50), draws(7, 1, 50));

  // 40000 draws of p = (1, 2, 3, 4)/10: each frequency within 5 standard errors.
  std::vector<int> counts(4, 0);
  for (int32_t token : draws(3, 0, 40000)) ++counts[token];
  for (int i = 0; i < 4; ++i) {
    double p = (i + 1) / 10.0;
    EXPECT_NEAR(counts[i] / 40000.0, p, 5 * std::sqrt(p * (1 - p) / 40000.0)) << "token " << i;
  }
}

TEST(Generation, CutAtStopString) {
  std::string text = "Sure, here it is.\n<extra_id_1>User\n";
  EXPECT_TRUE(cut_at_stop_string(text, {"<extra_id_1>"}));
  EXPECT_EQ(text, "Sure, here it is.\n");
  std::string plain = "no marker";
  EXPECT_FALSE(cut_at_stop_string(plain, {"<extra_id_1>", ""}));
  EXPECT_EQ(plain, "no marker");
}

config::ModelConfig decoding_config() {
  config::ModelConfig config;
  config.set_name("decode-test");
  config.set_dim(32);
  config.set_n_layers(2);
  config.set_n_heads(4);
  config.set_n_kv_heads(2);
  config.set_ffn_hidden(48);
  config.set_vocab_size(23);
  config.set_max_seq_len(64);
  return config;
}

// Peaked logits, so greedy choices are far from ties.
ModelOptions peaked() {
  ModelOptions options;
  options.init_std = 0.5f;
  return options;
}

const std::vector<std::vector<int32_t>> kPrompts = {{1, 5, 9}, {1}, {1, 2, 3, 4, 5, 6, 7}};

TEST(Generation, GreedyWithTheCacheEqualsArgmaxOfFullForwards) {
  LlamaModel model(decoding_config(), HeadKind::kLanguageModel, 0, 11, peaked());
  GenerationOptions options;
  options.max_new_tokens = 12;
  std::vector<Generation> generations = generate(model, kPrompts, options);
  ASSERT_EQ(generations.size(), 3u);
  for (size_t b = 0; b < kPrompts.size(); ++b) {
    ASSERT_EQ(generations[b].tokens.size(), 12u);
    EXPECT_EQ(generations[b].finish, FinishReason::kLength);
    // Re-run the whole sequence without a cache: each generated token is the argmax there.
    std::vector<int32_t> sequence = kPrompts[b];
    sequence.insert(sequence.end(), generations[b].tokens.begin(), generations[b].tokens.end());
    Tensor logits = model.logits(make_padded_batch({sequence}, sequence.size()));  // (1, T, V)
    for (size_t i = 0; i < generations[b].tokens.size(); ++i) {
      const float* row = logits.f32() + (kPrompts[b].size() - 1 + i) * 23;
      EXPECT_EQ(generations[b].tokens[i], std::max_element(row, row + 23) - row)
          << "sequence " << b << " token " << i;
    }
  }
}

TEST(Generation, SampledOutputDependsOnlyOnSeedAndSequenceIndex) {
  LlamaModel model(decoding_config(), HeadKind::kLanguageModel, 0, 11, peaked());
  GenerationOptions options;
  options.max_new_tokens = 10;
  options.sampling = {0.9f, 10, 0.95f};
  options.seed = 99;
  std::vector<Generation> together = generate(model, kPrompts, options);
  // Each prompt alone, at its index, samples the same tokens; a rerun repeats them.
  for (size_t b = 0; b < kPrompts.size(); ++b) {
    GenerationOptions alone = options;
    alone.first_sequence_index = b;
    EXPECT_EQ(generate(model, {kPrompts[b]}, alone)[0].tokens, together[b].tokens) << b;
  }
  EXPECT_EQ(generate(model, kPrompts, options)[0].tokens, together[0].tokens);
  options.seed = 100;
  std::vector<Generation> other_seed = generate(model, kPrompts, options);
  EXPECT_TRUE(other_seed[0].tokens != together[0].tokens ||
              other_seed[1].tokens != together[1].tokens ||
              other_seed[2].tokens != together[2].tokens);
}

TEST(Generation, StopsAtStopTokensAndStopStrings) {
  LlamaModel model(decoding_config(), HeadKind::kLanguageModel, 0, 11, peaked());
  GenerationOptions options;
  options.max_new_tokens = 12;
  std::vector<int32_t> greedy = generate(model, {kPrompts[0]}, options)[0].tokens;

  // The 4th greedy token as a stop token: three tokens come out.
  options.stop_token_ids = {greedy[3]};
  size_t first_stop = std::find(greedy.begin(), greedy.end(), greedy[3]) - greedy.begin();
  Generation stopped = generate(model, {kPrompts[0]}, options)[0];
  EXPECT_EQ(stopped.finish, FinishReason::kStopToken);
  EXPECT_EQ(stopped.tokens, std::vector<int32_t>(greedy.begin(), greedy.begin() + first_stop));

  // A stop string made of the text of tokens 2..3 ("<id>" per token) ends after token 3.
  options.stop_token_ids.clear();
  options.detokenize = [](const std::vector<int32_t>& ids) {
    std::string text;
    for (int32_t id : ids) text += "<" + std::to_string(id) + ">";
    return text;
  };
  options.stop_strings = {"<" + std::to_string(greedy[2]) + "><" + std::to_string(greedy[3]) + ">"};
  Generation cut = generate(model, {kPrompts[0]}, options)[0];
  EXPECT_EQ(cut.finish, FinishReason::kStopString);
  std::string text = options.detokenize(cut.tokens);
  ASSERT_TRUE(cut_at_stop_string(text, options.stop_strings));
  EXPECT_LE(cut.tokens.size(), 4u);
}

// ---- The binary, on real weights ---------------------------------------------------------------

const std::string kStoriesDir = std::string(STEERLM_SHARED_DATA) + "/models/stories260K";

// Runs steerlm with stdout and stderr to separate files; returns the exit status.
int run_steerlm(const std::string& arguments, const fs::path& out, const fs::path& err) {
  std::string command = std::string(STEERLM_BINARY_DIR) + "/bin/steerlm " + arguments + " > " +
                        out.string() + " 2> " + err.string();
  return std::system(command.c_str());
}

// Imports stories260K into `directory` with the binary; convert prints nothing on stdout.
void convert_stories(const fs::path& directory, const fs::path& out, const fs::path& err) {
  ASSERT_EQ(
      run_steerlm("convert --from llama2c --input " + kStoriesDir + "/stories260K.bin" +
                      " --tokenizer " + kStoriesDir + "/tok512.bin --output " + directory.string(),
                  out, err),
      0)
      << read_file(err);
  EXPECT_EQ(read_file(out), "");
}

TEST(Generate, StoriesGreedyFromBosTellsTheLlama2cStory) {
  if (!fs::exists(kStoriesDir + "/stories260K.bin"))
    GTEST_SKIP() << "needs " << kStoriesDir << " (../shared/data)";
  fs::path scratch = testing_dirs::fresh_directory("gen");
  fs::path out = scratch / "out.txt", err = scratch / "err.txt";
  convert_stories(scratch / "model", out, err);

  ASSERT_EQ(run_steerlm("generate --model " + (scratch / "model").string() +
                            " --prompt \"\" --temperature 0 --max-new-tokens 256",
                        out, err),
            0)
      << read_file(err);
  std::string story = read_file(out);
  const std::string beginning =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
      "park.";
  EXPECT_EQ(story.substr(0, beginning.size()), beginning) << story;
  EXPECT_GT(story.size(), 400u);  // a whole story, not just the first sentence

  // Sampling: the same seed gives the same text, another seed another text.
  std::string sample = "generate --model " + (scratch / "model").string() +
                       " --prompt \"Once upon a time\" --temperature 0.9 --top-k 40 "
                       "--top-p 0.95 --max-new-tokens 60 --seed ";
  ASSERT_EQ(run_steerlm(sample + "5", out, err), 0) << read_file(err);
  std::string first = read_file(out);
  ASSERT_EQ(run_steerlm(sample + "5", out, err), 0) << read_file(err);
  EXPECT_EQ(read_file(out), first);
  ASSERT_EQ(run_steerlm(sample + "6", out, err), 0) << read_file(err);
  EXPECT_NE(read_file(out), first);
  EXPECT_GT(first.size(), 20u);
}

TEST(Generate, AttributesOnAPlainLanguageModelAreAUserError) {
  if (!fs::exists(kStoriesDir + "/stories260K.bin"))
    GTEST_SKIP() << "needs " << kStoriesDir << " (../shared/data)";
  fs::path scratch = testing_dirs::fresh_directory("gen");
  fs::path out = scratch / "out.txt", err = scratch / "err.txt";
  convert_stories(scratch / "model", out, err);
  int status = run_steerlm("generate --model " + (scratch / "model").string() +
                               " --prompt hi --attributes helpfulness=4",
                           out, err);
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_EQ(read_file(err), "steerlm: error: --attributes: checkpoint " +
                                (scratch / "model").string() +
                                " records no attribute set (a plain language model)\n");
  EXPECT_EQ(read_file(out), "");
}

}  // namespace
}  // namespace steerlm
