// The llama2.c tokenizer .bin format (karpathy/llama2.c, tokenizer.py export, run.c encode).
//
// File layout, little-endian: int32 max_token_length, then one record per piece until the end of
// the file: float32 score, int32 byte length, the piece's bytes. Piece ids are record positions;
// 0 is <unk>, 1 is BOS, 2 is EOS, and 3..258 are the byte-fallback pieces "<0x00>".."<0xFF>".
//
// Encoding follows run.c exactly: a leading " " (SentencePiece's dummy prefix) when the text is not
// empty; each UTF-8 code point becomes its piece, or its bytes' fallback pieces when it has none;
// then the adjacent pair whose concatenation is a piece with the highest score (leftmost on ties)
// is merged, repeatedly, until no pair merges. A heap makes this O(n log n) instead of run.c's
// O(n^2), with identical results.
#pragma once

#include <memory>
#include <string>

#include "pipeline/tokenizer.h"

namespace steerlm {

// Loads a llama2.c tokenizer .bin. Throws UserError naming the file when it is missing or
// malformed.
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path);

// True when `contents` parses as a llama2.c tokenizer .bin (used to tell it from SentencePiece).
bool looks_like_llama2c_tokenizer(const std::string& contents);

}  // namespace steerlm
