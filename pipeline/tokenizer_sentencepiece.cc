#include "pipeline/tokenizer_sentencepiece.h"

#include <glog/logging.h>

#include <fstream>
#include <mutex>

#include "pipeline/chat_template.h"
#include "pipeline/conversation.h"
#include "pipeline/spm_api.h"
#include "pipeline/synth.h"
#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

class SentencePieceTokenizer : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(void* model) : model_(model) {}
  ~SentencePieceTokenizer() override { spm_api().release(model_); }
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  std::vector<int32_t> encode(std::string_view text) const override {
    return token_ids(encode_with_spans(text));
  }

  std::vector<TokenSpan> encode_with_spans(std::string_view text) const override {
    std::vector<TokenSpan> spans;
    spm_api().encode(model_, text, &spans);
    return spans;
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::vector<int> kept;
    for (int32_t id : ids) {
      if (id != bos_id() && id != eos_id()) kept.push_back(id);
    }
    return spm_api().decode(model_, kept);
  }

  int vocab_size() const override { return spm_api().piece_size(model_); }
  int32_t bos_id() const override { return spm_api().bos_id(model_); }
  int32_t eos_id() const override { return spm_api().eos_id(model_); }
  std::string kind() const override { return "sentencepiece"; }

 private:
  void* model_;
};

std::unordered_map<std::string, std::string> trainer_arguments(int vocab_size) {
  return {{"model_type", "bpe"},
          {"vocab_size", std::to_string(vocab_size)},
          {"byte_fallback", "true"},
          {"character_coverage", "1.0"},
          // The markers stay whole; "\n" too, since user-defined symbols bypass normalization.
          {"user_defined_symbols",
           std::string(kSystemMarker) + "," + kTurnMarker + "," + kLabelMarker + ",\n"},
          {"hard_vocab_limit", "false"},
          {"split_digits", "true"},
          {"num_threads", "1"},
          {"minloglevel", "2"},
          {"input_sentence_size", "2000000"},
          {"shuffle_input_sentence", "false"}};
}

}  // namespace

std::unique_ptr<Tokenizer> sentencepiece_from_bytes(const std::string& serialized,
                                                    const std::string& name) {
  std::string error;
  void* model = spm_api().load(serialized, &error);
  if (!model) {
    throw UserError(name + " is not a SentencePiece model (" + error +
                    "); expected a .model file or a llama2.c tokenizer .bin");
  }
  return std::make_unique<SentencePieceTokenizer>(model);
}

std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& path) {
  return sentencepiece_from_bytes(read_file(path), path);
}

std::string train_sentencepiece_from_sentences(const std::vector<std::string>& sentences,
                                               int vocab_size) {
  if (vocab_size < 300) {
    throw UserError("--vocab-size " + std::to_string(vocab_size) +
                    " is too small: byte fallback needs 256 byte pieces plus specials; use 300+");
  }
  std::string serialized, error;
  if (!spm_api().train(sentences, trainer_arguments(vocab_size), &serialized, &error)) {
    throw UserError("SentencePiece training failed: " + error);
  }
  return serialized;
}

void train_sentencepiece(const std::vector<std::string>& inputs, int vocab_size,
                         const std::string& output) {
  std::vector<std::string> sentences;
  for (const std::string& input : inputs) {
    std::ifstream in(input);
    if (!in) throw UserError("cannot read tokenizer training input " + input);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) sentences.push_back(line);
    }
  }
  if (sentences.empty()) throw UserError("tokenizer training inputs hold no text");
  write_file_atomic(output, train_sentencepiece_from_sentences(sentences, vocab_size));
}

const std::string& embedded_tokenizer_model() {
  static const std::string model = [] {
    // Rendered conversations, one line per template line, so labels and markers are covered.
    TemplateOptions options{kHelpSteerAttributes, ""};
    std::vector<std::string> lines;
    for (const nlohmann::json& record : synth_from_spec("embedded:default")) {
      Conversation conversation;
      conversation.system = "";
      conversation.turns.push_back({Role::kUser, record["conversations"][0]["value"], {}, ""});
      Turn answer{Role::kAssistant, record["conversations"][1]["value"], {}, ""};
      std::string error;
      answer.attributes = *parse_label(record["conversations"][1]["label"], &error);
      conversation.turns.push_back(answer);
      const std::string text = render_acsft(conversation, options).text;
      for (size_t start = 0; start < text.size();) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        if (end > start) lines.push_back(text.substr(start, end - start));
        start = end + 1;
      }
    }
    return train_sentencepiece_from_sentences(lines, 512);
  }();
  return model;
}

}  // namespace steerlm
