// SentencePiece tokenization against Debian's spm_encode, the trained-token rule, BOS/EOS, the
// <extra_id_N> special-token mode and `tokenizer train`.
#include "pipeline/tokenizer_sentencepiece.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "pipeline/dataset.h"
#include "pipeline/readers.h"
#include "pipeline/synth.h"
#include "runtime/error.h"
#include "runtime/file_util.h"
#include "tests/pipeline/data_test_util.h"

namespace steerlm {
namespace {

using testing_util::TempDir;

const std::string kLlamaModel =
    std::string(STEERLM_SHARED_DATA) + "/tokenizers/llama2/tokenizer.model";

#define SKIP_WITHOUT_LLAMA_TOKENIZER()                                        \
  if (!std::filesystem::exists(kLlamaModel)) {                                \
    GTEST_SKIP() << kLlamaModel << " is absent (../shared/data not mounted)"; \
  }

// Runs Debian's spm_encode on `lines` (one per line) and returns the id lists.
std::vector<std::vector<int32_t>> spm_encode(const std::vector<std::string>& lines) {
  TempDir dir;
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  const std::string input = dir.file("in.txt", text);
  const std::string command =
      "spm_encode --model=" + kLlamaModel + " --output_format=id < " + input;
  std::vector<std::vector<int32_t>> result;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  char buffer[1 << 16];
  while (fgets(buffer, sizeof(buffer), pipe)) {
    std::vector<int32_t> ids;
    std::istringstream in(buffer);
    for (int32_t id; in >> id;) ids.push_back(id);
    result.push_back(ids);
  }
  pclose(pipe);
  return result;
}

TEST(TokenizerSentencePiece, LlamaIdsMatchSpmEncode) {
  SKIP_WITHOUT_LLAMA_TOKENIZER();
  if (std::system("command -v spm_encode > /dev/null") != 0) GTEST_SKIP() << "no spm_encode";
  const std::vector<std::string> lines = {
      "Hello world",
      "<extra_id_1>Assistant",
      "<extra_id_2>helpfulness:4,correctness:4,coherence:4,complexity:2,verbosity:1",
      "  two leading spaces and trailing  ",
      "numbers 12345 and caf\u00e9 na\u00efve \u65e5\u672c\u8a9e \U0001F600",
      "What is the capital of France?"};
  auto tokenizer = Tokenizer::load(kLlamaModel);
  EXPECT_EQ(tokenizer->kind(), "sentencepiece");
  EXPECT_EQ(tokenizer->vocab_size(), 32000);
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_EQ(tokenizer->eos_id(), 2);
  const auto expected = spm_encode(lines);
  ASSERT_EQ(expected.size(), lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(tokenizer->encode(lines[i]), expected[i]) << lines[i];
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(lines[i])), lines[i]);
  }
  // A fixed point too, so the test does not only compare two copies of the same library.
  EXPECT_EQ(tokenizer->encode("Hello world"), (std::vector<int32_t>{15043, 3186}));
}

TEST(TokenizerSentencePiece, TrainedTokensAreThoseStartingInTrainedSpans) {
  SKIP_WITHOUT_LLAMA_TOKENIZER();
  auto tokenizer = Tokenizer::load(kLlamaModel);
  Conversation conversation;
  conversation.system = "";
  conversation.turns = {{Role::kUser, "Hi there", {}, ""},
                        {Role::kAssistant, "Hello!", {{"verbosity", 1}}, ""},
                        {Role::kUser, "Bye", {}, ""},
                        {Role::kAssistant, "See you", {}, ""}};
  TokenizeOptions options{{kHelpSteerAttributes, ""}, SampleTask::kLanguageModel, true, true};
  std::vector<std::string> seen;
  auto samples = tokenize_conversation(conversation, *tokenizer, options, &seen);
  ASSERT_EQ(samples.size(), 1u);
  const TokenizedSample& sample = samples[0];
  EXPECT_EQ(sample.tokens.front(), 1);
  EXPECT_EQ(sample.trained.front(), 0);
  EXPECT_EQ(sample.tokens.back(), 2);
  EXPECT_EQ(sample.trained.back(), 1);  // EOS follows the trained final marker

  // The trained tokens, run by run, decode to exactly the trained spans.
  std::vector<std::string> runs;
  std::vector<int32_t> run;
  for (size_t i = 1; i + 1 < sample.tokens.size(); ++i) {
    if (sample.trained[i]) run.push_back(sample.tokens[i]);
    if ((!sample.trained[i] || i + 2 == sample.tokens.size()) && !run.empty()) {
      runs.push_back(tokenizer->decode(run));
      run.clear();
    }
  }
  EXPECT_EQ(runs, (std::vector<std::string>{"Hello!\n<extra_id_1>", "See you\n<extra_id_1>"}));
  // Whole-string tokenization, as NeMo does: the ids equal encoding the rendered text at once.
  const std::string text = render_acsft(conversation, options.template_options).text;
  std::vector<int32_t> whole = tokenizer->encode(text);
  EXPECT_EQ(std::vector<int32_t>(sample.tokens.begin() + 1, sample.tokens.end() - 1), whole);
}

TEST(TokenizerSentencePiece, MarkersAsSpecialTokensGetIdsAfterTheVocabulary) {
  SKIP_WITHOUT_LLAMA_TOKENIZER();
  auto tokenizer = with_special_markers(Tokenizer::load(kLlamaModel));
  EXPECT_EQ(tokenizer->vocab_size(), 32003);
  const std::string text = "<extra_id_0>System\n\n<extra_id_1>User\nHi\n<extra_id_2>";
  const std::vector<int32_t> ids = tokenizer->encode(text);
  EXPECT_EQ(ids.front(), 32000);
  EXPECT_EQ(ids.back(), 32002);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 32001), 1);
  EXPECT_EQ(tokenizer->decode(ids), text);
  // Spans still index the original text.
  const auto spans = tokenizer->encode_with_spans(text);
  EXPECT_EQ(spans.back().begin, text.size() - 12);
  EXPECT_EQ(spans.back().end, text.size());
}

TEST(TokenizerSentencePiece, TrainProducesALoadableModelWithWholeMarkers) {
  TempDir dir;
  std::string corpus;
  for (const SynthSample& sample : synth_samples({300, 5})) {
    corpus += "<extra_id_1>User " + sample.prompt + "\n" + sample.response + "\n";
  }
  const std::string input = dir.file("corpus.txt", corpus);
  const std::string model = dir.path() + "/tok.model";
  train_sentencepiece({input}, 400, model);
  auto tokenizer = Tokenizer::load(model);
  EXPECT_LE(tokenizer->vocab_size(), 400);
  EXPECT_GT(tokenizer->vocab_size(), 259);
  const auto ids = tokenizer->encode("<extra_id_1>");
  EXPECT_EQ(ids.size(), 2u);  // dummy prefix + the marker as one user-defined piece
  EXPECT_EQ(tokenizer->encode("a\nb").size(), 4u);  // "\n" is one piece, kept as it is
  const std::string text = "What is 7 plus 5? The answer is 12.";
  EXPECT_EQ(tokenizer->decode(tokenizer->encode(text)), text);
  // Deterministic: training twice gives the same bytes.
  const std::string again = dir.path() + "/again.model";
  train_sentencepiece({input}, 400, again);
  EXPECT_EQ(read_file(model), read_file(again));
  EXPECT_THROW(train_sentencepiece({input}, 100, again), UserError);
}

TEST(TokenizerSentencePiece, EmbeddedDefaultTokenizerLoads) {
  auto tokenizer = Tokenizer::load("embedded:default");
  EXPECT_LE(tokenizer->vocab_size(), 512);
  const std::string text = "<extra_id_1>Assistant\n<extra_id_2>helpfulness:4\nThe answer is 12.";
  EXPECT_EQ(tokenizer->decode(tokenizer->encode(text)), text);
  EXPECT_LT(tokenizer->encode(text).size(), 30u);
  EXPECT_THROW(Tokenizer::load("embedded:other"), UserError);
}

TEST(TokenizerSentencePiece, NotATokenizerIsAUserError) {
  TempDir dir;
  const std::string path = dir.file("junk.model", "this is not a model");
  try {
    Tokenizer::load(path);
    FAIL() << "expected UserError";
  } catch (const UserError& error) {
    EXPECT_NE(std::string(error.what()).find(path), std::string::npos);
  }
}

}  // namespace
}  // namespace steerlm
