// Every communicator operation with rank-dependent inputs and exact expected values, on the
// world and on the TP/PP/DP/model groups of a grid; and the grid's rank layout itself.
// Registered at 2, 4 and 8 ranks (tests/parallel/CMakeLists.txt), and once without a launcher,
// which checks MPI's singleton start-up (a plain `./steerlm ...` is a world of one rank).
#include <chrono>
#include <numeric>
#include <thread>

#include "parallel/pp_transfer.h"
#include "parallel/process_grid.h"
#include "runtime/device_memory.h"
#include "runtime/error.h"
#include "tests/parallel/mpi_test_main.h"

namespace steerlm {
namespace {

using testing_mpi::layout;
using testing_mpi::mpi;

// A world group of its own for each test.
ProcessGrid world_grid() {
  return ProcessGrid(mpi(), layout(1, 1));
}

std::vector<float> iota_plus(int n, float start) {
  std::vector<float> values(n);
  std::iota(values.begin(), values.end(), start);
  return values;
}

TEST(Communicator, AllReduceSumOverWorld) {
  ProcessGrid grid = world_grid();
  const int rank = grid.world_rank(), size = grid.world_size();
  Tensor x = Tensor::from_floats(iota_plus(5, 10.0f * rank), Shape{5});  // (5), cpu
  grid.world().all_reduce(x, ReduceOp::kSum);
  const float rank_sum = size * (size - 1) / 2.0f;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(x.f32()[i], 10.0f * rank_sum + size * i) << i;
}

TEST(Communicator, AllReduceMaxOverWorld) {
  ProcessGrid grid = world_grid();
  const int rank = grid.world_rank(), size = grid.world_size();
  // Element 0 peaks at the last rank, element 1 at rank 0, element 2 is negative everywhere.
  Tensor x = Tensor::from_floats({float(rank), float(-rank), -100.0f - rank}, Shape{3});
  grid.world().all_reduce(x, ReduceOp::kMax);
  EXPECT_EQ(x.to_floats(), (std::vector<float>{float(size - 1), 0.0f, -100.0f}));
}

TEST(Communicator, AllReduceInt32) {
  ProcessGrid grid = world_grid();
  const int rank = grid.world_rank(), size = grid.world_size();
  Tensor x = Tensor::from_ints({rank + 1, 1 << 20}, Shape{2});
  grid.world().all_reduce(x, ReduceOp::kSum);
  EXPECT_EQ(x.i32()[0], size * (size + 1) / 2);
  EXPECT_EQ(x.i32()[1], size << 20);
}

TEST(Communicator, AllGatherConcatenatesInRankOrder) {
  ProcessGrid grid = world_grid();
  const int rank = grid.world_rank(), size = grid.world_size();
  Tensor input = Tensor::from_floats(iota_plus(3, 100.0f * rank), Shape{3});  // (3), cpu
  Tensor output = Tensor::empty(Shape{size * 3}, DType::kF32);                // (size*3), cpu
  grid.world().all_gather(input, output);
  for (int r = 0; r < size; ++r) {
    for (int i = 0; i < 3; ++i) EXPECT_EQ(output.f32()[r * 3 + i], 100.0f * r + i);
  }
}

TEST(Communicator, ReduceScatterGivesEachRankItsSummedBlock) {
  ProcessGrid grid = world_grid();
  const int rank = grid.world_rank(), size = grid.world_size();
  const int block = 2;
  Tensor input = Tensor::from_floats(iota_plus(size * block, 1000.0f * rank),
                                     Shape{size * block});   // (size*2), cpu
  Tensor output = Tensor::empty(Shape{block}, DType::kF32);  // (2), cpu
  grid.world().reduce_scatter(input, output, ReduceOp::kSum);
  // sum over ranks q of (1000 q + rank*block + k)
  const float rank_sum = size * (size - 1) / 2.0f;
  for (int k = 0; k < block; ++k) {
    EXPECT_EQ(output.f32()[k], 1000.0f * rank_sum + size * float(rank * block + k)) << k;
  }
}

TEST(Communicator, ReduceScatterMax) {
  ProcessGrid grid = world_grid();
  const int rank = grid.world_rank(), size = grid.world_size();
  std::vector<float> values(size);
  for (int j = 0; j < size; ++j) values[j] = float((rank + j) % size);
  Tensor input = Tensor::from_floats(values, Shape{size});
  Tensor output = Tensor::empty(Shape{1}, DType::kF32);
  grid.world().reduce_scatter(input, output, ReduceOp::kMax);
  EXPECT_EQ(output.f32()[0], float(size - 1));
}

TEST(Communicator, BroadcastFromLastRank) {
  ProcessGrid grid = world_grid();
  const int rank = grid.world_rank(), size = grid.world_size();
  Tensor x = Tensor::from_floats({float(rank), 0.5f + rank}, Shape{2});
  grid.world().broadcast(x, size - 1);
  EXPECT_EQ(x.to_floats(), (std::vector<float>{float(size - 1), 0.5f + (size - 1)}));
}

TEST(Communicator, BroadcastMovesBf16Bytes) {
  ProcessGrid grid = world_grid();
  Tensor x = Tensor::empty(Shape{3}, DType::kBF16);
  for (int i = 0; i < 3; ++i) x.bf16()[i] = grid.world_rank() == 0 ? 0x3F80 + i : 0;
  grid.world().broadcast(x, 0);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(x.bf16()[i], 0x3F80 + i);
}

TEST(Communicator, SendRecvBetweenPairs) {
  if (mpi().world_size() < 2) GTEST_SKIP() << "needs two ranks; this is the singleton run";
  ProcessGrid grid = world_grid();
  const int rank = grid.world_rank();
  // Even ranks send to the next odd rank, which answers with the values doubled.
  const bool sender = rank % 2 == 0;
  const int peer = sender ? rank + 1 : rank - 1;
  Tensor message = Tensor::from_floats({float(rank), 7.0f}, Shape{2});
  if (sender) {
    grid.world().send(message, peer, /*tag=*/5);
    grid.world().recv(message, peer, /*tag=*/6);
    EXPECT_EQ(message.to_floats(), (std::vector<float>{2.0f * rank, 14.0f}));
  } else {
    grid.world().recv(message, peer, 5);
    EXPECT_EQ(message.to_floats(), (std::vector<float>{float(peer), 7.0f}));
    for (int i = 0; i < 2; ++i) message.f32()[i] *= 2;
    grid.world().send(message, peer, 6);
  }
}

TEST(Communicator, SendRecvAroundARing) {
  if (mpi().world_size() < 2) GTEST_SKIP() << "needs two ranks; this is the singleton run";
  ProcessGrid grid = world_grid();
  const int rank = grid.world_rank(), size = grid.world_size();
  // Everyone sends at once; the combined call cannot deadlock.
  Tensor sent = Tensor::from_floats(iota_plus(4, 10.0f * rank), Shape{4});
  Tensor received = Tensor::empty(Shape{4}, DType::kF32);
  grid.world().send_recv(sent, (rank + 1) % size, 3, received, (rank + size - 1) % size, 3);
  EXPECT_EQ(received.to_floats(), iota_plus(4, 10.0f * ((rank + size - 1) % size)));
}

TEST(Communicator, AsyncAllReducesCompleteIndependently) {
  ProcessGrid grid = world_grid();
  const int rank = grid.world_rank(), size = grid.world_size();
  Tensor a = Tensor::from_floats({float(rank)}, Shape{1});
  Tensor b = Tensor::from_floats({1.0f}, Shape{1});
  CommRequest first = grid.world().all_reduce_async(a, ReduceOp::kMax);
  CommRequest second = grid.world().all_reduce_async(b, ReduceOp::kSum);
  second.wait();
  first.wait();
  EXPECT_TRUE(first.done());
  EXPECT_EQ(a.f32()[0], float(size - 1));
  EXPECT_EQ(b.f32()[0], float(size));
}

TEST(Communicator, BarrierWaitsForTheLastRank) {
  ProcessGrid grid = world_grid();
  using Clock = std::chrono::steady_clock;
  if (grid.world_rank() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const Clock::time_point start = Clock::now();
  grid.world().barrier();
  const double waited_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (grid.world_rank() != 0) {
    EXPECT_GE(waited_ms, 200.0);
  }
}

// The worked example of parallel/process_grid.h, exactly.
TEST(ProcessGrid, EightRankLayoutMatchesTheDocumentedExample) {
  if (mpi().world_size() != 8) GTEST_SKIP() << "the documented example has 8 ranks";
  ProcessGrid grid(mpi(), layout(2, 2));
  struct Row {
    int tp, pp, dp;
    std::vector<int> tp_group, pp_group, dp_group, model_group;
  };
  const std::vector<Row> table = {
      {0, 0, 0, {0, 1}, {0, 2}, {0, 4}, {0, 1, 2, 3}},
      {1, 0, 0, {0, 1}, {1, 3}, {1, 5}, {0, 1, 2, 3}},
      {0, 1, 0, {2, 3}, {0, 2}, {2, 6}, {0, 1, 2, 3}},
      {1, 1, 0, {2, 3}, {1, 3}, {3, 7}, {0, 1, 2, 3}},
      {0, 0, 1, {4, 5}, {4, 6}, {0, 4}, {4, 5, 6, 7}},
      {1, 0, 1, {4, 5}, {5, 7}, {1, 5}, {4, 5, 6, 7}},
      {0, 1, 1, {6, 7}, {4, 6}, {2, 6}, {4, 5, 6, 7}},
      {1, 1, 1, {6, 7}, {5, 7}, {3, 7}, {4, 5, 6, 7}},
  };
  const Row& row = table[grid.world_rank()];
  EXPECT_EQ(grid.tp_rank(), row.tp);
  EXPECT_EQ(grid.pp_rank(), row.pp);
  EXPECT_EQ(grid.dp_rank(), row.dp);
  EXPECT_EQ(grid.tp_size(), 2);
  EXPECT_EQ(grid.pp_size(), 2);
  EXPECT_EQ(grid.dp_size(), 2);
  EXPECT_EQ(grid.tp().world_ranks(), row.tp_group);
  EXPECT_EQ(grid.pp().world_ranks(), row.pp_group);
  EXPECT_EQ(grid.dp().world_ranks(), row.dp_group);
  EXPECT_EQ(grid.model().world_ranks(), row.model_group);
  EXPECT_EQ(grid.is_first_stage(), row.pp == 0);
  EXPECT_EQ(grid.is_last_stage(), row.pp == 1);
  EXPECT_EQ(grid.layers(4), (LayerRange{2 * row.pp, 2 * row.pp + 2}));
  EXPECT_EQ(grid.tp().description(), "tp group (ranks " + std::to_string(row.tp_group[0]) + "," +
                                         std::to_string(row.tp_group[1]) + ")");
  EXPECT_TRUE(grid.device().is_cpu());
}

// Every group of the largest grid the world allows: an all-reduce of the world ranks sums
// exactly the members, and an all-gather lists them in group order.
TEST(ProcessGrid, SubGroupCollectivesSeeOnlyTheirMembers) {
  if (mpi().world_size() < 2) GTEST_SKIP() << "needs two ranks; this is the singleton run";
  const int size = mpi().world_size();
  const int tp = 2, pp = size % 4 == 0 ? 2 : 1;
  ProcessGrid grid(mpi(), layout(tp, pp));
  for (ProcessGroup* group : {&grid.tp(), &grid.pp(), &grid.dp(), &grid.model()}) {
    const std::vector<int>& members = group->world_ranks();
    Tensor x = Tensor::from_floats({float(grid.world_rank()), 1.0f}, Shape{2});
    group->all_reduce(x, ReduceOp::kSum);
    EXPECT_EQ(x.f32()[0], float(std::accumulate(members.begin(), members.end(), 0)))
        << group->description();
    EXPECT_EQ(x.f32()[1], float(members.size())) << group->description();

    Tensor mine = Tensor::from_ints({grid.world_rank()}, Shape{1});
    Tensor all = Tensor::empty(Shape{group->size()}, DType::kI32);
    group->all_gather(mine, all);
    for (int r = 0; r < group->size(); ++r) EXPECT_EQ(all.i32()[r], members[r]);

    Tensor value = Tensor::from_floats({float(grid.world_rank())}, Shape{1});
    group->broadcast(value, group->size() - 1);
    EXPECT_EQ(value.f32()[0], float(members.back())) << group->description();
  }
  // Membership follows the documented order.
  const GridCoordinates at = grid_coordinates(grid.world_rank(), tp, pp);
  EXPECT_EQ(grid.tp_rank(), at.tp);
  EXPECT_EQ(grid.pp_rank(), at.pp);
  EXPECT_EQ(grid.dp_rank(), at.dp);
  EXPECT_EQ(grid.dp_size(), size / (tp * pp));
}

// Stage s adds s+1 to what stage s-1 sent; gradients come back doubled at each stage.
TEST(PipelineTransfer, ActivationsForwardAndGradientsBackward) {
  const int size = mpi().world_size();
  ProcessGrid grid(mpi(), layout(1, size));
  ProcessGroup& pp = grid.pp();
  const int stage = pp.rank();
  const Shape shape{2, 3};  // (B, C) of a toy activation

  // Forward: the first stage makes [0..5], every stage adds stage+1.
  Tensor activation = grid.is_first_stage() ? Tensor::from_floats(iota_plus(6, 0.0f), shape)
                                            : recv_forward(pp, shape, DType::kF32, Device::cpu());
  const float added_before = stage * (stage + 1) / 2.0f;  // 1 + 2 + ... + stage
  for (int i = 0; i < 6; ++i) EXPECT_EQ(activation.f32()[i], i + added_before);
  for (int i = 0; i < 6; ++i) activation.f32()[i] += stage + 1;
  if (!grid.is_last_stage()) send_forward(pp, activation);

  // Backward: the last stage's gradient is ones; each stage doubles it for its predecessor.
  Tensor grad = grid.is_last_stage() ? Tensor::from_floats(std::vector<float>(6, 1.0f), shape)
                                     : recv_backward(pp, shape, DType::kF32, Device::cpu());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(grad.f32()[i], float(1 << (size - 1 - stage)));
  for (int i = 0; i < 6; ++i) grad.f32()[i] *= 2;
  if (!grid.is_first_stage()) send_backward(pp, grad);
}

// The layout checks live in validate_stage_config; ProcessGrid::create runs them first, so a
// bad layout is a one-line UserError naming the field before any communicator exists.
std::string create_error(const config::StageConfig& config, const FieldLocations& where) {
  try {
    ProcessGrid::create(mpi(), config, where);
  } catch (const UserError& error) {
    return error.what();
  }
  return "no error";
}

TEST(ProcessGrid, ImpossibleLayoutsAreUserErrors) {
  if (mpi().world_size() < 2) GTEST_SKIP() << "needs two ranks; this is the singleton run";
  config::StageConfig config;
  config::ModelConfig& model = *config.mutable_model()->mutable_config();
  model.set_dim(60);
  model.set_n_layers(2);
  model.set_n_heads(5);
  model.set_ffn_hidden(128);
  model.set_vocab_size(32);
  config.mutable_train()->set_global_batch_size(8 * mpi().world_size());
  FieldLocations where;
  where.record("parallel.tp", "stage.pbtxt:7");
  const std::string world = std::to_string(mpi().world_size());

  // TP x PP does not divide the world (3 divides none of 2, 4, 8).
  config.mutable_parallel()->set_tp(3);
  EXPECT_EQ(create_error(config, where),
            "stage.pbtxt:7: parallel.tp: TP x PP = 3 does not divide the world size " + world +
                "; launch a multiple of TP x PP ranks");

  // TP does not divide the heads.
  config.mutable_parallel()->set_tp(2);
  EXPECT_EQ(create_error(config, where),
            "stage.pbtxt:7: parallel.tp: TP = 2 does not divide n_heads 5; use one of 1, 5");

  // More pipeline stages than layers.
  config.mutable_parallel()->set_tp(1);
  config.mutable_parallel()->set_pp(2);
  model.set_n_layers(1);
  EXPECT_EQ(create_error(config, where),
            "parallel.pp: PP = 2 is more pipeline stages than the 1 layers");

  // CUDA without a GPU on this host.
  if (cuda_device_count() > 0) return;
  config.mutable_parallel()->set_pp(1);
  config.set_device(config::Device::CUDA);
  EXPECT_NE(create_error(config, where).find("has no usable GPU; set device: CPU"),
            std::string::npos);
}

// A job session over half of the world (what `steerlm pipeline run` gives each job): its grid
// numbers ranks inside the half, and its collectives reach only the half's members.
TEST(MpiSession, JobSessionOnASubCommunicator) {
  const int rank = mpi().world_rank(), size = mpi().world_size();
  const int half = size / 2, color = (size > 1 && rank >= half) ? 1 : 0;
  MPI_Comm job_comm = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, color, rank, &job_comm));
  {
    MpiSession job(mpi(), job_comm);
    const int first = color == 1 ? half : 0,
              members = size > 1 ? (color == 1 ? size - half : half) : 1;
    EXPECT_EQ(job.world_rank(), rank - first);
    EXPECT_EQ(job.world_size(), members);
    EXPECT_EQ(job.local_rank(), mpi().local_rank());  // the process's GPU, not the job's
    ProcessGrid grid(job, layout(1, 1));
    EXPECT_EQ(grid.world_size(), members);
    Tensor x = Tensor::from_ints({rank}, Shape{1});
    grid.world().all_reduce(x, ReduceOp::kSum);
    int expected = 0;
    for (int r = first; r < first + members; ++r) expected += r;
    EXPECT_EQ(x.i32()[0], expected);
  }
  MPI_CHECK(MPI_Comm_free(&job_comm));
}

}  // namespace
}  // namespace steerlm

int main(int argc, char** argv) {
  return steerlm::testing_mpi::run_all_ranks(argc, argv);
}
