// Single-process checks of the grid arithmetic, the ZeRO-1 partition and the host copies
// behind the TP wrappers; the multi-rank behaviour is in the *_mpi_test.cc files.
#include "parallel/process_grid.h"

#include <gtest/gtest.h>

#include "parallel/flat_buffer.h"
#include "parallel/tp_mappings.h"
#include "parallel/watchdog.h"
#include "parallel/zero1.h"

namespace steerlm {
namespace {

TEST(GridCoordinates, TpFastestThenPpThenDp) {
  // 12 ranks at TP = 2, PP = 3: rank 7 is tp 1, stage 0 of replica 1.
  EXPECT_EQ(grid_coordinates(7, 2, 3), (GridCoordinates{1, 0, 1}));
  EXPECT_EQ(grid_coordinates(5, 2, 3), (GridCoordinates{1, 2, 0}));
  EXPECT_EQ(grid_coordinates(0, 2, 3), (GridCoordinates{0, 0, 0}));
  EXPECT_EQ(grid_coordinates(11, 2, 3), (GridCoordinates{1, 2, 1}));
  EXPECT_EQ(grid_coordinates(3, 1, 1), (GridCoordinates{0, 0, 3}));
}

TEST(StageLayerRange, EvenSplitGivesExtraLayersToEarlyStages) {
  config::ParallelConfig parallel;
  parallel.set_pp(3);
  EXPECT_EQ(stage_layer_range(parallel, 8, 0), (LayerRange{0, 3}));
  EXPECT_EQ(stage_layer_range(parallel, 8, 1), (LayerRange{3, 6}));
  EXPECT_EQ(stage_layer_range(parallel, 8, 2), (LayerRange{6, 8}));
  parallel.set_pp(2);
  EXPECT_EQ(stage_layer_range(parallel, 4, 1), (LayerRange{2, 4}));
}

TEST(StageLayerRange, ExplicitSplitFollowsPpLayers) {
  config::ParallelConfig parallel;
  parallel.set_pp(3);
  for (int layers : {1, 4, 2}) parallel.add_pp_layers(layers);
  EXPECT_EQ(stage_layer_range(parallel, 7, 0), (LayerRange{0, 1}));
  EXPECT_EQ(stage_layer_range(parallel, 7, 1), (LayerRange{1, 5}));
  EXPECT_EQ(stage_layer_range(parallel, 7, 2), (LayerRange{5, 7}));
}

TEST(Zero1Partition, PadsToAMultipleOfDp) {
  Zero1Partition part = zero1_partition(10, 4);
  EXPECT_EQ(part.padded_numel, 12);
  EXPECT_EQ(part.shard_numel, 3);
  EXPECT_EQ(part.shard_begin(3), 9);
  EXPECT_EQ(part.shard_real_numel(2), 3);
  EXPECT_EQ(part.shard_real_numel(3), 1);
  EXPECT_EQ(zero1_partition(8, 4).padded_numel, 8);
}

TEST(FlatBuffer, PackAndUnpackRoundTrip) {
  std::vector<Tensor> tensors = {Tensor::from_floats({1, 2, 3, 4}, Shape{2, 2}),
                                 Tensor::from_floats({5}, Shape{1})};
  EXPECT_EQ(total_numel(tensors), 5);
  Tensor flat = Tensor::zeros(Shape{7}, DType::kF32);
  pack_tensors(tensors, flat, 1);
  EXPECT_EQ(flat.to_floats(), (std::vector<float>{0, 1, 2, 3, 4, 5, 0}));
  flat.f32()[5] = -5;
  unpack_tensors(flat, tensors, 1);
  EXPECT_EQ(tensors[1].to_floats(), (std::vector<float>{-5}));
}

TEST(SplitLastDim, KeepsTheIndexedColumnsOfEveryRow) {
  // (2, 2, 4): entry k is k; part 1 of 2 keeps columns 2 and 3 of each of the 4 rows.
  std::vector<float> values(16);
  for (int k = 0; k < 16; ++k) values[k] = k;
  Tensor part = split_last_dim(Tensor::from_floats(values, Shape{2, 2, 4}), 2, 1);
  EXPECT_EQ(part.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(part.to_floats(), (std::vector<float>{2, 3, 6, 7, 10, 11, 14, 15}));
}

TEST(Watchdog, StallMessageNamesOperationGroupRankAndDeadline) {
  OpDescription description{"all_reduce", "tp group (ranks 0,1)", "16 x f32 on cpu, sum", 30};
  const std::string message = detail::stall_message(description, 30.04);
  EXPECT_EQ(message.rfind("all_reduce on tp group (ranks 0,1) stalled for 30.0 s at rank 0 "
                          "(16 x f32 on cpu, sum; deadline parallel.timeout_s = 30 s); "
                          "aborting every rank",
                          0),
            0u)
      << message;
}

}  // namespace
}  // namespace steerlm
