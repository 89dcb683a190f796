#include "runtime/tensor.h"

#include <glog/logging.h>

#include <cstring>
#include <sstream>

#include "runtime/allocator.h"
#include "runtime/device_memory.h"

namespace steerlm {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kBF16: return 2;
    case DType::kI32: return 4;
  }
  LOG(FATAL) << "unknown dtype";
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "f32";
    case DType::kBF16: return "bf16";
    case DType::kI32: return "i32";
  }
  return "unknown";
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

// ---- Shape ------------------------------------------------------------------------------------

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::vector<int64_t>(dims)) {}

Shape::Shape(const std::vector<int64_t>& dims) {
  CHECK_LE(dims.size(), static_cast<size_t>(kMaxDims)) << "tensors have at most 4 dimensions";
  ndim_ = static_cast<int>(dims.size());
  for (int axis = 0; axis < ndim_; ++axis) {
    CHECK_GE(dims[axis], 0) << "negative dimension in shape";
    dims_[axis] = dims[axis];
  }
}

int64_t Shape::operator[](int axis) const {
  if (axis < 0) axis += ndim_;
  CHECK(axis >= 0 && axis < ndim_) << "axis " << axis << " out of range for shape " << str();
  return dims_[axis];
}

int64_t Shape::numel() const {
  int64_t count = 1;
  for (int axis = 0; axis < ndim_; ++axis) count *= dims_[axis];
  return count;
}

bool Shape::operator==(const Shape& other) const {
  if (ndim_ != other.ndim_) return false;
  for (int axis = 0; axis < ndim_; ++axis) {
    if (dims_[axis] != other.dims_[axis]) return false;
  }
  return true;
}

std::string Shape::str() const {
  std::ostringstream out;
  out << "(";
  for (int axis = 0; axis < ndim_; ++axis) out << (axis ? ", " : "") << dims_[axis];
  out << ")";
  return out.str();
}

// ---- Storage ----------------------------------------------------------------------------------

class Storage {
 public:
  // Owning: memory from the device's caching allocator.
  Storage(size_t bytes, Device device)
      : data_(allocator_for(device).allocate(bytes)),
        bytes_(bytes),
        device_(device),
        owned_(true) {}
  // Non-owning view of external memory.
  Storage(void* data, size_t bytes, Device device)
      : data_(data), bytes_(bytes), device_(device), owned_(false) {}
  ~Storage() {
    if (owned_) allocator_for(device_).release(data_, bytes_);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_;
  size_t bytes_;
  Device device_;
  bool owned_;
};

// ---- Tensor -----------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Tensor tensor;
  tensor.shape_ = shape;
  tensor.dtype_ = dtype;
  tensor.storage_ = std::make_shared<Storage>(tensor.nbytes(), device);
  return tensor;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor tensor = empty(shape, dtype, device);
  tensor.zero();
  return tensor;
}

Tensor Tensor::from_floats(const std::vector<float>& values, const Shape& shape) {
  CHECK_EQ(static_cast<int64_t>(values.size()), shape.numel()) << "for shape " << shape.str();
  Tensor tensor = empty(shape, DType::kF32);
  std::copy(values.begin(), values.end(), tensor.f32());
  return tensor;
}

Tensor Tensor::from_ints(const std::vector<int32_t>& values, const Shape& shape) {
  CHECK_EQ(static_cast<int64_t>(values.size()), shape.numel()) << "for shape " << shape.str();
  Tensor tensor = empty(shape, DType::kI32);
  std::copy(values.begin(), values.end(), tensor.i32());
  return tensor;
}

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype, Device device) {
  Tensor tensor;
  tensor.shape_ = shape;
  tensor.dtype_ = dtype;
  tensor.storage_ = std::make_shared<Storage>(data, tensor.nbytes(), device);
  return tensor;
}

Device Tensor::device() const {
  CHECK(defined()) << "device() of an undefined tensor";
  return storage_->device();
}

Tensor Tensor::reshape(const Shape& shape) const {
  CHECK_EQ(shape.numel(), numel()) << "reshape " << shape_.str() << " -> " << shape.str();
  Tensor view = *this;
  view.shape_ = shape;
  return view;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  CHECK(ndim() >= 1 && begin >= 0 && begin <= end && end <= dim(0))
      << "slice [" << begin << ", " << end << ") of " << shape_.str();
  std::vector<int64_t> dims = shape_.to_vector();
  int64_t row_elements = dims[0] == 0 ? 0 : numel() / dims[0];
  dims[0] = end - begin;
  Tensor view = *this;
  view.shape_ = Shape(dims);
  view.byte_offset_ += static_cast<size_t>(begin * row_elements) * dtype_size(dtype_);
  return view;
}

Tensor Tensor::clone() const {
  return to(device());
}

Tensor Tensor::to(Device device) const {
  Tensor copy = empty(shape_, dtype_, device);
  copy.copy_from(*this);
  return copy;
}

void Tensor::copy_from(const Tensor& source) {
  CHECK_EQ(source.numel(), numel()) << source.shape().str() << " into " << shape_.str();
  CHECK(source.dtype() == dtype_) << dtype_name(source.dtype()) << " into " << dtype_name(dtype_);
  device_memcpy(raw(), device(), source.raw(), source.device(), nbytes());
}

void Tensor::zero() {
  device_memset_zero(device(), raw(), nbytes());
}

void* Tensor::raw() {
  CHECK(defined()) << "access to an undefined tensor";
  return static_cast<char*>(storage_->data()) + byte_offset_;
}

const void* Tensor::raw() const {
  return const_cast<Tensor*>(this)->raw();
}

#define STEERLM_TYPED_ACCESS(name, type, expected)                                    \
  type* Tensor::name() {                                                              \
    CHECK(dtype_ == expected) << #name "() on a " << dtype_name(dtype_) << " tensor"; \
    return static_cast<type*>(raw());                                                 \
  }                                                                                   \
  const type* Tensor::name() const {                                                  \
    return const_cast<Tensor*>(this)->name();                                         \
  }

STEERLM_TYPED_ACCESS(f32, float, DType::kF32)
STEERLM_TYPED_ACCESS(i32, int32_t, DType::kI32)
STEERLM_TYPED_ACCESS(bf16, uint16_t, DType::kBF16)
#undef STEERLM_TYPED_ACCESS

std::vector<float> Tensor::to_floats() const {
  Tensor host = device().is_cpu() ? *this : to(Device::cpu());
  std::vector<float> values(numel());
  if (dtype_ == DType::kF32) {
    std::copy(host.f32(), host.f32() + numel(), values.begin());
  } else if (dtype_ == DType::kI32) {
    std::copy(host.i32(), host.i32() + numel(), values.begin());
  } else {
    for (int64_t i = 0; i < numel(); ++i) {
      uint32_t bits = static_cast<uint32_t>(host.bf16()[i]) << 16;
      std::memcpy(&values[i], &bits, 4);
    }
  }
  return values;
}

}  // namespace steerlm
