// steerlm data inspect, steerlm data synth, steerlm tokenizer train (DESIGN §4).
#include <iostream>
#include <memory>

#include "launch/commands.h"
#include "pipeline/chat_template.h"
#include "pipeline/readers.h"
#include "pipeline/synth.h"
#include "pipeline/tokenizer.h"
#include "pipeline/tokenizer_sentencepiece.h"
#include "runtime/error.h"
#include "runtime/file_util.h"

namespace steerlm {
namespace {

struct InspectOptions {
  std::string input;
  std::string format = "auto";
  int64_t limit = -1;
  std::string tokenizer;
  bool json = false;
};

// What inspect shows for one sample.
struct InspectSample {
  std::string source;
  RenderedText rendered;
};

// Regression-RM records are attribute-model inputs; everything else renders as ACSFT, and a
// preference pair as its chosen and then its rejected conversation.
std::vector<InspectSample> inspect_samples(const InspectOptions& options, DataFormatKind format,
                                           BadRecordLog* bad_records) {
  std::vector<InspectSample> samples;
  if (format == config::DataFormat::PREFERENCE_PAIRS) {
    TemplateOptions template_options =
        make_template_options(config::ChatTemplate(), kHelpSteerAttributes);
    for (const PreferencePair& pair : read_preference_pairs(options.input, bad_records)) {
      for (bool chosen : {true, false}) {
        samples.push_back({pair.context.source.str() + (chosen ? " chosen" : " rejected"),
                           render_acsft(with_response(pair, chosen), template_options)});
      }
    }
    return samples;
  }
  std::vector<Conversation> conversations = read_conversations(options.input, format, bad_records);
  std::vector<std::string> attributes = format_attributes(format);
  if (attributes.empty()) attributes = attributes_present(conversations);
  const TemplateOptions template_options =
      make_template_options(config::ChatTemplate(), attributes);
  for (const Conversation& conversation : conversations) {
    if (format == config::DataFormat::REGRESSION_RM) {
      samples.push_back(
          {conversation.source.str(),
           {render_attribute_input(conversation, conversation.turns.size() - 1, template_options),
            {}}});
    } else {
      samples.push_back({conversation.source.str(), render_acsft(conversation, template_options)});
    }
  }
  return samples;
}

void print_sample(const InspectSample& sample, const Tokenizer* tokenizer, bool json) {
  const int64_t tokens = tokenizer ? tokenizer->encode(sample.rendered.text).size() : -1;
  if (json) {
    nlohmann::json segments = nlohmann::json::array();
    for (const Segment& segment : sample.rendered.segments()) {
      segments.push_back({{"text", segment.text}, {"trained", segment.trained}});
    }
    nlohmann::json line = {{"segments", segments}};
    if (tokenizer) line["tokens"] = tokens;
    std::cout << line.dump() << "\n";
    return;
  }
  std::cout << "=== " << sample.source;
  if (tokenizer) std::cout << " (" << tokens << " tokens)";
  std::cout << " === trained spans are marked \u00ab...\u00bb\n";
  for (const Segment& segment : sample.rendered.segments()) {
    std::cout << (segment.trained ? "\u00ab" + segment.text + "\u00bb" : segment.text);
  }
  std::cout << "\n\n";
}

void run_inspect(const InspectOptions& options) {
  const DataFormatKind format = resolve_format(options.input, parse_format_name(options.format));
  std::unique_ptr<Tokenizer> tokenizer;
  if (!options.tokenizer.empty()) tokenizer = Tokenizer::load(options.tokenizer);

  // Inspect is for looking at data: bad records are listed at the end instead of stopping it.
  BadRecordLog bad_records(config::BadRecord::SKIP);
  std::vector<InspectSample> samples = inspect_samples(options, format, &bad_records);
  const size_t shown =
      options.limit < 0 ? samples.size() : std::min<size_t>(samples.size(), options.limit);
  for (size_t i = 0; i < shown; ++i) print_sample(samples[i], tokenizer.get(), options.json);
  std::cout.flush();

  std::cerr << "steerlm data inspect: " << options.input << " (" << format_name(format)
            << "): " << samples.size() << " samples, " << shown << " shown";
  if (bad_records.records().empty()) std::cerr << ", no bad records\n";
  if (!bad_records.records().empty()) {
    std::cerr << "; skipped:";
    for (const auto& [reason, count] : bad_records.skipped_by_reason()) {
      std::cerr << " " << reason << "=" << count;
    }
    for (const auto& [reason, count] : bad_records.notes_by_reason()) {
      std::cerr << " (note) " << reason << "=" << count;
    }
    std::cerr << "\n";
    for (const BadRecord& record : bad_records.records()) {
      std::cerr << "  " << record.source.str() << ": " << record.message << "\n";
    }
  }
}

void run_synth(const std::string& output, int64_t n, uint64_t seed) {
  if (n <= 0) throw UsageError("--n must be positive (got " + std::to_string(n) + ")");
  std::string lines;
  for (const SynthSample& sample : synth_samples({n, seed})) {
    lines += synth_record(sample).dump() + "\n";
  }
  write_file_atomic(output, lines);
  std::cerr << "steerlm data synth: wrote " << n << " records (seed " << seed << ") to " << output
            << "\n";
}

}  // namespace

void register_data_commands(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "inspect and synthesise datasets");
  data->require_subcommand(1);

  auto inspect_options = std::make_shared<InspectOptions>();
  CLI::App* inspect = data->add_subcommand("inspect", "print rendered samples with trained spans");
  inspect->add_option("--input", inspect_options->input, "input file")->required();
  inspect->add_option("--format", inspect_options->format,
                      "auto (default), helpsteer, oasst_messages, oasst_trees, steerlm, "
                      "regression_rm, preference_pairs");
  inspect->add_option("--limit", inspect_options->limit, "samples to print (default: all)");
  inspect->add_option("--tokenizer", inspect_options->tokenizer, "tokenizer file, to count tokens");
  inspect->add_flag("--json", inspect_options->json,
                    "one JSON object per sample: {\"segments\": [...], \"tokens\": N}");
  inspect->callback([inspect_options] { run_inspect(*inspect_options); });

  auto synth_output = std::make_shared<std::string>();
  auto synth_n = std::make_shared<int64_t>(SynthOptions{}.n);
  auto synth_seed = std::make_shared<uint64_t>(SynthOptions{}.seed);
  CLI::App* synth = data->add_subcommand("synth", "write the embedded default dataset");
  synth->add_option("--output", *synth_output, "output JSONL")->required();
  synth->add_option("--n", *synth_n, "number of records (default 2000)");
  synth->add_option("--seed", *synth_seed, "random seed (default 1)");
  synth->callback([=] { run_synth(*synth_output, *synth_n, *synth_seed); });

  auto train_inputs = std::make_shared<std::vector<std::string>>();
  auto vocab_size = std::make_shared<int>(0);
  auto model_output = std::make_shared<std::string>();
  CLI::App* tokenizer = app.add_subcommand("tokenizer", "tokenizer tools");
  tokenizer->require_subcommand(1);
  CLI::App* train = tokenizer->add_subcommand("train", "train a SentencePiece tokenizer");
  train->add_option("--input", *train_inputs, "training text files")->required()->expected(1, -1);
  train->add_option("--vocab-size", *vocab_size, "vocabulary size")->required();
  train->add_option("--output", *model_output, "output .model path")->required();
  train->callback([=] {
    train_sentencepiece(*train_inputs, *vocab_size, *model_output);
    std::cerr << "steerlm tokenizer train: wrote " << *model_output << "\n";
  });
}

}  // namespace steerlm
