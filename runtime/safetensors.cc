#include "runtime/safetensors.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "runtime/bf16.h"
#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace fs = std::filesystem;
using json = nlohmann::json;

// The format is little-endian and tensors are written straight from memory.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes little-endian");

namespace {

// A header larger than this is a corrupt length field, not a real header.
constexpr uint64_t kMaxHeaderBytes = uint64_t{1} << 30;

size_t stored_dtype_size(const std::string& dtype) {
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "BF16" || dtype == "F16") return 2;
  return 0;
}

// IEEE half -> float, including subnormals, infinities and NaN.
float half_to_float(uint16_t half) {
  uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  uint32_t exponent = (half >> 10) & 0x1Fu;
  uint32_t mantissa = half & 0x3FFu;
  if (exponent == 0x1F) return float_from_bits(sign | 0x7F800000u | (mantissa << 13));
  if (exponent == 0) {
    // Subnormal (or zero): value = mantissa * 2^-24.
    float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  return float_from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + ")";
}

// The JSON header for `tensors`, padded with spaces to a multiple of 8 bytes.
std::string header_json(const std::vector<NamedTensor>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::set<std::string> seen;
  for (const NamedTensor& named : tensors) {
    CHECK(named.tensor.defined()) << "safetensors: tensor " << named.name << " is undefined";
    CHECK(seen.insert(named.name).second) << "safetensors: duplicate tensor name " << named.name;
    uint64_t bytes = named.tensor.nbytes();
    header[named.name] = {{"dtype", safetensors_dtype(named.tensor.dtype())},
                          {"shape", named.tensor.shape().to_vector()},
                          {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

void write_or_throw(std::ofstream& out, const void* data, size_t bytes, const fs::path& path) {
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  if (!out) throw UserError("cannot write " + path.string() + ": " + std::strerror(errno));
}

}  // namespace

const char* safetensors_dtype(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kBF16: return "BF16";
    case DType::kI32: return "I32";
  }
  LOG(FATAL) << "unknown dtype";
  return "";
}

void write_safetensors(const fs::path& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // Header first: its length, then the JSON.
  std::string header = header_json(tensors, metadata);
  fs::path temporary = path;
  temporary += ".tmp." + std::to_string(::getpid());
  std::error_code error;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), error);
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw UserError("cannot write " + temporary.string() + ": " + std::strerror(errno));
    uint64_t header_bytes = header.size();
    write_or_throw(out, &header_bytes, sizeof(header_bytes), temporary);
    write_or_throw(out, header.data(), header.size(), temporary);

    // Then each tensor's bytes, staged through the host one tensor at a time.
    for (const NamedTensor& named : tensors) {
      Tensor host = named.tensor.device().is_cpu() ? named.tensor : named.tensor.to(Device::cpu());
      write_or_throw(out, host.raw(), host.nbytes(), temporary);
    }
    out.flush();
    if (!out) throw UserError("cannot write " + temporary.string() + ": " + std::strerror(errno));
  }

  // Publish: fsync the bytes, rename over the final name, fsync the directory entry.
  fsync_path(temporary);
  fs::rename(temporary, path, error);
  if (error) throw UserError("cannot rename " + temporary.string() + ": " + error.message());
  fsync_path(path.has_parent_path() ? path.parent_path() : fs::path("."));
}

SafetensorsFile::SafetensorsFile(const fs::path& path) : path_(path) {
  // Map the whole file read-only; pages load lazily as tensors are read.
  int descriptor = ::open(path.c_str(), O_RDONLY);
  if (descriptor < 0) throw UserError("cannot read " + path.string() + ": " + std::strerror(errno));
  struct stat info {};
  if (::fstat(descriptor, &info) != 0) {
    ::close(descriptor);
    throw UserError("cannot stat " + path.string() + ": " + std::strerror(errno));
  }
  mapping_bytes_ = static_cast<size_t>(info.st_size);
  if (mapping_bytes_ < 8) {
    ::close(descriptor);
    throw UserError(path.string() + ": not a safetensors file (" + std::to_string(mapping_bytes_) +
                    " bytes, shorter than the 8-byte header length)");
  }
  void* mapped = ::mmap(nullptr, mapping_bytes_, PROT_READ, MAP_PRIVATE, descriptor, 0);
  ::close(descriptor);
  if (mapped == MAP_FAILED)
    throw UserError("cannot map " + path.string() + ": " + std::strerror(errno));
  mapping_ = static_cast<const uint8_t*>(mapped);

  // The header length, then the header itself.
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, mapping_, sizeof(header_bytes));
  try {
    if (header_bytes > kMaxHeaderBytes || header_bytes > mapping_bytes_ - 8) {
      throw UserError(path.string() + ": not a safetensors file (header length " +
                      std::to_string(header_bytes) + " exceeds the file size " +
                      std::to_string(mapping_bytes_) + ")");
    }
    data_ = mapping_ + 8 + header_bytes;
    parse_header(header_bytes);
  } catch (...) {
    ::munmap(const_cast<uint8_t*>(mapping_), mapping_bytes_);
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) ::munmap(const_cast<uint8_t*>(mapping_), mapping_bytes_);
}

void SafetensorsFile::parse_header(uint64_t header_bytes) {
  const std::string where = path_.string();
  json header;
  try {
    header = json::parse(mapping_ + 8, mapping_ + 8 + header_bytes);
  } catch (const json::exception& error) {
    throw UserError(where + ": malformed safetensors header: " + error.what());
  }
  if (!header.is_object()) throw UserError(where + ": safetensors header is not a JSON object");
  const uint64_t data_bytes = mapping_bytes_ - 8 - header_bytes;

  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      for (const auto& [key, text] : value.items()) {
        if (text.is_string()) metadata_[key] = text.get<std::string>();
      }
      continue;
    }
    SafetensorsEntry entry;
    entry.name = name;
    try {
      entry.dtype = value.at("dtype").get<std::string>();
      entry.shape = value.at("shape").get<std::vector<int64_t>>();
      auto offsets = value.at("data_offsets").get<std::vector<uint64_t>>();
      if (offsets.size() != 2) throw UserError("data_offsets needs two values");
      entry.begin = offsets[0];
      entry.end = offsets[1];
    } catch (const json::exception& error) {
      throw UserError(where + ": tensor " + name + ": malformed entry: " + error.what());
    }

    // The entry must describe exactly the bytes its shape needs, inside the file.
    size_t element_bytes = stored_dtype_size(entry.dtype);
    if (element_bytes == 0)
      throw UserError(where + ": tensor " + name + " has unsupported dtype " + entry.dtype +
                      " (supported: F32, BF16, F16, I32)");
    if (entry.shape.size() > static_cast<size_t>(Shape::kMaxDims))
      throw UserError(where + ": tensor " + name + " has " + std::to_string(entry.shape.size()) +
                      " dimensions; steerlm tensors have at most 4");
    uint64_t numel = 1;
    for (int64_t dim : entry.shape) {
      if (dim < 0) throw UserError(where + ": tensor " + name + " has a negative dimension");
      numel *= static_cast<uint64_t>(dim);
    }
    if (entry.end < entry.begin || entry.end > data_bytes ||
        entry.end - entry.begin != numel * element_bytes) {
      throw UserError(where + ": tensor " + name + " has data_offsets [" +
                      std::to_string(entry.begin) + ", " + std::to_string(entry.end) +
                      "] that do not fit its shape " + shape_text(entry.shape) + " " + entry.dtype +
                      " within " + std::to_string(data_bytes) + " data bytes");
    }
    entries_.push_back(std::move(entry));
  }

  std::sort(entries_.begin(), entries_.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) { return a.begin < b.begin; });
  for (size_t i = 0; i < entries_.size(); ++i) index_[entries_[i].name] = i;
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto found = index_.find(name);
  if (found == index_.end()) throw UserError(path_.string() + ": no tensor " + name);
  return entries_[found->second];
}

Tensor SafetensorsFile::view(const std::string& name) const {
  const SafetensorsEntry& stored = entry(name);
  DType dtype;
  if (stored.dtype == "F32") {
    dtype = DType::kF32;
  } else if (stored.dtype == "BF16") {
    dtype = DType::kBF16;
  } else if (stored.dtype == "I32") {
    dtype = DType::kI32;
  } else {
    throw UserError(path_.string() + ": tensor " + name + " is " + stored.dtype +
                    ", which has no steerlm dtype to view it as; read() converts it");
  }
  // Tensor::wrap takes a mutable pointer; the mapping is read-only and views are never written.
  void* data = const_cast<uint8_t*>(data_ + stored.begin);
  return Tensor::wrap(data, Shape(stored.shape), dtype);
}

void SafetensorsFile::read_into(const std::string& name, Tensor& destination) const {
  const SafetensorsEntry& stored = entry(name);
  if (Shape(stored.shape) != destination.shape()) {
    throw UserError(path_.string() + ": tensor " + name + " has shape " + shape_text(stored.shape) +
                    " but " + destination.shape().str() + " is expected");
  }
  const uint8_t* source = data_ + stored.begin;
  const int64_t numel = destination.numel();

  // Convert on the host, then copy to the destination's device if it is elsewhere.
  bool on_host = destination.device().is_cpu();
  Tensor host = on_host ? destination : Tensor::empty(destination.shape(), destination.dtype());
  if (stored.dtype == safetensors_dtype(destination.dtype())) {
    std::memcpy(host.raw(), source, host.nbytes());
  } else if (destination.dtype() == DType::kF32 && stored.dtype == "BF16") {
    const uint16_t* values = reinterpret_cast<const uint16_t*>(source);
    for (int64_t i = 0; i < numel; ++i) host.f32()[i] = bf16_to_float(values[i]);
  } else if (destination.dtype() == DType::kF32 && stored.dtype == "F16") {
    const uint16_t* values = reinterpret_cast<const uint16_t*>(source);
    for (int64_t i = 0; i < numel; ++i) host.f32()[i] = half_to_float(values[i]);
  } else if (destination.dtype() == DType::kBF16 && stored.dtype == "F32") {
    const float* values = reinterpret_cast<const float*>(source);
    for (int64_t i = 0; i < numel; ++i) host.bf16()[i] = float_to_bf16(values[i]);
  } else {
    throw UserError(path_.string() + ": tensor " + name + " is " + stored.dtype +
                    " and cannot be read as " + dtype_name(destination.dtype()));
  }
  if (!on_host) destination.copy_from(host);
}

Tensor SafetensorsFile::read(const std::string& name, DType dtype) const {
  Tensor tensor = Tensor::empty(Shape(entry(name).shape), dtype);
  read_into(name, tensor);
  return tensor;
}

}  // namespace steerlm
