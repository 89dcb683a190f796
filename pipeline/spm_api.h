// The SentencePiece library behind a dlopen boundary.
//
// Debian's libsentencepiece carries its own copy of protobuf 3.14 and exports those symbols;
// linked into a binary that also uses the system protobuf (3.21, for configs and checkpoints),
// one copy's symbols interpose on the other's and the first model load aborts ("compiled against
// version 3.14.0") or crashes. So the library is used only from a small shim
// (pipeline/spm_shim/spm_shim.cpp -> libsteerlm_spm_shim.so), loaded with RTLD_DEEPBIND so that
// SentencePiece binds to its own protobuf. Only standard-library types cross the boundary.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pipeline/tokenizer.h"

namespace steerlm {

// Function table the shim exports (extern "C" steerlm_spm_api). Handles are opaque.
struct SpmApi {
  int version;  // kSpmApiVersion; bump on any change below
  void* (*load)(const std::string& serialized, std::string* error);
  void (*release)(void* model);
  int (*piece_size)(void* model);
  int (*bos_id)(void* model);
  int (*eos_id)(void* model);
  void (*encode)(void* model, std::string_view text, std::vector<TokenSpan>* spans);
  std::string (*decode)(void* model, const std::vector<int>& ids);
  bool (*train)(const std::vector<std::string>& sentences,
                const std::unordered_map<std::string, std::string>& arguments,
                std::string* serialized, std::string* error);
};
inline constexpr int kSpmApiVersion = 1;

// The shim's table, loaded on first use. LOG(FATAL) when the shim cannot be loaded (a broken
// build, not a user mistake).
const SpmApi& spm_api();

}  // namespace steerlm
