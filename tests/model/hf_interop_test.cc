// The C++ half of tests/model/hf_interop.py: steerlm's logits on checkpoints exported to or
// imported from Hugging Face transformers, against the logits transformers computed. Runs only
// under that script (ctest model.hf_interop), which names the cases in STEERLM_HF_INTEROP_CASES.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "model/checkpoint.h"
#include "model/llama.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

TEST(HfInterop, LogitsMatchTransformers) {
  const char* cases_path = std::getenv("STEERLM_HF_INTEROP_CASES");
  if (cases_path == nullptr)
    GTEST_SKIP() << "run through tests/model/hf_interop.py (ctest -R hf_interop)";
  nlohmann::json cases = nlohmann::json::parse(read_file(cases_path));
  ASSERT_EQ(cases.size(), 2u);
  for (const auto& test_case : cases) {
    // The checkpoint, loaded as any steerlm command loads it.
    std::string directory = test_case["steerlm_dir"];
    config::CheckpointManifest manifest = read_checkpoint_manifest(directory);
    LlamaModel model(manifest.model(), HeadKind::kLanguageModel, 0, /*seed=*/3);
    load_checkpoint_parameters(directory, manifest, model.parameters());

    // Every row's logits at every position, within 1e-4 of transformers'.
    auto rows = test_case["tokens"].get<std::vector<std::vector<int32_t>>>();
    Tensor logits = model.logits(make_padded_batch(rows, rows[0].size()));  // (B, T, V)
    const int64_t T = rows[0].size(), V = manifest.model().vocab_size();
    double worst = 0;
    for (size_t b = 0; b < rows.size(); ++b) {
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t v = 0; v < V; ++v) {
          double expected = test_case["logits"][b][t][v];
          worst = std::max(worst, std::abs(logits.f32()[(b * T + t) * V + v] - expected));
        }
      }
    }
    std::cout << test_case["name"].get<std::string>()
              << ": max |steerlm - transformers| = " << worst << std::endl;
    EXPECT_LT(worst, 1e-4) << test_case["name"];
  }
}

}  // namespace
}  // namespace steerlm
