// The named parameter set of a model (notes/names.md): the one view of a model's weights that
// checkpointing, conversion, the optimizer and DP gradient sync work on. Names follow Hugging
// Face Llama; weights are stored (out_features, in_features) row-major.
//
// A ParameterSet keeps insertion order (the model registers embedding, layers in order, final
// norm, heads), so iterating it is deterministic on every rank.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/tensor.h"

namespace steerlm {

struct Parameter {
  std::string name;   // e.g. "model.layers.3.self_attn.q_proj.weight"
  Tensor value;       // this rank's shard, f32 master weights
  Tensor grad;        // same shape as value; accumulated by backward, zeroed by zero_grad()
  bool weight_decay;  // false for norms and biases (AdamW skips them)
  // A copy of a parameter that other TP ranks also hold (norms, the attribute head): the global
  // gradient norm counts it on TP rank 0 only.
  bool tp_duplicate = false;
};

class ParameterSet {
 public:
  ParameterSet() = default;
  // Parameters hold Tensors that share storage, so a copy would alias; move only.
  ParameterSet(const ParameterSet&) = delete;
  ParameterSet& operator=(const ParameterSet&) = delete;
  ParameterSet(ParameterSet&&) = default;
  ParameterSet& operator=(ParameterSet&&) = default;

  // Adds a zero-initialised parameter and its zero gradient; the name must be new. The returned
  // reference stays valid as more parameters are added.
  Parameter& add(const std::string& name, const Shape& shape, bool weight_decay,
                 Device device = Device::cpu());

  // nullptr when absent.
  Parameter* find(const std::string& name);
  const Parameter* find(const std::string& name) const;
  // Absent names are a broken invariant (glog FATAL naming the parameter).
  Parameter& at(const std::string& name);
  const Parameter& at(const std::string& name) const;

  size_t size() const { return parameters_.size(); }
  std::deque<Parameter>::iterator begin() { return parameters_.begin(); }
  std::deque<Parameter>::iterator end() { return parameters_.end(); }
  std::deque<Parameter>::const_iterator begin() const { return parameters_.begin(); }
  std::deque<Parameter>::const_iterator end() const { return parameters_.end(); }

  // Total elements over all parameters (this rank's shards).
  int64_t numel() const;
  void zero_grad();

 private:
  std::deque<Parameter> parameters_;  // a deque: references from add() stay valid
  std::unordered_map<std::string, size_t> index_;
};

// Deterministic N(0, std^2) initial value of element `global_index` of parameter `name`:
// a counter-based hash of (seed, name, index), so any TP/PP shard initialises exactly its slice
// of the single-rank weights without generating the rest.
float init_normal_value(uint64_t seed, const std::string& name, int64_t global_index, float std);

}  // namespace steerlm
