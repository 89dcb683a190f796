#include "pipeline/loader.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "pipeline/data_rng.h"
#include "runtime/error.h"

namespace steerlm {
namespace {

// Positions padded to a multiple of this, so shapes repeat across steps.
constexpr int64_t kPadMultiple = 8;

int64_t trained_targets(const TokenizedSample& sample) {
  // Token t is predicted at position t-1, so a trained token at position 0 carries no loss.
  return std::count(sample.trained.begin() + std::min<size_t>(1, sample.trained.size()),
                    sample.trained.end(), uint8_t{1});
}

// Row of each sequence: one per row when padding, first fit (in order) when packing.
std::vector<int64_t> assign_rows(const std::vector<TokenizedSample>& samples,
                                 const std::vector<int64_t>& ids, const LoaderOptions& options,
                                 std::vector<int64_t>* row_fill) {
  std::vector<int64_t> rows;
  for (int64_t id : ids) {
    const int64_t length = samples[id].tokens.size();
    CHECK_LE(length, options.seq_len) << "samples must be fitted to seq_len first";
    int64_t row = static_cast<int64_t>(row_fill->size());
    if (options.packing) {
      for (size_t r = 0; r < row_fill->size(); ++r) {
        if ((*row_fill)[r] + length <= options.seq_len) {
          row = static_cast<int64_t>(r);
          break;
        }
      }
    }
    if (row == static_cast<int64_t>(row_fill->size())) row_fill->push_back(0);
    rows.push_back(row);
    (*row_fill)[row] += length;
  }
  return rows;
}

// Lays the sequences `ids` out as one micro-batch.
LoaderBatch build_batch(const std::vector<TokenizedSample>& samples,
                        const std::vector<int64_t>& ids, const LoaderOptions& options,
                        int64_t attributes) {
  LoaderBatch batch;
  std::vector<int64_t> row_fill;
  const std::vector<int64_t> rows = assign_rows(samples, ids, options, &row_fill);
  const int64_t longest =
      row_fill.empty() ? 0 : *std::max_element(row_fill.begin(), row_fill.end());
  batch.rows = row_fill.size();
  batch.seq_len = std::min<int64_t>(options.seq_len,
                                    (longest + kPadMultiple - 1) / kPadMultiple * kPadMultiple);
  batch.attributes = attributes;
  const int64_t cells = batch.rows * batch.seq_len;
  batch.tokens.assign(cells, 0);
  batch.targets.assign(cells, kIgnoreTarget);
  batch.positions.assign(cells, 0);
  batch.sequence_ids.assign(cells, -1);
  batch.attribute_targets.assign(ids.size() * attributes, kMissingAttribute);

  std::vector<int64_t> cursor(batch.rows, 0);
  for (size_t s = 0; s < ids.size(); ++s) {
    const TokenizedSample& sample = samples[ids[s]];
    const int64_t length = sample.tokens.size();
    const int64_t base = rows[s] * batch.seq_len + cursor[rows[s]];
    for (int64_t t = 0; t < length; ++t) {
      batch.tokens[base + t] = sample.tokens[t];
      batch.positions[base + t] = static_cast<int32_t>(t);
      batch.sequence_ids[base + t] = static_cast<int32_t>(s);
      if (t + 1 < length && sample.trained[t + 1]) {
        batch.targets[base + t] = sample.tokens[t + 1];
        ++batch.trained_tokens;
      }
    }
    cursor[rows[s]] += length;
    batch.lengths.push_back(static_cast<int32_t>(length));
    batch.last_token.push_back(static_cast<int32_t>(base + length - 1));
    batch.sample_ids.push_back(ids[s]);
    for (int64_t a = 0; a < attributes && a < static_cast<int64_t>(sample.attribute_targets.size());
         ++a) {
      batch.attribute_targets[s * attributes + a] = sample.attribute_targets[a];
    }
  }
  return batch;
}

int64_t attribute_count(const std::vector<TokenizedSample>& samples) {
  return samples.empty() ? 0 : static_cast<int64_t>(samples.front().attribute_targets.size());
}

}  // namespace

DataLoader::DataLoader(const std::vector<TokenizedSample>& samples, std::vector<float> part_weights,
                       LoaderOptions options)
    : samples_(samples), part_weights_(std::move(part_weights)), options_(options) {
  if (samples_.empty()) throw UserError("data: no training samples are left to load");
  epoch_size_ = static_cast<int64_t>(epoch_order(0).size());
  if (epoch_size_ == 0) throw UserError("data.weights: every weight is zero; nothing to train");
}

std::vector<int64_t> DataLoader::epoch_order(uint64_t epoch) const {
  const uint64_t epoch_seed = mix_seed(options_.seed, epoch);
  std::vector<int64_t> order;
  if (part_weights_.empty()) {
    order.resize(samples_.size());
    std::iota(order.begin(), order.end(), 0);
  } else {
    // Mixing: file i gets round(N * w_i / sum w) samples per epoch, cycling through its own
    // seeded shuffle when that is more than it has.
    std::vector<std::vector<int64_t>> parts(part_weights_.size());
    for (size_t i = 0; i < samples_.size(); ++i) parts.at(samples_[i].part).push_back(i);
    const double total = std::accumulate(part_weights_.begin(), part_weights_.end(), 0.0);
    for (size_t p = 0; p < parts.size(); ++p) {
      if (parts[p].empty() || part_weights_[p] <= 0) continue;
      shuffle_in_place(&parts[p], mix_seed(epoch_seed, p + 1));
      const int64_t count = std::llround(samples_.size() * part_weights_[p] / total);
      for (int64_t k = 0; k < count; ++k) order.push_back(parts[p][k % parts[p].size()]);
    }
  }
  shuffle_in_place(&order, epoch_seed);
  return order;
}

std::vector<int64_t> DataLoader::take(LoaderState* state) const {
  std::vector<int64_t> batch;
  std::vector<int64_t> order = epoch_order(state->epoch);
  while (static_cast<int64_t>(batch.size()) < options_.global_batch_size) {
    if (state->position >= order.size()) {
      ++state->epoch;
      state->position = 0;
      order = epoch_order(state->epoch);
    }
    batch.push_back(order[state->position++]);
  }
  return batch;
}

std::vector<int64_t> DataLoader::peek_global_batch() const {
  LoaderState copy = state_;
  return take(&copy);
}

std::vector<LoaderBatch> DataLoader::next_step(int dp_rank, int dp_size, int micro_batches) {
  std::vector<int64_t> global_batch = take(&state_);
  return shard_global_batch(samples_, std::move(global_batch), dp_rank, dp_size, micro_batches,
                            options_);
}

std::vector<LoaderBatch> shard_global_batch(const std::vector<TokenizedSample>& samples,
                                            std::vector<int64_t> global_batch, int dp_rank,
                                            int dp_size, int micro_batches,
                                            const LoaderOptions& options) {
  const int64_t chunks = static_cast<int64_t>(dp_size) * micro_batches;
  const int64_t size = static_cast<int64_t>(global_batch.size());
  if (chunks <= 0 || size % chunks != 0) {
    throw UserError("train.global_batch_size " + std::to_string(size) +
                    " does not divide into DP " + std::to_string(dp_size) + " x micro_batches " +
                    std::to_string(micro_batches) + "; make it a multiple of " +
                    std::to_string(chunks));
  }
  CHECK(dp_rank >= 0 && dp_rank < dp_size) << "dp_rank " << dp_rank << " of " << dp_size;

  // Sort by length (stable on the shuffled order) so each micro-batch pads little; the loss is
  // a sum over the global batch, so the order within it changes nothing.
  std::stable_sort(global_batch.begin(), global_batch.end(), [&](int64_t a, int64_t b) {
    return samples[a].tokens.size() < samples[b].tokens.size();
  });
  int64_t global_trained = 0;
  for (int64_t id : global_batch) global_trained += trained_targets(samples[id]);

  // Rank r's micro-batch m is chunk m*DP + r.
  const int64_t per_chunk = size / chunks;
  const int64_t attributes = attribute_count(samples);
  std::vector<LoaderBatch> batches;
  for (int m = 0; m < micro_batches; ++m) {
    const int64_t chunk = static_cast<int64_t>(m) * dp_size + dp_rank;
    std::vector<int64_t> ids(global_batch.begin() + chunk * per_chunk,
                             global_batch.begin() + (chunk + 1) * per_chunk);
    LoaderBatch batch = build_batch(samples, ids, options, attributes);
    batch.global_trained_tokens = global_trained;
    batch.global_sequences = size;
    batches.push_back(std::move(batch));
  }
  return batches;
}

std::vector<LoaderBatch> validation_batches(const std::vector<TokenizedSample>& samples,
                                            const LoaderOptions& options, int dp_rank,
                                            int dp_size) {
  CHECK(dp_rank >= 0 && dp_rank < dp_size);
  int64_t total_trained = 0;
  for (const TokenizedSample& sample : samples) total_trained += trained_targets(sample);
  const int64_t count = static_cast<int64_t>(samples.size());
  const int64_t attributes = attribute_count(samples);

  std::vector<LoaderBatch> batches;
  for (int64_t start = 0; start < count; start += options.global_batch_size) {
    // This rank's even share of the global batch [start, end).
    const int64_t end = std::min(count, start + options.global_batch_size);
    const int64_t size = end - start;
    const int64_t begin = start + size * dp_rank / dp_size;
    const int64_t stop = start + size * (dp_rank + 1) / dp_size;
    std::vector<int64_t> ids(stop - begin);
    std::iota(ids.begin(), ids.end(), begin);
    LoaderBatch batch = build_batch(samples, ids, options, attributes);
    batch.global_trained_tokens = total_trained;
    batch.global_sequences = count;
    batches.push_back(std::move(batch));
  }
  return batches;
}

}  // namespace steerlm
