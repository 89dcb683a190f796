#include "pipeline/dataset_cache.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "pipeline/data_rng.h"
#include "pipeline/synth.h"
#include "pipeline/tokenizer_sentencepiece.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

// Bump when the layout below or the tokenization rules change.
constexpr char kCacheMagic[8] = {'S', 'L', 'M', 'T', 'O', 'K', '0', '1'};

template <typename T>
void put(std::string* out, const T& value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(T));
}
template <typename T>
void put_vector(std::string* out, const std::vector<T>& values) {
  put<uint64_t>(out, values.size());
  out->append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// Reads from a byte buffer; any overrun marks the whole cache unreadable.
class Reader {
 public:
  explicit Reader(const std::string& bytes) : bytes_(bytes) {}
  template <typename T>
  T get() {
    T value{};
    if (position_ + sizeof(T) > bytes_.size()) {
      ok_ = false;
      return value;
    }
    std::memcpy(&value, bytes_.data() + position_, sizeof(T));
    position_ += sizeof(T);
    return value;
  }
  template <typename T>
  std::vector<T> get_vector() {
    const uint64_t count = get<uint64_t>();
    if (!ok_ || count > (bytes_.size() - position_) / sizeof(T)) {
      ok_ = false;
      return {};
    }
    std::vector<T> values(count);
    std::memcpy(values.data(), bytes_.data() + position_, count * sizeof(T));
    position_ += count * sizeof(T);
    return values;
  }
  bool ok() const { return ok_; }
  bool at_end() const { return position_ == bytes_.size(); }

 private:
  const std::string& bytes_;
  size_t position_ = 0;
  bool ok_ = true;
};

std::string hex(uint64_t value) {
  std::ostringstream out;
  out << std::hex;
  out.width(16);
  out.fill('0');
  out << value;
  return out.str();
}

uint64_t content_hash(const std::string& path) {
  if (is_embedded_spec(path)) return fnv1a(path);
  return fnv1a(read_file(path));
}

uint64_t tokenizer_hash(const std::string& path) {
  if (is_embedded_spec(path)) return fnv1a(embedded_tokenizer_model());
  return fnv1a(read_file(path));
}

}  // namespace

std::string dataset_cache_name(const std::string& input_path, config::DataFormat::Kind format,
                               const std::string& tokenizer_path, bool markers_as_special_tokens,
                               const TokenizeOptions& options) {
  std::string key(kCacheMagic, sizeof(kCacheMagic));
  put(&key, content_hash(input_path));
  put(&key, static_cast<int32_t>(format));
  put(&key, tokenizer_hash(tokenizer_path));
  put(&key, markers_as_special_tokens);
  put(&key, static_cast<int32_t>(options.task));
  put(&key, options.add_bos);
  put(&key, options.add_eos);
  key += options.template_options.default_system + '\0';
  for (const std::string& name : options.template_options.attributes) key += name + '\0';
  return hex(fnv1a(key)) + ".tok";
}

std::optional<std::vector<TokenizedSample>> read_dataset_cache(const std::string& path) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  const std::string bytes = read_file(path);
  if (bytes.size() < sizeof(kCacheMagic) ||
      std::memcmp(bytes.data(), kCacheMagic, sizeof(kCacheMagic)) != 0) {
    return std::nullopt;
  }
  Reader in(bytes);
  for (size_t i = 0; i < sizeof(kCacheMagic); ++i) in.get<char>();
  const uint64_t count = in.get<uint64_t>();
  std::vector<TokenizedSample> samples;
  for (uint64_t i = 0; i < count && in.ok(); ++i) {
    TokenizedSample sample;
    sample.tokens = in.get_vector<int32_t>();
    sample.trained = in.get_vector<uint8_t>();
    sample.attribute_targets = in.get_vector<float>();
    sample.prompt_hash = in.get<uint64_t>();
    sample.part = in.get<int32_t>();
    std::vector<char> source = in.get_vector<char>();
    sample.source.assign(source.begin(), source.end());
    samples.push_back(std::move(sample));
  }
  if (!in.ok() || !in.at_end()) return std::nullopt;
  return samples;
}

void write_dataset_cache(const std::string& path, const std::vector<TokenizedSample>& samples) {
  std::string out(kCacheMagic, sizeof(kCacheMagic));
  put<uint64_t>(&out, samples.size());
  for (const TokenizedSample& sample : samples) {
    put_vector(&out, sample.tokens);
    put_vector(&out, sample.trained);
    put_vector(&out, sample.attribute_targets);
    put(&out, sample.prompt_hash);
    put(&out, sample.part);
    put_vector(&out, std::vector<char>(sample.source.begin(), sample.source.end()));
  }
  write_file_atomic(path, out);
}

}  // namespace steerlm
