// The on-disk cache of tokenized samples: tokenizing a large dataset with a 32k-piece tokenizer
// is the slow part of data loading, so it is done once per (input bytes, format, tokenizer,
// template config, task) and reused. Files are written atomically, so concurrent ranks are safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "configs/steerlm.pb.h"
#include "pipeline/dataset.h"

namespace steerlm {

// The cache file name for one input: "<key>.tok" with a 16-hex-digit key over every input.
std::string dataset_cache_name(const std::string& input_path, config::DataFormat::Kind format,
                               const std::string& tokenizer_path, bool markers_as_special_tokens,
                               const TokenizeOptions& options);

// nullopt when the file is missing or unreadable (it is then rebuilt).
std::optional<std::vector<TokenizedSample>> read_dataset_cache(const std::string& path);
void write_dataset_cache(const std::string& path, const std::vector<TokenizedSample>& samples);

}  // namespace steerlm
