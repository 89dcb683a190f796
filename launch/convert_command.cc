// `steerlm convert --from llama2c|hf|steerlm [--to steerlm|hf] --input PATH [--tokenizer PATH]
//  --output DIR`: an import into the in-memory form of model/convert.h, then an export.
#include <glog/logging.h>

#include <memory>

#include "launch/commands.h"
#include "model/convert.h"
#include "pipeline/tokenizer.h"
#include "runtime/error.h"

namespace steerlm {
namespace {

struct ConvertOptions {
  std::string from;
  std::string to = "steerlm";
  std::string input;
  std::string tokenizer;
  std::string output;
};

ConvertedModel import_model(const ConvertOptions& options) {
  if (options.from == "llama2c") {
    if (options.tokenizer.empty())
      throw UsageError("convert --from llama2c needs --tokenizer (the llama2.c tokenizer .bin)");
    return import_llama2c(options.input, options.tokenizer);
  }
  if (options.from == "hf") return import_hf(options.input, options.tokenizer);
  if (!options.tokenizer.empty())
    throw UsageError(
        "convert --from steerlm takes the checkpoint's own tokenizer; drop --tokenizer");
  return import_steerlm(options.input);
}

// The tokenizer must cover no more ids than the model has rows; its BOS/EOS go into exports.
void check_tokenizer(ConvertedModel& model) {
  std::unique_ptr<Tokenizer> tokenizer = Tokenizer::load(model.tokenizer_path);
  const int model_vocab = model.manifest.model().vocab_size();
  if (tokenizer->vocab_size() > model_vocab) {
    throw UserError("tokenizer " + model.tokenizer_path + " has " +
                    std::to_string(tokenizer->vocab_size()) +
                    " pieces but the model's vocabulary has " + std::to_string(model_vocab) +
                    " rows; pass the tokenizer the model was trained with");
  }
  if (tokenizer->vocab_size() < model_vocab) {
    LOG(WARNING) << "tokenizer " << model.tokenizer_path << " has " << tokenizer->vocab_size()
                 << " pieces; the model's " << model_vocab << " vocabulary rows include padding";
  }
  model.bos_id = tokenizer->bos_id();
  model.eos_id = tokenizer->eos_id();
}

void run_convert(const ConvertOptions& options) {
  ConvertedModel model = import_model(options);
  check_tokenizer(model);
  const config::ModelConfig& config = model.manifest.model();
  LOG(INFO) << "converting " << options.from << " " << options.input << " -> " << options.to << " "
            << options.output << ": dim " << config.dim() << ", " << config.n_layers()
            << " layers, " << config.n_heads() << " heads (" << config.n_kv_heads()
            << " kv), vocab " << config.vocab_size() << ", " << model.weights.size() << " tensors";
  if (options.to == "hf") {
    export_hf(model, options.output);
  } else {
    export_steerlm(model, options.output);
  }
  LOG(INFO) << "wrote " << options.output;
}

}  // namespace

void register_convert_command(CLI::App& app) {
  auto options = std::make_shared<ConvertOptions>();
  CLI::App* convert = app.add_subcommand(
      "convert", "convert checkpoints between llama2.c, Hugging Face Llama and steerlm");
  convert->add_option("--from", options->from, "source format: llama2c, hf or steerlm")
      ->required()
      ->check(CLI::IsMember({"llama2c", "hf", "steerlm"}));
  convert->add_option("--to", options->to, "target format: steerlm (default) or hf")
      ->check(CLI::IsMember({"steerlm", "hf"}));
  convert
      ->add_option("--input", options->input,
                   "llama2.c .bin file, Hugging Face directory or steerlm checkpoint directory")
      ->required();
  convert->add_option("--tokenizer", options->tokenizer,
                      "tokenizer file (.model or llama2.c .bin); required for llama2c, optional "
                      "for hf (default: the directory's tokenizer.model or tokenizer.bin)");
  convert->add_option("--output", options->output, "output directory")->required();
  convert->callback([options] { run_convert(*options); });
}

}  // namespace steerlm
