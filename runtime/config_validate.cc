// validate_stage_config: every check that can run before any work starts (DESIGN §4).
#include <sstream>

#include "runtime/config.h"
#include "runtime/error.h"

namespace steerlm {
namespace {

class Validator {
 public:
  explicit Validator(const FieldLocations& locations) : locations_(locations) {}

  // Throws the first failed requirement, naming `path` and where it was set.
  void require(bool ok, const std::string& path, const std::string& message) const {
    if (!ok) throw UserError(locations_.prefix(path) + path + ": " + message);
  }

 private:
  const FieldLocations& locations_;
};

std::string divisors_of(int value) {
  std::ostringstream out;
  for (int d = 1; d <= value; ++d) {
    if (value % d == 0) out << (out.tellp() > 0 ? ", " : "") << d;
  }
  return out.str();
}

void validate_model(const config::StageConfig& config, const Validator& check) {
  const config::ModelConfig& model = config.model().config();
  check.require(model.dim() > 0, "model.config.dim",
                "must be positive (got " + std::to_string(model.dim()) +
                    "); set model.config_file or model.config.dim");
  check.require(model.n_layers() > 0, "model.config.n_layers", "must be positive");
  check.require(model.n_heads() > 0, "model.config.n_heads", "must be positive");
  check.require(
      model.dim() % model.n_heads() == 0, "model.config.n_heads",
      std::to_string(model.n_heads()) + " does not divide dim " + std::to_string(model.dim()));
  int kv_heads = model.n_kv_heads() == 0 ? model.n_heads() : model.n_kv_heads();
  check.require(
      kv_heads > 0 && model.n_heads() % kv_heads == 0, "model.config.n_kv_heads",
      std::to_string(kv_heads) + " does not divide n_heads " + std::to_string(model.n_heads()));
  check.require(model.ffn_hidden() > 0, "model.config.ffn_hidden", "must be positive");
  // 0 means "the tokenizer's vocabulary", resolved when the tokenizer is loaded.
  check.require(model.vocab_size() >= 0, "model.config.vocab_size", "must not be negative");
}

void validate_layout(const config::StageConfig& config, const Validator& check, int world_size) {
  const config::ParallelConfig& parallel = config.parallel();
  const int tp = parallel.tp(), pp = parallel.pp(), micro = parallel.micro_batches();
  check.require(tp >= 1, "parallel.tp", "must be at least 1");
  check.require(pp >= 1, "parallel.pp", "must be at least 1");
  check.require(micro >= 1, "parallel.micro_batches", "must be at least 1");
  check.require(world_size % (tp * pp) == 0, "parallel.tp",
                "TP x PP = " + std::to_string(tp * pp) + " does not divide the world size " +
                    std::to_string(world_size) + "; launch a multiple of TP x PP ranks");
  check.require(parallel.timeout_s() > 0, "parallel.timeout_s", "must be positive");

  const bool has_architecture = config.model().config().n_heads() > 0;
  if (has_architecture) {
    const config::ModelConfig& model = config.model().config();
    check.require(model.n_heads() % tp == 0, "parallel.tp",
                  "TP = " + std::to_string(tp) + " does not divide n_heads " +
                      std::to_string(model.n_heads()) + "; use one of " +
                      divisors_of(model.n_heads()));
    check.require(pp <= model.n_layers(), "parallel.pp",
                  "PP = " + std::to_string(pp) + " is more pipeline stages than the " +
                      std::to_string(model.n_layers()) + " layers");
  }
  if (parallel.pp_layers_size() > 0) {
    int total = 0;
    for (int layers : parallel.pp_layers()) {
      check.require(layers >= 1, "parallel.pp_layers", "every stage needs at least one layer");
      total += layers;
    }
    check.require(parallel.pp_layers_size() == pp, "parallel.pp_layers",
                  "has " + std::to_string(parallel.pp_layers_size()) +
                      " entries for PP = " + std::to_string(pp));
    if (has_architecture) {
      check.require(total == config.model().config().n_layers(), "parallel.pp_layers",
                    "sums to " + std::to_string(total) + " layers, the model has " +
                        std::to_string(config.model().config().n_layers()));
    }
  }

  const int dp = world_size / (tp * pp);
  const int global_batch = config.train().global_batch_size();
  check.require(global_batch > 0, "train.global_batch_size", "must be positive");
  check.require(global_batch % (dp * micro) == 0, "train.global_batch_size",
                std::to_string(global_batch) + " sequences do not divide into DP = " +
                    std::to_string(dp) + " x micro_batches = " + std::to_string(micro) +
                    "; make it a multiple of " + std::to_string(dp * micro));
}

void validate_training(const config::StageConfig& config, const Validator& check) {
  check.require(config.train().steps() >= 0, "train.steps", "must not be negative");
  check.require(config.train().seq_len() > 0, "train.seq_len", "must be positive");
  check.require(config.optim().lr() >= 0, "optim.lr", "must not be negative");
  check.require(config.optim().beta1() >= 0 && config.optim().beta1() < 1, "optim.beta1",
                "must be in [0, 1)");
  check.require(config.optim().beta2() >= 0 && config.optim().beta2() < 1, "optim.beta2",
                "must be in [0, 1)");
  check.require(config.optim().grad_clip() >= 0, "optim.grad_clip", "must not be negative");
  check.require(config.checkpoint().keep_last() >= 1, "checkpoint.keep_last", "must be at least 1");
  const config::DataConfig& data = config.data();
  check.require(data.weights_size() == 0 || data.weights_size() == data.train_size(),
                "data.weights",
                "has " + std::to_string(data.weights_size()) + " weights for " +
                    std::to_string(data.train_size()) + " data.train files");
  for (float weight : data.weights()) {
    check.require(weight >= 0, "data.weights", "weights must not be negative");
  }
}

}  // namespace

void validate_stage_config(const config::StageConfig& config, const FieldLocations& locations,
                           int world_size) {
  Validator check(locations);
  if (config.model().init_from().empty()) validate_model(config, check);
  validate_layout(config, check, world_size);
  validate_training(config, check);
}

}  // namespace steerlm
