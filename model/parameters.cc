#include "model/parameters.h"

#include <glog/logging.h>

#include <cmath>
#include <numbers>

namespace steerlm {

Parameter& ParameterSet::add(const std::string& name, const Shape& shape, bool weight_decay,
                             Device device) {
  CHECK(index_.find(name) == index_.end()) << "parameter registered twice: " << name;
  index_.emplace(name, parameters_.size());
  parameters_.push_back(Parameter{name, Tensor::zeros(shape, DType::kF32, device),
                                  Tensor::zeros(shape, DType::kF32, device), weight_decay});
  return parameters_.back();
}

Parameter* ParameterSet::find(const std::string& name) {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &parameters_[it->second];
}

const Parameter* ParameterSet::find(const std::string& name) const {
  return const_cast<ParameterSet*>(this)->find(name);
}

Parameter& ParameterSet::at(const std::string& name) {
  Parameter* parameter = find(name);
  CHECK(parameter != nullptr) << "no parameter named " << name;
  return *parameter;
}

const Parameter& ParameterSet::at(const std::string& name) const {
  return const_cast<ParameterSet*>(this)->at(name);
}

int64_t ParameterSet::numel() const {
  int64_t total = 0;
  for (const Parameter& parameter : parameters_) total += parameter.value.numel();
  return total;
}

void ParameterSet::zero_grad() {
  for (Parameter& parameter : parameters_) parameter.grad.zero();
}

namespace {

// splitmix64: a well-mixed 64-bit hash, the standard finaliser for counter-based generators.
uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// FNV-1a over the name; only needs to separate parameter names, not resist attacks.
uint64_t hash_name(const std::string& name) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : name) hash = (hash ^ c) * 0x100000001b3ULL;
  return hash;
}

// A uniform double in (0, 1] from 53 random bits (never 0, so log() below is finite).
double to_unit(uint64_t bits) {
  return (static_cast<double>(bits >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

}  // namespace

float init_normal_value(uint64_t seed, const std::string& name, int64_t global_index, float std) {
  // Box-Muller on two independent hashes of (seed, name, index).
  const uint64_t key = mix64(seed ^ mix64(hash_name(name)));
  const uint64_t counter = static_cast<uint64_t>(global_index) * 2;
  const double u1 = to_unit(mix64(key ^ mix64(counter)));
  const double u2 = to_unit(mix64(key ^ mix64(counter + 1)));
  const double normal = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  return static_cast<float>(normal * std);
}

}  // namespace steerlm
