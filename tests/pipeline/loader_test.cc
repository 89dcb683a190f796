// The loader: DP ranks see disjoint samples whose union is the epoch; resuming mid-epoch gives
// the same samples; batches are layout-free; the batch fields are exact; mixing weights.
#include "pipeline/loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "runtime/error.h"

namespace steerlm {
namespace {

// Sample i has length 3 + i % 7, tokens 100*i + t, trained from position 2 on, part i % 2.
std::vector<TokenizedSample> make_samples(int count, int attributes = 0) {
  std::vector<TokenizedSample> samples;
  for (int i = 0; i < count; ++i) {
    TokenizedSample sample;
    const int length = 3 + i % 7;
    for (int t = 0; t < length; ++t) {
      sample.tokens.push_back(100 * i + t);
      sample.trained.push_back(t >= 2 ? 1 : 0);
    }
    for (int a = 0; a < attributes; ++a) {
      sample.attribute_targets.push_back(a == 1 ? kMissingAttribute : static_cast<float>(i % 5));
    }
    sample.part = i % 2;
    sample.source = "s:" + std::to_string(i);
    samples.push_back(sample);
  }
  return samples;
}

std::vector<int64_t> ids_of(const std::vector<LoaderBatch>& batches) {
  std::vector<int64_t> ids;
  for (const LoaderBatch& batch : batches)
    ids.insert(ids.end(), batch.sample_ids.begin(), batch.sample_ids.end());
  return ids;
}

TEST(Loader, TwoDpRanksSeeDisjointSamplesWhoseUnionIsTheEpoch) {
  const auto samples = make_samples(24);
  const LoaderOptions options{8, 16, 7, false};
  DataLoader rank0(samples, {}, options), rank1(samples, {}, options);
  std::multiset<int64_t> seen0, seen1;
  for (int step = 0; step < 3; ++step) {  // 3 steps of 8 = one epoch of 24
    for (int64_t id : ids_of(rank0.next_step(0, 2, 2))) seen0.insert(id);
    for (int64_t id : ids_of(rank1.next_step(1, 2, 2))) seen1.insert(id);
  }
  EXPECT_EQ(seen0.size(), 12u);
  EXPECT_EQ(seen1.size(), 12u);
  std::multiset<int64_t> all = seen0;
  all.insert(seen1.begin(), seen1.end());
  for (int64_t id : seen0) EXPECT_EQ(seen1.count(id), 0u);
  const auto order = rank0.epoch_order(0);
  EXPECT_EQ(all, std::multiset<int64_t>(order.begin(), order.end()));
  EXPECT_EQ(all.size(), 24u);
  EXPECT_EQ(std::set<int64_t>(all.begin(), all.end()).size(), 24u);  // each sample exactly once
  EXPECT_EQ(rank0.state(), (LoaderState{0, 24}));
  // The next epoch is another permutation.
  EXPECT_NE(rank0.epoch_order(1), order);
}

TEST(Loader, ResumingMidEpochContinuesWithTheSameSamples) {
  const auto samples = make_samples(20);
  const LoaderOptions options{8, 16, 3, false};
  DataLoader uninterrupted(samples, {}, options);
  std::vector<std::vector<LoaderBatch>> expected;
  for (int step = 0; step < 6; ++step) expected.push_back(uninterrupted.next_step(1, 2, 2));

  DataLoader first(samples, {}, options);
  for (int step = 0; step < 2; ++step) first.next_step(1, 2, 2);
  const LoaderState saved = first.state();
  EXPECT_EQ(saved, (LoaderState{0, 16}));  // mid-epoch: 16 of 20
  DataLoader resumed(samples, {}, options);
  resumed.restore(saved);
  for (int step = 2; step < 6; ++step) {
    std::vector<LoaderBatch> got = resumed.next_step(1, 2, 2);
    ASSERT_EQ(got.size(), expected[step].size());
    for (size_t m = 0; m < got.size(); ++m) {
      EXPECT_EQ(got[m].sample_ids, expected[step][m].sample_ids) << "step " << step;
      EXPECT_EQ(got[m].tokens, expected[step][m].tokens) << "step " << step;
    }
  }
  EXPECT_EQ(resumed.state(), uninterrupted.state());
}

TEST(Loader, GlobalBatchIsIndependentOfTheLayout) {
  const auto samples = make_samples(32);
  const LoaderOptions options{16, 16, 11, false};
  DataLoader single(samples, {}, options);
  const std::vector<LoaderBatch> whole = single.next_step(0, 1, 1);
  ASSERT_EQ(whole.size(), 1u);
  std::multiset<int64_t> expected(whole[0].sample_ids.begin(), whole[0].sample_ids.end());
  for (auto [dp, micro] : std::vector<std::pair<int, int>>{{2, 1}, {2, 4}, {4, 2}, {1, 8}}) {
    std::multiset<int64_t> got;
    int64_t trained = 0;
    for (int rank = 0; rank < dp; ++rank) {
      DataLoader loader(samples, {}, options);
      for (const LoaderBatch& batch : loader.next_step(rank, dp, micro)) {
        got.insert(batch.sample_ids.begin(), batch.sample_ids.end());
        trained += batch.trained_tokens;
        EXPECT_EQ(batch.global_trained_tokens, whole[0].global_trained_tokens);
        EXPECT_EQ(batch.global_sequences, 16);
        EXPECT_EQ(static_cast<int64_t>(batch.sample_ids.size()), 16 / (dp * micro));
      }
    }
    EXPECT_EQ(got, expected) << dp << "x" << micro;
    EXPECT_EQ(trained, whole[0].global_trained_tokens);
  }
  DataLoader loader(samples, {}, options);
  EXPECT_THROW(loader.next_step(0, 3, 1), UserError);
}

TEST(Loader, PaddedBatchFieldsAreExact) {
  const auto samples = make_samples(3, 3);  // lengths 3, 4, 5
  const LoaderOptions options{3, 16, 1, false};
  const LoaderBatch batch = shard_global_batch(samples, {2, 0, 1}, 0, 1, 1, options)[0];
  EXPECT_EQ(batch.rows, 3);
  EXPECT_EQ(batch.seq_len, 8);  // longest 5, padded to a multiple of 8
  EXPECT_EQ(batch.sample_ids, (std::vector<int64_t>{0, 1, 2}));  // sorted by length
  EXPECT_EQ(batch.lengths, (std::vector<int32_t>{3, 4, 5}));
  EXPECT_EQ(batch.last_token, (std::vector<int32_t>{2, 8 + 3, 16 + 4}));
  // Row 2 is sample 2: tokens 200..204, targets the next token where it is trained (t+1 >= 2).
  const std::vector<int32_t> row_tokens(batch.tokens.begin() + 16, batch.tokens.end());
  EXPECT_EQ(row_tokens, (std::vector<int32_t>{200, 201, 202, 203, 204, 0, 0, 0}));
  const std::vector<int32_t> row_targets(batch.targets.begin() + 16, batch.targets.end());
  EXPECT_EQ(row_targets, (std::vector<int32_t>{-100, 202, 203, 204, -100, -100, -100, -100}));
  const std::vector<int32_t> row_ids(batch.sequence_ids.begin() + 16, batch.sequence_ids.end());
  EXPECT_EQ(row_ids, (std::vector<int32_t>{2, 2, 2, 2, 2, -1, -1, -1}));
  EXPECT_EQ(batch.trained_tokens, 1 + 2 + 3);
  EXPECT_EQ(batch.global_trained_tokens, 6);
  EXPECT_EQ(batch.attributes, 3);
  EXPECT_EQ(batch.attribute_targets, (std::vector<float>{0, -100, 0, 1, -100, 1, 2, -100, 2}));
}

TEST(Loader, PackingKeepsSequencesApart) {
  const auto samples = make_samples(4);  // lengths 3, 4, 5, 6
  const LoaderOptions options{4, 9, 1, true};
  const LoaderBatch batch = shard_global_batch(samples, {0, 1, 2, 3}, 0, 1, 1, options)[0];
  // First fit in length order: [3, 4] [5] [6] -> rows of 7, 5, 6 tokens; T = min(9, 8).
  EXPECT_EQ(batch.rows, 3);
  EXPECT_EQ(batch.seq_len, 8);
  const std::vector<int32_t> row0(batch.positions.begin(), batch.positions.begin() + 8);
  EXPECT_EQ(row0, (std::vector<int32_t>{0, 1, 2, 0, 1, 2, 3, 0}));
  const std::vector<int32_t> ids0(batch.sequence_ids.begin(), batch.sequence_ids.begin() + 8);
  EXPECT_EQ(ids0, (std::vector<int32_t>{0, 0, 0, 1, 1, 1, 1, -1}));
  // The last token of sample 0 has no target: its successor belongs to another sequence.
  EXPECT_EQ(batch.targets[2], -100);
  EXPECT_EQ(batch.targets[3 + 1], 102);  // sample 1 (tokens 100..103) predicts its token 2
  EXPECT_EQ(batch.last_token, (std::vector<int32_t>{2, 6, 8 + 4, 16 + 5}));
}

TEST(Loader, MixingWeightsSetPerFileCounts) {
  const auto samples = make_samples(20);  // 10 per part
  DataLoader loader(samples, {3.0f, 1.0f}, {4, 16, 5, false});
  EXPECT_EQ(loader.epoch_size(), 20);
  const auto order = loader.epoch_order(0);
  std::map<int, int> per_part;
  for (int64_t id : order) ++per_part[samples[id].part];
  EXPECT_EQ(per_part[0], 15);  // round(20 * 3/4), cycling through part 0's 10 samples
  EXPECT_EQ(per_part[1], 5);
  EXPECT_EQ(loader.epoch_order(0), order);  // deterministic
}

TEST(Loader, ValidationCoversEverySampleOnceAcrossRanks) {
  const auto samples = make_samples(11);
  const LoaderOptions options{4, 16, 1, false};
  std::multiset<int64_t> seen;
  for (int rank = 0; rank < 2; ++rank) {
    for (const LoaderBatch& batch : validation_batches(samples, options, rank, 2)) {
      seen.insert(batch.sample_ids.begin(), batch.sample_ids.end());
      EXPECT_EQ(batch.global_sequences, 11);
    }
  }
  EXPECT_EQ(seen.size(), 11u);
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 11u);
}

}  // namespace
}  // namespace steerlm
