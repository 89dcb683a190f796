// Config loading, --set overrides and validation errors (DESIGN §4): exact messages, FILE:LINE.
#include "runtime/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "runtime/error.h"

namespace steerlm {
namespace {

namespace fs = std::filesystem;

class ConfigTest : public testing::Test {
 protected:
  void SetUp() override {
    directory_ =
        fs::temp_directory_path() / ("steerlm_config_test_" + std::to_string(::getpid()) + "_" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(directory_);
  }
  void TearDown() override { fs::remove_all(directory_); }

  std::string write(const std::string& name, const std::string& text) {
    fs::path path = directory_ / name;
    std::ofstream(path) << text;
    return path.string();
  }

  // The UserError message `load` throws; fails the test when it throws nothing.
  template <typename Function>
  std::string error_of(Function&& load) {
    try {
      load();
    } catch (const UserError& error) {
      return error.what();
    }
    ADD_FAILURE() << "expected a UserError";
    return "";
  }

  fs::path directory_;
};

constexpr const char* kValidConfig = R"(# a tiny SFT run
output_dir: "out/sft"
model {
  config { dim: 64 n_layers: 2 n_heads: 4 n_kv_heads: 2 ffn_hidden: 160 vocab_size: 512 }
}
data {
  train: "a.jsonl"
  train: "b.jsonl"
  truncation: DROP
}
parallel { tp: 2 micro_batches: 2 }
train { steps: 7 global_batch_size: 8 }
)";

TEST_F(ConfigTest, ValidFileParses) {
  std::string path = write("valid.pbtxt", kValidConfig);
  FieldLocations where;
  config::StageConfig config = load_stage_config(path, {}, &where);
  EXPECT_EQ(config.output_dir(), "out/sft");
  EXPECT_EQ(config.model().config().dim(), 64);
  EXPECT_EQ(config.data().train_size(), 2);
  EXPECT_EQ(config.data().truncation(), config::Truncation::DROP);
  EXPECT_EQ(config.parallel().tp(), 2);
  EXPECT_EQ(config.train().steps(), 7);
  EXPECT_EQ(config.train().seq_len(), 256);  // the schema's default
  EXPECT_EQ(where.find("train.steps"), path + ":12");
  EXPECT_EQ(where.find("model.config.dim"), path + ":4");
  validate_stage_config(config, where, /*world_size=*/4);
}

TEST_F(ConfigTest, ScalarNestedRepeatedAndEnumOverrides) {
  std::string path = write("valid.pbtxt", kValidConfig);
  FieldLocations where;
  config::StageConfig config = load_stage_config(
      path,
      {"train.steps=3", "model.config.dim=128", "data.train=x.jsonl,y.jsonl,z.jsonl",
       "output_dir=runs/a b", "device=CUDA", "optim.lr=1e-3", "parallel.zero1=true"},
      &where);
  EXPECT_EQ(config.train().steps(), 3);
  EXPECT_EQ(config.model().config().dim(), 128);
  ASSERT_EQ(config.data().train_size(), 3);  // the whole list is replaced, not appended to
  EXPECT_EQ(config.data().train(0), "x.jsonl");
  EXPECT_EQ(config.data().train(2), "z.jsonl");
  EXPECT_EQ(config.output_dir(), "runs/a b");  // strings need no quotes
  EXPECT_EQ(config.device(), config::Device::CUDA);
  EXPECT_FLOAT_EQ(config.optim().lr(), 1e-3f);
  EXPECT_TRUE(config.parallel().zero1());
  EXPECT_EQ(where.find("train.steps"), "--set train.steps=3");
}

TEST_F(ConfigTest, UnknownFieldInFileNamesFileLineAndField) {
  std::string path = write("typo.pbtxt", "output_dir: \"x\"\ntrain {\n  stpes: 3\n}\n");
  FieldLocations where;
  std::string message = error_of([&] { load_stage_config(path, {}, &where); });
  EXPECT_EQ(message, path +
                         ":3: unknown field \"stpes\" in steerlm.config.TrainConfig; valid fields: "
                         "steps, global_batch_size, seq_len, seed, val_every, val_batches, "
                         "log_every, max_consecutive_skips, peak_flops, inject_nan_at_steps");
}

TEST_F(ConfigTest, WrongTypeInFileNamesFileLineAndField) {
  std::string path = write("type.pbtxt", "train {\n  steps: 3\n  seq_len: \"long\"\n}\n");
  FieldLocations where;
  std::string message = error_of([&] { load_stage_config(path, {}, &where); });
  EXPECT_EQ(message, path + ":3: field \"seq_len\": Expected integer, got: \"long\"");
}

TEST_F(ConfigTest, UnknownFieldInOverride) {
  FieldLocations where;
  std::string message = error_of([&] { load_stage_config("", {"train.stpes=3"}, &where); });
  EXPECT_EQ(message,
            "--set train.stpes=3: unknown field \"stpes\" in train; valid fields: steps, "
            "global_batch_size, seq_len, seed, val_every, val_batches, log_every, "
            "max_consecutive_skips, peak_flops, inject_nan_at_steps");
}

TEST_F(ConfigTest, WrongTypeInOverride) {
  FieldLocations where;
  EXPECT_EQ(error_of([&] { load_stage_config("", {"train.steps=ten"}, &where); }),
            "--set train.steps=ten: field \"train.steps\" expected an integer, got \"ten\"");
  EXPECT_EQ(error_of([&] { load_stage_config("", {"data.truncation=SOMETIMES"}, &where); }),
            "--set data.truncation=SOMETIMES: field \"data.truncation\" unknown value "
            "\"SOMETIMES\"; valid values: TRUNCATE_LEFT, DROP, FAIL");
  EXPECT_EQ(error_of([&] { load_stage_config("", {"train=3"}, &where); }),
            "--set train=3: field \"train\" is a message; set one of its fields: steps, "
            "global_batch_size, seq_len, seed, val_every, val_batches, log_every, "
            "max_consecutive_skips, peak_flops, inject_nan_at_steps");
}

TEST_F(ConfigTest, LayoutErrorsPointAtTheField) {
  std::string path = write("valid.pbtxt", kValidConfig);
  FieldLocations where;
  config::StageConfig config = load_stage_config(path, {"parallel.tp=3"}, &where);
  EXPECT_EQ(error_of([&] { validate_stage_config(config, where, 6); }),
            "--set parallel.tp=3: parallel.tp: TP = 3 does not divide n_heads 4; use one of 1, "
            "2, 4");
  config = load_stage_config(path, {}, &where);
  EXPECT_EQ(error_of([&] { validate_stage_config(config, where, 3); }),
            path +
                ":11: parallel.tp: TP x PP = 2 does not divide the world size 3; launch a "
                "multiple of TP x PP ranks");
  EXPECT_EQ(error_of([&] { validate_stage_config(config, where, 12); }),
            path +
                ":12: train.global_batch_size: 8 sequences do not divide into DP = 6 x "
                "micro_batches = 2; make it a multiple of 12");
}

TEST_F(ConfigTest, ModelConfigFileUnderInlineFields) {
  std::string model = write("model.pbtxt",
                            "dim: 64\nn_layers: 2\nn_heads: 4\nffn_hidden: 160\n"
                            "vocab_size: 512\n");
  std::string stage = write(
      "stage.pbtxt", "model {\n  config_file: \"" + model + "\"\n  config { n_layers: 3 }\n}\n");
  FieldLocations where;
  config::StageConfig config = load_stage_config(stage, {}, &where);
  EXPECT_EQ(config.model().config().dim(), 64);      // from the model file
  EXPECT_EQ(config.model().config().n_layers(), 3);  // the inline field wins
  EXPECT_EQ(where.find("model.config.dim"), model + ":1");
  EXPECT_EQ(where.find("model.config.n_layers"), stage + ":3");
  // Every shipped model config parses and validates.
  for (const char* name : {"tiny", "llama2_7b", "llama2_13b", "llama2_70b"}) {
    config::StageConfig shipped = load_stage_config(
        "", {std::string("model.config_file=configs/models/") + name + ".pbtxt"}, &where);
    validate_stage_config(shipped, where, 1);
    EXPECT_GT(shipped.model().config().dim(), 0) << name;
  }
}

}  // namespace
}  // namespace steerlm
