// Tensor: a shaped view of device memory.
//
// Layout convention, stated once: row-major, the last dimension is contiguous, at most 4-D.
// Shape letters used in comments throughout steerlm (defined once here):
//   B batch (sequences), T time (positions), C channels (model dim), V vocabulary,
//   L layers, NH attention heads, KVH key/value heads, HS head size (C / NH), F MLP hidden,
//   A attributes, TP/PP/DP parallel sizes. "(B, T, C/TP), cpu" means sharded over TP, on host.
//
// A Tensor either owns its storage (memory from the caching allocator, shared between views and
// returned when the last one goes) or views memory owned by someone else (Tensor::wrap).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace steerlm {

enum class DType : uint8_t { kF32, kBF16, kI32 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

enum class DeviceKind : uint8_t { kCPU, kCUDA };

struct Device {
  DeviceKind kind = DeviceKind::kCPU;
  int index = 0;

  static Device cpu() { return Device{}; }
  static Device cuda(int index) { return Device{DeviceKind::kCUDA, index}; }
  bool is_cpu() const { return kind == DeviceKind::kCPU; }
  bool is_cuda() const { return kind == DeviceKind::kCUDA; }
  bool operator==(const Device& other) const = default;
  std::string str() const;
};

class Shape {
 public:
  static constexpr int kMaxDims = 4;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims);

  int ndim() const { return ndim_; }
  int64_t operator[](int axis) const;
  int64_t numel() const;
  bool operator==(const Shape& other) const;
  std::string str() const;  // "(2, 3, 4)"
  std::vector<int64_t> to_vector() const { return {dims_.begin(), dims_.begin() + ndim_}; }

 private:
  std::array<int64_t, kMaxDims> dims_{};
  int ndim_ = 0;
};

// A block of device memory; returned to the caching allocator on destruction (when owned).
class Storage;

class Tensor {
 public:
  Tensor() = default;

  // Uninitialised memory from the caching allocator.
  static Tensor empty(const Shape& shape, DType dtype, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype, Device device = Device::cpu());
  // A host f32 / i32 tensor holding a copy of `values`; numel must match.
  static Tensor from_floats(const std::vector<float>& values, const Shape& shape);
  static Tensor from_ints(const std::vector<int32_t>& values, const Shape& shape);
  // A non-owning view of memory that outlives the tensor.
  static Tensor wrap(void* data, const Shape& shape, DType dtype, Device device = Device::cpu());

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return shape_.ndim(); }
  int64_t dim(int axis) const { return shape_[axis]; }
  int64_t numel() const { return shape_.numel(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const;

  // Views that share storage. reshape keeps numel; slice takes rows [begin, end) of dim 0.
  Tensor reshape(const Shape& shape) const;
  Tensor slice(int64_t begin, int64_t end) const;

  // A new owning tensor with the same contents, optionally on another device.
  Tensor clone() const;
  Tensor to(Device device) const;
  // Copies `source` (same numel and dtype, any device) into this tensor's memory.
  void copy_from(const Tensor& source);
  void zero();

  void* raw();
  const void* raw() const;
  // Typed access; checks the dtype.
  float* f32();
  const float* f32() const;
  int32_t* i32();
  const int32_t* i32() const;
  uint16_t* bf16();
  const uint16_t* bf16() const;

  // Host-only convenience for tests and small bookkeeping.
  std::vector<float> to_floats() const;

 private:
  std::shared_ptr<Storage> storage_;
  size_t byte_offset_ = 0;
  Shape shape_;
  DType dtype_ = DType::kF32;
};

}  // namespace steerlm
