// Tokenizer::load (kind picked from the file's contents) and the special-marker wrapper.
#include "pipeline/tokenizer.h"

#include <glog/logging.h>

#include <array>

#include "pipeline/chat_template.h"
#include "pipeline/synth.h"
#include "pipeline/tokenizer_llama2c.h"
#include "pipeline/tokenizer_sentencepiece.h"
#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

const std::array<std::string, 3> kMarkers = {kSystemMarker, kTurnMarker, kLabelMarker};

// <extra_id_N> as single added tokens after the base vocabulary; the rest goes to `base_`.
class MarkerTokenizer : public Tokenizer {
 public:
  explicit MarkerTokenizer(std::unique_ptr<Tokenizer> base) : base_(std::move(base)) {}

  std::vector<int32_t> encode(std::string_view text) const override {
    return token_ids(encode_with_spans(text));
  }

  std::vector<TokenSpan> encode_with_spans(std::string_view text) const override {
    std::vector<TokenSpan> spans;
    size_t position = 0;
    while (position < text.size()) {
      // Find the next marker; the text before it is encoded by the base tokenizer.
      size_t next = std::string_view::npos;
      int marker = -1;
      for (int m = 0; m < static_cast<int>(kMarkers.size()); ++m) {
        size_t found = text.find(kMarkers[m], position);
        if (found < next) next = found, marker = m;
      }
      const size_t stop = next == std::string_view::npos ? text.size() : next;
      if (stop > position) {
        for (TokenSpan span : base_->encode_with_spans(text.substr(position, stop - position))) {
          span.begin += position;
          span.end += position;
          spans.push_back(span);
        }
      }
      if (marker < 0) break;
      spans.push_back({base_->vocab_size() + marker, next, next + kMarkers[marker].size()});
      position = next + kMarkers[marker].size();
    }
    return spans;
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    std::vector<int32_t> run;
    for (int32_t id : ids) {
      if (id < base_->vocab_size()) {
        run.push_back(id);
        continue;
      }
      CHECK_LT(id - base_->vocab_size(), static_cast<int>(kMarkers.size())) << "token id " << id;
      text += base_->decode(run) + kMarkers[id - base_->vocab_size()];
      run.clear();
    }
    return text + base_->decode(run);
  }

  int vocab_size() const override { return base_->vocab_size() + kMarkers.size(); }
  int32_t bos_id() const override { return base_->bos_id(); }
  int32_t eos_id() const override { return base_->eos_id(); }
  std::string kind() const override { return base_->kind(); }

 private:
  std::unique_ptr<Tokenizer> base_;
};

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
  if (is_embedded_spec(path)) {
    if (path != "embedded:default") {
      throw UserError("unknown embedded tokenizer '" + path + "'; expected embedded:default");
    }
    return sentencepiece_from_bytes(embedded_tokenizer_model(), path);
  }
  const std::string contents = read_file(path);
  if (looks_like_llama2c_tokenizer(contents)) return load_llama2c_tokenizer(path);
  return sentencepiece_from_bytes(contents, path);
}

std::vector<int32_t> token_ids(const std::vector<TokenSpan>& spans) {
  std::vector<int32_t> ids;
  ids.reserve(spans.size());
  for (const TokenSpan& span : spans) ids.push_back(span.id);
  return ids;
}

std::unique_ptr<Tokenizer> with_special_markers(std::unique_ptr<Tokenizer> base) {
  return std::make_unique<MarkerTokenizer>(std::move(base));
}

}  // namespace steerlm
