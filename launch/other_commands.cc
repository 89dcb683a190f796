// Commands whose implementations land with later issues. Each validates its config first and
// then says it is not built yet; the issue that builds it moves it into its own file.
#include "launch/commands.h"

namespace steerlm {

void register_annotate_command(CLI::App& app) {
  CLI::App* annotate =
      add_unbuilt_command(app, "annotate", "score a dataset with an attribute model", 6);
  annotate->add_option("--model", "attribute model checkpoint directory")->required();
  annotate->add_option("--input", "input JSONL")->required();
  annotate->add_option("--output", "output JSONL (NeMo-Aligner SteerLM format)")->required();
}

void register_generate_command(CLI::App& app) {
  CLI::App* generate =
      add_unbuilt_command(app, "generate", "generate text steered by attribute values", 3);
  generate->add_option("--model", "checkpoint directory")->required();
  generate->add_option("--prompt", "a single user prompt");
  generate->add_option("--input", "JSONL of prompts or conversations");
  generate->add_option("--output", "JSONL to write generations to");
  generate->add_option("--attributes", "requested attribute values, name=v,...");
  generate->add_option("--temperature", "sampling temperature; 0 is greedy");
  generate->add_option("--top-k", "sample from the k most likely tokens");
  generate->add_option("--top-p", "nucleus sampling threshold");
  generate->add_option("--max-new-tokens", "tokens to generate at most");
  generate->add_option("--seed", "sampling seed");
}

void register_bootstrap_command(CLI::App& app) {
  add_unbuilt_command(app, "bootstrap", "build a second-round ACSFT dataset (paper 3.4)", 7);
}

void register_data_commands(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "inspect and synthesise datasets");
  data->require_subcommand(1);
  CLI::App* inspect =
      add_unbuilt_command(*data, "inspect", "print rendered samples with trained spans", 4);
  inspect->add_option("--input", "input file")->required();
  inspect->add_option("--format", "input format (default: detected)");
  inspect->add_option("--limit", "samples to print");
  inspect->add_option("--tokenizer", "tokenizer file, to count tokens");
  inspect->add_flag("--json")->description("one JSON object per sample");
  CLI::App* synth = add_unbuilt_command(*data, "synth", "write the embedded default dataset", 4);
  synth->add_option("--output", "output JSONL")->required();
  synth->add_option("--n", "number of records");
  synth->add_option("--seed", "random seed");

  CLI::App* tokenizer = app.add_subcommand("tokenizer", "tokenizer tools");
  tokenizer->require_subcommand(1);
  CLI::App* train = add_unbuilt_command(*tokenizer, "train", "train a SentencePiece tokenizer", 4);
  train->add_option("--input", "training text files")->required()->expected(1, -1);
  train->add_option("--vocab-size", "vocabulary size")->required();
  train->add_option("--output", "output .model path")->required();
}

void register_convert_command(CLI::App& app) {
  CLI::App* convert = add_unbuilt_command(app, "convert", "convert checkpoints", 3);
  convert->add_option("--from", "llama2c, hf or steerlm")->required();
  convert->add_option("--to", "steerlm (default) or hf");
  convert->add_option("--input", "input checkpoint path")->required();
  convert->add_option("--tokenizer", "tokenizer file");
  convert->add_option("--output", "output directory")->required();
}

void register_pipeline_commands(CLI::App& app) {
  CLI::App* pipeline = app.add_subcommand("pipeline", "run, submit or report on a pipeline");
  pipeline->require_subcommand(1);
  for (const char* verb : {"run", "submit", "status"}) {
    CLI::App* command = add_unbuilt_command(*pipeline, verb, std::string(verb) + " a pipeline", 8);
    command->add_option("file", "pipeline config (protobuf text)")->required();
  }
}

}  // namespace steerlm
