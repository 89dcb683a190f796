// Threading policy of the host kernels.
#pragma once

#include <cstdint>

namespace steerlm::kernels {

// Below this many element operations an OpenMP region costs more than it saves; kernels use it
// in `if(...)` clauses. Results never depend on it: every parallel loop writes disjoint outputs
// and reductions run over fixed blocks in a fixed order.
constexpr int64_t kMinParallelWork = 1 << 15;

}  // namespace steerlm::kernels
