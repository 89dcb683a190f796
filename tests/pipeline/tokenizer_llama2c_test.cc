// The llama2.c tokenizer: encode against a direct transcription of run.c's O(n^2) merge loop,
// byte fallback, spans, decode, and malformed files.
#include "pipeline/tokenizer_llama2c.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <unordered_map>

#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;

const std::string kTokenizerPath =
    std::string(STEERLM_SHARED_DATA) + "/models/stories260K/tok512.bin";

struct Vocabulary {
  std::vector<std::string> pieces;
  std::vector<float> scores;
};

Vocabulary read_vocabulary(const std::string& path) {
  std::string bytes = read_file(path);
  Vocabulary vocabulary;
  for (size_t at = 4; at < bytes.size();) {
    float score;
    int32_t length;
    std::memcpy(&score, bytes.data() + at, 4);
    std::memcpy(&length, bytes.data() + at + 4, 4);
    vocabulary.pieces.push_back(bytes.substr(at + 8, length));
    vocabulary.scores.push_back(score);
    at += 8 + length;
  }
  return vocabulary;
}

// run.c's encode(), step by step: dummy prefix, code points or byte fallback, then repeatedly
// merge the best-scoring adjacent pair (leftmost on ties).
std::vector<int32_t> run_c_encode(const Vocabulary& vocabulary, const std::string& text) {
  std::unordered_map<std::string, int32_t> ids;
  for (size_t i = 0; i < vocabulary.pieces.size(); ++i) ids.emplace(vocabulary.pieces[i], i);
  std::vector<int32_t> tokens;
  if (text.empty()) return tokens;
  tokens.push_back(ids.at(" "));
  for (size_t at = 0; at < text.size();) {
    size_t length = 1;
    while (at + length < text.size() && (text[at + length] & 0xC0) == 0x80 && length < 4) ++length;
    auto found = ids.find(text.substr(at, length));
    if (found != ids.end()) {
      tokens.push_back(found->second);
    } else {
      for (size_t i = 0; i < length; ++i)
        tokens.push_back(static_cast<unsigned char>(text[at + i]) + 3);
    }
    at += length;
  }
  while (true) {
    float best_score = -1e10f;
    int best_id = -1, best_index = -1;
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      auto found = ids.find(vocabulary.pieces[tokens[i]] + vocabulary.pieces[tokens[i + 1]]);
      if (found != ids.end() && vocabulary.scores[found->second] > best_score) {
        best_score = vocabulary.scores[found->second];
        best_id = found->second;
        best_index = static_cast<int>(i);
      }
    }
    if (best_index < 0) break;
    tokens[best_index] = best_id;
    tokens.erase(tokens.begin() + best_index + 1);
  }
  return tokens;
}

TEST(TokenizerLlama2c, EncodeMatchesRunCAndDecodeRestoresTheText) {
  if (!fs::exists(kTokenizerPath))
    GTEST_SKIP() << "needs " << kTokenizerPath << " (../shared/data)";
  std::unique_ptr<Tokenizer> tokenizer = load_llama2c_tokenizer(kTokenizerPath);
  Vocabulary vocabulary = read_vocabulary(kTokenizerPath);
  EXPECT_EQ(tokenizer->vocab_size(), 512);
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_EQ(tokenizer->eos_id(), 2);
  EXPECT_EQ(tokenizer->kind(), "llama2c");

  const std::vector<std::string> texts = {
      "Once upon a time, there was a little girl named Lily.",
      "She said, \"I'm sorry, mom.\"\nThe end.",
      "zzzz qqq   spaces\t\ttabs",
      "caf\xc3\xa9 \xe2\x84\xa2 \xf0\x9f\x98\x80 emoji and \x01 control",  // byte fallback
      "<extra_id_1>User\nhi\n<extra_id_1>Assistant\n<extra_id_2>helpfulness:4\n",
      "a"};
  for (const std::string& text : texts) {
    std::vector<int32_t> ids = tokenizer->encode(text);
    EXPECT_EQ(ids, run_c_encode(vocabulary, text)) << text;
    EXPECT_EQ(tokenizer->decode(ids), text) << text;
    // Spans are contiguous, in order, and cover the text.
    std::vector<TokenSpan> spans = tokenizer->encode_with_spans(text);
    ASSERT_EQ(spans.size(), ids.size());
    EXPECT_EQ(spans.front().begin, 0u);
    EXPECT_EQ(spans.back().end, text.size());
    for (size_t i = 1; i < spans.size(); ++i) EXPECT_EQ(spans[i].begin, spans[i - 1].end);
  }
  EXPECT_TRUE(tokenizer->encode("").empty());
  // BOS/EOS are dropped, and the first piece's dummy-prefix space with them.
  std::vector<int32_t> ids = tokenizer->encode("Once upon");
  ids.insert(ids.begin(), 1);
  ids.push_back(2);
  EXPECT_EQ(tokenizer->decode(ids), "Once upon");
}

TEST(TokenizerLlama2c, MalformedFilesAreUserErrors) {
  fs::path path = fs::path(::testing::TempDir()) / "steerlm_bad_tokenizer.bin";
  int32_t header[3] = {4, 0, 9};  // max length 4, then a piece claiming 9 bytes
  write_file_atomic(path, std::string(reinterpret_cast<const char*>(header), 12));
  try {
    load_llama2c_tokenizer(path.string());
    ADD_FAILURE() << "no error";
  } catch (const UserError& error) {
    EXPECT_EQ(std::string(error.what()), path.string() +
                                             ": not a llama2.c tokenizer .bin: piece 0 has length "
                                             "9 (max_token_length 4)");
  }
  EXPECT_FALSE(looks_like_llama2c_tokenizer("\x0a\x00\x00\x00trainer_spec"));
}

}  // namespace
}  // namespace steerlm
