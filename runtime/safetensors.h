// safetensors I/O: the tensor file format of Hugging Face (and of steerlm's checkpoints).
//
// A file is: an unsigned 64-bit little-endian header length N; N bytes of JSON mapping each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the data that
// follows the header), plus an optional "__metadata__" object of string -> string; then the raw
// little-endian tensor bytes. steerlm pads the header with spaces to a multiple of 8 bytes, as the
// reference writer does, so every tensor's data stays aligned.
//
// Reading maps the file instead of loading it, so a 70B checkpoint costs address space, not RAM:
// a tensor's bytes are touched only when it is viewed or copied out.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace steerlm {

// A tensor and the name it is stored under.
struct NamedTensor {
  std::string name;
  Tensor tensor;
};

// Writes `tensors` (any device; copied to the host one at a time) to `path` atomically: the bytes
// go to a temporary file that is fsynced and renamed. Names must be unique. Throws UserError when
// the file system refuses.
void write_safetensors(const std::filesystem::path& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// One tensor's entry in a file's header.
struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // as stored: "F32", "BF16", "F16", "I32", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets into the data section
  uint64_t end = 0;
};

// A memory-mapped safetensors file. The header is validated on open: malformed JSON, an unknown
// dtype, or offsets that do not match the shapes or the file size throw UserError naming the
// file and the tensor.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Entries in the order of their data in the file.
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  // Throws UserError "FILE: no tensor NAME" when absent.
  const SafetensorsEntry& entry(const std::string& name) const;

  // A view of the mapped bytes (F32, BF16 or I32 only), valid while this object lives. (shape), cpu
  Tensor view(const std::string& name) const;
  // Copies the tensor into `destination` (any device), converting F32/BF16/F16 to the
  // destination's float dtype. The shapes must have the same numel and dims; a mismatch throws
  // UserError "FILE: tensor NAME has shape (..) but (..) is expected".
  void read_into(const std::string& name, Tensor& destination) const;
  // A new host tensor of the stored shape, converted to `dtype`.
  Tensor read(const std::string& name, DType dtype = DType::kF32) const;

 private:
  void parse_header(uint64_t header_bytes);

  std::filesystem::path path_;
  const uint8_t* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
  const uint8_t* data_ = nullptr;  // start of the data section
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t> index_;  // name -> position in entries_
  std::map<std::string, std::string> metadata_;
};

// The safetensors dtype string of a steerlm dtype ("F32", "BF16", "I32").
const char* safetensors_dtype(DType dtype);

}  // namespace steerlm
