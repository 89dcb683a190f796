// Helpers shared by the pipeline tests: temporary files and a byte-level tokenizer whose token
// counts are the byte counts, so expected lengths can be written down exactly.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "pipeline/tokenizer.h"

namespace steerlm::testing_util {

// A fresh directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("steerlm_data_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name, const std::string& contents) const {
    const std::string full = (path_ / name).string();
    std::ofstream(full, std::ios::binary) << contents;
    return full;
  }
  std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

// One token per byte: id = byte + 3; 1 is BOS and 2 is EOS.
class ByteTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(c + 3);
    return ids;
  }
  std::vector<TokenSpan> encode_with_spans(std::string_view text) const override {
    std::vector<TokenSpan> spans;
    for (size_t i = 0; i < text.size(); ++i) {
      spans.push_back({static_cast<unsigned char>(text[i]) + 3, i, i + 1});
    }
    return spans;
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    for (int32_t id : ids) {
      if (id >= 3) text += static_cast<char>(id - 3);
    }
    return text;
  }
  int vocab_size() const override { return 259; }
  int32_t bos_id() const override { return 1; }
  int32_t eos_id() const override { return 2; }
  std::string kind() const override { return "bytes"; }
};

}  // namespace steerlm::testing_util
