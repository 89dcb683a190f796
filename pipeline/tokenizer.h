// Tokenizer: text <-> token ids. Two file kinds are supported (DESIGN §4):
//   - SentencePiece .model files (pipeline/tokenizer_sentencepiece.cc), via the library;
//   - llama2.c tokenizer .bin files (pipeline/tokenizer_llama2c.cc).
// Tokenizer::load picks the kind from the file's contents.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace steerlm {

// One token and the byte range of the input text it covers: [begin, end).
struct TokenSpan {
  int32_t id = 0;
  size_t begin = 0;
  size_t end = 0;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids of `text`, without BOS/EOS.
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // The same ids with the byte range each covers, used to decide which tokens are trained
  // ("a token is trained when its first character lies in a trained span").
  virtual std::vector<TokenSpan> encode_with_spans(std::string_view text) const = 0;
  // Text of `ids` (BOS/EOS dropped).
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;

  virtual int vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  // "sentencepiece" or "llama2c".
  virtual std::string kind() const = 0;

  // Loads a .model (SentencePiece) or a llama2.c tokenizer .bin. Throws UserError naming the
  // file when it is missing or not a tokenizer.
  static std::unique_ptr<Tokenizer> load(const std::string& path);
};

}  // namespace steerlm
