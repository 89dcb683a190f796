// The TP communication wrappers (forward and backward), the DP gradient buckets, ZeRO-1's
// reduce-scatter/all-gather and a 1F1B exchange of PP transfers, against hand-computed values.
// Registered at 2 and 4 ranks (tests/parallel/CMakeLists.txt).
#include <numeric>

#include "parallel/flat_buffer.h"
#include "parallel/grad_buckets.h"
#include "parallel/pp_transfer.h"
#include "parallel/process_grid.h"
#include "parallel/tp_mappings.h"
#include "parallel/zero1.h"
#include "tests/parallel/mpi_test_main.h"

namespace steerlm {
namespace {

using testing_mpi::layout;
using testing_mpi::mpi;

// ---- Tensor parallelism: every rank of the world is one TP rank -------------------------

TEST(TpMappings, CopyToRegionIsIdentityForwardAndAllReduceBackward) {
  ProcessGrid grid(mpi(), layout(mpi().world_size(), 1));
  const int rank = grid.tp_rank(), tp = grid.tp_size();
  Tensor x = Tensor::from_floats({1.5f, -2.0f}, Shape{1, 2});  // (B, C), cpu
  Tensor y = copy_to_tp_region(grid.tp(), x);
  EXPECT_EQ(y.raw(), x.raw());
  EXPECT_EQ(y.to_floats(), (std::vector<float>{1.5f, -2.0f}));

  Tensor grad = Tensor::from_floats({float(rank), 1.0f}, Shape{1, 2});
  Tensor dx = copy_to_tp_region_backward(grid.tp(), grad);
  EXPECT_EQ(dx.to_floats(), (std::vector<float>{tp * (tp - 1) / 2.0f, float(tp)}));
}

TEST(TpMappings, ReduceFromRegionIsAllReduceForwardAndIdentityBackward) {
  ProcessGrid grid(mpi(), layout(mpi().world_size(), 1));
  const int rank = grid.tp_rank(), tp = grid.tp_size();
  Tensor partial = Tensor::from_floats({float(rank + 1), 10.0f}, Shape{1, 2});
  Tensor y = reduce_from_tp_region(grid.tp(), partial);
  EXPECT_EQ(y.to_floats(), (std::vector<float>{tp * (tp + 1) / 2.0f, 10.0f * tp}));

  Tensor grad = Tensor::from_floats({3.0f, 4.0f}, Shape{1, 2});
  Tensor dx = reduce_from_tp_region_backward(grid.tp(), grad);
  EXPECT_EQ(dx.raw(), grad.raw());
  EXPECT_EQ(dx.to_floats(), (std::vector<float>{3.0f, 4.0f}));
}

TEST(TpMappings, GatherFromRegionConcatenatesTheLastDimAndSplitsBackward) {
  ProcessGrid grid(mpi(), layout(mpi().world_size(), 1));
  const int rank = grid.tp_rank(), tp = grid.tp_size();
  // Rank r holds columns [3r, 3r+3) of a (2, 3*TP) matrix whose entry (row, col) is
  // 100*row + col.
  std::vector<float> local;
  for (int row = 0; row < 2; ++row) {
    for (int c = 0; c < 3; ++c) local.push_back(100.0f * row + 3 * rank + c);
  }
  Tensor y = gather_from_tp_region(grid.tp(), Tensor::from_floats(local, Shape{2, 3}));
  ASSERT_EQ(y.shape(), (Shape{2, 3 * tp}));
  for (int row = 0; row < 2; ++row) {
    for (int col = 0; col < 3 * tp; ++col) EXPECT_EQ(y.f32()[row * 3 * tp + col], 100 * row + col);
  }

  // Backward keeps this rank's columns of the full gradient.
  Tensor dx = gather_from_tp_region_backward(grid.tp(), y);
  EXPECT_EQ(dx.shape(), (Shape{2, 3}));
  EXPECT_EQ(dx.to_floats(), local);
}

TEST(TpMappings, ScatterToRegionSplitsTheLastDimAndGathersBackward) {
  ProcessGrid grid(mpi(), layout(mpi().world_size(), 1));
  const int rank = grid.tp_rank(), tp = grid.tp_size();
  // A (1, 2, 2*TP) input, the same on every rank: entry k is k.
  std::vector<float> full(4 * tp);
  std::iota(full.begin(), full.end(), 0.0f);
  Tensor y = scatter_to_tp_region(grid.tp(), Tensor::from_floats(full, Shape{1, 2, 2 * tp}));
  ASSERT_EQ(y.shape(), (Shape{1, 2, 2}));
  EXPECT_EQ(y.to_floats(),
            (std::vector<float>{float(2 * rank), float(2 * rank + 1), float(2 * tp + 2 * rank),
                                float(2 * tp + 2 * rank + 1)}));

  Tensor dx = scatter_to_tp_region_backward(grid.tp(), y);
  EXPECT_EQ(dx.shape(), (Shape{1, 2, 2 * tp}));
  EXPECT_EQ(dx.to_floats(), full);
}

// A column-parallel linear followed by a row-parallel one, Y = (X A) B with A split by
// columns and B by rows, forward and backward, against the unsplit product in float64.
TEST(TpMappings, ColumnThenRowParallelLinearMatchesTheUnsplitProduct) {
  ProcessGrid grid(mpi(), layout(mpi().world_size(), 1));
  const int rank = grid.tp_rank(), tp = grid.tp_size();
  const int rows = 2, in = 3, hidden = 2 * tp, out = 2, local = 2;
  auto x_at = [](int r, int k) { return 0.5 * r - 0.25 * k + 1; };
  auto a_at = [](int k, int h) { return 0.125 * ((k + 2 * h) % 5) - 0.25; };
  auto b_at = [](int h, int o) { return 0.0625 * ((3 * h + o) % 7) - 0.125; };
  auto dy_at = [](int r, int o) { return 1.0 + r - 0.5 * o; };

  // Forward on this rank: H_i = X A_i (rows, local), partial Y_i = H_i B_i (rows, out).
  Tensor x = copy_to_tp_region(grid.tp(), Tensor::zeros(Shape{rows, in}, DType::kF32));
  for (int r = 0; r < rows; ++r) {
    for (int k = 0; k < in; ++k) x.f32()[r * in + k] = float(x_at(r, k));
  }
  Tensor y = Tensor::zeros(Shape{rows, out}, DType::kF32);  // (rows, out), cpu
  for (int r = 0; r < rows; ++r) {
    for (int o = 0; o < out; ++o) {
      double sum = 0;
      for (int j = 0; j < local; ++j) {
        const int h = rank * local + j;
        double hidden_value = 0;
        for (int k = 0; k < in; ++k) hidden_value += x.f32()[r * in + k] * a_at(k, h);
        sum += hidden_value * b_at(h, o);
      }
      y.f32()[r * out + o] = float(sum);
    }
  }
  y = reduce_from_tp_region(grid.tp(), y);

  // Backward on this rank: dX_i = dY B_i^T A_i^T, summed over TP by copy_to's backward.
  Tensor dx = Tensor::zeros(Shape{rows, in}, DType::kF32);  // (rows, in), cpu
  for (int r = 0; r < rows; ++r) {
    for (int k = 0; k < in; ++k) {
      double sum = 0;
      for (int j = 0; j < local; ++j) {
        const int h = rank * local + j;
        double dh = 0;
        for (int o = 0; o < out; ++o) dh += dy_at(r, o) * b_at(h, o);
        sum += dh * a_at(k, h);
      }
      dx.f32()[r * in + k] = float(sum);
    }
  }
  dx = copy_to_tp_region_backward(grid.tp(), dx);

  // The unsplit reference over all `hidden` columns.
  for (int r = 0; r < rows; ++r) {
    for (int o = 0; o < out; ++o) {
      double expected = 0;
      for (int h = 0; h < hidden; ++h) {
        double hidden_value = 0;
        for (int k = 0; k < in; ++k) hidden_value += x_at(r, k) * a_at(k, h);
        expected += hidden_value * b_at(h, o);
      }
      EXPECT_NEAR(y.f32()[r * out + o], expected, 1e-6) << r << "," << o;
    }
    for (int k = 0; k < in; ++k) {
      double expected = 0;
      for (int h = 0; h < hidden; ++h) {
        double dh = 0;
        for (int o = 0; o < out; ++o) dh += dy_at(r, o) * b_at(h, o);
        expected += dh * a_at(k, h);
      }
      EXPECT_NEAR(dx.f32()[r * in + k], expected, 1e-6) << r << "," << k;
    }
  }
}

// ---- Data parallelism: every rank of the world is one DP replica -----------------------

// Gradient i of rank r: element e is 1000*i + 10*r + e.
std::vector<Tensor> make_grads(int rank, const std::vector<int64_t>& sizes) {
  std::vector<Tensor> grads;
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::vector<float> values(sizes[i]);
    for (int64_t e = 0; e < sizes[i]; ++e) values[e] = 1000.0f * i + 10.0f * rank + e;
    grads.push_back(Tensor::from_floats(values, Shape{sizes[i]}));
  }
  return grads;
}

TEST(GradientBuckets, BucketedAllReduceEqualsThePerTensorOne) {
  ProcessGrid grid(mpi(), layout(1, 1));
  const int rank = grid.dp_rank(), dp = grid.dp_size();
  const std::vector<int64_t> sizes = {3, 5, 1, 7, 2};
  std::vector<Tensor> grads = make_grads(rank, sizes);
  std::vector<Tensor> reference = make_grads(rank, sizes);

  // 16-byte buckets hold at most one of these gradients each: five buckets.
  GradientBuckets buckets(grads, 16.0 / (1024 * 1024));
  ASSERT_EQ(buckets.bucket_count(), 5u);
  EXPECT_EQ(buckets.bucket_members(3), (std::vector<size_t>{3}));
  // 36-byte buckets fill greedily: 3+5+1 floats (36 B), then 7+2 floats (36 B).
  GradientBuckets wide(make_grads(rank, sizes), 36.0 / (1024 * 1024));
  ASSERT_EQ(wide.bucket_count(), 2u);
  EXPECT_EQ(wide.bucket_members(0), (std::vector<size_t>{0, 1, 2}));
  EXPECT_EQ(wide.bucket_members(1), (std::vector<size_t>{3, 4}));

  buckets.all_reduce(grid.dp());
  std::vector<Tensor> wide_grads = make_grads(rank, sizes);
  GradientBuckets(wide_grads, 36.0 / (1024 * 1024)).all_reduce(grid.dp());
  for (Tensor& tensor : reference) grid.dp().all_reduce(tensor);
  const float rank_sum = dp * (dp - 1) / 2.0f;
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(grads[i].to_floats(), reference[i].to_floats()) << "gradient " << i;
    EXPECT_EQ(wide_grads[i].to_floats(), reference[i].to_floats()) << "gradient " << i;
    for (int64_t e = 0; e < sizes[i]; ++e) {
      EXPECT_EQ(grads[i].f32()[e], dp * (1000.0f * i + e) + 10.0f * rank_sum);
    }
  }
}

TEST(GradientBuckets, OverlappedMarkingMatchesAndResetsEachStep) {
  ProcessGrid grid(mpi(), layout(1, 1));
  const int rank = grid.dp_rank(), dp = grid.dp_size();
  const std::vector<int64_t> sizes = {4, 4, 4, 4};
  std::vector<Tensor> grads = make_grads(rank, sizes);
  GradientBuckets buckets(grads, 32.0 / (1024 * 1024));  // two gradients per bucket
  ASSERT_EQ(buckets.bucket_count(), 2u);
  const float rank_sum = dp * (dp - 1) / 2.0f;
  for (int step = 0; step < 2; ++step) {
    // Reset the gradients to this step's values, then mark them in backward's order.
    for (size_t i = 0; i < sizes.size(); ++i) grads[i].copy_from(make_grads(rank, sizes)[i]);
    for (size_t i : {1u, 0u, 3u, 2u}) buckets.mark_ready(grid.dp(), i);
    buckets.finish(grid.dp());
    for (size_t i = 0; i < sizes.size(); ++i) {
      for (int e = 0; e < 4; ++e) {
        EXPECT_EQ(grads[i].f32()[e], dp * (1000.0f * i + e) + 10.0f * rank_sum) << step;
      }
    }
  }
}

TEST(Zero1, ReduceScatterOfGradientsAndAllGatherOfParameters) {
  ProcessGrid grid(mpi(), layout(1, 1));
  const int rank = grid.dp_rank(), dp = grid.dp_size();
  // Two tensors, 7 elements in all, padded to a multiple of DP.
  std::vector<Tensor> grads = make_grads(rank, {4, 3});
  const Zero1Partition part = zero1_partition(total_numel(grads), dp);
  EXPECT_EQ(part.padded_numel, (7 + dp - 1) / dp * dp);
  Tensor flat_grads = Tensor::zeros(Shape{part.padded_numel}, DType::kF32);
  pack_tensors(grads, flat_grads);

  Tensor grad_shard = Tensor::empty(Shape{part.shard_numel}, DType::kF32);
  zero1_reduce_scatter_gradients(grid.dp(), flat_grads, grad_shard);
  const float rank_sum = dp * (dp - 1) / 2.0f;
  for (int64_t k = 0; k < part.shard_numel; ++k) {
    const int64_t element = part.shard_begin(rank) + k;  // index in the flat buffer
    const float expected = element >= 7  ? 0.0f
                           : element < 4 ? dp * float(element) + 10.0f * rank_sum
                                         : dp * (1000.0f + float(element - 4)) + 10.0f * rank_sum;
    EXPECT_EQ(grad_shard.f32()[k], expected) << "flat element " << element;
  }

  // Each rank "updates" its shard to -(flat index); the all-gather assembles all of them.
  Tensor param_shard = Tensor::empty(Shape{part.shard_numel}, DType::kF32);
  for (int64_t k = 0; k < part.shard_numel; ++k) {
    param_shard.f32()[k] = -float(part.shard_begin(rank) + k);
  }
  Tensor flat_params = Tensor::empty(Shape{part.padded_numel}, DType::kF32);
  zero1_all_gather_parameters(grid.dp(), param_shard, flat_params);
  std::vector<Tensor> params = {Tensor::empty(Shape{2, 2}, DType::kF32),
                                Tensor::empty(Shape{3}, DType::kF32)};
  unpack_tensors(flat_params, params);
  EXPECT_EQ(params[0].to_floats(), (std::vector<float>{0, -1, -2, -3}));
  EXPECT_EQ(params[1].to_floats(), (std::vector<float>{-4, -5, -6}));
}

// ---- Pipeline parallelism: a 1F1B exchange over all ranks as stages -------------------

// Stage s computes y = 2x + s and passes dy*2 back; the last stage's loss gradient is y.
// With M micro-batches and the combined transfers of the steady phase, the first stage's
// input gradients must equal a sequential computation.
TEST(PipelineTransfer, OneForwardOneBackwardExchangeMatchesSequentialResult) {
  const int stages = mpi().world_size(), micro_batches = 3;
  ProcessGrid grid(mpi(), layout(1, stages));
  ProcessGroup& pp = grid.pp();
  const int s = pp.rank();
  const Shape shape{2};

  auto forward = [&](Tensor x) {
    Tensor y = Tensor::empty(shape, DType::kF32);
    for (int i = 0; i < 2; ++i) y.f32()[i] = 2 * x.f32()[i] + s;
    return y;
  };
  auto backward = [&](Tensor dy) {
    Tensor dx = Tensor::empty(shape, DType::kF32);
    for (int i = 0; i < 2; ++i) dx.f32()[i] = 2 * dy.f32()[i];
    return dx;
  };
  auto input_of = [&](int m) { return Tensor::from_floats({float(m), float(m) + 0.5f}, shape); };

  std::vector<Tensor> input_grads;  // first stage: dL/dx per micro-batch
  int next_forward = 0;
  auto run_forward = [&](Tensor x) {
    Tensor y = forward(x);
    ++next_forward;
    return y;
  };
  // The last stage turns its output into the loss gradient at once.
  auto last_backward = [&](Tensor y) { return backward(y); };

  const int warmup = std::min(stages - s - 1, micro_batches);
  Tensor activation =
      grid.is_first_stage() ? input_of(0) : recv_forward(pp, shape, DType::kF32, Device::cpu());
  // Warm-up: forwards only.
  for (int w = 0; w < warmup; ++w) {
    Tensor y = run_forward(activation);
    send_forward(pp, y);
    if (next_forward < micro_batches) {
      activation = grid.is_first_stage() ? input_of(next_forward)
                                         : recv_forward(pp, shape, DType::kF32, Device::cpu());
    }
  }
  // Steady: one forward, one backward, with combined transfers.
  for (int k = 0; k < micro_batches - warmup; ++k) {
    Tensor y = run_forward(activation);
    Tensor dy = grid.is_last_stage() ? Tensor() : send_forward_recv_backward(pp, y);
    Tensor dx = grid.is_last_stage() ? last_backward(y) : backward(dy);
    const bool more = next_forward < micro_batches;
    if (grid.is_first_stage()) {
      input_grads.push_back(dx);
      if (more) activation = input_of(next_forward);
    } else if (more) {
      activation = send_backward_recv_forward(pp, dx);
    } else {
      send_backward(pp, dx);
    }
  }
  // Cool-down: the remaining backwards.
  for (int c = 0; c < warmup; ++c) {
    Tensor dx = backward(recv_backward(pp, shape, DType::kF32, Device::cpu()));
    if (grid.is_first_stage()) {
      input_grads.push_back(dx);
    } else {
      send_backward(pp, dx);
    }
  }

  if (!grid.is_first_stage()) return;
  ASSERT_EQ(input_grads.size(), size_t(micro_batches));
  for (int m = 0; m < micro_batches; ++m) {
    // Sequentially: y = 2^P x + sum_s 2^(P-1-s) s; dL/dx = 2^P y.
    for (int i = 0; i < 2; ++i) {
      double y = float(m) + 0.5 * i;
      for (int stage = 0; stage < stages; ++stage) y = 2 * y + stage;
      EXPECT_EQ(input_grads[m].f32()[i], float(y * (1 << stages))) << "micro-batch " << m;
    }
  }
}

}  // namespace
}  // namespace steerlm

int main(int argc, char** argv) {
  return steerlm::testing_mpi::run_all_ranks(argc, argv);
}
