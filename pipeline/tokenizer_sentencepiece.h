// The SentencePiece side of Tokenizer (DESIGN §4), through the library, plus the two things
// steerlm adds on top of any tokenizer: training a model (`steerlm tokenizer train`) and the
// <extra_id_N> markers as added special tokens (ChatTemplate.markers_as_special_tokens).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pipeline/tokenizer.h"

namespace steerlm {

// Loads a SentencePiece .model file; UserError naming the file when it is not one.
std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& path);
// The same from the serialized model bytes (`name` is used in messages).
std::unique_ptr<Tokenizer> sentencepiece_from_bytes(const std::string& serialized,
                                                    const std::string& name);

// Trains a SentencePiece model on `inputs` (plain text files, one sentence a line) and writes
// it atomically to `output`. BPE with byte fallback, so any text encodes; the <extra_id_N>
// markers are user-defined pieces so they stay whole. Single-threaded, hence deterministic.
void train_sentencepiece(const std::vector<std::string>& inputs, int vocab_size,
                         const std::string& output);
// The same from in-memory sentences; returns the serialized model.
std::string train_sentencepiece_from_sentences(const std::vector<std::string>& sentences,
                                               int vocab_size);

// The embedded default tokenizer: a small model trained on the embedded default dataset, used
// when a config's tokenizer is "embedded:default". Built once per process; deterministic.
const std::string& embedded_tokenizer_model();

// The ids of `spans`, for tokenizers whose encode() is encode_with_spans() without the spans.
std::vector<int32_t> token_ids(const std::vector<TokenSpan>& spans);

// Wraps `base` so that <extra_id_0>, <extra_id_1>, <extra_id_2> are single tokens with ids
// base.vocab_size(), +1, +2 (new embedding rows). The text between markers is encoded by `base`
// piece by piece, so it gets the base tokenizer's start-of-text handling after each marker.
std::unique_ptr<Tokenizer> with_special_markers(std::unique_ptr<Tokenizer> base);

}  // namespace steerlm
