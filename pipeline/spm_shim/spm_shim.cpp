// The only code that calls libsentencepiece directly; see pipeline/spm_api.h for why it lives
// in its own shared library. Built as libsteerlm_spm_shim.so (pipeline/CMakeLists.txt).
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "pipeline/spm_api.h"

namespace {

using Processor = sentencepiece::SentencePieceProcessor;

void* load(const std::string& serialized, std::string* error) {
  auto* model = new Processor();
  const auto status = model->LoadFromSerializedProto(serialized);
  if (!status.ok()) {
    *error = status.ToString();
    delete model;
    return nullptr;
  }
  return model;
}

void release(void* model) {
  delete static_cast<Processor*>(model);
}
int piece_size(void* model) {
  return static_cast<Processor*>(model)->GetPieceSize();
}
int bos_id(void* model) {
  return static_cast<Processor*>(model)->bos_id();
}
int eos_id(void* model) {
  return static_cast<Processor*>(model)->eos_id();
}

void encode(void* model, std::string_view text, std::vector<steerlm::TokenSpan>* spans) {
  const auto pieces = static_cast<Processor*>(model)->EncodeAsImmutableProto(text);
  spans->reserve(pieces.pieces_size());
  for (const auto& piece : pieces.pieces()) {
    spans->push_back({static_cast<int32_t>(piece.id()), piece.begin(), piece.end()});
  }
}

std::string decode(void* model, const std::vector<int>& ids) {
  std::string text;
  static_cast<Processor*>(model)->Decode(ids, &text).IgnoreError();
  return text;
}

// In-memory sentences for the trainer.
class Sentences : public sentencepiece::SentenceIterator {
 public:
  explicit Sentences(const std::vector<std::string>& sentences) : sentences_(sentences) {}
  bool done() const override { return index_ >= sentences_.size(); }
  void Next() override { ++index_; }
  const std::string& value() const override { return sentences_[index_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& sentences_;
  size_t index_ = 0;
};

bool train(const std::vector<std::string>& sentences,
           const std::unordered_map<std::string, std::string>& arguments, std::string* serialized,
           std::string* error) {
  Sentences iterator(sentences);
  const auto status = sentencepiece::SentencePieceTrainer::Train(arguments, &iterator, serialized);
  if (!status.ok()) *error = status.ToString();
  return status.ok();
}

const steerlm::SpmApi kApi = {
    steerlm::kSpmApiVersion, load, release, piece_size, bos_id, eos_id, encode, decode, train};

}  // namespace

extern "C" __attribute__((visibility("default"))) const steerlm::SpmApi* steerlm_spm_api() {
  return &kApi;
}
