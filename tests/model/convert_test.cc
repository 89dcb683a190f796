// Weight conversion: the rotary row permutation against float64 RoPE in both layouts, llama2.c
// import of real weights (checked against a float64 llama2.c-semantics forward), Hugging Face
// import of sharded/bf16 files, export, and exact round trips.
#include "model/convert.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "model/checkpoint.h"
#include "model/llama.h"
#include "runtime/error.h"
#include "runtime/file_util.h"
#include "tests/model/test_dirs.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;

const std::string kStoriesDir = std::string(STEERLM_SHARED_DATA) + "/models/stories260K";
const std::string kStoriesModel = kStoriesDir + "/stories260K.bin";
const std::string kStoriesTokenizer = kStoriesDir + "/tok512.bin";

#define SKIP_WITHOUT_STORIES()                                      \
  if (!fs::exists(kStoriesModel) || !fs::exists(kStoriesTokenizer)) \
  GTEST_SKIP() << "needs " << kStoriesModel << " and its tok512.bin (../shared/data)"

std::vector<float> random_floats(int64_t n, uint32_t seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(n);
  for (float& value : values) value = normal(generator);
  return values;
}

// Rotates pairs (first(i), second(i)) of each head by position * theta^(-2i/HS), in float64.
std::vector<double> rope(const std::vector<double>& x, int heads, int position, bool interleaved) {
  std::vector<double> out = x;
  const int head_size = static_cast<int>(x.size()) / heads;
  for (int h = 0; h < heads; ++h) {
    for (int i = 0; i < head_size / 2; ++i) {
      int a = h * head_size + (interleaved ? 2 * i : i);
      int b = h * head_size + (interleaved ? 2 * i + 1 : i + head_size / 2);
      double angle = position * std::pow(10000.0, -2.0 * i / head_size);
      out[a] = x[a] * std::cos(angle) - x[b] * std::sin(angle);
      out[b] = x[a] * std::sin(angle) + x[b] * std::cos(angle);
    }
  }
  return out;
}

std::vector<double> matvec(const Tensor& weight, const std::vector<float>& x) {
  std::vector<double> y(weight.dim(0), 0.0);
  for (int64_t r = 0; r < weight.dim(0); ++r) {
    for (int64_t c = 0; c < weight.dim(1); ++c)
      y[r] += double(weight.f32()[r * weight.dim(1) + c]) * x[c];
  }
  return y;
}

TEST(Convert, RotaryPermutationMapsInterleavedRopeOntoRotateHalf) {
  const int heads = 3, head_size = 8, dim = 5;
  Tensor interleaved = Tensor::from_floats(random_floats(heads * head_size * dim, 1), {24, 5});
  Tensor rotate_half = interleaved_to_rotate_half(interleaved, heads);
  std::vector<float> x = random_floats(dim, 2), y = random_floats(dim, 3);

  // RoPE of the permuted projection is the permuted RoPE of the original, at any position, so
  // attention scores q.k agree between the layouts.
  for (int position : {0, 1, 7, 300}) {
    std::vector<double> q_meta = rope(matvec(interleaved, x), heads, position, true);
    std::vector<double> q_hf = rope(matvec(rotate_half, x), heads, position, false);
    std::vector<double> k_meta = rope(matvec(interleaved, y), heads, 2, true);
    std::vector<double> k_hf = rope(matvec(rotate_half, y), heads, 2, false);
    for (int h = 0; h < heads; ++h) {
      double score_meta = 0, score_hf = 0;
      for (int i = 0; i < head_size / 2; ++i) {
        for (int j = 0; j < 2; ++j) {
          int meta = h * head_size + 2 * i + j, hf = h * head_size + j * head_size / 2 + i;
          EXPECT_NEAR(q_hf[hf], q_meta[meta], 1e-12) << "position " << position;
          score_meta += q_meta[meta] * k_meta[meta];
          score_hf += q_hf[hf] * k_hf[hf];
        }
      }
      EXPECT_NEAR(score_hf, score_meta, 1e-10);
    }
  }
  // The inverse undoes it exactly.
  EXPECT_EQ(rotate_half_to_interleaved(rotate_half, heads).to_floats(), interleaved.to_floats());
}

// ---- llama2.c -------------------------------------------------------------------------------

// The raw f32 blocks of a llama2.c file, in file order, for the float64 reference below.
struct Llama2cRaw {
  int dim, hidden, layers, heads, kv_heads, vocab, seq_len;
  std::vector<float> data;  // everything after the header
  const float* block(int64_t offset) const { return data.data() + offset; }
};

Llama2cRaw read_raw(const std::string& path) {
  Llama2cRaw raw{};
  std::string bytes = read_file(path);
  std::memcpy(&raw.dim, bytes.data(), 28);
  raw.data.resize((bytes.size() - 28) / 4);
  std::memcpy(raw.data.data(), bytes.data() + 28, raw.data.size() * 4);
  return raw;
}

// llama2.c run.c's forward in float64 (interleaved RoPE on the unpermuted weights): the logits
// after each token of `tokens`.
std::vector<std::vector<double>> llama2c_reference_logits(const Llama2cRaw& m,
                                                          const std::vector<int>& tokens) {
  const int64_t C = m.dim, F = m.hidden, L = m.layers, V = std::abs(m.vocab);
  const int64_t HS = C / m.heads, KV = m.kv_heads * HS;
  int64_t at = 0;
  auto take = [&](int64_t n) {
    int64_t start = at;
    at += n;
    return start;
  };
  const int64_t emb = take(V * C), rms_att = take(L * C), wq = take(L * C * C),
                wk = take(L * KV * C), wv = take(L * KV * C), wo = take(L * C * C),
                rms_ffn = take(L * C), w1 = take(L * F * C), w2 = take(L * C * F),
                w3 = take(L * F * C), rms_final = take(C);
  auto mat = [&](int64_t base, int64_t rows, int64_t cols, const std::vector<double>& x) {
    std::vector<double> y(rows, 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) y[r] += double(m.data[base + r * cols + c]) * x[c];
    return y;
  };
  auto rmsnorm = [&](const std::vector<double>& x, int64_t weight) {
    double ss = 0;
    for (double v : x) ss += v * v;
    double scale = 1.0 / std::sqrt(ss / x.size() + 1e-5);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * scale * m.data[weight + i];
    return y;
  };
  std::vector<std::vector<std::vector<double>>> keys(L), values(L);
  std::vector<std::vector<double>> all_logits;
  for (size_t pos = 0; pos < tokens.size(); ++pos) {
    std::vector<double> x(m.data.begin() + emb + tokens[pos] * C,
                          m.data.begin() + emb + (tokens[pos] + 1) * C);
    for (int64_t l = 0; l < L; ++l) {
      std::vector<double> h = rmsnorm(x, rms_att + l * C);
      std::vector<double> q = rope(mat(wq + l * C * C, C, C, h), m.heads, pos, true);
      keys[l].push_back(rope(mat(wk + l * KV * C, KV, C, h), m.kv_heads, pos, true));
      values[l].push_back(mat(wv + l * KV * C, KV, C, h));
      std::vector<double> attended(C, 0.0);
      for (int64_t head = 0; head < m.heads; ++head) {
        int64_t kv_head = head / (m.heads / m.kv_heads);
        std::vector<double> scores;
        double max_score = -1e300;
        for (size_t t = 0; t <= pos; ++t) {
          double s = 0;
          for (int64_t i = 0; i < HS; ++i) s += q[head * HS + i] * keys[l][t][kv_head * HS + i];
          scores.push_back(s / std::sqrt(double(HS)));
          max_score = std::max(max_score, scores.back());
        }
        double total = 0;
        for (double& s : scores) total += (s = std::exp(s - max_score));
        for (size_t t = 0; t <= pos; ++t)
          for (int64_t i = 0; i < HS; ++i)
            attended[head * HS + i] += scores[t] / total * values[l][t][kv_head * HS + i];
      }
      std::vector<double> out = mat(wo + l * C * C, C, C, attended);
      for (int64_t i = 0; i < C; ++i) x[i] += out[i];
      h = rmsnorm(x, rms_ffn + l * C);
      std::vector<double> gate = mat(w1 + l * F * C, F, C, h), up = mat(w3 + l * F * C, F, C, h);
      for (int64_t i = 0; i < F; ++i) gate[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
      std::vector<double> down = mat(w2 + l * C * F, C, F, gate);
      for (int64_t i = 0; i < C; ++i) x[i] += down[i];
    }
    all_logits.push_back(mat(emb, V, C, rmsnorm(x, rms_final)));  // tied classifier
  }
  return all_logits;
}

// Logits (T, V) of the model on one sequence, through the KV-cache path.
Tensor model_logits(LlamaModel& model, const std::vector<int32_t>& tokens) {
  Batch batch = make_padded_batch({tokens}, static_cast<int64_t>(tokens.size()));
  return model.logits(batch);
}

std::unique_ptr<LlamaModel> load_model(const fs::path& directory) {
  config::CheckpointManifest manifest = read_checkpoint_manifest(directory);
  auto model =
      std::make_unique<LlamaModel>(manifest.model(), HeadKind::kLanguageModel, 0, /*seed=*/1);
  load_checkpoint_parameters(directory, manifest, model->parameters());
  return model;
}

TEST(Convert, Llama2cStoriesMatchesAFloat64Llama2cForward) {
  SKIP_WITHOUT_STORIES();
  ConvertedModel imported = import_llama2c(kStoriesModel, kStoriesTokenizer);
  const config::ModelConfig& config = imported.manifest.model();
  EXPECT_EQ(config.dim(), 64);
  EXPECT_EQ(config.ffn_hidden(), 172);
  EXPECT_EQ(config.n_layers(), 5);
  EXPECT_EQ(config.n_heads(), 8);
  EXPECT_EQ(config.n_kv_heads(), 4);
  EXPECT_EQ(config.vocab_size(), 512);
  EXPECT_EQ(config.max_seq_len(), 512);
  EXPECT_TRUE(config.tie_embeddings());
  EXPECT_EQ(imported.weights.size(), 1u + 5 * 9 + 1);  // embedding, 9 per layer, final norm

  // Save as steerlm, load into the model, and compare logits with run.c's math in float64.
  fs::path directory = testing_dirs::fresh_directory("conv") / "stories";
  export_steerlm(imported, directory.string());
  auto model = load_model(directory);
  std::vector<int> tokens = {1, 403, 407, 261, 378, 284, 261, 271};  // BOS, then arbitrary ids
  Tensor logits = model_logits(*model, std::vector<int32_t>(tokens.begin(), tokens.end()));
  auto reference = llama2c_reference_logits(read_raw(kStoriesModel), tokens);
  double worst = 0;
  for (size_t t = 0; t < tokens.size(); ++t) {
    for (int v = 0; v < 512; ++v)
      worst = std::max(worst, std::abs(logits.f32()[t * 512 + v] - reference[t][v]));
  }
  std::cout << "stories260K: max |logit - float64 llama2.c reference| = " << worst << std::endl;
  EXPECT_LT(worst, 2e-4);
}

// Writes a small llama2.c file with an untied classifier (negative vocab_size).
void write_llama2c(const fs::path& path, int dim, int hidden, int layers, int heads, int kv_heads,
                   int vocab, int seq_len, std::vector<float>* data) {
  const int64_t HS = dim / heads, KV = kv_heads * HS;
  int64_t floats = int64_t{vocab} * dim * 2 + layers * dim * 2 + layers * dim * (2 * dim + 2 * KV) +
                   int64_t{layers} * dim * hidden * 3 + dim + int64_t{seq_len} * HS;
  *data = random_floats(floats, 7);
  int32_t header[7] = {dim, hidden, layers, heads, kv_heads, -vocab, seq_len};
  std::string bytes(reinterpret_cast<const char*>(header), 28);
  bytes += std::string(reinterpret_cast<const char*>(data->data()), data->size() * 4);
  write_file_atomic(path, bytes);
}

TEST(Convert, Llama2cUntiedClassifierAndWrongSizes) {
  fs::path scratch = testing_dirs::fresh_directory("conv");
  std::vector<float> data;
  write_llama2c(scratch / "m.bin", 8, 12, 2, 2, 1, 10, 16, &data);
  ConvertedModel model = import_llama2c((scratch / "m.bin").string(), "tok.bin");
  EXPECT_FALSE(model.manifest.model().tie_embeddings());
  ASSERT_EQ(model.weights.back().name, "lm_head.weight");
  // wcls is the last block of the file; the q rows are permuted, v rows are not.
  std::vector<float> wcls(data.end() - 80, data.end());
  EXPECT_EQ(model.weights.back().tensor.to_floats(), wcls);
  const int64_t q_offset = 10 * 8 + 2 * 8;  // after token_embedding and rms_att
  Tensor q = Tensor::from_floats(
      std::vector<float>(data.begin() + q_offset, data.begin() + q_offset + 64), {8, 8});
  EXPECT_EQ(model.weights[2].name, "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(model.weights[2].tensor.to_floats(), interleaved_to_rotate_half(q, 2).to_floats());

  // A truncated file is refused with the sizes that disagree.
  std::string bytes = read_file(scratch / "m.bin");
  write_file_atomic(scratch / "short.bin", bytes.substr(0, bytes.size() - 4));
  try {
    import_llama2c((scratch / "short.bin").string(), "tok.bin");
    ADD_FAILURE() << "no error";
  } catch (const UserError& error) {
    EXPECT_EQ(std::string(error.what()),
              (scratch / "short.bin").string() + ": " + std::to_string(bytes.size() - 4) +
                  " bytes, but its header (dim 8, 2 layers, vocab -10) needs " +
                  std::to_string(bytes.size()) + "; not a legacy llama2.c checkpoint");
  }
}

// ---- Hugging Face -----------------------------------------------------------------------------

TEST(Convert, HfShardedBf16ImportAndExportRoundTrip) {
  fs::path hf = testing_dirs::fresh_directory("conv") / "hf";
  fs::create_directories(hf);
  config::ModelConfig config;
  config.set_dim(8);
  config.set_n_layers(1);
  config.set_n_heads(2);
  config.set_n_kv_heads(2);
  config.set_ffn_hidden(12);
  config.set_vocab_size(10);
  config.set_tie_embeddings(true);
  // Two shards; the layer's weights stored as bf16 (exactly representable values).
  std::vector<NamedTensor> first, second;
  std::map<std::string, std::vector<float>> values;
  nlohmann::json weight_map;
  uint32_t seed = 10;
  for (const auto& [name, shape] : llama_parameter_shapes(config)) {
    std::vector<float> v = random_floats(shape.numel(), seed++);
    bool layer = name.find("layers") != std::string::npos;
    Tensor tensor = Tensor::from_floats(v, shape);
    if (layer) {
      Tensor narrow = Tensor::empty(shape, DType::kBF16);
      for (int64_t i = 0; i < shape.numel(); ++i) {
        uint32_t bits;
        std::memcpy(&bits, &v[i], 4);
        narrow.bf16()[i] = static_cast<uint16_t>(bits >> 16);
        bits &= 0xFFFF0000u;
        std::memcpy(&v[i], &bits, 4);
      }
      tensor = narrow;
    }
    values[name] = v;
    (layer ? second : first).push_back({name, tensor});
    weight_map[name] =
        layer ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
  }
  write_safetensors(hf / "model-00001-of-00002.safetensors", first);
  write_safetensors(hf / "model-00002-of-00002.safetensors", second);
  write_file_atomic(hf / "model.safetensors.index.json",
                    nlohmann::json{{"weight_map", weight_map}}.dump());
  write_file_atomic(hf / "config.json",
                    R"({"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 1,
                        "num_attention_heads": 2, "intermediate_size": 12, "vocab_size": 10,
                        "rms_norm_eps": 1e-06, "tie_word_embeddings": true,
                        "max_position_embeddings": 64, "rope_theta": 500000.0})");
  write_file_atomic(hf / "tokenizer.model", "spm bytes");

  ConvertedModel imported = import_hf(hf.string(), "");
  EXPECT_EQ(imported.manifest.model().n_kv_heads(), 2);
  EXPECT_EQ(imported.manifest.model().rope_theta(), 500000.0f);
  EXPECT_EQ(imported.manifest.model().norm_eps(), 1e-6f);
  EXPECT_EQ(imported.tokenizer_path, (hf / "tokenizer.model").string());
  for (const NamedTensor& weight : imported.weights)
    EXPECT_EQ(weight.tensor.to_floats(), values[weight.name]) << weight.name;

  // Export writes config.json with the same architecture and one model.safetensors.
  fs::path exported = hf.parent_path() / "exported";
  imported.bos_id = 1;
  imported.eos_id = 2;
  export_hf(imported, exported.string());
  auto json = nlohmann::json::parse(read_file(exported / "config.json"));
  EXPECT_EQ(json["hidden_size"], 8);
  EXPECT_EQ(json["num_key_value_heads"], 2);
  EXPECT_EQ(json["rms_norm_eps"], 1e-06);
  EXPECT_EQ(json["rope_theta"], 500000.0);
  EXPECT_EQ(json["tie_word_embeddings"], true);
  EXPECT_EQ(json["architectures"][0], "LlamaForCausalLM");
  EXPECT_EQ(read_file(exported / "tokenizer.model"), "spm bytes");
  ConvertedModel again = import_hf(exported.string(), "");
  ASSERT_EQ(again.weights.size(), imported.weights.size());
  for (size_t i = 0; i < again.weights.size(); ++i)
    EXPECT_EQ(again.weights[i].tensor.to_floats(), imported.weights[i].tensor.to_floats());

  // Unsupported features are refused instead of converted wrongly.
  write_file_atomic(hf / "config.json",
                    R"({"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 1,
                        "num_attention_heads": 2, "intermediate_size": 12, "vocab_size": 10,
                        "rope_scaling": {"type": "linear", "factor": 2.0}})");
  try {
    import_hf(hf.string(), "");
    ADD_FAILURE() << "no error";
  } catch (const UserError& error) {
    EXPECT_EQ(std::string(error.what()), (hf / "config.json").string() +
                                             ": rope_scaling is not supported (steerlm uses "
                                             "plain RoPE)");
  }
}

// The full chain of the binary, as a user runs it: llama2.c -> steerlm -> hf -> steerlm.
int run_steerlm(const std::string& arguments, const fs::path& log) {
  std::string command = std::string(STEERLM_BINARY_DIR) + "/bin/steerlm " + arguments + " > " +
                        log.string() + " 2>&1";
  return std::system(command.c_str());
}

TEST(Convert, Llama2cToSteerlmToHfToSteerlmGivesIdenticalLogits) {
  SKIP_WITHOUT_STORIES();
  fs::path scratch = testing_dirs::fresh_directory("conv");
  fs::path log = scratch / "log.txt";
  ASSERT_EQ(run_steerlm("convert --from llama2c --input " + kStoriesModel + " --tokenizer " +
                            kStoriesTokenizer + " --output " + (scratch / "a").string(),
                        log),
            0)
      << read_file(log);
  ASSERT_EQ(run_steerlm("convert --from steerlm --to hf --input " + (scratch / "a").string() +
                            " --output " + (scratch / "hf").string(),
                        log),
            0)
      << read_file(log);
  ASSERT_EQ(run_steerlm("convert --from hf --input " + (scratch / "hf").string() + " --output " +
                            (scratch / "b").string(),
                        log),
            0)
      << read_file(log);
  EXPECT_EQ(read_file(scratch / "hf" / "tokenizer.bin"), read_file(kStoriesTokenizer));
  EXPECT_EQ(read_file(scratch / "b" / "tokenizer.bin"), read_file(kStoriesTokenizer));

  auto before = load_model(scratch / "a");
  auto after = load_model(scratch / "b");
  check_checkpoint_matches(scratch / "b", read_checkpoint_manifest(scratch / "b"), before->config(),
                           kStoriesTokenizer);
  std::vector<int32_t> tokens = {1, 403, 407, 261, 378, 284, 261, 271, 9, 77, 300};
  Tensor logits_before = model_logits(*before, tokens);
  Tensor logits_after = model_logits(*after, tokens);
  ASSERT_EQ(logits_before.numel(), logits_after.numel());
  EXPECT_EQ(std::memcmp(logits_before.raw(), logits_after.raw(), logits_before.nbytes()), 0);
}

}  // namespace
}  // namespace steerlm
